import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    # no example database: CI runs two sessions at once over the same checkout
    "ci", deadline=None, derandomize=True, max_examples=40, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

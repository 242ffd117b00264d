import os
import re

from hypothesis import HealthCheck, settings

settings.register_profile(
    # no example database: CI runs two sessions at once over the same checkout
    "ci", deadline=None, derandomize=True, max_examples=40, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_ignore_collect(collection_path, config):
    """A run whose marker expression does not select extras (the default addopts, the
    jax session's "jax or peers") does not import the
    modules marked extras as a whole: their module-level ``need(...)`` would otherwise
    report a skip for every optional library this environment lacks, though none of
    their tests was selected. Likewise for the modules marked typing (type checkers)."""
    expr = config.getoption("markexpr") or ""
    if not (collection_path.suffix == ".py" and collection_path.name.startswith("test_")
            and expr):
        return None
    for marker in ("extras", "typing"):
        # (selected: no marker expression, or one naming the marker other than as "not ...")
        if (not re.search(rf"(?<!not )\b{marker}\b", expr)
                and f"\npytestmark = pytest.mark.{marker}\n" in collection_path.read_text()):
            return True
    return None

import os
import re

import pytest
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


@pytest.fixture(autouse=True)
def _switches_left_as_found():
    """dualrev's process-wide switches (the shortcuts, the NaN mode) are as they were
    after every test. A test that turned one and left it turned would run the rest of the
    suite on the other path: the noshortcuts session ran its second half with the
    shortcuts on after a test restored them to "on" instead of to what it found (fixed
    2026-12-07). The switch is put back, and the test that left it fails."""
    from dualrev import config

    def state() -> tuple[bool, bool, bool]:
        return config.SHORTCUTS, config.DEBUG_NANS, config.DEBUG_INFS

    before = state()
    yield
    after = state()
    if after != before:
        config.set_shortcuts(before[0])
        config.set_debug_nans(before[1], inf=before[2])
        pytest.fail(f"this test left dualrev.config's (shortcuts, debug_nans, debug_infs) "
                    f"at {after}, not {before} as it found them: use the context managers "
                    f"config.shortcuts(...) / dr.debug_nans(...)", pytrace=False)

"""Recording mode: DUALREV_CONFORMANCE_RECORD=path runs the harness without its xfail
marks and its pinned refusals, and writes every failing case and every refusal (one JSON
object per line) to ``path``; ``python -m tests.conformance.record`` turns that into
known_failures.py and expected_refusals.py (``--run`` does both steps)."""

import json
import os
from typing import Any

RECORD = os.environ.get("DUALREV_CONFORMANCE_RECORD")

#: the one command that re-records both tables (the failure messages quote it)
RECORD_COMMAND = "python -m tests.conformance.record --run"


def pytest_runtest_logreport(report):
    if not RECORD or report.when != "call" or not report.failed:
        return
    test = next((t for t in ("test_conformance[", "test_jax_agreement[")
                 if t in report.nodeid), None)
    if test is None:
        return
    key = report.nodeid.split(test, 1)[1][:-1]
    crash = getattr(report.longrepr, "reprcrash", None)
    msg = crash.message if crash is not None else str(report.longrepr)[-300:]
    write_record({"key": key, "message": msg})


def write_record(row: dict[str, Any]) -> None:
    """Append one outcome to the recording file."""
    with open(RECORD, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def versions() -> dict[str, str]:
    """The installed NumPy/SciPy minor versions, as the tables record them."""
    import numpy as np
    import scipy

    return {m.__name__: ".".join(m.__version__.split(".")[:2]) for m in (np, scipy)}


def strict_here(recorded: dict[str, str] | None = None) -> bool:
    """Whether this NumPy/SciPy is the one a table was recorded with (known_failures.py
    by default): only there a known failure that passes, or a pinned refusal that passes
    or says something else, is an error."""
    if recorded is None:
        from .known_failures import RECORDED_WITH as recorded
    return versions() == recorded


def pytest_terminal_summary(terminalreporter):
    """The replay checks' counts (bit-identical results, replays, re-recordings) and the
    sparsity checks' (exact, superset, dense fallback, taken at the point)."""
    from .checks import REPLAY_COUNTS, SPARSITY_COUNTS

    if REPLAY_COUNTS:
        terminalreporter.write_line(f"replay checks: {dict(sorted(REPLAY_COUNTS.items()))}")
    if SPARSITY_COUNTS:
        terminalreporter.write_line(
            f"sparsity checks: {dict(sorted(SPARSITY_COUNTS.items()))}")

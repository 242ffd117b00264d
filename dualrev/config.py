"""The one switch over dualrev's shortcuts.

The per-operation hot path has shortcuts that change no result, only its cost: Python
scalar implementations of elementwise primitives, elementwise derivatives multiplied by
their partials without the rule wrapper, temporaries reused in place by the backward
pass, cotangents scattered straight into the pass's buffers, matrix products folded
across a batch, cached identity matrices. ``shortcuts(False)`` (or the environment
variable ``DUALREV_SHORTCUTS=0`` at import) turns every one of them off, so the plain
path can be tested alone and compared with the fast one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: whether the shortcuts are on (read by the hot paths at each use)
SHORTCUTS: bool = os.environ.get("DUALREV_SHORTCUTS", "1") != "0"


def set_shortcuts(on: bool) -> None:
    """Turn the shortcuts on or off for the whole process."""
    global SHORTCUTS
    SHORTCUTS = bool(on)


@contextlib.contextmanager
def shortcuts(on: bool) -> Iterator[None]:
    """``with dualrev.config.shortcuts(False): ...`` runs the block on the plain path."""
    before = SHORTCUTS
    set_shortcuts(on)
    try:
        yield
    finally:
        set_shortcuts(before)

"""The one switch over dualrev's shortcuts.

The per-operation hot path has shortcuts that change no result, only its cost: Python
scalar implementations of elementwise primitives, elementwise derivatives multiplied by
their partials without the rule wrapper, temporaries reused in place by the backward
pass, cotangents scattered straight into the pass's buffers, matrix products folded
across a batch, cached identity matrices. ``shortcuts(False)`` (or the environment
variable ``DUALREV_SHORTCUTS=0`` at import) turns every one of them off, so the plain
path can be tested alone and compared with the fast one.

No hot path reads the switch. Each shortcut is a choice made where it is declared: a
primitive picks its pull strategy when its rules are set, a module picks its fast or
plain helper at import. Both register a callback here (``on_shortcuts``, from below:
this module imports nothing of dualrev's), and ``set_shortcuts`` runs them all, so
turning the switch re-declares every choice once instead of each call asking again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

#: whether the shortcuts are on; read when a choice is made (a primitive's declaration,
#: ``set_shortcuts``), never by a per-operation path
SHORTCUTS: bool = os.environ.get("DUALREV_SHORTCUTS", "1") != "0"

_CHOOSERS: list[Callable[[bool], None]] = []


def on_shortcuts(choose: Callable[[bool], None]) -> Callable[[bool], None]:
    """Register ``choose(on)``, which makes a module's choices for the switch's state
    ``on``; it runs now and at every ``set_shortcuts``. Returns ``choose`` (usable as a
    decorator).

    Example:
        >>> from dualrev import config
        >>> state = {}
        >>> @config.on_shortcuts
        ... def _choose(on):
        ...     state["fast"] = on
        >>> with config.shortcuts(False):
        ...     print(state["fast"])
        False
        >>> config._CHOOSERS.remove(_choose)   # (undo the registration of this example)
    """
    _CHOOSERS.append(choose)
    choose(SHORTCUTS)
    return choose


def set_shortcuts(on: bool) -> None:
    """Turn the shortcuts on or off for the whole process: every registered choice is
    made again (see ``on_shortcuts``)."""
    global SHORTCUTS
    SHORTCUTS = bool(on)
    for choose in list(_CHOOSERS):
        choose(SHORTCUTS)


@contextlib.contextmanager
def shortcuts(on: bool) -> Iterator[None]:
    """``with dualrev.config.shortcuts(False): ...`` runs the block on the plain path."""
    before = SHORTCUTS
    set_shortcuts(on)
    try:
        yield
    finally:
        set_shortcuts(before)

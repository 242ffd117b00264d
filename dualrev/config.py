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
import threading
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


# ------------------------------------------------------------------ the NaN debugging mode
# The same rule as the shortcuts': no per-operation path reads these flags. The modules
# whose code checks values while the mode is on (the traces' ``process``, the tape's
# passes, dualrev.replay) register a chooser with ``on_debug_nans``, which swaps their
# checking code in and out when ``set_debug_nans`` turns the mode.

def _env_debug() -> tuple[bool, bool]:
    v = os.environ.get("DUALREV_DEBUG_NANS", "0").strip().lower()
    if v in ("", "0", "false", "off", "no"):
        return False, True
    return True, v != "nan"  # "nan": report nan only, let inf through


#: whether the debugging mode is on (``set_debug_nans``); read by the choosers and by
#: the paths that run only once a value is found non-finite
DEBUG_NANS: bool
#: whether the mode also stops at inf (``inf=``); read where a report is decided
DEBUG_INFS: bool
DEBUG_NANS, DEBUG_INFS = _env_debug()

_DEBUG_CHOOSERS: list[Callable[[bool], None]] = []
_DEBUG_LOCK = threading.RLock()


def on_debug_nans(choose: Callable[[bool], None]) -> Callable[[bool], None]:
    """Register ``choose(on)``, which swaps a module's checking code in (``on``) or out
    for the NaN debugging mode; it runs now and at every ``set_debug_nans``. Returns
    ``choose`` (usable as a decorator)."""
    _DEBUG_CHOOSERS.append(choose)
    choose(DEBUG_NANS)
    return choose


def set_debug_nans(on: bool, inf: bool = True) -> None:
    """Turn the NaN debugging mode on or off for the whole process (every thread, as
    ``jax.config.update("jax_debug_nans", True)``); ``dualrev.debug_nans`` does it for
    a block. While it is on, the first operation computing a nan (and an inf, unless
    ``inf=False``) raises ``dualrev.NonFiniteError``. The environment variable
    ``DUALREV_DEBUG_NANS=1`` (``=nan``: nan only) turns it on at import.

    Args:
        on: whether the mode is on.
        inf: whether an inf stops it too (JAX's ``jax_debug_infs``); a nan always does.
    Returns:
        None.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> dr.config.set_debug_nans(True)
        >>> try:
        ...     dr.grad(lambda x: np.log(x))(-1.0)
        ... except FloatingPointError as e:
        ...     print(e.prim, e.pass_)
        log forward
        >>> dr.config.set_debug_nans(False)
    """
    global DEBUG_NANS, DEBUG_INFS
    with _DEBUG_LOCK:
        DEBUG_INFS = bool(inf)
        if bool(on) != DEBUG_NANS:
            DEBUG_NANS = bool(on)
            for choose in list(_DEBUG_CHOOSERS):
                choose(DEBUG_NANS)


@contextlib.contextmanager
def debug_nans(on: bool = True, *, inf: bool = True) -> Iterator[None]:
    """Run a block in the NaN debugging mode: the first operation that makes a nan (or
    an inf) raises ``dualrev.NonFiniteError``, naming it, the user's line, the elements
    and their inputs, the pass (the values, forward-mode tangents or reverse-mode
    cotangents) and what to write instead; JAX's ``jax_debug_nans``.

    A value is checked as soon as a primitive computes it, at every level of nesting and
    under ``vmap``; a derivative where the transform returns, located then by the
    careful replay that backs ``NonFiniteDerivativeWarning`` (so a masked branch's
    cotangent, which dualrev's strong zeros make 0, is no false alarm). A value in the
    unused branch of ``np.where`` does stop it, as in JAX: the message gives the double
    ``np.where`` that avoids it. ``dualrev.replay`` runs its function dynamically while
    the mode is on, and ``solve_ivp`` checks each right-hand side's value. The mode is
    process-wide (``set_debug_nans``); the state before the block is restored after it,
    also when it raises. It costs nothing while it is off: the checking code is swapped
    in and out, no operation asks whether it is on. Usable as a decorator too.

    Args:
        on: whether the mode is on inside the block (``False`` turns it off there).
        inf: whether an inf stops it too (JAX's ``jax_debug_infs``); a nan always does.
    Returns:
        A context manager (and decorator): the block runs in the mode.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def f(x):
        ...     return np.sum(np.log(x - 1.0))
        >>> with dr.debug_nans():
        ...     try:
        ...         dr.grad(f)(np.array([3.0, 0.5]))
        ...     except dr.NonFiniteError as e:
        ...         print(e.prim, e.pass_, e.elements, e.cause)
        log forward [(1,)] domain
    """
    with _DEBUG_LOCK:
        before = DEBUG_NANS, DEBUG_INFS
        set_debug_nans(on, inf)
    try:
        yield
    finally:
        set_debug_nans(*before)

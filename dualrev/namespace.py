"""Names in NumPy's (and ``math``'s) namespaces that dualrev replaces while a transform runs.

NumPy's override protocols give no hook for ``np.array([a, b])``, ``np.asarray(x)``,
``np.r_[...]``, buffers made by ``np.zeros`` or ``math.exp(t)``: they convert their
arguments in C. dualrev therefore replaces such names in their module, but only while a
transform is running: the first transform to start installs every registered wrapper,
the last to finish restores the originals, so NumPy calls made while no transform runs
pay nothing. A wrapper delegates to the original unless one of its arguments is traced.

The registry is filled from below, by the catalogue module that implements each wrapper
(``replace_while_tracing``); the transforms enter ``installed`` around the user's
function. Installation is counted process-wide under a lock, like the collector pause:
threads that run no transform see the wrappers while another thread runs one, and get the
original's result from them (see docs/design.md, 2026-12-06).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

# (module, name) -> wrapper; the original is read when the wrapper is installed.
_REPLACEMENTS: dict[tuple[ModuleType, str], Callable[..., Any]] = {}
_saved: dict[tuple[ModuleType, str], Any] = {}
# wrapper -> the original it stood for when last installed (kept after restoring: NumPy's
# like= dispatch looks the public name up when it runs, and hands the wrapper over)
_originals_of: dict[Any, Any] = {}
_lock = threading.Lock()
_depth = 0


def replace_while_tracing(module: ModuleType, name: str, wrapper: Callable[..., Any]) -> None:
    """Register ``wrapper`` to stand for ``module.name`` while any transform runs.

    ``wrapper`` must give the original's result whenever no argument is traced. It is
    installed from the next time no transform is running (never in the middle of one).
    """
    _REPLACEMENTS[(module, name)] = wrapper


def original(module: ModuleType, name: str) -> Any:
    """``module.name`` as it was before dualrev replaced it (the name itself when it is
    not replaced now)."""
    key = (module, name)
    return _saved[key] if key in _saved else getattr(module, name)


def original_of(func: Any) -> Any:
    """The original that ``func`` stood for if it is an installed wrapper, else None.
    (NumPy's ``like=`` protocol passes the public name, the wrapper while a transform
    runs, to ``__array_function__``, whose handlers are registered for the original.)"""
    try:
        return _originals_of.get(func)
    except TypeError:  # (an unhashable object)
        return None


class _Installed:
    """Context entered by every transform: installs the registered wrappers on the way in
    from depth 0 and restores the originals on the way out to depth 0. A name someone else
    rebound meanwhile is left as they set it."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _depth
        with _lock:
            if _depth == 0:
                for (module, name), wrapper in _REPLACEMENTS.items():
                    _saved[(module, name)] = orig = getattr(module, name)
                    _originals_of[wrapper] = orig
                    setattr(module, name, wrapper)
            _depth += 1

    def __exit__(self, *exc: Any) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for key, orig in _saved.items():
                    module, name = key
                    if getattr(module, name, None) is _REPLACEMENTS.get(key):
                        setattr(module, name, orig)
                _saved.clear()


installed = _Installed()


def active() -> bool:
    """Whether the wrappers are installed now (some transform is running)."""
    return _depth > 0

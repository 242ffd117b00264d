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

import operator
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
# The registry grouped by module, rebuilt when it changes: installing and restoring are
# a few C-level dict operations per module (every transform call pays them: one
# setattr per name cost three times as much, docs/performance.md).
_plan: list[list[Any]] = []
_plan_size = -1
# per module of the plan, the originals saved by the current installation
_saved_by_module: list[dict[str, Any]] = []


def replace_while_tracing(module: ModuleType, name: str, wrapper: Callable[..., Any]) -> None:
    """Register ``wrapper`` to stand for ``module.name`` while any transform runs.

    ``wrapper`` must give the original's result whenever no argument is traced. It is
    installed from the next time no transform is running (never in the middle of one).
    """
    global _plan_size
    _REPLACEMENTS[(module, name)] = wrapper
    _plan_size = -1


def _getter(names: tuple[str, ...]) -> Any:
    if len(names) == 1:
        only = names[0]
        return lambda d: (d[only],)
    return operator.itemgetter(*names)


def _make_plan() -> None:
    global _plan, _plan_size
    by_module: dict[ModuleType, dict[str, Any]] = {}
    for (module, name), wrapper in _REPLACEMENTS.items():
        by_module.setdefault(module, {})[name] = wrapper
    # [module dict, wrappers, names, getter, wrapper values, last originals, as a dict]
    _plan = [[vars(m), ws, tuple(ws), _getter(tuple(ws)), tuple(ws.values()), None, None]
             for m, ws in by_module.items()]
    _plan_size = len(_REPLACEMENTS)


def original(module: ModuleType, name: str) -> Any:
    """``module.name`` as it was before dualrev replaced it (the name itself when it is
    not replaced now)."""
    key = (module, name)
    if key in _saved:
        return _saved[key]
    if _depth and key in _REPLACEMENTS:
        d = vars(module)
        for (md, *_), saved in zip(_plan, _saved_by_module, strict=False):
            if md is d and name in saved:
                return saved[name]
    return getattr(module, name)


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
                if _plan_size != len(_REPLACEMENTS):
                    _make_plan()
                _saved_by_module.clear()
                for entry in _plan:
                    d, wrappers, names, get, wvals = entry[:5]
                    saved = get(d)
                    if saved != entry[5]:  # (the same originals as last time: reused)
                        entry[5] = saved
                        entry[6] = dict(zip(names, saved, strict=True))
                        _originals_of.update(zip(wvals, saved, strict=True))
                    _saved_by_module.append(entry[6])
                    d.update(wrappers)
            _depth += 1

    def __exit__(self, *exc: Any) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (d, wrappers, _names, get, wvals, *_), saved in zip(
                        _plan, _saved_by_module, strict=True):
                    if get(d) == wvals:  # (functions compare by identity)
                        d.update(saved)
                    else:  # someone rebound a name meanwhile: theirs stays
                        for name, orig in saved.items():
                            if d.get(name) is wrappers[name]:
                                d[name] = orig
                _saved_by_module.clear()


installed = _Installed()


def active() -> bool:
    """Whether the wrappers are installed now (some transform is running)."""
    return _depth > 0

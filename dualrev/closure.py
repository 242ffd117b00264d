"""Traced values a function closes over, made explicit arguments (``lift``).

SciPy's callbacks (``minimize(lambda x: loss(x, theta), x0)``) take the values being
differentiated from their closure, where SciPy never sees them. ``lift(fun)`` returns an
equivalent function taking those values as trailing arguments, so that a rule can
differentiate with respect to them.

This is a minimal version: it looks into the ``__closure__`` cells of a plain Python
function (a cell holding a traced value, a pytree of them, or a function whose own
closure holds one, recursively) and rebuilds the function with new cells.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from .primitive import Tracer
from .tree import tree_flatten, tree_unflatten

__all__ = ["lift"]


def _traced_leaves(value: Any) -> bool:
    try:
        leaves, _ = tree_flatten(value)
    except Exception:  # noqa: BLE001 - an object tree_flatten cannot read holds nothing
        return False
    return any(isinstance(v, Tracer) for v in leaves)


def _plan(fun: Any, seen: set[int]) -> list[tuple[int, Any]] | None:
    """Per closure cell that holds traced values: ``(index, how)``, ``how`` being
    ``("tree", treedef, positions)`` or ``("fun", subplan)``; None when nothing is traced."""
    if not isinstance(fun, types.FunctionType) or fun.__closure__ is None or id(fun) in seen:
        return None
    seen.add(id(fun))
    plan: list[tuple[int, Any]] = []
    for i, cell in enumerate(fun.__closure__):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell (a name assigned later)
            continue
        if isinstance(value, types.FunctionType):
            sub = _plan(value, seen)
            if sub is not None:
                plan.append((i, ("fun", sub)))
        elif _traced_leaves(value):
            leaves, tdef = tree_flatten(value)
            pos = [k for k, v in enumerate(leaves) if isinstance(v, Tracer)]
            plan.append((i, ("tree", tdef, pos)))
    return plan or None


def _collect(fun: Any, plan: list[tuple[int, Any]], out: list[Any]) -> None:
    for i, how in plan:
        value = fun.__closure__[i].cell_contents
        if how[0] == "fun":
            _collect(value, how[1], out)
        else:
            leaves, _ = tree_flatten(value)
            out.extend(leaves[k] for k in how[2])


def _rebuild(fun: Any, plan: list[tuple[int, Any]], it: Any) -> Any:
    cells = list(fun.__closure__)
    for i, how in plan:
        value = cells[i].cell_contents
        if how[0] == "fun":
            new = _rebuild(value, how[1], it)
        else:
            leaves, tdef = tree_flatten(value)
            leaves = list(leaves)
            for k in how[2]:
                leaves[k] = next(it)
            new = tree_unflatten(tdef, leaves)
        cells[i] = types.CellType(new)
    g = types.FunctionType(fun.__code__, fun.__globals__, fun.__name__, fun.__defaults__,
                           tuple(cells))
    g.__kwdefaults__ = fun.__kwdefaults__
    return g


def lift(fun: Callable[..., Any]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``(g, params)`` with ``g(*args, *params) == fun(*args)``, ``params`` the traced
    values ``fun`` closes over (trailing arguments of ``g``); ``(fun, ())`` when none.

    Args:
        fun: a callable, usually a function or lambda handed to a SciPy solver.
    Returns:
        ``(g, params)``: ``g`` takes ``fun``'s arguments followed by one argument per
        traced value found in ``fun``'s closure (in a fixed order), and calls a copy of
        ``fun`` whose closure holds those arguments instead.
    Example:
        >>> import dualrev as dr
        >>> from dualrev.closure import lift
        >>> def f(k):
        ...     g, params = lift(lambda x: k * x)
        ...     return g(3.0, *params)
        >>> print(dr.grad(f)(2.0))
        3.0
    """
    plan = _plan(fun, set())
    if plan is None:
        return fun, ()
    params: list[Any] = []
    _collect(fun, plan, params)

    def g(*args: Any) -> Any:
        k = len(args) - len(params)
        rebuilt = _rebuild(fun, plan, iter(args[k:]))
        return rebuilt(*args[:k])

    return g, tuple(params)

"""Pytrees: nested tuples, lists, dicts (and namedtuples) of arrays, flattened to a list
of leaves and rebuilt. Transforms accept and return them; ``None`` is an empty subtree."""

from __future__ import annotations

from typing import Any


class TreeDef:
    """The structure of a pytree, without its leaves."""

    __slots__ = ("kind", "meta", "children")

    def __init__(self, kind: str, meta: Any = None, children: tuple[TreeDef, ...] = ()) -> None:
        self.kind = kind
        self.meta = meta
        self.children = children

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TreeDef)
            and self.kind == other.kind
            and self.meta == other.meta
            and self.children == other.children
        )

    def __hash__(self) -> int:
        return hash((self.kind, repr(self.meta), self.children))

    def __repr__(self) -> str:
        # Written like the tree itself, with * for each leaf: {'a': *, 'b': (*, *)}
        kids = [repr(c) for c in self.children]
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        if self.kind == "dict":
            items = (f"{k!r}: {c}" for k, c in zip(self.meta, kids, strict=True))
            return "{" + ", ".join(items) + "}"
        if self.kind == "list":
            return "[" + ", ".join(kids) + "]"
        if self.kind == "namedtuple":
            return f"{self.meta.__name__}({', '.join(kids)})"
        return "(" + ", ".join(kids) + (",)" if len(kids) == 1 else ")")


LEAF = TreeDef("leaf")


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves of ``tree`` in a fixed order (dicts by sorted key) and its structure.

    Tuples, lists, dicts and namedtuples are containers, ``None`` is an empty subtree, and
    everything else (arrays, scalars, traced values) is a leaf. This is the order in which
    the transforms pair arguments with tangents and outputs with cotangents.

    Args:
        tree: a pytree: nested tuples, lists, dicts, namedtuples of leaves.
    Returns:
        ``(leaves, treedef)``: the list of leaves, depth first (dict entries by sorted
        key), and a ``TreeDef`` describing the structure (printed like the tree with ``*``
        for each leaf; ``treedef.num_leaves`` counts them; equal structures compare equal).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> leaves, treedef = dr.tree_flatten({"b": (1.0, np.zeros(2)), "a": [3.0], "c": None})
        >>> print(leaves)
        [3.0, 1.0, array([0., 0.])]
        >>> treedef
        {'a': [*], 'b': (*, *), 'c': None}
    """
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeDef:
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return TreeDef("namedtuple", type(tree), tuple(_flatten(c, leaves) for c in tree))
    if isinstance(tree, (tuple, list)):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return TreeDef(kind, None, tuple(_flatten(c, leaves) for c in tree))
    if isinstance(tree, dict):
        keys = sorted(tree)
        return TreeDef("dict", tuple(keys), tuple(_flatten(tree[k], leaves) for k in keys))
    if tree is None:
        return TreeDef("none")
    leaves.append(tree)
    return LEAF


def tree_unflatten(treedef: TreeDef, leaves: Any) -> Any:
    """Rebuild a pytree of structure ``treedef`` from ``leaves``.

    The inverse of ``tree_flatten``: ``tree_unflatten(*reversed(tree_flatten(t)))`` equals
    ``t`` (with dicts in sorted key order).

    Args:
        treedef: the structure, a ``TreeDef`` from ``tree_flatten``.
        leaves: an iterable of leaves, in ``tree_flatten``'s order, at least
            ``treedef.num_leaves`` of them (extra ones are ignored).
    Returns:
        The pytree of that structure holding ``leaves`` (new containers; the leaves
        themselves are not copied).
    Example:
        >>> import dualrev as dr
        >>> _, treedef = dr.tree_flatten({"a": [1.0], "b": (2.0, 3.0)})
        >>> dr.tree_unflatten(treedef, [10, 20, 30])
        {'a': [10], 'b': (20, 30)}
    """
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(td: TreeDef, it: Any) -> Any:
    if td.kind == "leaf":
        return next(it)
    if td.kind == "none":
        return None
    children = [_unflatten(c, it) for c in td.children]
    if td.kind == "tuple":
        return tuple(children)
    if td.kind == "list":
        return children
    if td.kind == "namedtuple":
        return td.meta(*children)
    return dict(zip(td.meta, children, strict=True))


def tree_map(f: Any, tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leafwise to ``tree`` (and to trees of the same structure in ``rest``).

    Args:
        f: a function of one leaf (of ``1 + len(rest)`` leaves, one from each tree).
        tree: the pytree whose structure the result has.
        *rest: further pytrees with the same leaves in the same order as ``tree``.
    Returns:
        A pytree of ``tree``'s structure holding ``f(leaf, *other_leaves)`` at each leaf.
    Example:
        >>> import dualrev as dr
        >>> dr.tree_map(lambda x, y: x + y, {"a": 1.0, "b": (2.0,)}, {"a": 10.0, "b": (20.0,)})
        {'a': 11.0, 'b': (22.0,)}
    """
    leaves, td = tree_flatten(tree)
    others = [tree_flatten(r)[0] for r in rest]
    return tree_unflatten(td, [f(*xs) for xs in zip(leaves, *others, strict=True)])


# Leaves that are plain values (anything else with a dtype is a traced value)
_PLAIN = (int, float, complex, bool, list, tuple)


def ravel_pytree(tree: Any) -> tuple[Any, Any]:
    """``(flat, unravel)``: all leaves of ``tree`` concatenated into one 1-D array,
    and the function mapping such a vector back to a tree of the same structure and
    shapes. ``unravel`` is differentiable (it slices and reshapes), so an optimizer can
    work on ``flat`` while the model sees its dict of parameters.

    Args:
        tree: a pytree of arrays and scalars.
    Returns:
        ``(flat, unravel)``: ``flat`` of shape ``(n,)`` with ``n`` the total number of
        elements of the leaves (in ``tree_flatten``'s order, as float64, or complex128 when a
        leaf is complex; traced leaves give a traced ``flat``); ``unravel(v)``
        for a vector ``v`` of shape ``(n,)`` (plain or traced) returns the pytree with each
        leaf's slice of ``v`` reshaped to that leaf's shape.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> flat, unravel = dr.ravel_pytree({"w": np.ones((2, 2)), "b": np.zeros(2)})
        >>> print(flat)
        [0. 0. 1. 1. 1. 1.]
        >>> print(unravel(np.arange(6.0))["w"])
        [[2. 3.]
         [4. 5.]]
    """
    import numpy as np

    leaves, td = tree_flatten(tree)
    shapes = [np.shape(v) for v in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    # Traced leaves (a model's parameters inside grad or vmap) are concatenated by NumPy
    # calls their traces see, so flat carries their derivatives; plain ones are converted.
    # A complex leaf makes the vector complex (float would drop the imaginary parts).
    dt = np.result_type(float, *(np.asarray(v).dtype if isinstance(v, _PLAIN) else v.dtype
                                 for v in leaves))
    parts = [np.ravel(np.asarray(v, dtype=dt)) if isinstance(v, _PLAIN) else np.ravel(v)
             for v in leaves]
    flat = np.concatenate(parts).astype(dt, copy=False) if leaves else np.zeros(0)
    bounds = np.cumsum([0] + sizes)

    real = [(np.asarray(v).dtype if isinstance(v, _PLAIN) else v.dtype).kind != "c"
            for v in leaves]

    def unravel(vec: Any) -> Any:
        parts = [np.reshape(vec[int(a):int(b)], s)
                 for a, b, s in zip(bounds[:-1], bounds[1:], shapes, strict=True)]
        if dt.kind == "c":  # a real leaf of a complex vector gets its real part back
            parts = [np.real(p) if r else p for p, r in zip(parts, real, strict=True)]
        return tree_unflatten(td, parts)

    return flat, unravel

"""Pytrees: nested tuples, lists, dicts (and namedtuples) of arrays, flattened to a list
of leaves and rebuilt. Transforms accept and return them; ``None`` is an empty subtree.
Other types join with ``register_pytree_node``; xarray's DataArray and Dataset are
registered as soon as the user has imported xarray (tree_xarray.py), never by dualrev."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import tree_xarray
from .errors import DualrevError

#: ``type -> (flatten, unflatten)`` of the registered node types
_NODES: dict[type, tuple[Callable[[Any], tuple[Iterable[Any], Any]],
                         Callable[[Any, list[Any]], Any]]] = {}
#: node types whose Jacobian blocks are labelled by their own rule (xarray's)
_LABELLED: dict[type, Any] = {}
_MODULES = sys.modules
_XARRAY_PENDING = True  # until xarray's types are registered (once the user imports it)
_BUILTIN = (tuple, list, dict, type(None))


class TreeDef:
    """The structure of a pytree, without its leaves."""

    __slots__ = ("kind", "meta", "children")

    def __init__(self, kind: str, meta: Any = None, children: tuple[TreeDef, ...] = ()) -> None:
        # kind "node" (a registered type): meta is (type, aux)
        self.kind = kind
        self.meta = meta
        self.children = children

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreeDef) or self.kind != other.kind:
            return False
        if self.kind == "node":
            (t, aux), (u, bux) = self.meta, other.meta
            return t is u and _aux_equal(aux, bux) and self.children == other.children
        return self.meta == other.meta and self.children == other.children

    def __hash__(self) -> int:
        if self.kind == "node":
            try:
                return hash((self.kind, self.meta, self.children))
            except TypeError:  # an unhashable aux: equal ones still hash alike
                return hash((self.kind, self.meta[0], self.children))
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
        if self.kind == "node":
            return f"{self.meta[0].__name__}({', '.join(kids)})"
        return "(" + ", ".join(kids) + (",)" if len(kids) == 1 else ")")


def _aux_equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except ValueError as e:  # (an array's truth value is ambiguous)
        raise DualrevError(
            f"dualrev: a registered pytree node's auxiliary data ({type(a).__name__}) "
            "cannot be compared with ==; return hashable, comparable aux data from its "
            "flatten function (a tuple of names, shapes, numbers; arrays as tuples)") from e


LEAF = TreeDef("leaf")


def register_pytree_node(nodetype: type, flatten: Callable[[Any], tuple[Iterable[Any], Any]],
                         unflatten: Callable[[Any, list[Any]], Any]) -> None:
    """Make instances of ``nodetype`` pytree containers, as JAX's function of this name.

    Every transform then takes them as arguments and returns them (gradients, tangents,
    cotangents, Jacobians, ``has_aux`` values, ``vmap``'s ``in_axes`` prefixes), and
    ``tree_flatten``, ``tree_unflatten``, ``tree_map`` and ``ravel_pytree`` see through
    them. The children are differentiated, the auxiliary data is static: it is kept as
    it is, never traced, and it decides whether two structures are the same.

    Args:
        nodetype: the class (exactly this type; subclasses are not included).
        flatten: ``flatten(x) -> (children, aux)``: the children (an iterable of pytrees,
            in a fixed order) and hashable, ``==``-comparable auxiliary data.
        unflatten: ``unflatten(aux, children) -> x``, the inverse; it is also called with
            children of other shapes (a Jacobian's blocks) and of other types (traced
            values inside a transform), so it should store them without checking them.
    Returns:
        None; the registration lasts for the process (a type is registered once).
    Raises:
        DualrevError: ``nodetype`` is not a class, is a built-in container (``tuple``,
            ``list``, ``dict``, ``None``), or is registered already.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> class Point:
        ...     def __init__(self, x, y):
        ...         self.x, self.y = x, y
        >>> dr.register_pytree_node(Point, lambda p: ((p.x, p.y), None),
        ...                         lambda aux, xy: Point(*xy))
        >>> g = dr.grad(lambda p: p.x ** 2 * p.y)(Point(3.0, 2.0))
        >>> print(g.x, g.y)
        12.0 9.0
    """
    if not isinstance(nodetype, type):
        raise DualrevError(f"dualrev.register_pytree_node: the node type must be a class, "
                           f"got {nodetype!r}")
    if nodetype in _BUILTIN or nodetype in _NODES:
        what = "a built-in container" if nodetype in _BUILTIN else "registered already"
        raise DualrevError(f"dualrev.register_pytree_node: {nodetype.__qualname__} is {what}; "
                           "register each type once (a subclass of your own for another "
                           "flattening)")
    if not callable(flatten) or not callable(unflatten):
        raise DualrevError("dualrev.register_pytree_node needs two functions, "
                           "flatten(x) -> (children, aux) and unflatten(aux, children)")
    _NODES[nodetype] = (flatten, unflatten)


def _register_xarray() -> None:
    """xarray's DataArray and Dataset, once xarray is imported (never by dualrev: the
    check is whether the user's program has imported it)."""
    global _XARRAY_PENDING
    _XARRAY_PENDING = False
    for t, flatten, unflatten, labelled in tree_xarray.nodes():
        if t not in _NODES:  # a user's own registration comes first
            _NODES[t] = (flatten, unflatten)
            _LABELLED[t] = labelled


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves of ``tree`` in a fixed order (dicts by sorted key) and its structure.

    Tuples, lists, dicts and namedtuples are containers, ``None`` is an empty subtree,
    so are the types given to ``register_pytree_node`` and xarray's DataArray and Dataset
    (see docs/xarray.md), and everything else (arrays, scalars, traced values) is a
    leaf. This is the order in which the transforms pair arguments with tangents and
    outputs with cotangents.

    Args:
        tree: a pytree: nested tuples, lists, dicts, namedtuples, registered nodes of leaves.
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
    if _XARRAY_PENDING and "xarray" in _MODULES:
        _register_xarray()
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeDef:
    t = type(tree)
    if t is np.ndarray:
        leaves.append(tree)
        return LEAF
    if t is tuple or t is list:
        return TreeDef("tuple" if t is tuple else "list", None,
                       tuple(_flatten(c, leaves) for c in tree))
    if t is dict:
        keys = sorted(tree)
        return TreeDef("dict", tuple(keys), tuple(_flatten(tree[k], leaves) for k in keys))
    if tree is None:
        return TreeDef("none")
    node = _NODES.get(t)
    if node is not None:
        children, aux = node[0](tree)
        return TreeDef("node", (t, aux), tuple(_flatten(c, leaves) for c in children))
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return TreeDef("namedtuple", t, tuple(_flatten(c, leaves) for c in tree))
    if isinstance(tree, (tuple, list)):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return TreeDef(kind, None, tuple(_flatten(c, leaves) for c in tree))
    if isinstance(tree, dict):
        keys = sorted(tree)
        return TreeDef("dict", tuple(keys), tuple(_flatten(tree[k], leaves) for k in keys))
    leaves.append(tree)
    return LEAF


def node_children(x: Any) -> tuple[list[Any], Any] | None:
    """``(children, aux)`` of a registered node (one level), None for anything else."""
    if _XARRAY_PENDING and "xarray" in _MODULES:
        _register_xarray()
    node = _NODES.get(type(x))
    if node is None:
        return None
    children, aux = node[0](x)
    return list(children), aux


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
    return _rebuild(td, [_unflatten(c, it) for c in td.children])


def wraps_one_array(td: TreeDef) -> bool:
    """Whether ``td`` is a leaf, or a labelled node around one array (a DataArray): what
    ``grad`` accepts as a scalar output when the array is 0-d."""
    return td.kind == "leaf" or (td.kind == "node" and td.meta[0] in _LABELLED
                                 and len(td.children) == 1 and td.children[0].kind == "leaf")


def unflatten_jacobian(out_def: TreeDef, in_defs: list[TreeDef], blocks: list[list[Any]],
                       single: bool) -> Any:
    """A Jacobian as a pytree from its blocks: ``blocks[i][j]`` is the block of output
    leaf ``i`` and input leaf ``j`` (shape ``out_shape + in_shape``), ``in_defs`` the
    differentiated arguments' structures (one tree, ``single``, else a tuple of them).

    As in JAX, the result has the output's structure with each output leaf replaced by
    the inputs' structure of blocks. A labelled node (xarray's) is not a container of
    blocks: its labels go onto the blocks instead. A DataArray block is labelled by both
    sides' dims and coordinates (an input name the output also uses gets ``_in``); an
    output DataArray gives way to its blocks, an output Dataset to a dict by variable.
    """
    if out_def.kind == "leaf" and all(td.kind == "leaf" for td in in_defs):
        return blocks[0][0] if single else tuple(blocks[0])  # arrays in and out: no tree
    labels = [] if not _LABELLED else _labels(out_def, None, [])
    per_out = []
    for i, row in enumerate(blocks):
        it = iter(row)
        lab = labels[i] if labels else None
        trees = [_unflatten_block(td, it, lab) for td in in_defs]
        per_out.append(trees[0] if single else tuple(trees))
    return _unflatten_outer(out_def, iter(per_out))


def _labels(td: TreeDef, label: Any, out: list[Any]) -> list[Any]:
    """The label of each leaf of ``td``: that of its nearest labelled node, else None."""
    if td.kind == "leaf":
        out.append(label)
    elif td.kind == "node" and td.meta[0] in _LABELLED:
        for c, lab in zip(td.children, _LABELLED[td.meta[0]].labels(td.meta[1]), strict=True):
            _labels(c, lab, out)
    else:
        for c in td.children:
            _labels(c, label, out)
    return out


def _unflatten_block(td: TreeDef, it: Any, label: Any) -> Any:
    if td.kind == "leaf":
        block = next(it)
        return block if label is None else label.wrap(block)
    if td.kind == "node" and td.meta[0] in _LABELLED and all(
            c.kind == "leaf" for c in td.children):
        return _LABELLED[td.meta[0]].block(td.meta[1], [next(it) for _ in td.children],
                                           label)
    if td.kind == "none":
        return None
    children = [_unflatten_block(c, it, label) for c in td.children]
    return _rebuild(td, children)


def _unflatten_outer(td: TreeDef, it: Any) -> Any:
    if td.kind == "leaf":
        return next(it)
    if td.kind == "none":
        return None
    children = [_unflatten_outer(c, it) for c in td.children]
    if td.kind == "node" and td.meta[0] in _LABELLED:
        return _LABELLED[td.meta[0]].outer(td.meta[1], children)
    return _rebuild(td, children)


def _rebuild(td: TreeDef, children: list[Any]) -> Any:
    if td.kind == "tuple":
        return tuple(children)
    if td.kind == "list":
        return children
    if td.kind == "namedtuple":
        return td.meta(*children)
    if td.kind == "node":
        return _NODES[td.meta[0]][1](td.meta[1], children)
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

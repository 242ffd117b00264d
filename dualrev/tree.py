"""Pytrees: nested tuples, lists, dicts (and namedtuples) of arrays, flattened to a list
of leaves and rebuilt. Transforms accept and return them; ``None`` is an empty subtree.
Other types join with ``register_pytree_node`` (``register_dataclass`` and
``register_pytree_node_class`` build on it); xarray's DataArray and Dataset are
registered as soon as the user has imported xarray (tree_xarray.py), never by dualrev."""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TypeVar, overload

import numpy as np

from . import tree_xarray
from .errors import DualrevError

#: ``type -> (flatten, unflatten)`` of the registered node types
_NODES: dict[type, tuple[Callable[[Any], tuple[Iterable[Any], Any]],
                         Callable[[Any, list[Any]], Any]]] = {}
#: node types whose Jacobian blocks are labelled by their own rule (xarray's)
_LABELLED: dict[type, Any] = {}
#: registered dataclasses (and classes given field names): ``type -> (data, meta)`` names,
#: for the structure's printout and the paths in error messages
_FIELDS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}
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
            return t is u and _aux_equal(aux, bux, t) and self.children == other.children
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
            t, aux = self.meta
            names = _FIELDS.get(t)
            if names is not None:  # a dataclass: its fields by name, the static ones' values
                data, meta = names
                kids = [f"{n}={k}" for n, k in zip(data, kids, strict=True)]
                kids += [f"{n}={v!r}" for n, v in zip(meta, aux, strict=True)]
            return f"{t.__name__}({', '.join(kids)})"
        return "(" + ", ".join(kids) + (",)" if len(kids) == 1 else ")")


def _aux_equal(a: Any, b: Any, t: type | None = None) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except ValueError as e:  # (an array's truth value is ambiguous)
        names = _FIELDS.get(t) if t is not None else None
        if names is not None:
            raise DualrevError(
                f"dualrev: a static field of {t.__name__} ({', '.join(names[1])}) holds a "
                "value that cannot be compared with == (an array): static fields decide "
                "whether two structures are the same, so they must be hashable and "
                "comparable (numbers, strings, tuples). Make an array a data field, or "
                "store a tuple") from e
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


T = TypeVar("T", bound=type)


@overload
def register_dataclass(nodetype: T, data_fields: Sequence[str] | None = None,
                       meta_fields: Sequence[str] | None = None,
                       drop_fields: Sequence[str] = ()) -> T: ...


@overload
def register_dataclass(nodetype: None = None, data_fields: Sequence[str] | None = None,
                       meta_fields: Sequence[str] | None = None,
                       drop_fields: Sequence[str] = ()) -> Callable[[T], T]: ...


def register_dataclass(nodetype: T | None = None, data_fields: Sequence[str] | None = None,
                       meta_fields: Sequence[str] | None = None,
                       drop_fields: Sequence[str] = ()) -> T | Callable[[T], T]:
    """Make a dataclass a pytree node, as JAX's ``register_dataclass``; a decorator.

    Its data fields are children (differentiated: arrays, numbers, pytrees, ``None``),
    its meta fields are static (kept as they are, compared with ``==`` to decide whether
    two structures are the same: a change of one is another structure, as a change of a
    dict's keys). Without ``data_fields``/``meta_fields`` they are read from
    ``dataclasses.fields``: a field declared with ``field(metadata={"static": True})`` is
    meta, every other one data. Gradients, tangents, cotangents and Jacobian blocks come
    back as instances of the class.

    Instances are rebuilt **without calling** ``__init__`` or ``__post_init__`` (the
    fields are set on a new object, which works for frozen and slotted dataclasses too):
    the rebuilt values are traced inside a transform, gradients (a positive parameter's
    may be negative), Jacobian blocks or ``vmap`` axes, which a validation in
    ``__post_init__`` should not see. For the same reason a field with ``init=False``
    (computed in ``__post_init__``) is refused when the fields are inferred: a rebuilt
    instance would keep the old value, not one derived from the traced fields. Make it a
    ``@property`` (derived, so differentiated through), name it in ``data_fields`` or
    ``meta_fields`` to keep it as a field of its own, or in ``drop_fields`` to leave it out
    (a rebuilt instance then has its default, or no such attribute).

    Args:
        nodetype: the dataclass (or, with both field lists given, any class whose
            instances hold those attributes). Omitted: returns a decorator taking it,
            so ``@dr.register_dataclass(meta_fields=[...], data_fields=[...])`` works too.
        data_fields: the names of the fields that are children; give both lists or none.
        meta_fields: the names of the static fields (hashable values: strings, numbers,
            tuples; not arrays).
        drop_fields: fields left out of the tree.
    Returns:
        ``nodetype`` itself (so it decorates the class), registered for the process.
    Raises:
        DualrevError: ``nodetype`` is not a dataclass and the field lists are missing
            (a common cause: ``@dr.register_dataclass`` written below ``@dataclass``
            instead of above it), one list is given without the other, a name is not a
            field or is listed twice, a field (``init=False`` ones included) is not placed,
            or the type is registered already.
    Example:
        >>> import dataclasses
        >>> import numpy as np
        >>> import dualrev as dr
        >>> @dr.register_dataclass
        ... @dataclasses.dataclass
        ... class Params:
        ...     w: np.ndarray
        ...     b: float
        ...     activation: str = dataclasses.field(default="tanh", metadata={"static": True})
        >>> loss = lambda p: np.sum(getattr(np, p.activation)(p.w) * p.b)
        >>> g = dr.grad(loss)(Params(np.zeros(2), 3.0))
        >>> print(g.w, g.b, g.activation)
        [3. 3.] 0.0 tanh
    """
    if nodetype is None:
        return lambda cls: register_dataclass(cls, data_fields, meta_fields, drop_fields)
    name = "dualrev.register_dataclass"
    if not isinstance(nodetype, type):
        raise DualrevError(f"{name}: the node type must be a class, got {nodetype!r}")
    if (data_fields is None) != (meta_fields is None):
        raise DualrevError(f"{name}({nodetype.__name__}): give both data_fields and "
                           "meta_fields, or neither (then they are read from the dataclass)")
    if isinstance(drop_fields, str) or isinstance(data_fields, str) or isinstance(
            meta_fields, str):
        raise DualrevError(f"{name}({nodetype.__name__}): data_fields, meta_fields and "
                           "drop_fields are sequences of names, e.g. ['w', 'b'], not a string")
    drop = tuple(drop_fields)
    fields = {f.name: f for f in dataclasses.fields(nodetype)} if dataclasses.is_dataclass(
        nodetype) else None
    if data_fields is None or meta_fields is None:
        if fields is None:
            raise DualrevError(
                f"{name}: {nodetype.__name__} is not a dataclass, so its fields cannot be "
                "read. Write @dr.register_dataclass above @dataclasses.dataclass (decorators "
                "apply bottom-up), or give data_fields=[...] and meta_fields=[...]")
        chosen = [f for n, f in fields.items() if n not in drop]
        late = [f.name for f in chosen if not f.init]
        if late:
            raise DualrevError(
                f"{name}({nodetype.__name__}): field(s) {', '.join(late)} have init=False: "
                "their values come from __init__/__post_init__, which dualrev does not run "
                "when it rebuilds an instance (traced values, gradients), so they would keep "
                "their old values. Make each a @property computed from the other fields, "
                f"or name it in data_fields/meta_fields, or drop_fields=({late[0]!r},)")
        data = tuple(f.name for f in chosen if not f.metadata.get("static", False))
        meta = tuple(f.name for f in chosen if f.metadata.get("static", False))
    else:
        data, meta = tuple(data_fields), tuple(meta_fields)
        named = data + meta + drop
        twice = sorted({n for n in named if named.count(n) > 1})
        if twice:
            raise DualrevError(f"{name}({nodetype.__name__}): field(s) {', '.join(twice)} "
                               "named more than once among data_fields, meta_fields, "
                               "drop_fields")
        if fields is not None:
            unknown = [n for n in named if n not in fields]
            # an init=False field too: a rebuilt instance would read the class's default
            missing = [n for n in fields if n not in named]
            if unknown or missing:
                raise DualrevError(
                    f"{name}({nodetype.__name__}): "
                    + (f"not fields of the dataclass: {', '.join(unknown)}; " if unknown else "")
                    + (f"fields not placed: {', '.join(missing)} (add each to data_fields, "
                       "meta_fields or drop_fields)" if missing else "").rstrip("; "))
    # a dropped field gets its default on a rebuilt instance (when it has one)
    defaults: list[tuple[str, Callable[[], Any]]] = []
    for n in drop:
        f = None if fields is None else fields.get(n)
        if f is not None and f.default is not dataclasses.MISSING:
            defaults.append((n, lambda v=f.default: v))
        elif f is not None and f.default_factory is not dataclasses.MISSING:
            defaults.append((n, f.default_factory))
    register_pytree_node(nodetype, _field_flatten(data, meta),
                         _field_unflatten(nodetype, data, meta, defaults))
    _FIELDS[nodetype] = (data, meta)
    return nodetype


def _field_flatten(data: tuple[str, ...], meta: tuple[str, ...]
                   ) -> Callable[[Any], tuple[tuple[Any, ...], tuple[Any, ...]]]:
    def flatten(x: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return tuple([getattr(x, n) for n in data]), tuple([getattr(x, n) for n in meta])
    return flatten


def _field_unflatten(nodetype: type, data: tuple[str, ...], meta: tuple[str, ...],
                     defaults: list[tuple[str, Callable[[], Any]]]
                     ) -> Callable[[Any, list[Any]], Any]:
    new, set_ = object.__new__, object.__setattr__  # (frozen and slotted classes too)

    def unflatten(aux: tuple[Any, ...], children: list[Any]) -> Any:
        x = new(nodetype)
        for n, v in zip(data, children, strict=True):
            set_(x, n, v)
        for n, v in zip(meta, aux, strict=True):
            set_(x, n, v)
        for n, make in defaults:
            set_(x, n, make())
        return x
    return unflatten


def register_pytree_node_class(cls: T) -> T:
    """Register a class that flattens itself, as JAX's decorator of this name: ``cls``
    has a method ``tree_flatten(self) -> (children, aux)`` and a classmethod
    ``tree_unflatten(cls, aux, children)``; see ``register_pytree_node`` for what they
    receive (``tree_unflatten`` gets traced values, gradients and Jacobian blocks too,
    so it should store them without checking them).

    Args:
        cls: the class.
    Returns:
        ``cls`` itself, registered for the process.
    Raises:
        DualrevError: ``cls`` lacks either method, or is registered already.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> @dr.register_pytree_node_class
        ... class Box:
        ...     def __init__(self, lo, hi):
        ...         self.lo, self.hi = lo, hi
        ...     def tree_flatten(self):
        ...         return (self.lo, self.hi), None
        ...     @classmethod
        ...     def tree_unflatten(cls, aux, children):
        ...         return cls(*children)
        >>> g = dr.grad(lambda b: np.sum((b.hi - b.lo) ** 2))(Box(np.zeros(2), np.ones(2)))
        >>> print(g.lo, g.hi)
        [-2. -2.] [2. 2.]
    """
    if not isinstance(cls, type) or not callable(getattr(cls, "tree_flatten", None)) \
            or not callable(getattr(cls, "tree_unflatten", None)):
        raise DualrevError(
            f"dualrev.register_pytree_node_class: {getattr(cls, '__qualname__', cls)!r} needs "
            "a method tree_flatten(self) -> (children, aux) and a classmethod "
            "tree_unflatten(cls, aux, children)")
    register_pytree_node(cls, lambda x: x.tree_flatten(), cls.tree_unflatten)
    return cls


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
    so are the types given to ``register_pytree_node`` (``register_dataclass``,
    ``register_pytree_node_class``; exactly those types, not their subclasses) and
    xarray's DataArray and Dataset (see docs/xarray.md), and everything else (arrays,
    scalars, traced values, unregistered objects) is a leaf. This is the order in which
    the transforms pair arguments with tangents and outputs with cotangents.

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
        *rest: further pytrees of ``tree``'s structure, or with ``tree``'s structure as a
            prefix (as in JAX: a leaf of ``tree`` then meets a whole subtree of theirs).
    Returns:
        A pytree of ``tree``'s structure holding ``f(leaf, *other_leaves)`` at each leaf.
    Raises:
        DualrevError: a tree of ``rest`` has another structure: other containers, dict
            keys, lengths, or a registered node's static (meta) data; the message names
            the first place where they differ.
    Example:
        >>> import dualrev as dr
        >>> dr.tree_map(lambda x, y: x + y, {"a": 1.0, "b": (2.0,)}, {"a": 10.0, "b": (20.0,)})
        {'a': 11.0, 'b': (22.0,)}
    """
    leaves, td = tree_flatten(tree)
    others = []
    for k, r in enumerate(rest):
        ls, rd = tree_flatten(r)
        if rd != td:
            ls = []
            _flatten_up_to(td, r, "", ls, k + 1)
        others.append(ls)
    return tree_unflatten(td, [f(*xs) for xs in zip(leaves, *others, strict=True)])


def _flatten_up_to(td: TreeDef, x: Any, path: str, out: list[Any], k: int) -> None:
    """The subtrees of ``x`` at the leaves of ``td`` (``x``'s structure has ``td``'s as a
    prefix), else an error naming the first difference (``k``: which tree of tree_map)."""
    if td.kind == "leaf":
        out.append(x)
        return
    if td.kind == "none":
        if x is not None:
            _mismatch(k, path, "None", x)
        return
    if td.kind in ("tuple", "list"):
        want = tuple if td.kind == "tuple" else list  # (subclasses too, as _flatten reads)
        if not isinstance(x, want) or hasattr(x, "_fields") or len(x) != len(td.children):
            _mismatch(k, path, f"a {td.kind} of {len(td.children)}", x)
        kids = [(f"{path}[{i}]", c) for i, c in enumerate(x)]
    elif td.kind == "dict":
        if not isinstance(x, dict) or sorted(x) != list(td.meta):
            _mismatch(k, path, f"a dict with keys {list(td.meta)}", x)
        kids = [(f"{path}[{key!r}]", x[key]) for key in td.meta]
    elif td.kind == "namedtuple":
        if type(x) is not td.meta:
            _mismatch(k, path, f"a {td.meta.__name__}", x)
        kids = [(f"{path}.{n}", c) for n, c in zip(td.meta._fields, x, strict=True)]
    else:  # a registered node: the same type and the same static data
        t, aux = td.meta
        node = node_children(x) if type(x) is t else None
        if node is None:
            _mismatch(k, path, f"a {t.__name__}", x)
        children, xaux = node
        if not _aux_equal(aux, xaux, t) or len(children) != len(td.children):
            raise DualrevError(
                f"dualrev.tree_map: tree {k + 1} differs from the first at "
                f"{_where(path)}: a {t.__name__} with static (meta) data {xaux!r} where the "
                f"first tree has {aux!r}; static fields are part of the structure, so give "
                "both trees the same ones (or make the field a data field)")
        names = _FIELDS.get(t)
        keys = ([f".{n}" for n in names[0]] if names
                else [f"[{i}]" for i in range(len(children))])
        kids = [(path + key, c) for key, c in zip(keys, children, strict=True)]
    for (p, c), ctd in zip(kids, td.children, strict=True):
        _flatten_up_to(ctd, c, p, out, k)


def _where(path: str) -> str:
    return path or "the top"


def _mismatch(k: int, path: str, want: str, x: Any) -> NoReturn:
    raise DualrevError(f"dualrev.tree_map: tree {k + 1} differs from the first at "
                       f"{_where(path)}: expected {want}, got {type(x).__name__} "
                       f"{x!r:.60}; the trees must have the same structure (or the first "
                       "tree's structure as a prefix)")


def leaf_paths(td: TreeDef) -> list[tuple[str, type | None]]:
    """Where each leaf of the structure ``td`` sits, as Python would reach it from the
    root (``[0]``, ``['w']``, ``.bias`` for a dataclass or namedtuple field; ``""`` for
    the root itself), and the registered dataclass whose field it is (else None). For
    error messages."""
    out: list[tuple[str, type | None]] = []
    _paths(td, "", None, out)
    return out


def _paths(td: TreeDef, path: str, owner: type | None,
           out: list[tuple[str, type | None]]) -> None:
    if td.kind == "leaf":
        out.append((path, owner))
        return
    owner = None
    if td.kind == "dict":
        keys = [f"[{k!r}]" for k in td.meta]
    elif td.kind == "namedtuple":
        keys = [f".{n}" for n in td.meta._fields]
    elif td.kind == "node" and td.meta[0] in _FIELDS:
        keys = [f".{n}" for n in _FIELDS[td.meta[0]][0]]
        owner = td.meta[0]
    else:
        keys = [f"[{i}]" for i in range(len(td.children))]
    for key, c in zip(keys, td.children, strict=True):
        _paths(c, path + key, owner, out)


# leaves that are never parameters (a callable object of the user's may hold some: it is
# told to register its class instead)
_NOT_PARAMETERS = (str, bytes, type, types.FunctionType, types.BuiltinFunctionType,
                   types.MethodType, types.ModuleType, functools.partial, np.ufunc)


def not_a_container(x: Any, field: str = "", owner: type | None = None,
                    instead: str = "") -> str:
    """Why ``x`` (an input leaf that is neither a number nor an array of numbers) cannot
    be differentiated, and what to write: register its type (which containers work), or,
    for a field ``field`` of the registered dataclass ``owner`` that is no parameter
    (a function, a string, a module), declare it static. ``instead``: the transform's
    own way around (leave the argument out of argnums, or in_axes=None)."""
    t = type(x)
    if _XARRAY_PENDING and "xarray" in _MODULES:
        _register_xarray()
    if isinstance(x, _NOT_PARAMETERS):
        what = f"a {t.__name__} is not a number or array"
        if owner is not None:
            return (f"{what}. If {field} is not a parameter, declare it static in "
                    f"{owner.__name__}: `{field}: ... = dataclasses.field(metadata="
                    "{'static': True})` (or list it in meta_fields)")
        return (f"{what}: keep it out of the differentiated values ({instead}), or make it "
                "a static field of a registered dataclass (dataclasses.field(metadata="
                "{'static': True}))")
    listed = sorted({c.__name__ for c in _NODES})
    names = ", ".join(listed[:8] + (["..."] if len(listed) > 8 else []))
    known = ("tuple, list, dict, namedtuple, None"
             + (f" and the registered types ({names})" if names else
                " and types registered with dr.register_dataclass or "
                "dr.register_pytree_node")
             + ("" if "xarray" in _MODULES or names else
                "; xarray's DataArray and Dataset once xarray is imported"))
    sub = next((b for b in t.__mro__[1:] if b in _NODES), None)
    if sub is not None:
        how = (f"{t.__name__} is a subclass of the registered {sub.__name__}, and "
               "a registration covers one type, not its subclasses: register "
               f"{t.__name__} too (dr.register_dataclass({t.__name__}) for a "
               "dataclass)")
    elif dataclasses.is_dataclass(t):
        how = (f"{t.__name__} is a dataclass: write @dr.register_dataclass above its "
               "@dataclasses.dataclass (a field declared with "
               "field(metadata={'static': True}) stays static, not differentiated)")
    else:
        how = (f"Register {t.__name__}: dr.register_pytree_node({t.__name__}, "
               "flatten, unflatten) with flatten(x) -> (children, static_data) and "
               "unflatten(static_data, children) -> x, or @dr.register_pytree_node_class "
               "with tree_flatten/tree_unflatten methods")
    return (f"a {t.__name__} is neither a number or array nor a pytree container "
            f"(containers: {known}). {how}" + (f"; or {instead}" if instead else ""))


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

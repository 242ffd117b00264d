"""Shape primitives (reshape, transpose, broadcast_to, concatenate, pad) and the shape
functions NumPy builds from them (ravel, squeeze, stack, tile, flip, roll, diag, triu, ...).

All are linear, so each JVP applies the same operation to the tangent and each VJP
applies the transposed operation to the cotangent; each batching rule moves the
operation's axes past the batch axis.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from .. import pattern_rules
from ..batching import on_plain_values
from ..compile import register_inline
from ..errors import DualrevError, InPlaceError
from ..inplace import clone, note_view
from ..primitive import (
    FUNCTION_HANDLERS,
    Primitive,
    Tracer,
    as_array,
    bind,
    dtype_of,
    ndim_of,
    normalize_axis,
    register_function,
    shape_of,
    strip,
    unbroadcast,
    zeros_as,
)
from ..tree import tree_flatten
from .elementwise import astype
from .indexing import getitem, scatter_p


# ------------------------------------------------------------------ reshape
def _reshape_impl(x: Any, shape: tuple[int, ...]) -> Any:
    return np.reshape(x, shape)


reshape_p = Primitive("reshape", _reshape_impl)
# its pattern (structural sparsity detection): the elements it moves, which the primitive
# applied to positions says; so for the other moves below
reshape_p.defpattern(pattern_rules.by_positions(reshape_p))
# replayed programs (dualrev/compile.py) call the method np.reshape calls for an ndarray
register_inline(reshape_p, lambda out, args, params, seen, name: (
    f"{out} = {args[0]}.reshape({name(params['shape'])})" if seen[0].type is np.ndarray
    else None))
reshape_p.defjvp(lambda g, ans, x, shape: bind(reshape_p, (g,), {"shape": shape}))
reshape_p.defvjp(lambda g, ans, x, shape: bind(reshape_p, (g,), {"shape": shape_of(x)}),
                 saves="x.shape")
reshape_p.defbatch(lambda args, batched, shape: bind(
    reshape_p, args, {"shape": shape_of(args[0])[:1] + shape}))


@register_function(np.reshape)
def _reshape(a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
             copy: Any = None) -> Any:
    if order not in ("C", "F"):
        raise DualrevError(f"dualrev: reshape/ravel(order={order!r}) depends on the memory "
                           "layout, which a traced value does not have; pass order='C' or "
                           "order='F'")
    if shape is None:
        shape = newshape
    xs = shape_of(a)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if -1 in shape:
        shape = np.empty(xs, dtype=np.bool_).reshape(shape).shape
    if order == "F":
        # reading and writing in Fortran order is the C-order reshape of the reversed axes
        return _transpose(_reshape(_transpose(a), shape[::-1]))
    if shape == xs:
        return a
    return bind(reshape_p, (a,), {"shape": shape})


@register_function(np.ravel)
def _ravel(a: Any, order: str = "C") -> Any:
    return _reshape(a, (-1,), order)


@register_function(np.squeeze)
def _squeeze(a: Any, axis: Any = None) -> Any:
    xs = shape_of(a)
    if axis is None:
        axes = tuple(i for i, n in enumerate(xs) if n == 1)
    else:
        axes = normalize_axis(axis, len(xs))
        if any(xs[i] != 1 for i in axes):
            raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return _reshape(a, tuple(n for i, n in enumerate(xs) if i not in axes))


@register_function(np.expand_dims)
def _expand_dims(a: Any, axis: Any) -> Any:
    xs = shape_of(a)
    axes = normalize_axis(axis, len(xs) + (len(axis) if isinstance(axis, (tuple, list)) else 1))
    it = iter(xs)
    shape = tuple(1 if i in axes else next(it) for i in range(len(xs) + len(axes)))
    return _reshape(a, shape)


def _atleast(nd: int) -> Any:
    def handler(*arys: Any) -> Any:
        res = []
        for a in arys:
            s = shape_of(a)
            if len(s) < nd:
                if nd == 3 and len(s) == 2:
                    s = s + (1,)
                elif nd == 3 and len(s) == 1:
                    s = (1,) + s + (1,)
                else:
                    s = (1,) * (nd - len(s)) + s
                a = _reshape(a, s)
            res.append(a)
        return res[0] if len(res) == 1 else tuple(res)
    return handler


register_function(np.atleast_1d, _atleast(1))
register_function(np.atleast_2d, _atleast(2))
register_function(np.atleast_3d, _atleast(3))


# ------------------------------------------------------------------ transpose
def _transpose_impl(x: Any, axes: tuple[int, ...]) -> Any:
    return np.transpose(x, axes)


transpose_p = Primitive("transpose", _transpose_impl)
transpose_p.defpattern(pattern_rules.by_positions(transpose_p))
register_inline(transpose_p, lambda out, args, params, seen, name: (
    f"{out} = {args[0]}.transpose({name(params['axes'])})" if seen[0].type is np.ndarray
    else None))
transpose_p.defjvp(lambda g, ans, x, axes: bind(transpose_p, (g,), {"axes": axes}))
transpose_p.defvjp(lambda g, ans, x, axes: bind(
    transpose_p, (g,), {"axes": tuple(int(a) for a in np.argsort(axes))}), saves="")
transpose_p.defbatch(lambda args, batched, axes: bind(
    transpose_p, args, {"axes": (0,) + tuple(a + 1 for a in axes)}))


@register_function(np.transpose)
def _transpose(a: Any, axes: Any = None) -> Any:
    nd = ndim_of(a)
    if axes is None:
        axes = tuple(range(nd))[::-1]
    else:
        axes = tuple(int(ax) % nd for ax in axes)
        if sorted(axes) != list(range(nd)):
            raise ValueError("axes don't match array")
    if axes == tuple(range(nd)):
        return a
    return bind(transpose_p, (a,), {"axes": axes})


if hasattr(np, "permute_dims"):  # NumPy >= 2.0
    register_function(np.permute_dims, _transpose)


@register_function(np.swapaxes)
def _swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    nd = ndim_of(a)
    perm = list(range(nd))
    i, j = axis1 % nd, axis2 % nd
    perm[i], perm[j] = perm[j], perm[i]
    return _transpose(a, perm)


@register_function(np.moveaxis)
def _moveaxis(a: Any, source: Any, destination: Any) -> Any:
    nd = ndim_of(a)
    src = [int(s) % nd for s in np.atleast_1d(source)]
    dst = [int(d) % nd for d in np.atleast_1d(destination)]
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return _transpose(a, order)


# ------------------------------------------------------------------ broadcast_to
def _broadcast_impl(x: Any, shape: tuple[int, ...]) -> Any:
    return np.broadcast_to(x, shape)


def _broadcast_batch(args: list[Any], batched: tuple[bool, ...],
                     shape: tuple[int, ...]) -> Any:
    # the batch axis in front, unit axes after it for the axes broadcasting adds
    x = args[0]
    xs = shape_of(x)
    x = bind(reshape_p, (x,), {"shape": xs[:1] + (1,) * (len(shape) + 1 - len(xs)) + xs[1:]})
    return bind(broadcast_p, (x,), {"shape": xs[:1] + shape})


broadcast_p = Primitive("broadcast_to", _broadcast_impl)
broadcast_p.defpattern(pattern_rules.by_positions(broadcast_p))
broadcast_p.defjvp(lambda g, ans, x, shape: bind(broadcast_p, (g,), {"shape": shape}))
broadcast_p.defvjp(lambda g, ans, x, shape: unbroadcast(g, shape_of(x)), saves="x.shape")
broadcast_p.defbatch(_broadcast_batch)


@register_function(np.broadcast_to)
def _broadcast_to(array: Any, shape: Any, subok: bool = False) -> Any:
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if shape_of(array) == shape:
        return array
    return bind(broadcast_p, (array,), {"shape": shape})


@register_function(np.broadcast_arrays)
def _broadcast_arrays(*args: Any, subok: bool = False) -> Any:
    shape = np.broadcast_shapes(*[shape_of(a) for a in args])
    return tuple(_broadcast_to(a, shape) for a in args)


# ------------------------------------------------------------------ concatenate
def _concat_impl(*xs: Any, axis: int) -> Any:
    return np.concatenate(xs, axis=axis)


def _concat_jvp(tangents: Any, ans: Any, *xs: Any, axis: int) -> Any:
    # a constant piece's zero tangent in the library of the answer (Dask, CuPy)
    parts = [t if t is not None else zeros_as(shape_of(x), dtype_of(ans), ans)
             for t, x in zip(tangents, xs, strict=True)]
    return bind(concatenate_p, tuple(parts), {"axis": axis})


def _concat_vjp(i: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    start = sum(shape_of(x)[axis] for x in xs[:i])
    stop = start + shape_of(xs[i])[axis]
    return getitem(g, (slice(None),) * axis + (slice(start, stop),))


def _concat_batch(args: list[Any], batched: tuple[bool, ...], axis: int) -> Any:
    n = next(shape_of(a)[0] for a, b in zip(args, batched, strict=True) if b)
    parts = [a if b else np.broadcast_to(a, (n,) + shape_of(a))
             for a, b in zip(args, batched, strict=True)]
    return bind(concatenate_p, tuple(parts), {"axis": axis + 1})


concatenate_p = Primitive("concatenate", _concat_impl)
concatenate_p.defpattern(pattern_rules.by_positions(concatenate_p))
concatenate_p.defjvp_joint(_concat_jvp)
concatenate_p.defvjp_indexed(_concat_vjp)
concatenate_p.defbatch(_concat_batch)


def cast_joined(result: Any, arrays: list[Any], dtype: Any, casting: str) -> Any:
    """The result of joining ``arrays`` in the ``dtype=`` asked for, after NumPy's check
    that every input may be cast to it under the ``casting=`` rule."""
    # (result_type reads a list as a dtype; a traced value stands in by its dtype)
    plain = [np.zeros((), dtype_of(a)) if isinstance(a, Tracer) else as_array(a)
             for a in arrays]
    target = np.result_type(*plain) if dtype is None else np.dtype(dtype)
    for a in plain:
        src = np.result_type(a)
        if not np.can_cast(src, target, casting=casting):
            raise TypeError(f"Cannot cast array data from {src!r} to {target!r} according "
                            f"to the rule {casting!r}")
    return result if dtype is None else astype(result, dtype)


@register_function(np.concatenate)
def _concatenate(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None,
                 casting: str = "same_kind") -> Any:
    arrays = list(arrays)
    if out is not None:
        raise InPlaceError("numpy.concatenate(..., out=...)")
    if axis is None:
        arrays = [_ravel(a) for a in arrays]
        axis = 0
    nd = ndim_of(arrays[0])
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    joined = bind(concatenate_p, tuple(arrays), {"axis": int(axis) % nd})
    return cast_joined(joined, arrays, dtype, casting)


@register_function(np.stack)
def _stack(arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None,
           casting: str = "same_kind") -> Any:
    arrays = list(arrays)
    nd = ndim_of(arrays[0]) + 1
    axis = int(axis) % nd
    return _concatenate([_expand_dims(a, axis) for a in arrays], axis=axis, out=out,
                        dtype=dtype, casting=casting)


@register_function(np.hstack)
def _hstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrs = [_atleast(1)(a) for a in tup]
    return _concatenate(arrs, axis=0 if ndim_of(arrs[0]) == 1 else 1, dtype=dtype,
                        casting=casting)


@register_function(np.vstack)
def _vstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    return _concatenate([_atleast(2)(a) for a in tup], axis=0, dtype=dtype, casting=casting)


register_function(np.row_stack if hasattr(np, "row_stack") else np.vstack, _vstack)


@register_function(np.column_stack)
def _column_stack(tup: Any) -> Any:
    arrs = [a if ndim_of(a) >= 2 else _reshape(a, (-1, 1)) for a in tup]
    return _concatenate(arrs, axis=1)


@register_function(np.dstack)
def _dstack(tup: Any) -> Any:
    return _concatenate([_atleast(3)(a) for a in tup], axis=2)


@register_function(np.split)
def _split(ary: Any, indices_or_sections: Any, axis: int = 0) -> Any:
    return _array_split(ary, indices_or_sections, axis, exact=True)


@register_function(np.array_split)
def _array_split(ary: Any, indices_or_sections: Any, axis: int = 0, exact: bool = False) -> Any:
    n = shape_of(ary)[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if exact and n % k:
            raise ValueError("array split does not result in an equal division")
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = np.concatenate([[0], np.cumsum(sizes)])
    else:
        bounds = np.concatenate([[0], np.asarray(indices_or_sections, dtype=int), [n]])
    axis = int(axis) % ndim_of(ary)
    pre = (slice(None),) * axis
    return [getitem(ary, pre + (slice(int(a), int(b)),)) for a, b in zip(bounds[:-1], bounds[1:],
                                                                           strict=True)]


# ------------------------------------------------------------------ pad
def _pad_impl(x: Any, widths: tuple[tuple[int, int], ...]) -> Any:
    return np.pad(x, widths)


def _pad_vjp(g: Any, ans: Any, x: Any, widths: tuple[tuple[int, int], ...]) -> Any:
    xs = shape_of(x)
    return getitem(g, tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, xs, strict=True)))


pad_p = Primitive("pad", _pad_impl)
pad_p.defpattern(pattern_rules.by_positions(pad_p, data=(0,)))  # the fill: no dependency
pad_p.defjvp(lambda g, ans, x, widths: bind(pad_p, (g,), {"widths": widths}))
pad_p.defvjp(_pad_vjp, saves="x.shape")
pad_p.defbatch(lambda args, batched, widths: bind(pad_p, args, {"widths": ((0, 0),) + widths}))


#: modes whose padding copies elements of the array (no arithmetic): a gather each
_COPYING_PAD_MODES = ("edge", "wrap", "reflect", "symmetric")


def _pad_by_copies(array: Any, pad_width: Any, mode: str, kwargs: dict[str, Any]) -> Any:
    """np.pad for the modes that copy elements: NumPy pads axis by axis, each line the
    same way, so padding ``arange(n)`` gives the source index of every output position
    along that axis; the traced array is gathered with it (derivatives: those of
    indexing)."""
    if kwargs.get("reflect_type", "even") != "even":
        raise DualrevError(f"dualrev: np.pad(mode={mode!r}, reflect_type='odd') has no "
                           "derivative rule yet (it extrapolates 2 * edge - x); "
                           "reflect_type='even' (the default) is supported on traced values")
    # NumPy's own checks of pad_width and the keywords, on a stand-in of the same shape
    np.pad(np.zeros(shape_of(array)), pad_width, mode=mode, **kwargs)
    nd = ndim_of(array)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (nd, 2))
    out = array
    for axis, n in enumerate(shape_of(array)):
        if not widths[axis].any():
            continue
        index = np.pad(np.arange(n), tuple(int(w) for w in widths[axis]), mode=mode, **kwargs)
        out = getitem(out, (slice(None),) * axis + (index,))
    if out is array and isinstance(array, Tracer):  # no padding: still a new array
        out = clone(array)
    return out


@register_function(np.pad)
def _pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    if mode in _COPYING_PAD_MODES:
        return _pad_by_copies(array, pad_width, mode, kwargs)
    if mode != "constant":
        raise DualrevError(f"dualrev: np.pad(mode={mode!r}) has no derivative rule yet; "
                           "mode='constant' and the modes that copy elements "
                           f"({', '.join(_COPYING_PAD_MODES)}) are supported on traced values")
    cval = kwargs.pop("constant_values", 0)
    if kwargs:  # NumPy's own check: these belong to other modes
        raise ValueError(f"unsupported keyword arguments for mode 'constant': {set(kwargs)}")
    if any(isinstance(v, Tracer) for v in tree_flatten(cval)[0]):
        raise DualrevError("dualrev: traced constant_values in np.pad are not supported "
                           "(pad with zeros and add the constant with np.where)")
    nd = ndim_of(array)
    widths = tuple(tuple(int(w) for w in p) for p in np.broadcast_to(pad_width, (nd, 2)))
    out = bind(pad_p, (array,), {"widths": widths})
    if np.any(strip(cval) != 0):
        mask = np.pad(np.zeros(shape_of(array), dtype=bool), widths, constant_values=True)
        fill = np.pad(np.zeros(shape_of(array)), widths, constant_values=strip(cval))
        out = np.where(mask, fill, out)
    return out


# ------------------------------------------------------------------ built from the above
@register_function(np.flip)
def _flip(m: Any, axis: Any = None) -> Any:
    nd = ndim_of(m)
    axes = normalize_axis(axis, nd)
    return getitem(m, tuple(slice(None, None, -1) if i in axes else slice(None)
                            for i in range(nd)))


register_function(np.fliplr, lambda m: _flip(m, 1))
register_function(np.flipud, lambda m: _flip(m, 0))


@register_function(np.roll)
def _roll(a: Any, shift: Any, axis: Any = None) -> Any:
    if axis is None:
        return _reshape(_roll(_ravel(a), shift, 0), shape_of(a))
    shifts = np.broadcast_to(shift, np.shape(axis)).ravel() if np.ndim(axis) else [shift]
    axes = np.atleast_1d(axis)
    out = a
    for s, ax in zip(shifts, axes, strict=True):
        ax = int(ax) % ndim_of(a)
        n = shape_of(a)[ax]
        idx = (np.arange(n) - int(s)) % n
        out = getitem(out, (slice(None),) * ax + (idx,))
    return out


@register_function(np.repeat)
def _repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    if axis is None:
        a = _ravel(a)
        axis = 0
    axis = int(axis) % ndim_of(a)
    n = shape_of(a)[axis]
    idx = np.repeat(np.arange(n), repeats)
    return getitem(a, (slice(None),) * axis + (idx,))


@register_function(np.tile)
def _tile(A: Any, reps: Any) -> Any:
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    xs = shape_of(A)
    nd = max(len(xs), len(reps))
    xs = (1,) * (nd - len(xs)) + xs
    reps = (1,) * (nd - len(reps)) + reps
    # Interleave a repetition axis before each axis, broadcast, then merge the pairs.
    a = _reshape(A, tuple(v for n in xs for v in (1, n)))
    a = _broadcast_to(a, tuple(v for r, n in zip(reps, xs, strict=True) for v in (r, n)))
    return _reshape(a, tuple(r * n for r, n in zip(reps, xs, strict=True)))


@register_function(np.diagonal)
def _diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    moved = _moveaxis(a, (axis1, axis2), (-2, -1))
    r, c = shape_of(moved)[-2:]
    rows = np.arange(max(0, -offset), min(r, c - offset))
    return getitem(moved, (Ellipsis, rows, rows + offset))


@register_function(np.trace)
def _trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
           out: Any = None) -> Any:
    return np.sum(_diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype, out=out)


@register_function(np.diag)
def _diag(v: Any, k: int = 0) -> Any:
    s = shape_of(v)
    if len(s) == 2:
        # NumPy's np.diag of a matrix is its read-only diagonal view: through the
        # registered np.diagonal handler, so a write into it is refused as NumPy's is
        return FUNCTION_HANDLERS[np.diagonal](v, k)
    if len(s) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = s[0] + abs(k)
    rows = np.arange(s[0]) + max(0, -k)
    return bind(scatter_p, (v,), {"idx": (rows, rows + k), "nb": 0, "shape": (n, n)})


@register_function(np.lib.stride_tricks.sliding_window_view)
def _sliding_window_view(x: Any, window_shape: Any, axis: Any = None, *, subok: bool = False,
                         writeable: bool = False) -> Any:
    if writeable:
        raise InPlaceError(
            "np.lib.stride_tricks.sliding_window_view(..., writeable=True) (windows that "
            "overlap in memory)", rewrite="take the windows read-only and build the "
            "written array from them with np.stack or dualrev.at")
    shape = shape_of(x)
    pos = np.lib.stride_tricks.sliding_window_view(
        np.arange(int(np.prod(shape))).reshape(shape), window_shape, axis)
    out = getitem(_reshape(x, (-1,)), (np.ascontiguousarray(pos),))
    # NumPy's windows are a read-only view: writes into them are refused, and a write
    # into x makes them stale (dualrev/inplace.py)
    if isinstance(x, Tracer):
        note_view(x, out, "sliding_window_view")
    return out


def _tri_mask(shape: tuple[int, ...], k: int, upper: bool) -> np.ndarray:
    r, c = shape[-2:]
    lower = np.tri(r, c, k - 1 if upper else k, dtype=bool)
    return ~lower if upper else lower


@register_function(np.triu)
def _triu(m: Any, k: int = 0) -> Any:
    return np.where(_tri_mask(shape_of(m), k, True), m, 0.0)


@register_function(np.tril)
def _tril(m: Any, k: int = 0) -> Any:
    return np.where(_tri_mask(shape_of(m), k, False), m, 0.0)


@register_function(np.copy)
def _copy(a: Any, order: str = "K", subok: bool = False) -> Any:
    if not isinstance(a, Tracer):
        return np.copy(a)
    c = clone(a)  # another object: see inplace
    if not shape_of(a):
        c._array0d = True  # np.copy of a scalar is a 0-d array, which writes change
    return c


@register_function(np.cross)
def _cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
           axis: Any = None) -> Any:
    if axis is not None:
        axisa = axisb = axisc = axis
    # NumPy's own checks and warnings (2-vectors are deprecated since NumPy 2.0), on
    # stand-ins, re-issued at the caller's line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.cross(np.zeros(shape_of(a)), np.zeros(shape_of(b)), axisa, axisb, axisc)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=_caller_stacklevel())
    a = _moveaxis(a, axisa, -1)
    b = _moveaxis(b, axisb, -1)
    na, nb = shape_of(a)[-1], shape_of(b)[-1]

    def comp(v: Any, i: int, n: int) -> Any:
        # a 2-vector's third component is 0, as in NumPy
        return getitem(v, (Ellipsis, i)) if i < n else 0.0

    z = comp(a, 0, na) * comp(b, 1, nb) - comp(a, 1, na) * comp(b, 0, nb)
    if na == nb == 2:  # NumPy returns the z component alone
        return z
    parts = [comp(a, 1, na) * comp(b, 2, nb) - comp(a, 2, na) * comp(b, 1, nb),
             comp(a, 2, na) * comp(b, 0, nb) - comp(a, 0, na) * comp(b, 2, nb), z]
    parts = np.broadcast_arrays(*parts)
    return _moveaxis(_stack(list(parts), axis=-1), -1, axisc)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` naming the first frame outside dualrev, for a warning issued by
    the function calling this one."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("dualrev"):
        frame, level = frame.f_back, level + 1
    return level


# ------------------------------------------------------------------ append, rot90, rollaxis,
# vsplit/hsplit/dsplit: NumPy's own definitions, in terms of the routed functions above
@register_function(np.append)
def _append(arr: Any, values: Any, axis: Any = None) -> Any:
    if axis is None:
        return _concatenate([np.ravel(arr), np.ravel(values)], axis=0)
    return _concatenate([arr, values], axis=axis)


@register_function(np.rot90)
def _rot90(m: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    axes = tuple(axes)
    nd = ndim_of(m)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == nd:
        raise ValueError("Axes must be different.")
    if not (-nd <= axes[0] < nd and -nd <= axes[1] < nd):
        raise ValueError(f"Axes={axes} out of range for array of ndim={nd}.")
    k = int(k) % 4
    if k == 0:
        return m
    if k == 2:
        return np.flip(np.flip(m, axes[0]), axes[1])
    perm = list(range(nd))
    perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
    if k == 1:
        return np.transpose(np.flip(m, axes[1]), perm)
    return np.flip(np.transpose(m, perm), axes[1])


@register_function(np.rollaxis)
def _rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    nd = ndim_of(a)
    axis = normalize_axis(axis, nd)[0]
    if start < 0:
        start += nd
    if not 0 <= start < nd + 1:
        raise np.exceptions.AxisError(
            f"'start' arg requires {-nd} <= start < {nd + 1}, but {start} was passed in")
    if axis < start:
        start -= 1  # the axis's removal shifts the ones after it
    if axis == start:
        return a
    perm = [d for d in range(nd) if d != axis]
    perm.insert(start, axis)
    return np.transpose(a, perm)


def _split_along(name: str, axis: int, least: int) -> Any:
    def handler(ary: Any, indices_or_sections: Any) -> Any:
        nd = ndim_of(ary)
        if nd < least:
            raise ValueError(f"{name} only works on arrays of {least} or more dimensions")
        return _split(ary, indices_or_sections, axis=1 if name == "hsplit" and nd > 1
                      else axis)
    handler.__name__ = f"_{name}"
    handler.__doc__ = f"``numpy.{name}`` on traced values: ``numpy.split`` along its axis."
    return handler


register_function(np.vsplit, _split_along("vsplit", 0, 2))
register_function(np.hsplit, _split_along("hsplit", 0, 1))
register_function(np.dsplit, _split_along("dsplit", 2, 3))


@register_function(np.diagflat)
def _diagflat(v: Any, k: int = 0) -> Any:
    return np.diag(np.ravel(v), k)


def _unstack(x: Any, /, *, axis: int = 0) -> Any:
    """``numpy.unstack`` (NumPy >= 2.1) on traced values: the slices along ``axis``."""
    if ndim_of(x) == 0:
        raise ValueError("Input array must be at least 1-d.")
    moved = np.moveaxis(x, axis, 0)
    return tuple(getitem(moved, (i,)) for i in range(shape_of(moved)[0]))


if hasattr(np, "unstack"):
    register_function(np.unstack, _unstack)


# ------------------------------------------------------------------ delete, compress,
# extract, choose, resize, block: gathers at indices computed on plain values
def _index_of(x: Any) -> Any:
    """An index or mask argument, as NumPy reads it (it carries no derivative)."""
    return strip(x) if isinstance(x, Tracer) else x


@register_function(np.delete)
def _delete(arr: Any, obj: Any, axis: Any = None) -> Any:
    if axis is None:
        arr, axis = np.ravel(arr), 0
    axis = normalize_axis(axis, ndim_of(arr))[0]
    keep = np.delete(np.arange(shape_of(arr)[axis]), _index_of(obj))
    return np.take(arr, keep, axis=axis)


@register_function(np.compress)
def _compress(condition: Any, a: Any, axis: Any = None, out: Any = None) -> Any:
    if out is not None:
        raise InPlaceError("numpy.compress(..., out=...)")
    cond = np.asarray(_index_of(condition))
    if cond.ndim != 1:
        raise ValueError("condition must be a 1-d array")
    if axis is None:
        a, axis = np.ravel(a), 0
    return np.take(a, np.nonzero(cond)[0], axis=axis)


@register_function(np.extract)
def _extract(condition: Any, arr: Any) -> Any:
    return np.take(np.ravel(arr), np.nonzero(np.ravel(_index_of(condition)))[0])


@register_function(np.choose)
def _choose(a: Any, choices: Any, out: Any = None, mode: str = "raise") -> Any:
    if out is not None:
        raise InPlaceError("numpy.choose(..., out=...)")
    idx = np.asarray(_index_of(a))
    n = len(choices)
    if mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        idx = np.clip(idx, 0, n - 1)
    elif mode == "raise":
        if np.any((idx < 0) | (idx >= n)):
            raise ValueError("invalid entry in choice array")
    else:
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    shape = np.broadcast_shapes(idx.shape, *[shape_of(c) for c in choices])
    stacked = np.stack([np.broadcast_to(c, shape) for c in choices])
    picked = np.take_along_axis(stacked, np.broadcast_to(idx, shape)[None], axis=0)
    return getitem(picked, (0,))


@register_function(np.resize)
def _resize(a: Any, new_shape: Any) -> Any:
    shape = (int(new_shape),) if isinstance(new_shape, (int, np.integer)) else tuple(
        int(n) for n in new_shape)
    if any(n < 0 for n in shape):
        raise ValueError("all elements of `new_shape` must be non-negative")
    flat = np.ravel(a)
    size, new = shape_of(flat)[0], int(np.prod(shape))
    if size == 0 or new == 0:
        return np.zeros(shape, dtype_of(flat))
    return np.reshape(np.take(flat, np.arange(new) % size), shape)


def _block_depth(x: Any) -> int:
    if isinstance(x, tuple):
        raise TypeError("arrays is a tuple. Only lists can be used to arrange blocks, and "
                        "np.block does not allow implicit conversion from tuple to ndarray.")
    if not isinstance(x, list):
        return 0
    if not x:
        raise ValueError("List at arrays cannot be empty")
    depths = {_block_depth(e) for e in x}
    if len(depths) != 1:
        raise ValueError("List depths are mismatched.")
    return 1 + depths.pop()


@register_function(np.block)
def _block(arrays: Any) -> Any:
    depth = _block_depth(arrays)

    def leaves(x: Any) -> list[Any]:
        return [y for e in x for y in leaves(e)] if isinstance(x, list) else [x]

    nd = max([depth] + [ndim_of(x) for x in leaves(arrays)])

    def build(x: Any, level: int) -> Any:
        if level == depth:  # a block, with leading axes of size 1 up to nd
            return np.reshape(x, (1,) * (nd - ndim_of(x)) + shape_of(x))
        return _concatenate([build(e, level + 1) for e in x], axis=-(depth - level))

    return build(arrays, 0)


def _unsorted_firsts(v: Any, equal_nan: bool) -> Any:
    values = np.unique(v, sorted=False, equal_nan=equal_nan)
    ordered, first = np.unique(v, return_index=True, equal_nan=equal_nan)
    return first[np.searchsorted(ordered, values)]


@register_function(np.unique)
def _unique(ar: Any, return_index: bool = False, return_inverse: bool = False,
            return_counts: bool = False, axis: Any = None, *, equal_nan: bool = True,
            sorted: bool = True) -> Any:
    # the unique values are gathered at the first occurrences NumPy reports (at ties the
    # derivative goes to that one); indices, inverse and counts are plain
    if not sorted and axis is None and not (return_index or return_inverse or return_counts):
        # NumPy's unsorted order (a hash table's), mapped to the first occurrences
        first = on_plain_values(_unsorted_firsts, (ar,), {"equal_nan": equal_nan},
                                "numpy.unique")
        return np.take(np.ravel(ar), first)
    kw = {"return_index": True, "return_inverse": return_inverse,
          "return_counts": return_counts, "axis": axis, "equal_nan": equal_nan}
    plain = on_plain_values(np.unique, (ar,), kw, "numpy.unique")
    first = plain[1]
    values = np.take(np.ravel(ar), first) if axis is None else np.take(ar, first, axis=axis)
    extra = ([first] if return_index else []) + list(plain[2:])  # inverse, counts
    return tuple([values, *extra]) if extra else values


@register_function(np.apply_along_axis)
def _apply_along_axis(func1d: Any, axis: int, arr: Any, *args: Any, **kwargs: Any) -> Any:
    nd = ndim_of(arr)
    axis = normalize_axis(axis, nd)[0]
    moved = np.moveaxis(arr, axis, -1)
    outer = shape_of(moved)[:-1]
    if any(n == 0 for n in outer):
        raise ValueError("Cannot apply_along_axis when any iteration dimensions are 0")
    results = [func1d(getitem(moved, idx), *args, **kwargs) for idx in np.ndindex(outer)]
    res = np.reshape(np.stack(results), outer + shape_of(results[0]))
    k = ndim_of(results[0])
    # the function's own axes go where the applied axis was
    return np.moveaxis(res, tuple(range(len(outer), len(outer) + k)),
                       tuple(range(axis, axis + k)))


@register_function(np.apply_over_axes)
def _apply_over_axes(func: Any, a: Any, axes: Any) -> Any:
    nd = ndim_of(a)
    for axis in np.atleast_1d(axes):
        axis = int(axis) % nd
        res = func(a, axis)
        if ndim_of(res) != ndim_of(a):
            res = np.expand_dims(res, axis)
            if ndim_of(res) != ndim_of(a):
                raise ValueError("function is not returning an array of the correct shape")
        a = res
    return a

"""Sorting and selection (sort, take_along_axis, select, piecewise, interp) and the
numerical helpers built from indexing and arithmetic (diff, gradient, convolve,
correlate, polyval, meshgrid, linspace). All are compositions of primitives: indices are
computed on the plain values (they carry no derivative), values flow through gathers,
so derivatives follow, and repeated indices accumulate.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..batching import on_plain_values, stand_in, without_derivatives
from ..errors import DualrevError, InPlaceError
from ..primitive import (
    Tracer,
    as_array,
    bind,
    dtype_of,
    is_complex,
    ndim_of,
    no_rule,
    normalize_axis,
    register_function,
    shape_of,
    strip,
)
from .elementwise import astype
from .indexing import along_axis_index, getitem, scatter_p, take_along


@register_function(np.take_along_axis)
def _take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Any:
    indices = without_derivatives(as_array(indices))  # batched under vmap
    if axis is None:
        return getitem(np.ravel(arr), indices)
    nd = ndim_of(arr)
    axis = int(axis) % nd
    ishape = shape_of(indices)
    full = np.broadcast_shapes(
        tuple(1 if d == axis else n for d, n in enumerate(shape_of(arr))),
        tuple(1 if d == axis else n for d, n in enumerate(ishape)))
    full = tuple(ishape[d] if d == axis else full[d] for d in range(nd))
    indices = np.broadcast_to(indices, full)
    if not isinstance(indices, Tracer):  # one index for every element: a static gather
        return getitem(arr, along_axis_index(indices, axis))
    # a batched index (the order np.sort found per element): an argument of take_along
    arr = np.broadcast_to(arr, tuple(shape_of(arr)[axis] if d == axis else n
                                     for d, n in enumerate(full)))
    return bind(take_along, (arr, indices), {"axis": axis})


@register_function(np.sort)
def _sort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
          stable: Any = None) -> Any:
    # kind= and stable= choose among algorithms that give the same sorted values
    if order is not None:
        raise no_rule(np.sort, "Its order= (fields of a structured array) is not supported.")
    if axis is None:
        a, axis = np.ravel(a), 0
    order_idx = np.argsort(without_derivatives(a), axis=axis, kind="stable")
    return _take_along_axis(a, order_idx, axis)


@register_function(np.select)
def _select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist, strict=True))):
        out = np.where(cond, choice, out)  # (a plain condition, batched under vmap)
    return out


@register_function(np.piecewise)
def _piecewise(x: Any, condlist: Any, funclist: Any, *args: Any, **kw: Any) -> Any:
    xs = shape_of(x)
    # a traced condition array (a replay's staged mask, a traced argument) is classified
    # by its shape and dtype exactly as a plain one: iterated, its rows would be taken
    # for conditions of their own (the first applied everywhere)
    if (isinstance(condlist, (np.ndarray, Tracer)) and dtype_of(condlist).kind == "b"
            and shape_of(condlist) == xs):
        condlist = [condlist]
    conds = [np.broadcast_to(np.asarray(strip(c), dtype=bool), xs) for c in condlist]
    if len(funclist) == len(conds) + 1:  # the last function covers "otherwise"
        conds.append(~np.any(conds, axis=0))
    out = np.zeros(xs) + 0.0 * x  # traced zeros of x's shape
    for cond, fn in zip(conds, funclist, strict=False):
        if not np.any(cond):
            continue
        # Like NumPy, each function sees only its own elements: nothing it does
        # elsewhere (a log of a negative) can reach the result or its derivative.
        part = fn(getitem(x, (cond,)), *args, **kw) if callable(fn) else fn
        part = np.broadcast_to(part, (int(np.sum(cond)),)) + 0.0 * getitem(x, (cond,))
        placed = bind(scatter_p, (part,), {"idx": (cond,), "nb": 0, "shape": xs})
        out = np.where(cond, placed, out)
    return out


def _interp_periodic(x: Any, xp: Any, fp: Any, period: Any) -> Any:
    """np.interp(period=) as NumPy defines it: x and xp taken modulo |period|, xp sorted,
    one point wrapped around at each end, then the plain interpolation (left/right are
    ignored, as in NumPy)."""
    if np.any(without_derivatives(as_array(period)) == 0):
        raise ValueError("period must be a non-zero value")
    period = np.abs(period)
    xp, fp = as_array(xp), as_array(fp)
    if ndim_of(xp) != 1 or ndim_of(fp) != 1:
        raise ValueError("Data points must be 1-D sequences")
    if shape_of(xp)[0] != shape_of(fp)[0]:
        raise ValueError("fp and xp are not of the same length")
    x, xp = np.mod(x, period), np.mod(xp, period)
    order = np.argsort(without_derivatives(xp))
    xp, fp = getitem(xp, (order,)), getitem(fp, (order,))
    xp = np.concatenate([getitem(xp, (slice(-1, None),)) - period, xp,
                         getitem(xp, (slice(0, 1),)) + period])
    fp = np.concatenate([getitem(fp, (slice(-1, None),)), fp, getitem(fp, (slice(0, 1),))])
    return _interp(x, xp, fp)


@register_function(np.interp)
def _interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
            period: Any = None) -> Any:
    if period is not None:
        return _interp_periodic(x, xp, fp, period)
    # the interval of each point, from the plain values (per element under vmap)
    xp_plain = without_derivatives(as_array(xp))
    if not isinstance(xp_plain, Tracer):
        xp_plain = np.asarray(xp_plain, dtype=float)
    n = shape_of(xp_plain)[0]
    xv = without_derivatives(as_array(x))
    i = np.clip(on_plain_values(np.searchsorted, (xp_plain, xv), {"side": "right"},
                                "numpy.searchsorted"), 1, n - 1)
    x0, x1 = getitem(xp, (i - 1,)), getitem(xp, (i,))
    f0, f1 = getitem(fp, (i - 1,)), getitem(fp, (i,))
    t = (x - x0) / (x1 - x0)
    out = f0 + t * (f1 - f0)
    lo = getitem(fp, (0,)) if left is None else left
    hi = getitem(fp, (n - 1,)) if right is None else right
    out = np.where(xv < getitem(xp_plain, (0,)), lo, out)
    return np.where(xv > getitem(xp_plain, (n - 1,)), hi, out)


@register_function(np.diff)
def _diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = np._NoValue,
          append: Any = np._NoValue) -> Any:
    axis = int(axis) % ndim_of(a)
    parts = []
    if prepend is not np._NoValue:
        parts.append(np.broadcast_to(prepend, _with(shape_of(a), axis, 1)) if ndim_of(prepend)
                     == 0 else prepend)
    parts.append(a)
    if append is not np._NoValue:
        parts.append(np.broadcast_to(append, _with(shape_of(a), axis, 1)) if ndim_of(append)
                     == 0 else append)
    if len(parts) > 1:
        a = np.concatenate(parts, axis=axis)
    pre = (slice(None),) * axis
    for _ in range(n):
        a = getitem(a, pre + (slice(1, None),)) - getitem(a, pre + (slice(None, -1),))
    return a


def _with(shape: tuple[int, ...], axis: int, size: int) -> tuple[int, ...]:
    return tuple(size if d == axis else s for d, s in enumerate(shape))


@register_function(np.gradient)
def _gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    nd = ndim_of(f)
    axes = list(range(nd)) if axis is None else [int(a) % nd for a in np.atleast_1d(axis)]
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and ndim_of(varargs[0]) == 0:
        spacing = [varargs[0]] * len(axes)
    else:
        spacing = list(varargs)
    if any(ndim_of(h) != 0 for h in spacing):
        raise DualrevError("dualrev: np.gradient on traced values supports scalar spacings")
    if edge_order not in (1, 2):
        raise ValueError("'edge_order' greater than 2 not supported")
    outs = []
    for ax, h in zip(axes, spacing, strict=True):
        if shape_of(f)[ax] < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        pre = (slice(None),) * ax

        def at(sl: Any, _pre: Any = pre) -> Any:
            return getitem(f, _pre + (sl,))

        inner = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * h)
        if edge_order == 1:
            first = (at(slice(1, 2)) - at(slice(0, 1))) / h
            last = (at(slice(-1, None)) - at(slice(-2, -1))) / h
        else:
            first = (-1.5 * at(slice(0, 1)) + 2.0 * at(slice(1, 2)) - 0.5 * at(slice(2, 3))) / h
            last = (0.5 * at(slice(-3, -2)) - 2.0 * at(slice(-2, -1))
                    + 1.5 * at(slice(-1, None))) / h
        outs.append(np.concatenate([first, inner, last], axis=ax))
    return outs[0] if len(outs) == 1 else tuple(outs)


@register_function(np.convolve)
def _convolve(a: Any, v: Any, mode: str = "full") -> Any:
    a, v = np.ravel(a), np.ravel(v)
    n, m = shape_of(a)[0], shape_of(v)[0]
    if m > n:  # NumPy swaps so the longer one comes first
        a, v, n, m = v, a, m, n
    # c[k] = sum_i a[i] v[k - i]: the products a_i v_j summed over i + j = k
    products = np.reshape(a, (n, 1)) * np.reshape(v, (1, m))
    k = np.add.outer(np.arange(n), np.arange(m))
    full = bind(scatter_p, (products,), {"idx": (k,), "nb": 0, "shape": (n + m - 1,)})
    if mode == "full":
        return full
    if mode == "same":
        start = (m - 1) // 2
        return getitem(full, (slice(start, start + n),))
    if mode == "valid":
        return getitem(full, (slice(m - 1, n),))
    raise ValueError(f"mode must be 'full', 'same' or 'valid', not {mode!r}")


@register_function(np.correlate)
def _correlate(a: Any, v: Any, mode: str = "valid") -> Any:
    # c[k] = sum_n a[n + k] conj(v[n]): a convolution with v conjugated and reversed, in
    # every mode and for either operand the longer (NumPy's swap for len(v) > len(a)
    # comes out the same)
    v = as_array(v)
    if is_complex(v):
        v = np.conjugate(v)
    return _convolve(a, getitem(v, (slice(None, None, -1),)), mode)


@register_function(np.polyval)
def _polyval(p: Any, x: Any) -> Any:
    x = as_array(x)
    out = 0.0 * x
    for k in range(shape_of(p)[0]):
        out = out * x + getitem(p, (k,))
    return out


@register_function(np.meshgrid)
def _meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> Any:
    nd = len(xi)
    shapes = [shape_of(np.ravel(x))[0] for x in xi]
    out = []
    for i, x in enumerate(xi):
        shape = [1] * nd
        shape[i] = shapes[i]
        if indexing == "xy" and nd > 1 and i < 2:
            shape[0], shape[1] = shape[1], shape[0]
        r = np.reshape(x, tuple(shape))
        if not sparse:
            full = list(shapes)
            if indexing == "xy" and nd > 1:
                full[0], full[1] = full[1], full[0]
            r = np.broadcast_to(r, tuple(full))
        out.append(r)
    return tuple(out)


@register_function(np.linspace)
def _linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
              retstep: bool = False, dtype: Any = None, axis: int = 0, *,
              device: Any = None) -> Any:
    if device not in (None, "cpu"):
        raise ValueError(f'Device not understood. Only "cpu" is allowed, but received: {device}')
    if dtype is not None and not np.issubdtype(np.dtype(dtype), np.inexact):
        # NumPy floors to the integers: a piecewise constant, so a plain result
        return on_plain_values(np.linspace, (start, stop, num, endpoint, retstep, dtype, axis),
                               name="numpy.linspace")
    if dtype is not None:
        out = _linspace(start, stop, num, endpoint, retstep, axis=axis)
        return (astype(out[0], dtype), out[1]) if retstep else astype(out, dtype)
    # NumPy's result dtype (float32 endpoints give float32); computed in float64, cast last
    dt = np.result_type(stand_in(start), stand_in(stop), float(num))
    # array endpoints: the samples run along a new leading axis (moved to axis= last)
    nd = len(np.broadcast_shapes(shape_of(start), shape_of(stop)))
    axis = normalize_axis(axis, nd + 1)[0]
    div = (num - 1) if endpoint else num
    t = np.arange(num) / div if div > 0 else np.zeros(num)
    t = np.reshape(t, (num,) + (1,) * nd)
    step = (stop - start) / div if div > 0 else np.nan * (stop - start)
    out = start + t * (stop - start)
    if endpoint and num > 1:
        last = np.expand_dims(stop + 0.0 * start, 0)
        out = np.concatenate([getitem(out, (slice(0, -1),)), last])
    if dtype_of(out) != dt:
        out = astype(out, dt)
    if axis:
        out = np.moveaxis(out, 0, axis)
    return (out, step) if retstep else out


# ------------------------------------------------------------------ quantiles
def _positions(count: int, q: Any, plain: Any, method: Any) -> Any:
    """Where NumPy's quantile of ``count`` sorted values lies, as a fractional position.

    NumPy's quantile of sorted values ``s`` is ``s[lo] + g * (s[lo+1] - s[lo])`` for every
    method, with ``lo`` and ``g`` depending on the count and ``q`` only. Asking NumPy for
    the quantile of ``0, 1, ..., count-1`` returns ``lo + g``, so every method (and NumPy's
    own validation of q and method=) is honoured without restating it."""
    return np.asarray(plain(np.arange(count, dtype=float), q, method=method), dtype=float)


def _nan_positions(x: Any, q: Any, plain: Any, method: Any) -> Any:
    """Per row of ``x`` (reduced axis last), the position among its non-NaN values, and the
    last non-NaN index (the upper neighbour must never be a NaN)."""
    counts = np.sum(~np.isnan(x), axis=-1)
    m = np.size(q)
    r = np.zeros(counts.shape + (m,))
    for k in np.unique(counts):
        if k:
            r[counts == k] = _positions(int(k), q, plain, method).ravel()
    if np.any(counts == 0):
        warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=4)
    last = np.broadcast_to(np.maximum(counts - 1, 0)[..., None], r.shape)
    return np.stack([r, last.astype(float)])


def _quantile(func: Any, plain: Any, a: Any, q: Any, axis: Any, out: Any, method: Any,
              keepdims: Any, weights: Any, nan: bool) -> Any:
    name = func.__name__
    if out is not None:
        raise InPlaceError(f"numpy.{name}(..., out=...)")
    if weights is not None:
        raise no_rule(func, "Its weights= (method='inverted_cdf' only) is not supported on "
                            "traced values.")
    if isinstance(q, Tracer) and q._staged:
        # a dualrev.replay recording's q (a float argument): the positions read follow
        # from it, so the recording relies on its value (an "equal" guard)
        q = strip(q)
    if isinstance(q, Tracer):
        raise DualrevError(f"dualrev: numpy.{name} has no derivative with respect to q: pass "
                           "q as a plain number or array")
    a = as_array(a)
    nd, shape = ndim_of(a), shape_of(a)
    axes = normalize_axis(axis, nd)
    kept = [d for d in range(nd) if d not in axes]
    n = math.prod(shape[d] for d in axes)
    median = func in (np.median, np.nanmedian)
    if n == 0 or is_complex(a) and not median:
        # nothing to differentiate (NumPy's nan or error), or NumPy's own TypeError
        kw = {"axis": axis, "keepdims": keepdims} if median else {
            "axis": axis, "keepdims": keepdims, "method": method}
        return on_plain_values(func, (a,) if median else (a, q), kw, f"numpy.{name}")
    keepdims = False if keepdims is np._NoValue else bool(keepdims)
    kshape = tuple(shape[d] for d in kept)
    x = np.reshape(np.transpose(a, kept + list(axes)), kshape + (n,))
    # the k-th smallest of each row is gathered from x where the (stable) order puts it,
    # NaNs last: a sort's values, without gathering whole sorted rows (a structural
    # sparsity detection then makes only the quantiles depend on their whole rows, not a
    # sorted copy: n entries per row, not n squared)
    order = np.argsort(without_derivatives(x), axis=-1, kind="stable")

    def smallest(k: Any) -> Any:
        return _take_along_axis(x, np.take_along_axis(order, k, -1), -1)

    qshape = np.shape(q)
    real = np.finfo(dtype_of(a)).dtype
    if nan:
        pos = on_plain_values(_nan_positions, (x,), {"q": q, "plain": plain, "method": method},
                              f"numpy.{name}")
        r, last = getitem(pos, (0,)), astype(getitem(pos, (1,)), np.intp)
        lo = astype(np.floor(r), np.intp)
        hi = np.minimum(lo + 1, last)
    else:
        r = np.broadcast_to(_positions(n, q, plain, method).reshape(-1),
                            kshape + (int(np.size(q)),))
        lo = np.floor(r).astype(np.intp)
        hi = np.minimum(lo + 1, n - 1)
    g = astype(r - lo, real)
    below, above = smallest(lo), smallest(hi)
    # NumPy's lerp, with its branch at g >= 0.5, so values agree to the last bit
    diff = above - below
    res = np.where(g >= 0.5, above - diff * (1 - g), below + diff * g)
    if not nan:  # a NaN anywhere in a row makes that row's quantile NaN, as in NumPy
        top = smallest(np.full(kshape + (1,), n - 1, dtype=np.intp))
        res = np.where(np.isnan(without_derivatives(top)), top, res)
    res = np.reshape(res, kshape + qshape)
    k, nq = len(kshape), len(qshape)
    res = np.moveaxis(res, tuple(range(k, k + nq)), tuple(range(nq)))
    if keepdims:
        res = np.reshape(res, qshape + tuple(1 if d in axes else shape[d] for d in range(nd)))
    return res


@register_function(np.median)
def _median(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
            keepdims: bool = False) -> Any:
    return _quantile(np.median, np.quantile, a, 0.5, axis, out, "linear", keepdims,
                     None, nan=False)


@register_function(np.nanmedian)
def _nanmedian(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
               keepdims: Any = np._NoValue) -> Any:
    return _quantile(np.nanmedian, np.quantile, a, 0.5, axis, out, "linear", keepdims,
                     None, nan=True)


def _quantile_handler(func: Any, plain: Any, nan: bool) -> Any:
    def handler(a: Any, q: Any, axis: Any = None, out: Any = None,
                overwrite_input: bool = False, method: str = "linear",
                keepdims: Any = False if not nan else np._NoValue, *,
                weights: Any = None) -> Any:
        return _quantile(func, plain, a, q, axis, out, method, keepdims, weights, nan=nan)
    handler.__name__ = f"_{func.__name__}"
    handler.__doc__ = (f"``numpy.{func.__name__}`` on traced values: sorted values "
                       "interpolated as NumPy's method= says.")
    return register_function(func, handler)


_quantile_handler(np.quantile, np.quantile, nan=False)
_quantile_handler(np.percentile, np.percentile, nan=False)
_quantile_handler(np.nanquantile, np.quantile, nan=True)
_quantile_handler(np.nanpercentile, np.percentile, nan=True)


@register_function(np.trapezoid)
def _trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: int = -1) -> Any:
    y = as_array(y)
    nd = ndim_of(y)
    axis = int(axis) % nd
    if x is None:
        d = dx
    else:
        x = as_array(x)
        d = np.diff(x, axis=axis if ndim_of(x) > 1 else -1)
        if ndim_of(x) == 1:  # spacings along axis, broadcast over the others
            d = np.reshape(d, tuple(-1 if k == axis else 1 for k in range(nd)))
    pre = (slice(None),) * axis
    upper, lower = getitem(y, pre + (slice(1, None),)), getitem(y, pre + (slice(None, -1),))
    return np.sum(d * (upper + lower) / 2.0, axis=axis)


@register_function(np.ediff1d)
def _ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    parts = [np.diff(np.ravel(ary))]
    if to_begin is not None:
        parts.insert(0, np.ravel(to_begin))
    if to_end is not None:
        parts.append(np.ravel(to_end))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


@register_function(np.sort_complex)
def _sort_complex(a: Any) -> Any:
    out = np.sort(a, axis=-1)
    if is_complex(out):
        return out
    # NumPy's result is complex128 for every real float (clongdouble for longdouble)
    return astype(out, np.clongdouble if dtype_of(out) == np.longdouble else np.complex128)


@register_function(np.partition)
def _partition(a: Any, kth: Any, axis: Any = -1, kind: str = "introselect",
               order: Any = None) -> Any:
    # the arrangement NumPy's partition makes, found by argpartition on the plain values
    if order is not None:
        raise no_rule(np.partition, "Its order= (fields of a structured array) is not "
                                    "supported.")
    if axis is None:
        a, axis = np.ravel(a), -1
    idx = on_plain_values(np.argpartition, (a, kth), {"axis": axis, "kind": kind},
                          "numpy.argpartition")
    return _take_along_axis(a, idx, axis)


@register_function(np.vander)
def _vander(x: Any, N: Any = None, increasing: bool = False) -> Any:
    x = as_array(x)
    if ndim_of(x) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = shape_of(x)[0] if N is None else int(N)
    cols, col = [], 0.0 * x + 1.0
    for _ in range(n):  # x^0, x^1, ...: the running products NumPy's accumulate forms
        cols.append(col)
        col = col * x
    dt = np.promote_types(dtype_of(x), int)  # NumPy's: float32 gives float64
    if not cols:
        return np.zeros((shape_of(x)[0], 0), dt)
    out = np.stack(cols, axis=1)
    if dtype_of(out) != dt:
        out = astype(out, dt)
    return out if increasing else getitem(out, (slice(None), slice(None, None, -1)))


@register_function(np.logspace)
def _logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: Any = 10.0,
              dtype: Any = None, axis: int = 0) -> Any:
    if ndim_of(base) != 0:
        raise DualrevError("dualrev: np.logspace on traced values supports a scalar base")
    y = np.linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    out = np.power(base, y)
    return out if dtype is None else astype(out, dtype)


def _poly_pair(a1: Any, a2: Any) -> tuple[Any, Any]:
    """Two coefficient vectors, the shorter zero-padded in front (highest powers first)."""
    a1, a2 = np.atleast_1d(a1), np.atleast_1d(a2)
    n1, n2 = shape_of(a1)[0], shape_of(a2)[0]
    if n1 < n2:
        a1 = np.concatenate([np.zeros(n2 - n1, dtype_of(a1)), a1])
    elif n2 < n1:
        a2 = np.concatenate([np.zeros(n1 - n2, dtype_of(a2)), a2])
    return a1, a2


@register_function(np.polyadd)
def _polyadd(a1: Any, a2: Any) -> Any:
    a1, a2 = _poly_pair(a1, a2)
    return a1 + a2


@register_function(np.polysub)
def _polysub(a1: Any, a2: Any) -> Any:
    a1, a2 = _poly_pair(a1, a2)
    return a1 - a2


@register_function(np.polymul)
def _polymul(a1: Any, a2: Any) -> Any:
    return _convolve(np.atleast_1d(a1), np.atleast_1d(a2))


@register_function(np.polyder)
def _polyder(p: Any, m: int = 1) -> Any:
    m = int(m)
    if m < 0:
        raise ValueError("Order of derivative must be positive (see polyint)")
    p = as_array(p)
    for _ in range(m):
        n = shape_of(p)[0] - 1
        p = getitem(p, (slice(None, -1),)) * np.arange(n, 0, -1)
    return p


@register_function(np.polyint)
def _polyint(p: Any, m: int = 1, k: Any = None) -> Any:
    m = int(m)
    if m < 0:
        raise ValueError("Order of integral must be positive (see polyder)")
    if k is None:
        k = np.zeros(m)
    k = np.atleast_1d(k)
    if shape_of(k)[0] == 1 and m > 1:
        k = getitem(k, (0,)) * np.ones(m)
    if shape_of(k)[0] < m:
        raise ValueError("k must be a scalar or a rank-1 array of length 1 or >m.")
    p = as_array(p)
    for i in range(m):
        n = shape_of(p)[0]
        p = np.concatenate([p / np.arange(n, 0, -1), np.reshape(getitem(k, (i,)), (1,))])
    return p


@register_function(np.unwrap)
def _unwrap(p: Any, discont: Any = None, axis: int = -1, *, period: Any = 2 * np.pi) -> Any:
    # NumPy adds multiples of the period chosen from the values: constants, so the
    # derivative is p's own
    p = as_array(p)
    plain = without_derivatives(p)
    value = on_plain_values(np.unwrap, (plain,), {"discont": discont, "axis": axis,
                                                  "period": period}, "numpy.unwrap")
    return value + (p - plain)

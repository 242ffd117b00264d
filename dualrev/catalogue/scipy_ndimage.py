"""scipy.ndimage's linear filters: correlate1d, convolve1d, correlate, convolve,
gaussian_filter1d, gaussian_filter, uniform_filter1d, uniform_filter, sobel, prewitt,
laplace, gaussian_laplace, gaussian_gradient_magnitude, generic_laplace,
generic_gradient_magnitude.

Every one of them is a composition of one primitive, ``correlate_p``: a correlation of
``x`` with weights ``w`` over some axes, with a boundary mode and origin, computed by
SciPy's own C code. It is bilinear in ``(x, cval)`` and ``w``: its JVP is the same
filter applied to the tangents. Its VJP in ``x`` is the adjoint filter ``correlate_t_p``:
the boundary extension is a gather (an index map per axis, built by ``np.pad`` of the
indices in the mode NumPy names differently; -1 for the constant), so its transpose is
a full convolution with the kernel followed by a scatter-add of the padded region back
onto the indices it was read from (the fold of reflect/mirror/nearest/wrap). The
weights' cotangent is the correlation of the extended input with the output
cotangent, written with differentiable NumPy so that it nests.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sps
import scipy.special as sc

from .. import pattern_rules
from ..batching import (
    batch_by_loop,
    batch_size,
    batch_traces,
    rebatch,
    shift_axes,
    without_derivatives,
)
from ..errors import BatchedValueError, InPlaceError, NoDerivativeRule
from ..primitive import Primitive, Tracer, bind, concrete, dtype_of, ndim_of, shape_of
from .indexing import getitem
from .scipy_functions import dispatch

# SciPy's own functions, before the dispatchers replace them
_CORRELATE1D = ndi.correlate1d
_CORRELATE = ndi.correlate

#: SciPy's boundary modes of the filters, as the ``np.pad`` mode giving the same
#: extension of the indices (None: the constant ``cval``). For the filters the grid-
#: modes are SciPy's synonyms of reflect, constant and wrap.
_PAD_MODE = {"reflect": "symmetric", "grid-mirror": "symmetric", "mirror": "reflect",
             "nearest": "edge", "wrap": "wrap", "grid-wrap": "wrap", "constant": None,
             "grid-constant": None}


def _check_mode(mode: Any) -> str:
    if not isinstance(mode, str) or mode not in _PAD_MODE:
        raise RuntimeError("boundary mode not supported")  # SciPy's own error
    return mode


def _index_map(n: int, left: int, right: int, mode: str) -> np.ndarray:
    """For each position of the extended line (``left`` before, ``right`` after ``n``
    samples), the sample it reads; -1 where it reads ``cval``."""
    pad = _PAD_MODE[mode]
    if pad is None or n == 0:  # (an empty line has no outputs: nothing is read)
        i = np.arange(-left, n + right)
        return np.where((i >= 0) & (i < n), i, -1)
    return np.pad(np.arange(n), (left, right), mode=pad)


def _pads(k: int, origin: int) -> tuple[int, int]:
    """Samples read before and after each output by a k-tap correlation at ``origin``."""
    left = k // 2 + origin
    return left, k - 1 - left


def _scipy_correlate(x: Any, w: Any, cval: Any, axes: tuple[int, ...], mode: str,
                     origins: tuple[int, ...]) -> np.ndarray:
    """SciPy's correlation of plain values, without its conjugation of complex weights:
    sum_j w[j] x_ext[i + j - k // 2 - origin]."""
    w = np.asarray(w)
    if w.dtype.kind == "c":
        w = np.conj(w)  # SciPy conjugates complex weights (as np.correlate does)
    cv = np.asarray(cval).item()
    if len(axes) == 1:
        return _CORRELATE1D(x, w, axis=axes[0], mode=mode, cval=cv, origin=origins[0])
    # all axes, weights of size 1 on the unfiltered ones: works with every SciPy
    order = np.argsort(axes)
    full = np.transpose(w, order)
    shape = [1] * np.ndim(x)
    org = [0] * np.ndim(x)
    for i in order:
        shape[axes[i]] = w.shape[i]
        org[axes[i]] = origins[i]
    return _CORRELATE(x, np.reshape(full, shape), mode=mode, cval=cv, origin=org)


def _correlate_impl(x: Any, w: Any, cval: Any, axes: tuple[int, ...], mode: str,
                    origins: tuple[int, ...]) -> Any:
    return _scipy_correlate(x, w, cval, axes, mode, origins)


def _correlate_t_impl(y: Any, w: Any, axes: tuple[int, ...], mode: str,
                      origins: tuple[int, ...]) -> Any:
    """The adjoint of ``x -> correlate(x, w, 0)``: the full convolution of ``y`` with
    ``w`` over the extended lines, each extended position folded back onto the sample
    it was read from (dropped where it read the constant)."""
    y = np.asarray(y)
    w = np.asarray(w)
    # zero-pad by k - 1 on each side, then a correlation with the flipped kernel that
    # starts at the first sample: position m of the result is sum_j w[j] y[m - j]
    gz = np.pad(y, [(w.shape[axes.index(a)] - 1,) * 2 if a in axes else (0, 0)
                    for a in range(y.ndim)])
    flipped = w[(slice(None, None, -1),) * w.ndim]
    starts = tuple(-(k // 2) for k in w.shape)
    full = _scipy_correlate(gz, flipped, 0.0, axes, "constant", starts)
    for i, a in enumerate(axes):
        k, n = w.shape[i], y.shape[a]
        left, right = _pads(k, origins[i])
        idx = _index_map(n, left, right, mode)
        keep = idx >= 0
        fold = sps.csr_matrix((np.ones(int(keep.sum())), (idx[keep], np.flatnonzero(keep))),
                              shape=(n, n + k - 1))
        part = np.moveaxis(full, a, 0)[: n + k - 1]
        rest = part.shape[1:]
        folded = fold @ part.reshape(n + k - 1, -1)
        full = np.moveaxis(np.asarray(folded).reshape((n,) + rest), 0, a)
    return full


def _extend(x: Any, cval: Any, shape: tuple[int, ...], axes: tuple[int, ...], mode: str,
            origins: tuple[int, ...]) -> Any:
    """``x`` extended by its boundary mode as a correlation with kernel ``shape`` reads
    it (differentiable in ``x`` and ``cval``)."""
    for i, a in enumerate(axes):
        left, right = _pads(shape[i], origins[i])
        if shape_of(x)[a] == 0:  # no outputs along an empty axis: any values will do
            wider = list(shape_of(x))
            wider[a] = left + right
            x = np.zeros(tuple(wider), dtype_of(x))
            continue
        idx = _index_map(shape_of(x)[a], left, right, mode)
        x = np.take(x, np.maximum(idx, 0), axis=a)
        if (idx < 0).any():
            inside = np.reshape(idx >= 0, (-1,) + (1,) * (ndim_of(x) - a - 1))
            x = np.where(inside, x, cval)
    return x


def _weights_cotangent(g: Any, x: Any, cval: Any, wshape: tuple[int, ...],
                       axes: tuple[int, ...], mode: str, origins: tuple[int, ...]) -> Any:
    """d<g, correlate(x, w, cval)>/dw: the extended ``x`` correlated with ``g``."""
    ext = _extend(x, cval, wshape, axes, mode, origins)
    n = shape_of(g)
    terms = []
    for j in np.ndindex(*wshape):
        key = [slice(None)] * len(n)
        for i, a in enumerate(axes):
            key[a] = slice(j[i], j[i] + n[a])
        terms.append(np.sum(g * getitem(ext, tuple(key))))
    return np.reshape(np.stack(terms), wshape)


def _boundary_response(x_shape: tuple[int, ...], x_dtype: Any, w: Any, **params: Any) -> Any:
    """The output of a correlation of zeros with cval = 1: the derivative in cval."""
    return bind(correlate_p, (np.zeros(x_shape, x_dtype), w, 1.0), params)


def _no_cval(mode: str) -> bool:
    return _PAD_MODE[mode] is not None


correlate_p = Primitive("ndimage_correlate", _correlate_impl)
correlate_t_p = Primitive("ndimage_correlate_transpose", _correlate_t_impl)


def _cval_jvp(t: Any, ans: Any, x: Any, w: Any, cval: Any, **params: Any) -> Any:
    return bind(correlate_p, (np.zeros(shape_of(x), dtype_of(ans)), w, t), params)


correlate_p.defjvp(
    lambda t, ans, x, w, cval, **p: bind(correlate_p, (t, w, 0.0), p),
    lambda t, ans, x, w, cval, **p: bind(correlate_p, (x, t, cval), p),
    _cval_jvp)
correlate_p.defvjp(
    lambda g, ans, x, w, cval, **p: bind(correlate_t_p, (g, w), p),
    lambda g, ans, x, w, cval, **p: _weights_cotangent(g, x, cval, shape_of(w), **p),
    lambda g, ans, x, w, cval, **p: np.sum(
        g * _boundary_response(shape_of(g), dtype_of(g), w, **p)),
    saves=("w", "x w.shape cval", "w"))
correlate_t_p.defjvp(
    lambda t, ans, g, w, **p: bind(correlate_t_p, (t, w), p),
    lambda t, ans, g, w, **p: bind(correlate_t_p, (g, t), p))
correlate_t_p.defvjp(
    lambda u, ans, g, w, **p: bind(correlate_p, (u, w, 0.0), p),
    lambda u, ans, g, w, **p: _weights_cotangent(g, u, 0.0, shape_of(w), **p),
    saves=("w", "g w.shape"))


def _correlate_batch(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
    # the batch is one more axis the filter does not touch; a batched cval adds its
    # multiple of the boundary response (the filter is linear in (x, cval))
    x, w, cval = args
    bx, bw, bc = batched
    if bw:
        return batch_by_loop(correlate_p, args, batched, params, batch_size(args, batched))
    shifted = dict(params, axes=shift_axes(params["axes"]))
    if not bx:
        x = np.broadcast_to(x, (batch_size(args, batched),) + tuple(shape_of(x)))
    if not bc:
        return bind(correlate_p, (x, w, cval), shifted)
    out = bind(correlate_p, (x, w, 0.0), shifted)
    if _no_cval(params["mode"]):
        return out
    response = _boundary_response(shape_of(x)[1:], dtype_of(out), w, **params)
    return out + np.reshape(cval, (-1,) + (1,) * (ndim_of(out) - 1)) * response


def _correlate_t_batch(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
    if batched[1]:
        return batch_by_loop(correlate_t_p, args, batched, params, batch_size(args, batched))
    return bind(correlate_t_p, args, dict(params, axes=shift_axes(params["axes"])))


correlate_p.defbatch(_correlate_batch)
correlate_t_p.defbatch(_correlate_t_batch)


# ------------------------------------------------------------------ dependency patterns
def _taps(shape: tuple[int, ...], wshape: tuple[int, ...], axes: tuple[int, ...], mode: str,
          origins: tuple[int, ...]) -> Any:
    """For each tap ``j`` of the kernel (C order), the flat index of the sample each
    output element reads through it (-1 where it reads ``cval``): the filter's stencil
    with its boundary folds, as ``(flat tap index, sources)`` pairs."""
    nd = len(shape)
    strides = np.cumprod((1,) + tuple(shape[::-1]))[:-1][::-1]
    maps = [_index_map(shape[a], *_pads(wshape[i], origins[i]), mode)
            for i, a in enumerate(axes)]
    for t, j in enumerate(np.ndindex(*wshape)):
        flat = np.zeros(shape, dtype=np.int64)
        outside = np.zeros(shape, dtype=bool)
        for a in range(nd):
            view = [1] * nd
            view[a] = shape[a]
            if a in axes:
                i = axes.index(a)
                src = maps[i][np.arange(shape[a]) + j[i]]
                outside |= (src < 0).reshape(view)
                flat = flat + (np.maximum(src, 0) * strides[a]).reshape(view)
            else:
                flat = flat + (np.arange(shape[a]) * strides[a]).reshape(view)
        yield t, np.where(outside, -1, flat).ravel()


def _cancelled_dropped(valid: np.ndarray, table: np.ndarray, weights: np.ndarray,
                       shape: tuple[int, ...], wshape: tuple[int, ...],
                       axes: tuple[int, ...], mode: str,
                       origins: tuple[int, ...]) -> np.ndarray:
    """``valid`` without the pairs of taps of a constant kernel that read one sample with
    opposite weights (a central difference at a mirroring boundary reads ``x[1]`` twice,
    ``-w`` and ``+w``): their sum is exactly zero in floating point too, for every
    input. Only boundary rows can read a sample twice; three taps or more on one sample
    are kept (their rounded sum may differ from zero)."""
    if _PAD_MODE[mode] is None:
        return valid  # outside reads cval: no sample is read twice
    edge = np.zeros(shape, dtype=bool)
    for i, a in enumerate(axes):
        left, right = _pads(wshape[i], origins[i])
        o = np.arange(shape[a])
        view = [1] * len(shape)
        view[a] = shape[a]
        edge |= ((o < left) | (o > shape[a] - 1 - right)).reshape(view)
    rows_ = np.flatnonzero(edge.ravel())
    if not rows_.size or table.shape[1] < 2:
        return valid
    src = np.where(valid[rows_], table[rows_], -1 - np.arange(table.shape[1]))  # unique
    order = np.argsort(src, axis=1, kind="stable")
    s_ = np.take_along_axis(src, order, axis=1)
    w_ = np.broadcast_to(weights, src.shape)
    w_ = np.take_along_axis(w_, order, axis=1)
    same = s_[:, 1:] == s_[:, :-1]
    pad = np.zeros((same.shape[0], 1), dtype=bool)
    before = np.hstack([pad, same[:, :-1]])
    after = np.hstack([same[:, 1:], pad])
    pair = same & ~before & ~after & (w_[:, 1:] + w_[:, :-1] == 0)
    r, k = np.nonzero(pair)
    if not r.size:
        return valid
    valid = valid.copy()
    valid[rows_[r], order[r, k]] = False
    valid[rows_[r], order[r, k + 1]] = False
    return valid


def _stencil(deps: Any, x: Any, w: Any, cval: Any, shape: tuple[int, ...],
             transpose: bool, **params: Any) -> Any:
    """The pattern of a correlation (``transpose``: its adjoint) of ``x`` with the kernel
    ``w``: the stencil's reads through the taps where ``w`` may be non-zero (a constant
    kernel's zeros are structural), the weights where the sample read may be non-zero,
    ``cval`` where a tap reads outside."""
    dx, dw, dc = deps
    wshape = shape_of(w)
    wnz = pattern_rules.may_be_nonzero(w, dw).ravel()
    weights_traced = dw is not None and bool(dw.nnz)
    N = int(np.prod(shape, dtype=np.int64))
    taps, sources = [], []
    for t, src in _taps(shape, wshape, **params):
        if wnz[t] or weights_traced:
            taps.append(t)
            sources.append(src)
    if not taps:
        return None
    table = np.stack(sources, axis=1)  # (N, taps): the sample each tap reads, -1: cval
    inside = table >= 0
    live_taps = wnz[taps]
    out = None
    if dx is not None and dx.nnz:
        # one row per output, its reads in order (a row may read a sample twice at a
        # reflecting boundary: duplicates only add)
        valid = inside & live_taps
        if dw is None:
            valid = _cancelled_dropped(valid, table, np.asarray(w).ravel()[taps], shape,
                                       wshape, **params)
        indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int64)
        L = sps.csr_matrix((np.ones(int(indptr[-1]), dtype=bool), table[valid], indptr),
                           shape=(N, N))
        out = pattern_rules.linear(L.T.tocsr() if transpose else L, dx)
    if weights_traced:
        xnz = pattern_rules.may_be_nonzero(x, dx).ravel()
        cnz = dc is not None or (cval is not None and bool(np.any(np.asarray(cval) != 0)))
        tap_of = np.broadcast_to(np.asarray(taps, dtype=np.int64), table.shape)
        if transpose:  # out[p] = sum over taps t of w[t] y[o], tap t reading p from o
            live = inside & xnz[:, None]
            r, c = table[live], tap_of[live]
        else:
            live = np.where(inside, xnz[np.maximum(table, 0)], cnz)
            r, c = np.nonzero(live)
            c = tap_of[r, c]
        L = sps.csr_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(N, wnz.size))
        out = pattern_rules.union(out, pattern_rules.linear(L, dw))
    if dc is not None and dc.nnz:
        reads_cval = (~inside & live_taps).any(axis=1)
        if reads_cval.any():
            out = pattern_rules.union(out, pattern_rules.rows(
                dc, np.where(reads_cval, 0, -1)))
    return out


correlate_p.defpattern(lambda deps, ans, x, w, cval, **p: _stencil(
    deps, x, w, cval, shape_of(ans), False, **p))
correlate_t_p.defpattern(lambda deps, ans, y, w, **p: _stencil(
    (deps[0], deps[1], None), y, w, None, shape_of(ans), True, **p))


# ------------------------------------------------------------------ argument handling
def _seq(value: Any, n: int) -> list[Any]:
    """SciPy's _normalize_sequence: one value per axis."""
    if isinstance(value, str) or (isinstance(value, Tracer) and ndim_of(value) == 0):
        return [value] * n
    if isinstance(value, Tracer) or isinstance(value, (Sequence, np.ndarray)):
        items = [value[i] for i in range(shape_of(value)[0])] if isinstance(
            value, Tracer) else list(value)
        if len(items) != n:
            raise RuntimeError("sequence argument must have length equal to input rank")
        return items
    return [value] * n


def _axes(axes: Any, nd: int) -> tuple[int, ...]:
    """SciPy's _check_axes: the filtered axes, non-negative, no repeats."""
    if axes is None:
        return tuple(range(nd))
    if np.isscalar(axes):
        axes = (axes,)
    out = []
    for a in axes:
        if not isinstance(a, numbers.Integral):
            raise ValueError("axes must be integers")
        if not -nd <= a < nd:
            raise ValueError(f"axis {a} is out of range for array of dimension {nd}")
        out.append(int(a) % nd)
    if len(set(out)) != len(out):
        raise ValueError("axes must be unique")
    return tuple(out)


def _origin_ok(origin: int, k: int) -> None:
    if origin < -(k // 2) or origin > (k - 1) // 2:
        raise ValueError("Invalid origin; origin must satisfy -(len(weights) // 2) <= "
                         "origin <= (len(weights)-1) // 2")


def _input(x: Any, output: Any, name: str) -> tuple[Any, Any]:
    """The input as the filters take it, and ``output`` as ``_finish`` reads it (None or
    a dtype given as a type, a dtype or a string)."""
    if isinstance(output, _Output):
        output = output.dtype
    if isinstance(output, (np.ndarray, Tracer)):
        raise InPlaceError(
            f"scipy.ndimage.{name}(..., output=array)",
            f"take the result instead: out = scipy.ndimage.{name}(...) (or pass "
            "output=<dtype> for its dtype)")
    if not isinstance(x, Tracer):
        x = np.asarray(x)
    if dtype_of(x).kind in "biu":
        if output is None or np.dtype(output).kind not in "fc":
            raise NoDerivativeRule(
                f"scipy.ndimage.{name} of an integer input with traced arguments (weights, "
                "sigma, coordinates, cval...)",
                "SciPy's result then has the input's integer dtype, which carries no "
                "derivative: pass input.astype(float), or output=np.float64.")
        x = np.asarray(x, np.float64)  # SciPy computes in float64 and casts to output
    return x, output


def _finish(out: Any, output: Any) -> Any:
    """The result in the dtype SciPy's ``_get_output`` gives: the input's (the filter's
    own result) or ``output``'s, promoted to complex with SciPy's warning where the
    result is complex and ``output`` a real type (a real dtype string: its error)."""
    if output is None:
        return out
    want = np.dtype(output)
    if dtype_of(out).kind == "c" and want.kind != "c":
        if isinstance(output, str):
            raise RuntimeError("output must have complex dtype")
        warnings.warn("promoting specified output dtype to complex", stacklevel=3)
        want = np.promote_types(want, np.complex64)
    return out if dtype_of(out) == want else out.astype(want)


def _real_output_refused(x: Any, output: Any) -> None:
    """SciPy's filters that run several passes allocate their output before they look at
    complex input: a real output dtype is then an error, not promoted."""
    if output is not None and dtype_of(x).kind == "c" and np.dtype(output).kind != "c":
        raise RuntimeError("output must have complex dtype")


def _correlate(x: Any, w: Any, axes: tuple[int, ...], mode: str, cval: Any,
               origins: tuple[int, ...]) -> Any:
    """A correlation (no conjugation) of ``x`` with weights whose axes are ``axes``."""
    _check_mode(mode)
    for k, o in zip(shape_of(w), origins, strict=True):
        _origin_ok(o, k)
    if not isinstance(w, Tracer):
        w = np.asarray(w, dtype=np.result_type(w, np.float64))
    return bind(correlate_p, (x, w, cval), {"axes": tuple(axes), "mode": mode,
                                           "origins": tuple(int(o) for o in origins)})


def _flip(w: Any) -> Any:
    return getitem(w, (slice(None, None, -1),) * ndim_of(w))


def _conj(w: Any) -> Any:
    return np.conj(w) if dtype_of(w).kind == "c" else w


# ------------------------------------------------------------------ the handlers
def correlate1d(input: Any, weights: Any, axis: int = -1, output: Any = None,
                mode: str = "reflect", cval: Any = 0.0, origin: int = 0) -> Any:
    """scipy.ndimage.correlate1d, differentiable in ``input``, ``weights`` and ``cval``."""
    x, dt = _input(input, output, "correlate1d")
    w = weights if isinstance(weights, Tracer) else np.asarray(weights)
    if ndim_of(w) != 1 or shape_of(w)[0] < 1:
        raise RuntimeError("no filter weights given")
    ax = _axes(axis, ndim_of(x))
    return _finish(_correlate(x, _conj(w), ax, mode, cval, (origin,)), dt)


def convolve1d(input: Any, weights: Any, axis: int = -1, output: Any = None,
               mode: str = "reflect", cval: Any = 0.0, origin: int = 0) -> Any:
    """scipy.ndimage.convolve1d, differentiable in ``input``, ``weights`` and ``cval``."""
    x, dt = _input(input, output, "convolve1d")
    w = weights if isinstance(weights, Tracer) else np.asarray(weights)
    if ndim_of(w) != 1 or shape_of(w)[0] < 1:
        raise RuntimeError("no filter weights given")
    origin = -origin - (0 if shape_of(w)[0] & 1 else 1)
    ax = _axes(axis, ndim_of(x))
    return _finish(_correlate(x, _flip(w), ax, mode, cval, (origin,)), dt)


def _nd(input: Any, weights: Any, output: Any, mode: Any, cval: Any, origin: Any,
        axes: Any, convolution: bool) -> Any:
    name = "convolve" if convolution else "correlate"
    x, dt = _input(input, output, name)
    if not isinstance(mode, str):
        raise RuntimeError("A sequence of modes is not supported")
    w = weights if isinstance(weights, Tracer) else np.asarray(weights)
    ax = _axes(axes, ndim_of(x))
    if ndim_of(w) != len(ax):
        raise RuntimeError(f"weights.ndim ({ndim_of(w)}) must match len(axes) ({len(ax)})")
    # SciPy pairs the weights' axes with the filtered axes in increasing order, and the
    # origins with them in the order given (unless every axis is filtered: then the
    # origins too follow the input's axes)
    given = [int(o) for o in _seq(origin, len(ax))]
    origins = (given if len(ax) == ndim_of(x) else
               [given[ax.index(a)] for a in sorted(ax)])
    ax = tuple(sorted(ax))
    if convolution:
        w = _flip(w)
        origins = [-o - (0 if k & 1 else 1) for o, k in zip(origins, shape_of(w), strict=True)]
    else:
        w = _conj(w)
    return _finish(_correlate(x, w, ax, mode, cval, tuple(origins)), dt)


def correlate(input: Any, weights: Any, output: Any = None, mode: str = "reflect",
              cval: Any = 0.0, origin: Any = 0, *, axes: Any = None) -> Any:
    """scipy.ndimage.correlate, differentiable in ``input``, ``weights`` and ``cval``."""
    return _nd(input, weights, output, mode, cval, origin, axes, False)


def convolve(input: Any, weights: Any, output: Any = None, mode: str = "reflect",
             cval: Any = 0.0, origin: Any = 0, *, axes: Any = None) -> Any:
    """scipy.ndimage.convolve, differentiable in ``input``, ``weights`` and ``cval``."""
    return _nd(input, weights, output, mode, cval, origin, axes, True)


def gaussian_kernel1d(sigma: Any, order: int, radius: int) -> Any:
    """SciPy's 1-D Gaussian kernel (derivative ``order``), of a traced ``sigma`` too: the
    normalised Gaussian times the polynomial q with (q phi)' = (q' - x q / sigma^2) phi."""
    if order < 0:
        raise ValueError("order must be non-negative")
    x = np.arange(-radius, radius + 1).astype(np.float64)
    sigma2 = sigma * sigma
    phi = np.exp(-0.5 / sigma2 * x ** 2)
    phi = phi / np.sum(phi)
    if order == 0:
        return phi
    q: list[Any] = [1.0] + [0.0] * order
    for _ in range(order):
        q = [((k + 1) * q[k + 1] if k < order else 0.0)
             + (-q[k - 1] / sigma2 if k > 0 else 0.0) for k in range(order + 1)]
    poly = q[0] * np.ones_like(x)
    for k in range(1, order + 1):
        poly = poly + q[k] * x ** k
    return poly * phi


def _radius(sigma: Any, truncate: Any, radius: Any) -> int:
    if radius is not None:
        lw = radius
    else:
        sd = np.asarray(concrete(sigma), dtype=np.float64)
        widths = {int(truncate * float(s) + 0.5) for s in np.ravel(sd)}
        if len(widths) > 1:
            raise BatchedValueError(
                "scipy.ndimage.gaussian_filter's sigma under vmap with kernel radii that "
                "differ across the batch (give radius= so that they agree)")
        lw = widths.pop()
    if not isinstance(lw, numbers.Integral) or lw < 0:
        raise ValueError("Radius must be a nonnegative integer.")
    return int(lw)


def gaussian_filter1d(input: Any, sigma: Any, axis: int = -1, order: int = 0,
                      output: Any = None, mode: str = "reflect", cval: Any = 0.0,
                      truncate: float = 4.0, *, radius: Any = None) -> Any:
    """scipy.ndimage.gaussian_filter1d, differentiable in ``input``, ``sigma`` (the kernel's
    radius stays ``round(truncate * sigma)``, piecewise constant) and ``cval``."""
    x, dt = _input(input, output, "gaussian_filter1d")
    lw = _radius(sigma, truncate, radius)
    w = _flip(gaussian_kernel1d(sigma, int(order), lw))
    return _finish(_correlate(x, w, _axes(axis, ndim_of(x)), mode, cval, (0,)), dt)


def gaussian_filter(input: Any, sigma: Any, order: Any = 0, output: Any = None,
                    mode: Any = "reflect", cval: Any = 0.0, truncate: float = 4.0, *,
                    radius: Any = None, axes: Any = None) -> Any:
    """scipy.ndimage.gaussian_filter: gaussian_filter1d along each axis whose sigma
    exceeds 1e-15 (per-axis sigma, order, mode, radius)."""
    x, dt = _input(input, output, "gaussian_filter")
    _real_output_refused(x, dt)
    ax = _axes(axes, ndim_of(x))
    n = len(ax)
    plan = zip(ax, _seq(sigma, n), _seq(order, n), _seq(mode, n), _seq(radius, n),
               strict=True)
    for a, s, o, m, r in plan:
        if np.all(np.asarray(concrete(s)) > 1e-15):
            x = gaussian_filter1d(x, s, a, o, None, m, cval, truncate, radius=r)
    return _finish(x, dt)


def uniform_filter1d(input: Any, size: int, axis: int = -1, output: Any = None,
                     mode: str = "reflect", cval: Any = 0.0, origin: int = 0) -> Any:
    """scipy.ndimage.uniform_filter1d: the mean of ``size`` samples (SciPy's running
    sum's values to rounding), differentiable in ``input`` and ``cval``."""
    x, dt = _input(input, output, "uniform_filter1d")
    if size < 1:
        raise RuntimeError("incorrect filter size")
    if size // 2 + origin < 0 or size // 2 + origin >= size:
        raise ValueError("invalid origin")
    w = np.full(int(size), 1.0 / size)
    return _finish(_correlate(x, w, _axes(axis, ndim_of(x)), mode, cval, (origin,)), dt)


def uniform_filter(input: Any, size: Any = 3, output: Any = None, mode: Any = "reflect",
                   cval: Any = 0.0, origin: Any = 0, *, axes: Any = None) -> Any:
    """scipy.ndimage.uniform_filter: uniform_filter1d along each axis of size > 1."""
    x, dt = _input(input, output, "uniform_filter")
    ax = _axes(axes, ndim_of(x))
    n = len(ax)
    for a, s, o, m in zip(ax, _seq(size, n), _seq(origin, n), _seq(mode, n), strict=True):
        if s > 1:
            x = uniform_filter1d(x, s, a, None, m, cval, o)
    return _finish(x, dt)


def _derivative_filter(name: str, smooth: list[float]) -> Callable[..., Any]:
    def handler(input: Any, axis: int = -1, output: Any = None, mode: Any = "reflect",
                cval: Any = 0.0) -> Any:
        x, dt = _input(input, output, name)
        _real_output_refused(x, dt)
        nd = ndim_of(x)
        axis = _axes(axis, nd)[0]
        modes = _seq(mode, nd)
        out = _correlate(x, np.array([-1.0, 0.0, 1.0]), (axis,), modes[axis], cval, (0,))
        for a in range(nd):
            if a != axis:
                out = _correlate(out, np.array(smooth), (a,), modes[a], cval, (0,))
        return _finish(out, dt)

    handler.__name__ = name
    handler.__doc__ = (f"scipy.ndimage.{name}: the central difference along ``axis`` "
                       f"smoothed by {smooth} along the others; differentiable in "
                       "``input`` and ``cval``.")
    return handler


sobel = _derivative_filter("sobel", [1.0, 2.0, 1.0])
prewitt = _derivative_filter("prewitt", [1.0, 1.0, 1.0])


class _Output:
    """The ``output`` argument the generic filters give their callback: the dtype of the
    result (which dualrev's filters accept as ``output=``); writing into it, SciPy's own
    style, raises a named error instead of a TypeError about a dtype."""

    def __init__(self, dtype: Any, name: str) -> None:
        self.dtype = dtype
        self.name = name

    def __setitem__(self, key: Any, value: Any) -> None:
        raise InPlaceError(
            f"the derivative callback of scipy.ndimage.{self.name} writing into its output "
            "argument", "return the filtered array from the callback instead (dualrev "
            "passes it the output dtype, which its scipy.ndimage filters accept as output=)")


def _callback_result(value: Any, name: str) -> Any:
    if value is None:
        raise InPlaceError(
            f"the derivative callback of scipy.ndimage.{name} writing into its output "
            "argument", "return the filtered array from the callback instead (dualrev "
            "passes it the output dtype, which its scipy.ndimage filters accept as output=)")
    return value


def generic_laplace(input: Any, derivative2: Callable[..., Any], output: Any = None,
                    mode: Any = "reflect", cval: Any = 0.0, extra_arguments: Any = (),
                    extra_keywords: Any = None, *, axes: Any = None) -> Any:
    """scipy.ndimage.generic_laplace: the sum over ``axes`` of
    ``derivative2(input, axis, output, mode, cval, *extra_arguments, **extra_keywords)``,
    which must return its result (dualrev passes the output dtype as ``output``)."""
    x, output = _input(input, output, "generic_laplace")
    _real_output_refused(x, output)
    dt = dtype_of(x) if output is None else np.dtype(output)
    ax = _axes(axes, ndim_of(x))
    if not ax:
        return _finish(x, output)
    modes = _seq(mode, len(ax))
    kw = extra_keywords or {}
    out = None
    for a, m in zip(ax, modes, strict=True):
        term = _callback_result(derivative2(x, a, _Output(dt, "generic_laplace"), m, cval,
                                            *extra_arguments, **kw),
                                "generic_laplace")
        out = term if out is None else out + term
    return _finish(out, output)


def generic_gradient_magnitude(input: Any, derivative: Callable[..., Any],
                               output: Any = None, mode: Any = "reflect", cval: Any = 0.0,
                               extra_arguments: Any = (), extra_keywords: Any = None, *,
                               axes: Any = None) -> Any:
    """scipy.ndimage.generic_gradient_magnitude: sqrt of the sum over ``axes`` of the
    squared ``derivative(input, axis, output, mode, cval, ...)``, which must return its
    result. Its derivative is infinite where the magnitude is 0 (as sqrt's)."""
    x, output = _input(input, output, "generic_gradient_magnitude")
    _real_output_refused(x, output)
    dt = dtype_of(x) if output is None else np.dtype(output)
    ax = _axes(axes, ndim_of(x))
    if not ax:
        return _finish(x, output)
    modes = _seq(mode, len(ax))
    kw = extra_keywords or {}
    total = None
    for a, m in zip(ax, modes, strict=True):
        d = _callback_result(derivative(x, a, _Output(dt, "generic_gradient_magnitude"), m,
                                        cval, *extra_arguments, **kw),
                             "generic_gradient_magnitude")
        total = d * d if total is None else total + d * d
    return _finish(np.sqrt(total), output)


def laplace(input: Any, output: Any = None, mode: Any = "reflect", cval: Any = 0.0, *,
            axes: Any = None) -> Any:
    """scipy.ndimage.laplace: the sum of second differences [1, -2, 1] over ``axes``."""
    def derivative2(x: Any, axis: int, output: Any, mode: str, cval: Any) -> Any:
        return _correlate(x, np.array([1.0, -2.0, 1.0]), (axis,), mode, cval, (0,))
    return generic_laplace(input, derivative2, output, mode, cval, axes=axes)


def _per_axis_sigma(sigma: Any, ax: tuple[int, ...], nd: int) -> list[Any]:
    sig = _seq(sigma, len(ax))
    if len(ax) == nd:  # SciPy's: the sigmas then follow the input's axes, not ``axes``
        return sig
    full: list[Any] = [0.0] * nd
    for s, a in zip(sig, ax, strict=True):
        full[a] = s
    return full


def gaussian_laplace(input: Any, sigma: Any, output: Any = None, mode: Any = "reflect",
                     cval: Any = 0.0, *, axes: Any = None, **kwargs: Any) -> Any:
    """scipy.ndimage.gaussian_laplace: the sum over ``axes`` of second-order Gaussian
    derivatives (``truncate=``, ``radius=`` passed on); differentiable in ``input``,
    ``sigma`` and ``cval``."""
    x, _ = _input(input, output, "gaussian_laplace")
    ax = _axes(axes, ndim_of(x))
    sig = _per_axis_sigma(sigma, ax, ndim_of(x))

    def derivative2(x: Any, axis: int, output: Any, mode: str, cval: Any) -> Any:
        order = [0] * ndim_of(x)
        order[axis] = 2
        return gaussian_filter(x, sig, order, output, mode, cval, **kwargs)
    return generic_laplace(x, derivative2, output, mode, cval, axes=ax)


def gaussian_gradient_magnitude(input: Any, sigma: Any, output: Any = None,
                                mode: Any = "reflect", cval: Any = 0.0, *, axes: Any = None,
                                **kwargs: Any) -> Any:
    """scipy.ndimage.gaussian_gradient_magnitude: the magnitude of the gradient by
    first-order Gaussian derivatives; differentiable in ``input``, ``sigma`` and ``cval``
    (infinite derivative where the magnitude is 0, as sqrt's)."""
    x, _ = _input(input, output, "gaussian_gradient_magnitude")
    ax = _axes(axes, ndim_of(x))
    sig = _per_axis_sigma(sigma, ax, ndim_of(x))

    def derivative(x: Any, axis: int, output: Any, mode: str, cval: Any) -> Any:
        order = [0] * ndim_of(x)
        order[axis] = 1
        return gaussian_filter(x, sig, order, output, mode, cval, **kwargs)
    return generic_gradient_magnitude(x, derivative, output, mode, cval, axes=ax)


for _name, _handler in (
        ("correlate1d", correlate1d), ("convolve1d", convolve1d), ("correlate", correlate),
        ("convolve", convolve), ("gaussian_filter1d", gaussian_filter1d),
        ("gaussian_filter", gaussian_filter), ("uniform_filter1d", uniform_filter1d),
        ("uniform_filter", uniform_filter), ("sobel", sobel), ("prewitt", prewitt),
        ("laplace", laplace), ("gaussian_laplace", gaussian_laplace),
        ("gaussian_gradient_magnitude", gaussian_gradient_magnitude),
        ("generic_laplace", generic_laplace),
        ("generic_gradient_magnitude", generic_gradient_magnitude)):
    dispatch(ndi, _name, _handler)


# ====================================================================== interpolation
# map_coordinates and the transforms built on it (shift, zoom, affine_transform, rotate):
# the B-spline coefficients come from SciPy's own prefilter (``spline_filter1d_p``, linear,
# its adjoint the transpose of SciPy's filter matrix); the interpolation itself is SciPy's
# C loop written in NumPy (the same coordinate folding per mode, the same start index and
# spline weights, the same border mapping of the indices), so that it is differentiable in
# the coefficients (a gather: its adjoint scatters with the spline weights) and in the
# coordinates (the weights are polynomials in the fractional coordinate; the fold of a
# coordinate by the boundary mode has slope +1 or -1).
_SPLINE_FILTER1D = ndi.spline_filter1d
_MODE_CODE = {"nearest": "nearest", "wrap": "wrap", "reflect": "reflect",
              "grid-mirror": "reflect", "mirror": "mirror", "constant": "constant",
              "grid-wrap": "grid-wrap", "grid-constant": "grid-constant"}


def _filter_matrix(n: int, order: int, mode: str) -> np.ndarray:
    """SciPy's spline prefilter along a line of ``n`` samples as a matrix (its columns
    are the filtered unit vectors), cached: its transpose is the adjoint."""
    key = (n, order, mode)
    got = _FILTER_MATRICES.get(key)
    if got is None:
        got = _SPLINE_FILTER1D(np.eye(n), order, axis=0, output=np.float64, mode=mode)
        if len(_FILTER_MATRICES) > 64:
            _FILTER_MATRICES.clear()
        _FILTER_MATRICES[key] = got
    return got


_FILTER_MATRICES: dict[tuple[int, int, str], np.ndarray] = {}


def _spline_filter1d_impl(x: Any, order: int, axis: int, mode: str) -> Any:
    return _SPLINE_FILTER1D(x, order, axis=axis, output=np.float64, mode=mode)


def _spline_filter1d_t_impl(g: Any, order: int, axis: int, mode: str) -> Any:
    g = np.asarray(g)
    m = _filter_matrix(g.shape[axis], order, mode)
    return np.moveaxis(np.tensordot(m.T, np.moveaxis(g, axis, 0), axes=1), 0, axis)


spline_filter1d_p = Primitive("ndimage_spline_filter1d", _spline_filter1d_impl)
spline_filter1d_t_p = Primitive("ndimage_spline_filter1d_transpose", _spline_filter1d_t_impl)
spline_filter1d_p.defjvp(lambda t, ans, x, **p: bind(spline_filter1d_p, (t,), p))
spline_filter1d_p.defvjp(lambda g, ans, x, **p: bind(spline_filter1d_t_p, (g,), p), saves="")
spline_filter1d_t_p.defjvp(lambda t, ans, g, **p: bind(spline_filter1d_t_p, (t,), p))
spline_filter1d_t_p.defvjp(lambda u, ans, g, **p: bind(spline_filter1d_p, (u,), p), saves="")
for _p in (spline_filter1d_p, spline_filter1d_t_p):
    _p.defbatch(lambda args, batched, _p=_p, **params: bind(
        _p, args, dict(params, axis=params["axis"] + 1)))
    # the B-spline prefilter is recursive (IIR): each coefficient depends on its line
    _p.defpattern(pattern_rules.along("axis"))


def spline_filter1d(input: Any, order: int = 3, axis: int = -1, output: Any = np.float64,
                    mode: str = "mirror") -> Any:
    """scipy.ndimage.spline_filter1d: B-spline coefficients along ``axis`` (linear in
    ``input``; SciPy's filter, its adjoint the transpose of SciPy's filter matrix)."""
    if order < 0 or order > 5:
        raise RuntimeError("spline order not supported")
    x, output = _input(input, output, "spline_filter1d")
    _check_mode(mode)
    if order in (0, 1):
        out = x * 1.0
    else:
        ax = _axes(axis, ndim_of(x))[0]
        out = bind(spline_filter1d_p, (x,), {"order": int(order), "axis": ax, "mode": mode})
    return _finish(out, output)


def spline_filter(input: Any, order: int = 3, output: Any = np.float64,
                  mode: str = "mirror") -> Any:
    """scipy.ndimage.spline_filter: spline_filter1d along every axis."""
    if order < 2 or order > 5:
        raise RuntimeError("spline order not supported")
    x, output = _input(input, output, "spline_filter")
    for a in range(ndim_of(x)):
        x = spline_filter1d(x, order, a, np.float64 if dtype_of(x).kind != "c" else None,
                            mode)
    return _finish(x, output)


def _trunc(v: np.ndarray) -> np.ndarray:
    return np.trunc(v)


def _fold(c: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's map_coordinate (ni_interpolation.c), vectorised: a coordinate outside
    [0, n - 1] mapped back by the boundary mode, and the slope of that map (+1, -1, or 0
    where it is constant); -1 with slope 0 for 'constant' (the cval)."""
    c = np.asarray(c, dtype=np.float64)
    out = c.copy()
    slope = np.ones_like(c)
    lo, hi = c < 0, c > n - 1
    if n <= 1 and mode in ("mirror", "reflect", "wrap", "grid-wrap"):
        out[lo | hi] = 0.0
        slope[lo | hi] = 0.0
        return out, slope
    v = c[lo]
    if mode == "mirror":
        sz2 = 2 * n - 2
        v = sz2 * _trunc(-v / sz2) + v
        up = v <= 1 - n
        out[lo] = np.where(up, v + sz2, -v)
        slope[lo] = np.where(up, 1.0, -1.0)
    elif mode == "reflect":
        sz2 = 2 * n
        v = np.where(v < -sz2, sz2 * _trunc(-v / sz2) + v, v)
        up = v < -n
        out[lo] = np.where(up, v + sz2, np.where(v > -1e-15, 1e-15, -v) - 1)
        slope[lo] = np.where(up, 1.0, -1.0)
    elif mode == "wrap":
        sz = n - 1
        out[lo] = v + sz * (_trunc(-v / sz) + 1)
    elif mode == "grid-wrap":
        out[lo] = v + n * (_trunc((-1 - v) / n) + 1)
    elif mode == "nearest":
        out[lo], slope[lo] = 0.0, 0.0
    else:  # constant
        out[lo], slope[lo] = -1.0, 0.0
    v = c[hi]
    if mode == "mirror":
        sz2 = 2 * n - 2
        v = v - sz2 * _trunc(v / sz2)
        down = v >= n
        out[hi] = np.where(down, sz2 - v, v)
        slope[hi] = np.where(down, -1.0, 1.0)
    elif mode == "reflect":
        sz2 = 2 * n
        v = v - sz2 * _trunc(v / sz2)
        down = v >= n
        out[hi] = np.where(down, sz2 - v - 1, v)
        slope[hi] = np.where(down, -1.0, 1.0)
    elif mode == "wrap":
        sz = n - 1
        out[hi] = v - sz * _trunc(v / sz)
    elif mode == "grid-wrap":
        out[hi] = v - n * _trunc(v / n)
    elif mode == "nearest":
        out[hi], slope[hi] = n - 1.0, 0.0
    else:
        out[hi], slope[hi] = -1.0, 0.0
    return out, slope


def _spline_weights(x: Any, order: int) -> list[Any]:
    """SciPy's B-spline interpolation weights of the delta ``x`` to the middle knot
    (ni_splines.c), as differentiable NumPy: the last weight is 1 minus the others."""
    y, z = x, 1.0 - x
    w: list[Any] = [None] * (order + 1)
    if order == 1:
        w[0] = 1.0 - x
    elif order == 2:
        w[1] = 0.75 - x * x
        y = 0.5 - x
        w[0] = 0.5 * y * y
    elif order == 3:
        w[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0
        w[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0
        w[0] = z * z * z / 6.0
    elif order == 4:
        t = x * x
        w[2] = t * (t * 0.25 - 0.625) + 115.0 / 192.0
        y = 1.0 + x
        w[1] = y * (y * (y * (5.0 - y) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0
        w[3] = z * (z * (z * (5.0 - z) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0
        y = 0.5 - x
        t = y * y
        w[0] = t * t / 24.0
    elif order == 5:
        t = y * y
        w[2] = t * (t * (0.25 - y / 12.0) - 0.5) + 0.55
        t = z * z
        w[3] = t * (t * (0.25 - z / 12.0) - 0.5) + 0.55
        y = y + 1.0
        w[1] = y * (y * (y * (y * (y / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425
        z = z + 1.0
        w[4] = z * (z * (z * (z * (z / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425
        y = 1.0 - x
        t = y * y
        w[0] = y * t * t / 120.0
    last = 1.0
    for i in range(order):
        last = last - w[i]
    w[order] = last
    return w


def _axis_plan(c: np.ndarray, n: int, order: int, mode: str, npad: int) -> dict[str, Any]:
    """Per output point, along one axis (plain values): the folded coordinate and its
    slope, whether the point is inside (else cval), and the order + 1 indices read
    (-1: the cval, for 'grid-constant')."""
    cc = np.asarray(c, dtype=np.float64) + npad
    mode = _MODE_CODE[mode]
    if mode in ("grid-constant", "nearest"):
        slope = np.ones_like(cc)
        inside = np.ones(cc.shape, bool)
    else:
        cc, slope = _fold(cc, n, mode)
        inside = cc > -1.0
    knot = np.floor(cc) if order & 1 else np.floor(cc + 0.5)
    start = knot.astype(np.intp) - order // 2
    idx = start[..., None] + np.arange(order + 1)
    if mode == "grid-constant":
        idx = np.where((idx < 0) | (idx >= n), -1, idx)
    else:
        spline_mode = "mirror" if mode in ("constant", "wrap") else mode
        edge = (idx < 0) | (idx >= n)
        if edge.any():
            folded, _ = _fold(idx[edge].astype(np.float64), n, spline_mode)
            idx[edge] = folded.astype(np.intp)
    idx = np.where(inside[..., None], idx, 0)
    return {"cc": cc, "slope": slope, "knot": knot, "inside": inside, "idx": idx}


def _interpolate(coef: Any, coords: Any, order: int, mode: str, cval: Any,
                 npad: int) -> Any:
    """SciPy's NI_GeometricTransform at the points ``coords`` (shape (ndim,) + out) of
    the spline coefficients ``coef``, in differentiable NumPy. Under ``vmap`` the plain
    quantities (indices, folds) are computed for the whole batch of coordinates at once
    and batched like them; the gather is a ``take_along_axis``, which lines them up."""
    dims = shape_of(coef)
    nd = len(dims)
    k = len(batch_traces(coords))
    cvals = np.moveaxis(np.asarray(concrete(coords), dtype=np.float64), k, 0)
    plans = [_axis_plan(cvals[d], dims[d], order, mode, npad) for d in range(nd)]

    def batched(v: np.ndarray) -> Any:
        return rebatch(v, coords) if k else v

    inside = np.logical_and.reduce([p["inside"] for p in plans])
    weights = []
    for d, p in enumerate(plans):
        if order == 0:
            weights.append(None)
            continue
        cd = getitem(coords, d)
        # the delta to the middle knot, moving with the coordinate at its fold's slope
        delta = (batched(p["slope"]) * cd
                 + batched(p["cc"] - p["knot"] - p["slope"] * cvals[d]))
        weights.append(_spline_weights(delta, order))
    flat = np.reshape(coef, (-1,))
    strides = np.cumprod((1,) + tuple(dims[::-1]))[:-1][::-1]
    out_shape = cvals.shape[1:]
    total: Any = None
    for combo in np.ndindex(*(order + 1,) * nd):
        index = np.zeros(out_shape, np.intp)
        is_cval = np.zeros(out_shape, bool)
        for d, l in enumerate(combo):
            i = plans[d]["idx"][..., l]
            is_cval |= i < 0
            index = index + np.maximum(i, 0) * int(strides[d])
        if k:
            term = np.reshape(np.take_along_axis(flat, batched(np.reshape(
                index, index.shape[:k] + (-1,))), axis=0), shape_of(coords)[1:])
        else:
            term = getitem(flat, index)
        if is_cval.any():
            term = np.where(batched(is_cval), cval, term)
        for d, l in enumerate(combo):
            if weights[d] is not None:
                term = term * weights[d][l]
        total = term if total is None else total + term
    if not inside.all():
        total = np.where(batched(inside), total, cval)
    return total


def _coefficients(x: Any, order: int, mode: str, cval: Any, prefilter: bool) -> tuple[Any, int]:
    """SciPy's spline coefficients for interpolation and the padding they carry (12 on
    each side for 'nearest' and 'grid-constant', whose prefilter works on a padded copy)."""
    if not (prefilter and order > 1):
        return x, 0
    npad = 0
    if mode in ("nearest", "grid-constant"):
        npad = 12
        if mode == "nearest":
            x = np.pad(x, npad, mode="edge")
        else:
            ring = 1.0 - np.pad(np.ones(shape_of(x)), npad)
            x = np.pad(x, npad) + (ring * cval if not _is_zero(cval) else 0.0)
    complex_x = dtype_of(x).kind == "c"
    for a in range(ndim_of(x)):
        x = bind(spline_filter1d_p, (x,), {"order": order, "axis": a, "mode": mode})
    if not complex_x and dtype_of(x) != np.float64:
        x = x.astype(np.float64)
    return x, npad


def _is_zero(v: Any) -> bool:
    return not isinstance(v, Tracer) and np.all(np.asarray(v) == 0)


def _check_interp(order: Any, mode: Any) -> None:
    if order < 0 or order > 5:
        raise RuntimeError("spline order not supported")
    _check_mode(mode)


def _transform(x: Any, coords: Any, output: Any, order: int, mode: str, cval: Any,
               prefilter: bool, name: str) -> Any:
    _check_interp(order, mode)
    x, output = _input(x, output, name)
    if ndim_of(x) < 1 or len(shape_of(coords)) < 2:
        raise RuntimeError("input and output rank must be > 0")
    coef, npad = _coefficients(x, int(order), mode, cval, prefilter)
    out = _interpolate(coef, coords, int(order), mode, cval, npad)
    want = dtype_of(x)
    if dtype_of(out) != want and want.kind not in "biu":
        out = out.astype(want)
    return _finish(out, output)


def map_coordinates(input: Any, coordinates: Any, output: Any = None, order: int = 3,
                    mode: str = "constant", cval: Any = 0.0, prefilter: bool = True) -> Any:
    """scipy.ndimage.map_coordinates: differentiable in ``input`` and ``cval`` (linear)
    and in ``coordinates`` (the B-spline's derivative for order >= 1; zero almost
    everywhere for order 0, and where a coordinate is clamped or outside a 'constant'
    image)."""
    if not isinstance(coordinates, Tracer):
        coordinates = np.asarray(coordinates)
    if dtype_of(coordinates).kind == "c":
        raise TypeError("Complex type not supported")
    nd_in = ndim_of(input) if isinstance(input, Tracer) else np.ndim(input)
    if shape_of(coordinates)[0] != nd_in:
        raise RuntimeError("invalid shape for coordinate array")
    return _transform(input, coordinates, output, order, mode, cval, prefilter,
                      "map_coordinates")


def _grid(shape: tuple[int, ...]) -> np.ndarray:
    return np.indices(shape, dtype=np.float64)


def _float_seq(value: Any, n: int) -> list[Any]:
    return [v if isinstance(v, Tracer) else float(v) for v in _seq(value, n)]


def shift(input: Any, shift: Any, output: Any = None, order: int = 3,
          mode: str = "constant", cval: Any = 0.0, prefilter: bool = True) -> Any:
    """scipy.ndimage.shift: differentiable in ``input``, ``cval`` and ``shift`` (the
    spline's derivative, order >= 1)."""
    _check_interp(order, mode)
    x, _ = _input(input, None if output is None else output, "shift")
    nd = ndim_of(x)
    if nd < 1:
        raise RuntimeError("input and output rank must be > 0")
    grid = _grid(shape_of(x))
    coords = np.stack([grid[d] + (-s) for d, s in enumerate(_float_seq(shift, nd))])
    return _transform(x, coords, output, order, mode, cval, prefilter, "shift")


def zoom(input: Any, zoom: Any, output: Any = None, order: int = 3, mode: str = "constant",
         cval: Any = 0.0, prefilter: bool = True, *, grid_mode: bool = False) -> Any:
    """scipy.ndimage.zoom: differentiable in ``input`` and ``cval``. The zoom factors set
    the output's shape, and the sampling positions follow from the shapes alone, so the
    output does not vary with them: their derivative is zero."""
    _check_interp(order, mode)
    x, _ = _input(input, output, "zoom")
    nd = ndim_of(x)
    if nd < 1:
        raise RuntimeError("input and output rank must be > 0")
    zooms = [float(np.asarray(concrete(z))) for z in _seq(zoom, nd)]
    shape = shape_of(x)
    out_shape = tuple(int(round(n * z)) for n, z in zip(shape, zooms, strict=True))
    if all(z == 1 for z in zooms) and prefilter:
        return _finish(x * 1.0, output)
    if grid_mode and mode in ("constant", "wrap"):
        suggest = "grid-constant" if mode == "constant" else "grid-wrap"
        warnings.warn(f"It is recommended to use mode = {suggest} instead of {mode} when "
                      "grid_mode is True.", stacklevel=3)
    div = np.array(out_shape) - (0 if grid_mode else 1)
    num = np.array(shape) - (0 if grid_mode else 1)
    factor = np.divide(num, div, out=np.ones(nd), where=div != 0)
    grid = _grid(out_shape)
    if grid_mode:
        coords = np.stack([(grid[d] + 0.5) * factor[d] - 0.5 for d in range(nd)])
    else:
        coords = np.stack([grid[d] * factor[d] for d in range(nd)])
    return _transform(x, coords, output, order, mode, cval, prefilter, "zoom")


def _affine_coords(matrix: Any, offset: Any, nd: int, out_shape: tuple[int, ...]) -> Any:
    """The input coordinates of every output point: offset + matrix @ index (a 1-d
    matrix: SciPy's zoom_shift, (index + offset / m) * m)."""
    grid = _grid(out_shape)
    if ndim_of(matrix) == 1:
        off = _seq(offset, nd)
        return np.stack([(grid[d] + off[d] / getitem(matrix, d)) * getitem(matrix, d)
                         for d in range(nd)])
    rows = []
    off = _seq(offset, nd)
    for d in range(nd):
        acc = off[d] + 0.0 * grid[0]
        for col in range(len(out_shape)):
            acc = acc + grid[col] * getitem(matrix, (d, col))
        rows.append(acc)
    return np.stack(rows)


def affine_transform(input: Any, matrix: Any, offset: Any = 0.0, output_shape: Any = None,
                     output: Any = None, order: int = 3, mode: str = "constant",
                     cval: Any = 0.0, prefilter: bool = True) -> Any:
    """scipy.ndimage.affine_transform: differentiable in ``input``, ``cval``, ``matrix``
    and ``offset`` (the spline's derivative, order >= 1)."""
    _check_interp(order, mode)
    x, _ = _input(input, output, "affine_transform")
    nd = ndim_of(x)
    if output_shape is None:
        output_shape = shape_of(x)
    out_shape = tuple(int(n) for n in output_shape)
    if nd < 1 or len(out_shape) < 1:
        raise RuntimeError("input and output rank must be > 0")
    m = matrix if isinstance(matrix, Tracer) else np.asarray(matrix, dtype=np.float64)
    mshape = shape_of(m)
    if len(mshape) not in (1, 2) or mshape[0] < 1:
        raise RuntimeError("no proper affine matrix provided")
    if len(mshape) == 2 and mshape[1] == nd + 1 and mshape[0] in (nd, nd + 1):
        if mshape[0] == nd + 1:
            bottom = np.asarray(concrete(m))[..., nd, :]  # every batch element's
            expected = [0] * nd + [1]
            if not np.all(bottom == expected):
                raise ValueError(f"Expected homogeneous transformation matrix with shape "
                                 f"{mshape} for image shape {shape_of(x)}, but bottom row "
                                 f"was not equal to {expected}")
        offset = getitem(m, (slice(0, nd), nd))
        offset = [getitem(offset, d) for d in range(nd)]
        m = getitem(m, (slice(0, nd), slice(0, nd)))
        mshape = (nd, nd)
    if mshape[0] != nd:
        raise RuntimeError("affine matrix has wrong number of rows")
    if len(mshape) == 2 and mshape[1] != len(out_shape):
        raise RuntimeError("affine matrix has wrong number of columns")
    if len(mshape) == 1 and len(out_shape) != nd:
        raise RuntimeError("input and output rank must be equal for a 1-d matrix")
    coords = _affine_coords(m, offset, nd, out_shape)
    return _transform(x, coords, output, order, mode, cval, prefilter, "affine_transform")


def _degrees(angle: Any, fn: Any, exact: Any) -> Any:
    """cos/sin of ``angle`` degrees with SciPy's exact cosdg/sindg values (0 at right
    angles) and NumPy's derivative."""
    if not isinstance(angle, Tracer):
        return exact(angle)
    smooth = fn(np.deg2rad(angle))
    # SciPy's exact value (per batch element under vmap), NumPy's derivative
    return smooth + (rebatch(exact(np.asarray(concrete(angle))), angle)
                     - without_derivatives(smooth))


def rotate(input: Any, angle: Any, axes: Any = (1, 0), reshape: bool = True,
           output: Any = None, order: int = 3, mode: str = "constant", cval: Any = 0.0,
           prefilter: bool = True) -> Any:
    """scipy.ndimage.rotate: differentiable in ``input``, ``cval`` and ``angle`` (the
    spline's derivative, order >= 1; with ``reshape`` the output's shape is set by the
    angle's value)."""
    x, _ = _input(input, output, "rotate")
    nd = ndim_of(x)
    if nd < 2:
        raise ValueError("input array should be at least 2D")
    axes = list(axes)
    if len(axes) != 2:
        raise ValueError("axes should contain exactly two values")
    if not all(float(a).is_integer() for a in axes):
        raise ValueError("axes should contain only integer values")
    axes = [int(a) + nd if a < 0 else int(a) for a in axes]
    if min(axes) < 0 or max(axes) >= nd:
        raise ValueError("invalid rotation plane specified")
    axes.sort()
    c = _degrees(angle, np.cos, sc.cosdg)
    s = _degrees(angle, np.sin, sc.sindg)
    rot = np.stack([np.stack([c, s]), np.stack([-s, c])])
    shape = np.asarray(shape_of(x))
    in_plane = shape[axes]
    if reshape:
        iy, ix = in_plane
        # per batch element under vmap: the output's shape must agree across the batch
        rot_plain = np.reshape(np.asarray(concrete(rot), dtype=np.float64), (-1, 2, 2))
        bounds = rot_plain @ np.array([[0, 0, iy, iy], [0, ix, 0, ix]])
        planes = {tuple((np.ptp(b, axis=1) + 0.5).astype(int)) for b in bounds}
        if len(planes) > 1:
            raise BatchedValueError(
                "scipy.ndimage.rotate(reshape=True) under vmap with angles whose rotated "
                "images have different shapes (pass reshape=False)")
        out_plane = np.array(planes.pop())
    else:
        out_plane = shape[axes]
    half = (out_plane - 1) / 2
    out_center = [c * half[0] + s * half[1], c * half[1] - s * half[0]]
    offset = [(in_plane[i] - 1) / 2 - out_center[i] for i in range(2)]
    out_plane = tuple(int(n) for n in out_plane)
    if nd == 2:
        return affine_transform(x, rot, offset, out_plane, output, order, mode, cval,
                                prefilter)
    # SciPy rotates every plane parallel to ``axes`` on its own
    moved = np.moveaxis(x, axes, (nd - 2, nd - 1))
    lead = shape_of(moved)[:-2]
    flat = np.reshape(moved, (-1,) + shape_of(moved)[-2:])
    planes = [affine_transform(getitem(flat, i), rot, offset, out_plane, output, order, mode,
                               cval, prefilter) for i in range(shape_of(flat)[0])]
    out = np.reshape(np.stack(planes), lead + out_plane)
    return np.moveaxis(out, (nd - 2, nd - 1), axes)


for _name, _handler in (("map_coordinates", map_coordinates), ("spline_filter", spline_filter),
                        ("spline_filter1d", spline_filter1d), ("shift", shift),
                        ("zoom", zoom), ("affine_transform", affine_transform),
                        ("rotate", rotate)):
    dispatch(ndi, _name, _handler)


# ====================================================================== rank filters
# minimum/maximum/median/percentile/rank filters select one element of each window: the
# windows are gathered from the input extended by its boundary mode (a gather: the
# derivative flows to the selected element), then reduced with NumPy's max/min (ties share
# the derivative evenly, as np.max's rule) or sorted and indexed at the rank.
def _window_shape(x: Any, size: Any, footprint: Any, axes: Any,
                  name: str) -> tuple[tuple[int, ...], np.ndarray, tuple[int, ...]]:
    ax = _axes(axes, ndim_of(x))
    if footprint is None:
        if size is None:
            raise RuntimeError("no footprint or filter size provided")
        sizes = tuple(int(s) for s in _seq(size, len(ax)))
        mask = np.ones(sizes, bool)
    else:
        mask = np.asarray(concrete(footprint), dtype=bool)
        if mask.ndim != len(ax):
            raise RuntimeError(f"footprint.ndim ({mask.ndim}) must match len(axes) "
                               f"({len(ax)})")
        if not mask.any():
            raise ValueError("All-zero footprint is not supported.")
    return ax, mask, mask.shape


def _windows(x: Any, cval: Any, mask: np.ndarray, ax: tuple[int, ...], mode: str,
             origins: tuple[int, ...]) -> Any:
    """The footprint's elements of every window, stacked on a new leading axis."""
    _check_mode(mode)
    wshape = mask.shape
    for k, o in zip(wshape, origins, strict=True):
        if o < -(k // 2) or o > (k - 1) // 2:
            raise ValueError("invalid origin")
    # SciPy's rank filters centre the window as its correlations do
    ext = _extend(x, cval, wshape, ax, mode, origins)
    n = shape_of(x)
    picks = []
    for j in zip(*np.nonzero(mask), strict=True):
        key = [slice(None)] * len(n)
        for i, a in enumerate(ax):
            key[a] = slice(int(j[i]), int(j[i]) + n[a])
        picks.append(getitem(ext, tuple(key)))
    return np.stack(picks)


def _rank_filter(input: Any, rank: Any, size: Any, footprint: Any, output: Any, mode: Any,
                 cval: Any, origin: Any, axes: Any, name: str) -> Any:
    x, output = _input(input, output, name)
    if dtype_of(x).kind == "c":
        raise TypeError("Complex type not supported")
    ax, mask, _ = _window_shape(x, size, footprint, axes, name)
    given = [int(o) for o in _seq(origin, len(ax))]
    if rank in ("min", "max") and mask.all():
        # SciPy's separable path: one 1-d filter per axis, sizes, origins and modes
        # paired with ``axes`` as given
        modes = _seq(mode, len(ax))
        for a, k, o, m in zip(ax, mask.shape, given, modes, strict=True):
            if k > 1:
                stack = _windows(x, cval, np.ones((k,), bool), (a,), m, (o,))
                x = np.min(stack, axis=0) if rank == "min" else np.max(stack, axis=0)
        return _finish(x, output)
    # otherwise SciPy pairs the footprint's axes with the filtered axes in increasing
    # order, and the origins with them in the order given (unless every axis is
    # filtered: then the origins too follow the input's axes)
    ax_sorted = tuple(sorted(ax))
    origins = (tuple(given) if len(ax) == ndim_of(x) else
               tuple(given[ax.index(a)] for a in ax_sorted))
    if not isinstance(mode, str):
        raise RuntimeError("A sequence of modes is not supported")
    stack = _windows(x, cval, mask, ax_sorted, mode, origins)
    count = int(mask.sum())
    if rank == "min":
        out = np.min(stack, axis=0)
    elif rank == "max":
        out = np.max(stack, axis=0)
    else:
        r = int(rank)
        if r < 0:
            r += count
        if r < 0 or r >= count:
            raise RuntimeError("rank not within filter footprint size")
        if r == 0:
            out = np.min(stack, axis=0)
        elif r == count - 1:
            out = np.max(stack, axis=0)
        else:
            out = getitem(np.sort(stack, axis=0), r)
    return _finish(out, output)


def minimum_filter(input: Any, size: Any = None, footprint: Any = None, output: Any = None,
                   mode: Any = "reflect", cval: Any = 0.0, origin: Any = 0, *,
                   axes: Any = None) -> Any:
    """scipy.ndimage.minimum_filter: the derivative flows to each window's minimum (ties
    share it evenly, as np.min's rule)."""
    return _rank_filter(input, "min", size, footprint, output, mode, cval, origin, axes,
                        "minimum_filter")


def maximum_filter(input: Any, size: Any = None, footprint: Any = None, output: Any = None,
                   mode: Any = "reflect", cval: Any = 0.0, origin: Any = 0, *,
                   axes: Any = None) -> Any:
    """scipy.ndimage.maximum_filter: the derivative flows to each window's maximum (ties
    share it evenly, as np.max's rule)."""
    return _rank_filter(input, "max", size, footprint, output, mode, cval, origin, axes,
                        "maximum_filter")


def rank_filter(input: Any, rank: int, size: Any = None, footprint: Any = None,
                output: Any = None, mode: Any = "reflect", cval: Any = 0.0, origin: Any = 0,
                *, axes: Any = None) -> Any:
    """scipy.ndimage.rank_filter: the derivative flows to the element of that rank."""
    return _rank_filter(input, rank, size, footprint, output, mode, cval, origin, axes,
                        "rank_filter")


def median_filter(input: Any, size: Any = None, footprint: Any = None, output: Any = None,
                  mode: Any = "reflect", cval: Any = 0.0, origin: Any = 0, *,
                  axes: Any = None) -> Any:
    """scipy.ndimage.median_filter: SciPy's median is the element of rank size // 2 (the
    upper one of an even window); the derivative flows to it."""
    x = input if isinstance(input, Tracer) else np.asarray(input)
    _, mask, _ = _window_shape(x, size, footprint, axes, "median_filter")
    return _rank_filter(input, int(mask.sum()) // 2, size, footprint, output, mode, cval,
                        origin, axes, "median_filter")


def percentile_filter(input: Any, percentile: Any, size: Any = None, footprint: Any = None,
                      output: Any = None, mode: Any = "reflect", cval: Any = 0.0,
                      origin: Any = 0, *, axes: Any = None) -> Any:
    """scipy.ndimage.percentile_filter: the element of rank int(n * percentile / 100)."""
    x = input if isinstance(input, Tracer) else np.asarray(input)
    _, mask, _ = _window_shape(x, size, footprint, axes, "percentile_filter")
    p = float(np.asarray(concrete(percentile)))
    if p < 0.0:
        p += 100.0
    if p < 0 or p > 100:
        raise RuntimeError("invalid percentile")
    n = int(mask.sum())
    r = n - 1 if p == 100.0 else int(float(n) * p / 100.0)
    return _rank_filter(input, r, size, footprint, output, mode, cval, origin, axes,
                        "percentile_filter")


def _filter1d(kind: str) -> Callable[..., Any]:
    def handler(input: Any, size: int, axis: int = -1, output: Any = None,
                mode: str = "reflect", cval: Any = 0.0, origin: int = 0) -> Any:
        if size < 1:
            raise RuntimeError("incorrect filter size")
        x = input if isinstance(input, Tracer) else np.asarray(input)
        return _rank_filter(x, kind, size, None, output, mode, cval, origin,
                            _axes(axis, ndim_of(x)), f"{kind}imum_filter1d")
    handler.__name__ = f"{kind}imum_filter1d"
    handler.__doc__ = (f"scipy.ndimage.{kind}imum_filter1d: the derivative flows to each "
                       f"window's {kind}imum (ties share it evenly).")
    return handler


minimum_filter1d = _filter1d("min")
maximum_filter1d = _filter1d("max")

for _name, _handler in (("minimum_filter", minimum_filter), ("maximum_filter", maximum_filter),
                        ("rank_filter", rank_filter), ("median_filter", median_filter),
                        ("percentile_filter", percentile_filter),
                        ("minimum_filter1d", minimum_filter1d),
                        ("maximum_filter1d", maximum_filter1d)):
    dispatch(ndi, _name, _handler)

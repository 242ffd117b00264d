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

from ..batching import batch_by_loop, batch_size, shift_axes
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
    if pad is None:
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


def _correlate_t_impl(g: Any, w: Any, axes: tuple[int, ...], mode: str,
                      origins: tuple[int, ...]) -> Any:
    """The adjoint of ``x -> correlate(x, w, 0)``: the full convolution of ``g`` with
    ``w`` over the extended lines, each extended position folded back onto the sample
    it was read from (dropped where it read the constant)."""
    g = np.asarray(g)
    w = np.asarray(w)
    # zero-pad by k - 1 on each side, then a correlation with the flipped kernel that
    # starts at the first sample: position m of the result is sum_j w[j] g[m - j]
    gz = np.pad(g, [(w.shape[axes.index(a)] - 1,) * 2 if a in axes else (0, 0)
                    for a in range(g.ndim)])
    flipped = w[(slice(None, None, -1),) * w.ndim]
    starts = tuple(-(k // 2) for k in w.shape)
    full = _scipy_correlate(gz, flipped, 0.0, axes, "constant", starts)
    for i, a in enumerate(axes):
        k, n = w.shape[i], g.shape[a]
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
                f"scipy.ndimage.{name} of an integer input with traced weights",
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
    # origins with them in the order given
    given = [int(o) for o in _seq(origin, len(ax))]
    origins = [given[ax.index(a)] for a in sorted(ax)]
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

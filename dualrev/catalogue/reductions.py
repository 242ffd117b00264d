"""Reductions: sum, prod, max/min, cumulative sums and products; mean, var, std and
vector/Frobenius norms as compositions of them.

Rules take ``axis`` as a sorted tuple of non-negative axes; the batching rules shift
them past the batch axis.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import pattern_rules
from ..batching import is_batched, leading_axis_rule, without_derivatives
from ..compile import register_inline
from ..errors import DualrevError, InPlaceError
from ..inplace import clone
from ..primitive import (
    Primitive,
    Shaped,
    Tracer,
    as_array,
    bind,
    concrete,
    dtype_of,
    eye_as,
    is_complex,
    ndim_of,
    no_rule,
    normalize_axis,
    ones_as,
    register_function,
    shape_of,
)
from .elementwise import astype


def _kept_shape(shape: tuple[int, ...], axis: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def _spread(g: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """Broadcast a reduction's cotangent (``out.shape``) back to ``x.shape``."""
    xs = shape_of(x)
    if not keepdims:
        g = np.reshape(g, _kept_shape(xs, axis))
    chunks = x.chunks if type(x) is Shaped else None
    if chunks is not None:
        # x was a Dask array: the cotangent is chunked as x (Dask's own broadcast_to:
        # NumPy's takes no chunks=), one broadcast per chunk. A whole-size NumPy
        # broadcast becomes one Dask chunk split later, after which Dask's scheduler
        # holds every data chunk that a second use of the data reads (measured: all).
        import dask.array as da

        return da.broadcast_to(g, tuple(xs), chunks=chunks)
    return np.broadcast_to(g, tuple(xs))


def _keep(v: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """A reduction's output with the reduced axes kept (size 1), for broadcasting against x."""
    return v if keepdims else np.reshape(v, _kept_shape(shape_of(x), axis))


def _reduced(g: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return bind(sum_p, (g,), {"axis": axis, "keepdims": keepdims})


# ------------------------------------------------------------------ sum
def _sum_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    if type(x) is np.ndarray:  # what np.sum runs for an ndarray, without its wrappers
        return np.add.reduce(x, axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


sum_p = Primitive("sum", _sum_impl)
# its pattern (structural sparsity detection): an output element depends on every
# element it reduces
sum_p.defpattern(pattern_rules.reduction())
register_inline(sum_p, lambda out, args, params, seen, name: (
    f"{out} = add_reduce({args[0]}, axis={name(params['axis'])}, "
    f"keepdims={name(params['keepdims'])})" if seen[0].type is np.ndarray else None))
sum_p.defjvp(lambda g, ans, x, axis, keepdims: _reduced(g, axis, keepdims))
sum_p.defvjp(lambda g, ans, x, axis, keepdims: _spread(g, x, axis, keepdims), saves="x.shape")
sum_p.defbatch(leading_axis_rule(sum_p, "axis"))


def _as(result: Any, dtype: Any) -> Any:
    """The result in the dtype= the caller asked for (NumPy's accumulator dtype)."""
    return result if dtype is None else astype(result, dtype)


def _reject(name: str, out: Any, where: Any = True, initial: Any = None) -> None:
    if out is not None:
        raise InPlaceError(f"numpy.{name}(..., out=...)")
    if where is not True or initial is not None:
        raise no_rule(getattr(np, name), "Its where= and initial= arguments are not supported.")


def _mask(where: Any, a: Any) -> Any:
    """A reduction's where= as a plain boolean mask of a's shape (None for all of a)."""
    if where is True:
        return None
    w = without_derivatives(as_array(where))
    if isinstance(w, Tracer):  # a batched mask (under vmap): one per element
        return np.broadcast_to(astype(w, np.bool_), shape_of(a))
    return np.broadcast_to(np.asarray(w, dtype=bool), shape_of(a))


@register_function(np.sum)
def _sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:
    _reject("sum", out)
    mask = _mask(where, a)
    if mask is not None:
        a = np.where(mask, a, 0.0)
    axis = normalize_axis(axis, ndim_of(a), scalar_axis=True)
    result = bind(sum_p, (a,), {"axis": axis, "keepdims": bool(keepdims)})
    return _as(result if initial is None else result + initial, dtype)


@register_function(np.mean)
def _mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
          keepdims: bool = False, *, where: Any = True) -> Any:
    _reject("mean", out)
    xs = shape_of(a)
    axes = normalize_axis(axis, len(xs))
    mask = _mask(where, a)
    total = _sum(a, axes, keepdims=keepdims, where=where)
    if mask is None:
        count = math.prod(xs[i] for i in axes)
    else:  # NumPy divides in the sum's precision: float32 stays float32
        count = np.sum(mask, axis=axes, keepdims=keepdims).astype(
            np.finfo(dtype_of(total)).dtype)
    return _as(total / count, dtype)


def abs2(x: Any) -> Any:
    """|x|^2 elementwise, real: x * x for reals, Re(conj(x) x) for complex values (as
    np.linalg.norm spells it, so values agree to the last bit)."""
    return np.real(np.conjugate(x) * x) if is_complex(x) else x * x


@register_function(np.var)
def _var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
         keepdims: bool = False, *, where: Any = True, mean: Any = None,
         correction: Any = None) -> Any:
    _reject("var", out)
    if correction is not None:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    xs = shape_of(a)
    axes = normalize_axis(axis, len(xs))
    mask = _mask(where, a)
    if mask is not None:
        return _masked_var(a, mask, axes, dtype, ddof, keepdims, mean)
    count = math.prod(xs[i] for i in axes)
    if ddof >= count:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
    # mean= is the caller's precomputed mean (shaped as with keepdims=True); NumPy uses it
    # as given, so its derivative flows too. dtype= is the accumulator of both sums.
    if mean is None and count == 1 and count - ddof > 0:
        # one element per group: a - mean(a) is identically zero, so var is a constant
        # (0) with derivative 0; tracing it would give std's
        # sqrt'(0) * 0 = nan where finite differences give 0
        a = without_derivatives(a)
    centred = a - (_mean(a, axes, dtype, keepdims=True) if mean is None else mean)
    if is_complex(centred):  # |x - mean|^2, spelt as NumPy does (squares of both parts)
        re, im = np.real(centred), np.imag(centred)
        sq = re * re + im * im
    else:
        sq = centred * centred
    return _sum(sq, axes, dtype, keepdims=keepdims) / max(count - ddof, 0)


def _masked_var(a: Any, mask: Any, axes: tuple[int, ...], dtype: Any, ddof: float,
                keepdims: bool, mean: Any) -> Any:
    """np.var(a, where=mask): NumPy's definition, the mean and the sum of squares over the
    selected elements, divided by max(count - ddof, 0) per group."""
    count = np.sum(mask, axis=axes, keepdims=True)
    batched = isinstance(count, Tracer)  # a mask per element under vmap
    if not batched and np.any(ddof >= count):
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=3)
    if mean is None:
        # groups of one selected element: var is identically 0 there (see _var)
        single = np.broadcast_to(count == 1, shape_of(mask)) & mask
        if batched or np.any(single):
            a = np.where(single, without_derivatives(a), a)
        mean = _mean(a, axes, dtype, keepdims=True, where=mask)
    centred = a - mean
    if is_complex(centred):
        re, im = np.real(centred), np.imag(centred)
        sq = re * re + im * im
    else:
        sq = centred * centred
    total = _sum(sq, axes, dtype, keepdims=keepdims, where=mask)
    # NumPy divides in the sum's precision (float32 stays float32)
    divisor = np.maximum(count - ddof, 0)
    divisor = divisor if keepdims else np.squeeze(divisor, axis=axes)
    return total / astype(divisor, np.finfo(dtype_of(total)).dtype)


@register_function(np.std)
def _std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
         keepdims: bool = False, *, where: Any = True, mean: Any = None,
         correction: Any = None) -> Any:
    return np.sqrt(_var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean,
                        correction=correction))


# ------------------------------------------------------------------ prod
def _prod_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return np.prod(x, axis=axis, keepdims=keepdims)


def _prod_of_others(x: Any, axis: tuple[int, ...]) -> Any:
    """For each element, the product of the other elements in its reduction group.

    Built from exclusive cumulative products from both ends, so zeros in x are handled
    exactly (no division by x)."""
    xs = shape_of(x)
    k = len(xs) - len(axis)
    # Move the reduced axes to the end and flatten them into one.
    rest = [i for i in range(len(xs)) if i not in axis]
    perm = rest + list(axis)
    xt = np.transpose(x, perm)
    ts = shape_of(xt)
    n = math.prod(ts[k:])
    if n == 0:  # empty groups: nothing to multiply (and no element to differentiate)
        return ones_as(tuple(xs), float, x)
    flat = np.reshape(xt, ts[:k] + (n,))
    ones = np.ones_like(flat[..., :1])  # (in x's library: a CuPy x's stays on its device)
    left = np.concatenate([ones, np.cumprod(flat[..., :-1], axis=-1)], axis=-1)
    right_rev = np.concatenate([ones, np.cumprod(flat[..., ::-1][..., :-1], axis=-1)], axis=-1)
    others = left * right_rev[..., ::-1]
    back = np.reshape(others, ts)
    # (a tuple of ints: Dask's transpose tests `if axes`, which an array cannot answer)
    return np.transpose(back, tuple(int(i) for i in np.argsort(perm)))


prod_p = Primitive("prod", _prod_impl)
prod_p.defpattern(pattern_rules.reduction())
prod_p.defjvp(
    lambda g, ans, x, axis, keepdims: _reduced(g * _prod_of_others(x, axis), axis, keepdims))
prod_p.defvjp(
    lambda g, ans, x, axis, keepdims: _spread(g, x, axis, keepdims) * _prod_of_others(x, axis),
    saves="x",
)
prod_p.defbatch(leading_axis_rule(prod_p, "axis"))


@register_function(np.prod)
def _prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
          keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:
    _reject("prod", out)
    mask = _mask(where, a)
    if mask is not None:
        a = np.where(mask, a, 1.0)
    axis = normalize_axis(axis, ndim_of(a), scalar_axis=True)
    result = ((clone(a) if isinstance(a, Tracer) else a) if not axis
              else bind(prod_p, (a,), {"axis": axis, "keepdims": bool(keepdims)}))
    return _as(result if initial is None else result * initial, dtype)


# ------------------------------------------------------------------ max, min
def _amax_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return np.max(x, axis=axis, keepdims=keepdims)


def _amin_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return np.min(x, axis=axis, keepdims=keepdims)


def _chosen_weights(ans: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    # The derivative flows to the elements equal to the extremum, split evenly among ties.
    hit = np.equal(x, _keep(ans, x, axis, keepdims)) * 1.0
    return hit / np.sum(hit, axis=axis, keepdims=True)


def _extremum(name: str, impl: Any) -> Primitive:
    p = Primitive(name, impl)
    p.defjvp(lambda g, ans, x, axis, keepdims: _reduced(
        g * _chosen_weights(ans, x, axis, keepdims), axis, keepdims))
    p.defvjp(
        lambda g, ans, x, axis, keepdims: _spread(g, x, axis, keepdims)
        * _chosen_weights(ans, x, axis, keepdims),
        saves="ans x",
    )
    p.defbatch(leading_axis_rule(p, "axis"))
    # which element is the extremum depends on the values: for every input, an output
    # element may be any of the elements it reduces
    p.defpattern(pattern_rules.reduction())
    return p


amax_p = _extremum("max", _amax_impl)
amin_p = _extremum("min", _amin_impl)


def _extremum_with(handler: Any, name: str, a: Any, axis: Any, keepdims: bool, initial: Any,
                   where: Any) -> Any:
    """np.max/np.min with initial= and where=: NumPy's value is the extremum of initial
    and the selected elements, i.e. maximum(max(where(mask, a, initial)), initial); its
    derivative is that of np.where and np.maximum (ties: np.maximum's rule)."""
    if initial is None:  # NumPy's own error: where= needs an identity
        getattr(np, name)(np.zeros(1), where=np.array([True]))
    mask = _mask(where, a)
    pick = np.maximum if name == "max" else np.minimum
    axes = normalize_axis(axis, ndim_of(a), scalar_axis=True)
    if any(shape_of(a)[i] == 0 for i in axes):  # nothing to select: initial everywhere
        shape = np.sum(np.zeros(shape_of(a)), axis=axes, keepdims=keepdims).shape
        return astype(np.zeros(shape, dtype_of(a)) + initial, dtype_of(a))
    x = a if mask is None else np.where(mask, a, initial)
    return astype(pick(handler(x, axis, keepdims=keepdims), initial), dtype_of(a))


def _extremum_handler(prim: Primitive, name: str) -> Any:
    def handler(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
                initial: Any = None, where: Any = True) -> Any:
        _reject(name, out)
        if initial is not None or where is not True:
            return _extremum_with(handler, name, a, axis, keepdims, initial, where)
        axis = normalize_axis(axis, ndim_of(a), scalar_axis=True)
        if not axis:  # nothing reduced: NumPy returns a copy, another object
            return clone(a) if isinstance(a, Tracer) else a
        return bind(prim, (a,), {"axis": axis, "keepdims": bool(keepdims)})
    return handler


for _f in (np.max, np.amax):
    register_function(_f, _extremum_handler(amax_p, "max"))
for _f in (np.min, np.amin):
    register_function(_f, _extremum_handler(amin_p, "min"))


# ------------------------------------------------------------------ cumulative
def _cumsum_impl(x: Any, axis: int) -> Any:
    return np.cumsum(x, axis=axis)


def _rev_cumsum(g: Any, axis: int) -> Any:
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


cumsum_p = Primitive("cumsum", _cumsum_impl)
# its pattern: element k of a line depends on elements 0..k of it (exact)
cumsum_p.defpattern(pattern_rules.prefix())
cumsum_p.defjvp(lambda g, ans, x, axis: bind(cumsum_p, (g,), {"axis": axis}))
cumsum_p.defvjp(lambda g, ans, x, axis: _rev_cumsum(g, axis), saves="")
cumsum_p.defbatch(leading_axis_rule(cumsum_p, "axis"))


def _cumprod_impl(x: Any, axis: int) -> Any:
    return np.cumprod(x, axis=axis)


def _cumprod_partials(x: Any, axis: int) -> Any:
    """J[..., j, k] = d ans_k / d x_j = prod_{i <= k, i != j} x_i for j <= k, else 0,
    with the cumulative axis moved last (two trailing axes j, k). Exact with zeros."""
    xl = np.moveaxis(x, axis, -1)
    n = shape_of(xl)[-1]
    eye = eye_as(n, bool, x)  # (constants in x's library: Dask, CuPy)
    # Row j: x with x_j replaced by 1, so its cumulative product skips x_j.
    rows = np.where(eye, 1.0, np.expand_dims(xl, -2))
    return np.cumprod(rows, axis=-1) * np.triu(ones_as((n, n), float, x))


def _cumprod_jvp(g: Any, ans: Any, x: Any, axis: int) -> Any:
    gl = np.moveaxis(g, axis, -1)
    out = np.sum(np.expand_dims(gl, -1) * _cumprod_partials(x, axis), axis=-2)
    return np.moveaxis(out, -1, axis)


def _cumprod_vjp(g: Any, ans: Any, x: Any, axis: int) -> Any:
    gl = np.moveaxis(g, axis, -1)
    out = np.sum(np.expand_dims(gl, -2) * _cumprod_partials(x, axis), axis=-1)
    return np.moveaxis(out, -1, axis)


cumprod_p = Primitive("cumprod", _cumprod_impl)
cumprod_p.defpattern(pattern_rules.prefix())
cumprod_p.defjvp(_cumprod_jvp)
cumprod_p.defvjp(_cumprod_vjp, saves="x")
cumprod_p.defbatch(leading_axis_rule(cumprod_p, "axis"))


def _cumulative_handler(prim: Primitive, name: str) -> Any:
    def handler(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
        _reject(name, out)
        if axis is None or (ndim_of(a) == 0 and axis in (0, -1)):
            a = np.ravel(a)  # NumPy's cumulative functions give a 0-d array one axis
            axis = 0
        (axis,) = normalize_axis(axis, ndim_of(a))
        return _as(bind(prim, (a,), {"axis": axis}), dtype)
    return handler


register_function(np.cumsum, _cumulative_handler(cumsum_p, "cumsum"))
register_function(np.cumprod, _cumulative_handler(cumprod_p, "cumprod"))


# ------------------------------------------------------------------ statistics helpers
@register_function(np.average)
def _average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False, *,
             keepdims: bool = False) -> Any:
    a = as_array(a)
    if weights is None:
        avg = _mean(a, axis, keepdims=keepdims)
        if not returned:
            return avg
        return avg, np.sum(np.ones(shape_of(a)), axis=axis, keepdims=keepdims)
    if axis is not None and ndim_of(weights) == 1 and ndim_of(a) > 1:
        ax = normalize_axis(axis, ndim_of(a))[0]
        weights = np.reshape(weights, tuple(-1 if d == ax else 1 for d in range(ndim_of(a))))
    scl = _sum(np.broadcast_to(weights, shape_of(a)) + 0.0 * a, axis, keepdims=keepdims)
    avg = _sum(a * weights, axis, keepdims=keepdims) / scl
    return (avg, scl) if returned else avg


@register_function(np.nansum)
def _nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:
    _reject("nansum", out)
    return _sum(np.where(np.isnan(a), 0.0, a), axis, dtype, keepdims=keepdims,
                initial=initial, where=where)


@register_function(np.nanmean)
def _nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
             keepdims: bool = False, *, where: Any = True) -> Any:
    _reject("nanmean", out)
    valid = ~np.isnan(a)
    mask = _mask(where, a)
    if mask is not None:
        valid = valid & mask
    return _mean(np.where(valid, a, 0.0), axis, dtype, keepdims=keepdims, where=valid)


def _weights(w: Any, name: str, n: int, integer: bool) -> Any:
    """NumPy's checks of cov's fweights/aweights (on their values); the weights themselves
    are used as given, so traced weights are differentiated too."""
    if is_complex(w):  # a float cast would drop the imaginary part silently
        raise DualrevError(f"dualrev: np.cov with complex {name} is not supported (weights "
                           "are real in cov's definition); pass their real part")
    v = np.asarray(concrete(w), dtype=float)  # under vmap: every element's at once
    if integer and not np.all(v == np.around(v)):
        raise TypeError("fweights must be integer")
    if len(shape_of(w)) > 1:
        raise RuntimeError(f"cannot handle multidimensional {name}")
    if shape_of(w)[0] != n:
        raise RuntimeError(f"incompatible numbers of samples and {name}")
    if np.any(v < 0):
        raise ValueError(f"{name} cannot be negative")
    return w if isinstance(w, Tracer) else v


@register_function(np.cov)
def _cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: Any = None,
         fweights: Any = None, aweights: Any = None, *, dtype: Any = None) -> Any:
    # NumPy's algorithm step by step, so every keyword means what it means there
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    if ndim_of(m) > 2 or (y is not None and ndim_of(y) > 2):
        raise ValueError("m or y has more than 2 dimensions")
    if dtype is None:
        # (dtypes only: float64 is among them, so a weak Python scalar changes nothing;
        # no dualrev.replay guard on the values)
        dtype = np.result_type(*[dtype_of(v) for v in (m, y) if v is not None], np.float64)
    x = astype(np.atleast_2d(m), dtype)
    if not rowvar and ndim_of(m) != 1:
        x = np.transpose(x)
    if shape_of(x)[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y2 = astype(np.atleast_2d(y), dtype)
        if not rowvar and shape_of(y2)[0] != 1:
            y2 = np.transpose(y2)
        x = np.concatenate([x, y2], axis=0)
    if ddof is None:
        ddof = 1 if bias == 0 else 0
    n = shape_of(x)[1]
    w = None
    if fweights is not None:
        w = _weights(fweights, "fweights", n, True)
    if aweights is not None:
        aweights = _weights(aweights, "aweights", n, False)
        w = aweights if w is None else w * aweights
    avg, w_sum = _average(x, axis=1, weights=w, returned=True)
    w_sum = w_sum[0]
    if w is None:
        fact = n - ddof
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * np.sum(w * aweights) / w_sum
    if np.any(concrete(fact) <= 0):  # under vmap: if any element's is
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
        fact = np.where(fact <= 0, 0.0, fact) if is_batched(fact) else 0.0
    xc = x - avg[:, None]
    xc_t = np.transpose(xc) if w is None else np.transpose(xc * w)
    c = xc @ np.conjugate(xc_t)
    # NumPy scales in place, c *= 1 / fact: in float64, cast back to c's dtype
    c = astype(c * np.true_divide(1, fact), dtype_of(c))
    return np.squeeze(c)


@register_function(np.corrcoef)
def _corrcoef(x: Any, y: Any = None, rowvar: bool = True, *, dtype: Any = None) -> Any:
    c = _cov(x, y, rowvar, dtype=dtype)
    if ndim_of(c) == 0:
        return c / c
    stddev = np.sqrt(np.real(np.diagonal(c)))
    c = c / stddev[:, None]
    c = c / stddev[None, :]
    # NumPy clips rounding excursions past +-1 (real and imaginary parts apart)
    if is_complex(c):
        return np.clip(np.real(c), -1, 1) + 1j * np.clip(np.imag(c), -1, 1)
    return np.clip(c, -1, 1)


# ------------------------------------------------------------------ nan-ignoring and
# array-API reductions, in terms of the ones above
def _given(v: Any, default: Any) -> Any:
    return default if v is np._NoValue else v


def _nan_extremum(name: str, fill: float) -> Any:
    func = getattr(np, name)
    reduce = np.max if fill < 0 else np.min

    def handler(a: Any, axis: Any = None, out: Any = None, keepdims: Any = np._NoValue,
                initial: Any = np._NoValue, where: Any = np._NoValue) -> Any:
        _reject(name, out, _given(where, True), _given(initial, None))
        a = as_array(a)
        nan = np.isnan(a)
        res = reduce(np.where(nan, fill, a), axis=axis, keepdims=bool(_given(keepdims, False)))
        empty = np.all(nan, axis=axis, keepdims=bool(_given(keepdims, False)))
        if np.any(concrete(empty)):
            warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=3)
        # an all-NaN slice gives NaN, as in NumPy; its derivative is 0
        return np.where(empty, np.nan, res)
    handler.__name__ = f"_{name}"
    handler.__doc__ = (f"``numpy.{name}`` on traced values: NaNs replaced by {fill} for "
                       f"``numpy.{reduce.__name__}``.")
    return register_function(func, handler)


_nan_extremum("nanmax", -np.inf)
_nan_extremum("nanmin", np.inf)


@register_function(np.nanprod)
def _nanprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
             keepdims: Any = np._NoValue, initial: Any = np._NoValue,
             where: Any = np._NoValue) -> Any:
    _reject("nanprod", out)
    a = as_array(a)
    return _prod(np.where(np.isnan(a), 1.0, a), axis, dtype, keepdims=bool(_given(keepdims,
                                                                                  False)),
                 initial=_given(initial, None), where=_given(where, True))


def _nan_cumulative(name: str, plain: Any, fill: float) -> Any:
    def handler(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
        _reject(name, out)
        a = as_array(a)
        return plain(np.where(np.isnan(a), fill, a), axis=axis, dtype=dtype)
    handler.__name__ = f"_{name}"
    handler.__doc__ = f"``numpy.{name}`` on traced values: NaNs replaced by {fill}."
    return register_function(getattr(np, name), handler)


_nan_cumulative("nancumsum", np.cumsum, 0.0)
_nan_cumulative("nancumprod", np.cumprod, 1.0)


def _array_api_cumulative(name: str, plain: Any, start: float) -> Any:
    def handler(x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None,
                include_initial: bool = False) -> Any:
        _reject(name, out)
        x = as_array(x)
        if axis is None:
            if ndim_of(x) > 1:
                raise ValueError("For arrays which have more than one dimension ``axis`` "
                                 "argument is required.")
            axis = 0
        if ndim_of(x) == 0:
            raise ValueError(f"{name} does not support 0-d arrays")
        res = plain(x, axis=axis, dtype=dtype)
        if include_initial:
            (ax,) = normalize_axis(axis, ndim_of(res))
            first = np.zeros(tuple(1 if d == ax else n for d, n in enumerate(shape_of(res))),
                             dtype=dtype_of(res)) + start
            res = np.concatenate([first, res], axis=ax)
        return res
    handler.__name__ = f"_{name}"
    handler.__doc__ = f"``numpy.{name}`` on traced values (``numpy.{plain.__name__}``)."
    return register_function(getattr(np, name), handler)


if hasattr(np, "cumulative_sum"):  # NumPy >= 2.1
    _array_api_cumulative("cumulative_sum", np.cumsum, 0.0)
    _array_api_cumulative("cumulative_prod", np.cumprod, 1.0)


@register_function(np.ptp)
def _ptp(a: Any, axis: Any = None, out: Any = None, keepdims: Any = np._NoValue) -> Any:
    _reject("ptp", out)
    keep = bool(_given(keepdims, False))
    return np.max(a, axis=axis, keepdims=keep) - np.min(a, axis=axis, keepdims=keep)


def _nan_variance(name: str, a: Any, axis: Any, dtype: Any, out: Any, ddof: Any,
                  keepdims: Any, where: Any, mean: Any, correction: Any) -> Any:
    _reject(name, out)
    a = as_array(a)
    valid = ~np.isnan(a)
    mask = _mask(_given(where, True), a)
    if mask is not None:
        valid = valid & mask
    if correction is not np._NoValue:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    keep = bool(_given(keepdims, False))
    real = np.finfo(dtype_of(a)).dtype
    x = np.where(valid, a, 0.0)
    count = np.sum(valid, axis=axis, keepdims=True).astype(real)
    # dtype= is the accumulator of both sums, as in NumPy (a real one drops the imaginary
    # part of a complex mean, as NumPy's does)
    centre = (np.sum(x, axis=axis, dtype=dtype, keepdims=True) / count
              if mean is np._NoValue else mean)
    squares = np.where(valid, abs2(x - centre), 0.0)
    dof = np.sum(valid, axis=axis, keepdims=keep).astype(real) - ddof
    # NumPy: NaN (with a warning) where no degrees of freedom are left
    if np.any(concrete(dof) <= 0):
        warnings.warn("Degrees of freedom <= 0 for slice.", RuntimeWarning, stacklevel=3)
    var = np.sum(squares, axis=axis, dtype=dtype, keepdims=keep) / np.where(dof > 0, dof, 1.0)
    return np.where(dof > 0, var, np.nan)


@register_function(np.nanvar)
def _nanvar(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
            keepdims: Any = np._NoValue, *, where: Any = np._NoValue, mean: Any = np._NoValue,
            correction: Any = np._NoValue) -> Any:
    return _nan_variance("nanvar", a, axis, dtype, out, ddof, keepdims, where, mean,
                         correction)


@register_function(np.nanstd)
def _nanstd(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
            keepdims: Any = np._NoValue, *, where: Any = np._NoValue, mean: Any = np._NoValue,
            correction: Any = np._NoValue) -> Any:
    var = _nan_variance("nanstd", a, axis, dtype, out, ddof, keepdims, where, mean,
                        correction)
    # a zero variance (one valid value, or equal ones) gives std 0 with derivative 0, as
    # finite differences see it, instead of sqrt'(0) * 0 = nan
    zero = without_derivatives(var) == 0
    return np.where(zero, 0.0, np.sqrt(np.where(zero, 1.0, var)))

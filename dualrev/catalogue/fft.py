"""numpy.fft: fft, ifft, fft2, ifft2, fftn, ifftn, rfft, irfft (with n/s, axis/axes,
norm).

The DFT is linear, so its JVP is the same transform of the tangent. Under the pairing
Re(ct * t) its VJP is the transpose: the DFT matrix is symmetric, so fft's VJP is fft
and ifft's is ifft; rfft's is fft of the zero-padded cotangent (its real part, the input
being real); irfft's is ifft of the cotangent, doubled on the bins that stand for two
(every bin but 0 and, for even n, n/2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import pattern_rules
from ..batching import leading_axis_rule
from ..errors import InPlaceError
from ..primitive import (
    Primitive,
    bind,
    is_complex,
    ndim_of,
    ones_as,
    register_function,
    shape_of,
)
from .indexing import getitem


def _fftn_impl(x: Any, axes: tuple[int, ...], inverse: bool, norm: Any) -> Any:
    return (np.fft.ifftn if inverse else np.fft.fftn)(x, axes=axes, norm=norm)


def _fftn_rule(g: Any, ans: Any, x: Any, axes: tuple[int, ...], inverse: bool,
               norm: Any) -> Any:
    return bind(fftn_p, (g,), {"axes": axes, "inverse": inverse, "norm": norm})


fftn_p = Primitive("fftn", _fftn_impl)
fftn_p.defjvp(_fftn_rule)
fftn_p.defvjp(_fftn_rule, saves="")
fftn_p.defbatch(leading_axis_rule(fftn_p, "axes"))
fftn_p.defpattern(pattern_rules.along("axes"))  # a DFT matrix has no zeros


def _rfftn_impl(x: Any, axes: tuple[int, ...], norm: Any) -> Any:
    return np.fft.rfftn(x, axes=axes, norm=norm)


def _rfftn_vjp(g: Any, ans: Any, x: Any, axes: tuple[int, ...], norm: Any) -> Any:
    last = axes[-1]
    n = shape_of(x)[last]
    m = shape_of(g)[last]
    widths = [(0, 0)] * ndim_of(x)  # g has the shape of one output, of x's ndim
    widths[last] = (0, n - m)
    padded = np.pad(g, widths)
    full = bind(fftn_p, (padded,), {"axes": axes, "inverse": False, "norm": norm})
    return np.real(full)


rfftn_p = Primitive("rfftn", _rfftn_impl)
rfftn_p.defjvp(lambda g, ans, x, axes, norm: bind(rfftn_p, (g,), {"axes": axes, "norm": norm}))
rfftn_p.defvjp(_rfftn_vjp, saves="x.shape")
rfftn_p.defbatch(leading_axis_rule(rfftn_p, "axes"))
rfftn_p.defpattern(pattern_rules.along("axes"))  # a DFT matrix has no zeros


def _irfftn_impl(x: Any, axes: tuple[int, ...], n: int, norm: Any) -> Any:
    s = [x.shape[a] for a in axes[:-1]] + [n]
    return np.fft.irfftn(x, s=s, axes=axes, norm=norm)


def _irfftn_jvp(g: Any, ans: Any, x: Any, axes: tuple[int, ...], n: int, norm: Any) -> Any:
    return bind(irfftn_p, (g,), {"axes": axes, "n": n, "norm": norm})


def _irfftn_vjp(g: Any, ans: Any, x: Any, axes: tuple[int, ...], n: int, norm: Any) -> Any:
    full = bind(fftn_p, (g,), {"axes": axes, "inverse": True, "norm": norm})
    m = shape_of(x)[axes[-1]]
    last = axes[-1]
    part = getitem(full, (slice(None),) * last + (slice(0, m),))
    weights = ones_as((m,), float, part) * 2.0  # (in part's library: Dask, CuPy)
    weights[0] = 1.0
    if n % 2 == 0 and m == n // 2 + 1:
        weights[-1] = 1.0
    shape = [1] * (ndim_of(x) - last)
    shape[0] = m
    return part * np.reshape(weights, tuple(shape))


irfftn_p = Primitive("irfftn", _irfftn_impl)
irfftn_p.defjvp(_irfftn_jvp)
irfftn_p.defvjp(_irfftn_vjp, saves="x.shape")
irfftn_p.defbatch(leading_axis_rule(irfftn_p, "axes"))
irfftn_p.defpattern(pattern_rules.along("axes"))  # a DFT matrix has no zeros


# ------------------------------------------------------------------ NumPy's spellings
def _no_out(out: Any) -> None:
    if out is not None:
        raise InPlaceError("numpy.fft(..., out=...)")


def _fit(x: Any, axes: tuple[int, ...], sizes: Any) -> Any:
    """x cropped or zero-padded to ``sizes`` along ``axes`` (NumPy's n= and s=)."""
    if sizes is None:
        return x
    for ax, size in zip(axes, sizes, strict=True):
        cur = shape_of(x)[ax]
        if size < cur:
            x = getitem(x, (slice(None),) * ax + (slice(0, size),))
        elif size > cur:
            widths = [(0, 0)] * ndim_of(x)
            widths[ax] = (0, size - cur)
            x = np.pad(x, widths)
    return x


def _axes(x: Any, s: Any, axes: Any, default_all: bool) -> tuple[int, ...]:
    nd = ndim_of(x)
    if axes is None:
        axes = range(nd) if (default_all and s is None) else range(nd - len(s or (0,) * nd),
                                                                   nd)
    return tuple(int(a) % nd for a in axes)


def _complex_fft(inverse: bool, default_all: bool, two_d: bool = False) -> Any:
    def handler(a: Any, s: Any = None, axes: Any = None, norm: Any = None,
                out: Any = None) -> Any:
        _no_out(out)
        if two_d and axes is None:
            axes = (-2, -1)
        ax = _axes(a, s, axes, default_all)
        return bind(fftn_p, (_fit(a, ax, s),), {"axes": ax, "inverse": inverse, "norm": norm})
    return handler


def _one_d(inverse: bool) -> Any:
    def handler(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
        _no_out(out)
        ax = (int(axis) % ndim_of(a),)
        a = _fit(a, ax, None if n is None else (n,))
        return bind(fftn_p, (a,), {"axes": ax, "inverse": inverse, "norm": norm})
    return handler


register_function(np.fft.fft, _one_d(False))
register_function(np.fft.ifft, _one_d(True))
register_function(np.fft.fftn, _complex_fft(False, True))
register_function(np.fft.ifftn, _complex_fft(True, True))
register_function(np.fft.fft2, _complex_fft(False, False, two_d=True))
register_function(np.fft.ifft2, _complex_fft(True, False, two_d=True))


@register_function(np.fft.rfft)
def _rfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    _no_out(out)
    ax = (int(axis) % ndim_of(a),)
    a = _fit(a, ax, None if n is None else (n,))
    return bind(rfftn_p, (a,), {"axes": ax, "norm": norm})


@register_function(np.fft.irfft)
def _irfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    _no_out(out)
    ax = (int(axis) % ndim_of(a),)
    m = shape_of(a)[ax[0]]
    n = 2 * (m - 1) if n is None else int(n)
    a = _fit(a, ax, (n // 2 + 1,))
    return bind(irfftn_p, (a,), {"axes": ax, "n": n, "norm": norm})


@register_function(np.fft.rfftn)
def _rfftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    _no_out(out)
    ax = _axes(a, s, axes, True)
    return bind(rfftn_p, (_fit(a, ax, s),), {"axes": ax, "norm": norm})


@register_function(np.fft.irfftn)
def _irfftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    _no_out(out)
    ax = _axes(a, s, axes, True)
    m = shape_of(a)[ax[-1]]
    n = 2 * (m - 1) if s is None else int(s[-1])
    if s is not None:
        a = _fit(a, ax[:-1], s[:-1])
    a = _fit(a, ax[-1:], (n // 2 + 1,))
    return bind(irfftn_p, (a,), {"axes": ax, "n": n, "norm": norm})


def _fft_shift(name: str, sign: int) -> Any:
    def handler(x: Any, axes: Any = None) -> Any:
        nd = ndim_of(x)
        axes = tuple(range(nd)) if axes is None else (
            (int(axes),) if isinstance(axes, (int, np.integer)) else tuple(axes))
        shift = [sign * (shape_of(x)[a] // 2) for a in axes]
        return np.roll(x, shift, axes)
    handler.__name__ = f"_{name}"
    handler.__doc__ = f"``numpy.fft.{name}`` on traced values: ``numpy.roll``."
    return register_function(getattr(np.fft, name), handler)


_fft_shift("fftshift", 1)
_fft_shift("ifftshift", -1)


@register_function(np.fft.rfft2)
def _rfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: Any = None,
           out: Any = None) -> Any:
    return _rfftn(a, s, axes, norm, out)


@register_function(np.fft.irfft2)
def _irfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: Any = None,
            out: Any = None) -> Any:
    return _irfftn(a, s, axes, norm, out)


_SWAP = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


@register_function(np.fft.hfft)
def _hfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    # NumPy's definitions: the inverse real transform of conj(a) with the scaling swapped
    _no_out(out)
    if norm not in _SWAP:
        raise ValueError(f'Invalid norm value {norm}; should be "backward", "ortho" or '
                         '"forward".')
    a = np.conjugate(a) if is_complex(a) else a
    if n is None:
        n = (shape_of(a)[axis] - 1) * 2
    return _irfft(a, n, axis, _SWAP[norm])


@register_function(np.fft.ihfft)
def _ihfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    _no_out(out)
    if norm not in _SWAP:
        raise ValueError(f'Invalid norm value {norm}; should be "backward", "ortho" or '
                         '"forward".')
    return np.conjugate(_rfft(a, n, axis, _SWAP[norm]))

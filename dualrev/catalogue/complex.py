"""Complex numbers: real, imag, conj, angle, and abs of complex values.

Convention (JAX's): tangents and cotangents of complex values are complex numbers paired
by ``Re(ct * t)`` — no conjugation. So a holomorphic function's VJP multiplies by its
derivative f'(z), exactly like its JVP, and every elementwise rule written for reals
holds for complex values. ``grad`` of a real-valued function of complex ``z`` returns
``conj(df/dz)``-style results matching JAX (``grad(|z|^2) = 2 conj(z)``); a real
argument's cotangent is the real part. Non-holomorphic functions have their own rules
here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import pattern_rules
from ..batching import is_batched, rebatch, stacked_rule, stand_in
from ..primitive import (
    Primitive,
    bind,
    concrete,
    is_complex,
    peek,
    register_function,
    register_ufunc,
)
from .elementwise import absolute_p


def _real_impl(x: Any) -> Any:
    return np.real(x)


def _imag_impl(x: Any) -> Any:
    return np.imag(x)


real_p = Primitive("real", _real_impl)
# patterns (structural sparsity detection): real, imag and angle map elements to
# elements (not ufuncs, so stated)
real_p.defpattern(pattern_rules.elementwise)
real_p.defjvp(lambda g, ans, x: np.real(g))
real_p.defvjp(lambda g, ans, x: g + 0j if is_complex(x) else g, saves="x")
real_p.defbatch(stacked_rule(real_p))

imag_p = Primitive("imag", _imag_impl)
imag_p.defpattern(pattern_rules.elementwise)
imag_p.defjvp(lambda g, ans, x: np.imag(g))
imag_p.defvjp(lambda g, ans, x: -1j * g, saves="")  # Re((-i g) t) = g Im(t)
imag_p.defbatch(stacked_rule(imag_p))

conj_p = Primitive("conjugate", np.conjugate, elementwise=True)
conj_p.defjvp(lambda g, ans, x: np.conjugate(g))
conj_p.defvjp(lambda g, ans, x: np.conjugate(g), saves="")
register_ufunc(np.conjugate, conj_p)


@register_function(np.real)
def _real(val: Any) -> Any:
    return bind(real_p, (val,), {}) if is_complex(val) else val


@register_function(np.imag)
def _imag(val: Any) -> Any:
    if is_complex(val):
        return bind(imag_p, (val,), {})
    # zeros in NumPy's dtype and type, no derivative; read from the value without a
    # dualrev.replay guard (the zeros do not depend on its values)
    return np.imag(stand_in(val) if is_batched(val) else peek(val))


def _angle_impl(z: Any) -> Any:
    return np.angle(z)


angle_p = Primitive("angle", _angle_impl)
angle_p.defpattern(pattern_rules.elementwise)
# angle = atan2(Im z, Re z): d angle = Im(conj(z) dz) / |z|^2 = Re(-i conj(z) dz) / |z|^2
angle_p.defjvp(lambda g, ans, z: np.imag(np.conjugate(z) * g) / (np.real(z) ** 2
                                                               + np.imag(z) ** 2))
angle_p.defvjp(lambda g, ans, z: g * (-1j) * np.conjugate(z) / (np.real(z) ** 2
                                                               + np.imag(z) ** 2), saves="z")
angle_p.defbatch(stacked_rule(angle_p))


@register_function(np.angle)
def _angle(z: Any, deg: bool = False) -> Any:
    if not is_complex(z):  # 0 or pi: piecewise constant, NumPy's own value and dtype
        return rebatch(np.angle(concrete(z), deg=deg), z)
    out = bind(angle_p, (z,), {})
    return out * (180 / np.pi) if deg else out


def _unit(z: Any, ans: Any) -> Any:
    """conj(z) / |z|, and 0 at z = 0 (JAX's convention, like abs'(0) = 0 for reals). The
    denominator is guarded too, so no nan reaches a higher derivative."""
    zero = np.equal(ans, 0)  # plain (batched under vmap): no derivative
    return np.where(zero, 0.0, np.conjugate(z) / np.where(zero, 1.0, ans))


def abs_jvp(g: Any, ans: Any, x: Any) -> Any:
    """|x|: sign(x) g for reals; Re(conj(z) g) / |z| for complex z (0 at z = 0)."""
    if is_complex(x):
        return np.real(_unit(x, ans) * g)
    return g * np.sign(x)


def abs_vjp(g: Any, ans: Any, x: Any) -> Any:
    if is_complex(x):
        return g * _unit(x, ans)
    return g * np.sign(x)


absolute_p.defjvp(abs_jvp)
absolute_p.defvjp(abs_vjp, saves="ans x")


@register_function(np.real_if_close)
def _real_if_close(a: Any, tol: float = 100) -> Any:
    # The choice (real part or unchanged) is made on the values, as NumPy makes it; under
    # vmap for the whole batch at once: real only if every element is close to real.
    if not is_complex(a):
        return a
    if tol > 1:
        tol = np.finfo(np.result_type(stand_in(a))).eps * tol
    if np.all(np.abs(np.imag(concrete(a))) < tol):
        return np.real(a)
    return a

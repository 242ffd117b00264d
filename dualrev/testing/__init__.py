"""Derivative checks for users' tests (and dualrev's own): JVPs and VJPs against SciPy's
finite differences (``scipy.differentiate.derivative``, an adaptive high-order scheme).

Checks work on directional derivatives: for random directions ``v`` (inputs) and ``u``
(outputs) they compare ``J v`` from the JVP with the finite difference of
``t -> f(x + t v)``, and ``u . J v`` from the VJP with the same number. That tests every
entry of the Jacobian in expectation with one finite-difference solve per direction.

Hypothesis strategies and a ready-made property live in ``dualrev.testing.strategies``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.differentiate import derivative

from ..transforms import jvp, vjp
from ..tree import tree_flatten, tree_unflatten


def _flat_out(out: Any) -> np.ndarray:
    """All leaves as one 1-D array (complex if any leaf is)."""
    leaves, _ = tree_flatten(out)
    arrays = [np.ravel(np.asarray(v)) for v in leaves]
    dtype = np.result_type(float, *arrays)
    return np.concatenate([a.astype(dtype) for a in arrays])


def _as_real(v: np.ndarray) -> np.ndarray:
    return np.concatenate([v.real, v.imag]) if np.iscomplexobj(v) else v


def numerical_jvp(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any], *,
                  initial_step: float = 1e-2, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference ``J v``: the derivative of ``t -> f(*(args + t * tangents))`` at 0,
    flattened over all output leaves. Returns ``(estimate, error_estimate)``.

    It uses ``scipy.differentiate.derivative`` (an adaptive high-order scheme), one
    function evaluation per step for all outputs together.

    Args:
        f: the function, of the positional arguments ``args`` (pytrees allowed).
        args: a tuple of ``f``'s arguments: the point.
        tangents: a tuple of directions, one per argument, of the same structure and
            shapes.
        initial_step: the initial step of the finite-difference scheme.
        rtol: the relative tolerance the scheme iterates to.
    Returns:
        ``(estimate, error_estimate)``: two 1-D arrays of shape ``(m,)``, ``m`` the total
        number of elements of ``f``'s output leaves (complex estimates for a complex
        output).
    Example:
        >>> import numpy as np
        >>> from dualrev.testing import numerical_jvp
        >>> est, err = numerical_jvp(lambda x: x ** 2, (np.array([1.0, 2.0]),), (np.ones(2),))
        >>> print(np.round(est, 6))
        [2. 4.]
    """
    leaves, td = tree_flatten(tuple(args))
    t_leaves, _ = tree_flatten(tuple(tangents))
    base = [np.asarray(x, dtype=np.result_type(float, np.asarray(x))) for x in leaves]
    dirs = [np.asarray(v, dtype=np.result_type(float, np.asarray(v))) for v in t_leaves]
    cache: dict[float, np.ndarray] = {}

    def along(t: float) -> np.ndarray:
        if t not in cache:
            moved = [b + t * d for b, d in zip(base, dirs, strict=True)]
            moved = [m[()] if m.ndim == 0 else m for m in moved]
            cache[t] = _as_real(_flat_out(f(*tree_unflatten(td, moved))))
        return cache[t]

    is_complex_out = np.iscomplexobj(_flat_out(f(*args)))
    m = along(0.0).size

    def vectorised(t: np.ndarray) -> np.ndarray:
        cols = np.asarray(t, dtype=float).reshape(m, -1)
        out = np.empty_like(cols)
        for c in range(cols.shape[1]):
            for j in range(m):
                out[j, c] = along(float(cols[j, c]))[j]
        return out.reshape(np.shape(t))

    res = derivative(vectorised, np.zeros(m), preserve_shape=True, initial_step=initial_step,
                     tolerances={"rtol": rtol, "atol": 0.0})
    df, err = np.asarray(res.df), np.asarray(res.error)
    if is_complex_out:  # back from (real parts, imaginary parts) to complex numbers
        half = m // 2
        return df[:half] + 1j * df[half:], np.hypot(err[:half], err[half:])
    return df, err


def _random_like(x: Any, rng: np.random.Generator) -> Any:
    v = rng.standard_normal(np.shape(x))
    if np.iscomplexobj(x):
        v = v + 1j * rng.standard_normal(np.shape(x))
    return v if np.ndim(x) else v[()]


def _compare(analytic: np.ndarray, numeric: np.ndarray, rtol: float, atol: float,
             what: str) -> None:
    analytic = _as_real(np.atleast_1d(np.asarray(analytic)).astype(np.result_type(
        float, np.asarray(analytic))))
    numeric = _as_real(np.atleast_1d(np.asarray(numeric)).astype(np.result_type(
        float, np.asarray(numeric))))
    err = np.abs(analytic - numeric)
    bound = atol + rtol * np.abs(numeric)
    bad = ~(err <= bound)
    if np.any(bad):
        worst = int(np.argmax(np.where(bad, err - bound, -np.inf)))
        raise AssertionError(
            f"{what}: derivative mismatch at element {worst} of {analytic.size}: "
            f"analytic {analytic[worst]!r}, numeric {numeric[worst]!r} "
            f"(|diff| {err[worst]:.3e} > atol {atol:g} + rtol {rtol:g} * |numeric|)"
        )


def check_grads(f: Callable[..., Any], args: Sequence[Any], *,
                modes: Sequence[str] = ("fwd", "rev"), order: int = 1, rtol: float = 1e-6,
                atol: float = 1e-8, seed: int = 0, initial_step: float = 1e-2) -> None:
    """Assert that dualrev's derivatives of ``f`` at ``args`` match finite differences.

    ``modes``: "fwd" checks JVPs, "rev" checks VJPs. ``order=2`` also checks the
    derivatives of the JVP and VJP functions themselves (forward-over-forward,
    forward-over-reverse), and so on. Raises AssertionError naming the worst element.

    The check is directional: for a random input direction ``v`` (and output direction
    ``u``) it compares ``J v`` from ``jvp`` with ``numerical_jvp``'s estimate, and
    ``u · J v`` from ``vjp`` with the same number, within ``atol + rtol * |numeric|``.

    Args:
        f: the function, of the positional arguments ``args`` (pytrees allowed), returning
            arrays or a pytree of them.
        args: a tuple of ``f``'s arguments, all differentiated.
        modes: which modes to check: ``"fwd"`` (JVPs) and/or ``"rev"`` (VJPs).
        order: the order of derivatives checked (``2``: also the derivatives of the JVP
            and VJP functions, and so on).
        rtol: the relative tolerance.
        atol: the absolute tolerance (scaled by the number of output elements for the VJP
            check).
        seed: the seed of the random directions.
        initial_step: the finite differences' initial step.
    Returns:
        None; a mismatch raises ``AssertionError`` naming the mode and the worst element.
    Example:
        >>> import numpy as np
        >>> from dualrev.testing import check_grads
        >>> check_grads(lambda x: np.sin(x) * x, (np.array([0.1, 0.7]),), order=2)
        >>> import dualrev as dr
        >>> @dr.custom_jvp
        ... def bad_sin(x):
        ...     return np.sin(x)
        >>> _ = bad_sin.defjvp(lambda p, t: (bad_sin(p[0]), t[0] * np.sin(p[0])))  # wrong
        >>> check_grads(bad_sin, (np.array([0.7]),))
        Traceback (most recent call last):
        ...
        AssertionError: forward mode (JVP): derivative mismatch at element 0 of 1: ...
    """
    args = tuple(args)
    rng = np.random.default_rng(seed)
    leaves, td = tree_flatten(args)
    v = tree_unflatten(td, [_random_like(x, rng) for x in leaves])
    numeric, _ = numerical_jvp(f, args, v, initial_step=initial_step)
    if "fwd" in modes:
        _, t_out = jvp(f, args, v)
        _compare(_flat_out(t_out), numeric, rtol, atol, "forward mode (JVP)")
    if "rev" in modes:
        out, pullback = vjp(f, *args)
        out_leaves, od = tree_flatten(out)
        u = tree_unflatten(od, [_random_like(o, rng) for o in out_leaves])
        ct_in = pullback(u)
        # cotangents pair with tangents as Re(ct * t), conjugation-free (JAX's convention)
        lhs = sum(float(np.real(np.sum(np.ravel(a) * np.ravel(b))))
                  for a, b in zip(tree_flatten(ct_in)[0], tree_flatten(v)[0], strict=True))
        rhs = float(np.real(np.sum(_flat_out(u) * numeric)))
        _compare(np.array([lhs]), np.array([rhs]), rtol, atol * max(1, numeric.size),
                 "reverse mode (VJP)")
    if order > 1:
        if "fwd" in modes:
            check_grads(lambda *a: jvp(f, a, v)[1], args, modes=modes, order=order - 1,
                        rtol=rtol, atol=atol, seed=seed + 1, initial_step=initial_step)
        if "rev" in modes:
            out, _ = vjp(f, *args)
            out_leaves, od = tree_flatten(out)
            u = tree_unflatten(od, [_random_like(o, rng) for o in out_leaves])
            check_grads(lambda *a: vjp(f, *a)[1](u), args, modes=modes, order=order - 1,
                        rtol=rtol, atol=atol, seed=seed + 2, initial_step=initial_step)

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

from ..errors import CheckOptionError
from ..transforms import jvp, vjp
from ..tree import tree_flatten, tree_unflatten

__all__ = ["CheckOptionError", "check_grads", "numerical_jvp"]


def _flat_out(out: Any) -> np.ndarray:
    """All leaves as one 1-D array (complex if any leaf is)."""
    leaves, _ = tree_flatten(out)
    arrays = [np.ravel(np.asarray(v)) for v in leaves]
    dtype = np.result_type(float, *arrays)
    return np.concatenate([a.astype(dtype) for a in arrays])


def _as_real(v: np.ndarray) -> np.ndarray:
    return np.concatenate([v.real, v.imag]) if np.iscomplexobj(v) else v


def numerical_jvp(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any], *,
                  initial_step: float = 1e-2, rtol: float = 1e-12,
                  eps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference ``J v``: the derivative of ``t -> f(*(args + t * tangents))`` at 0,
    flattened over all output leaves. Returns ``(estimate, error_estimate)``.

    By default it uses ``scipy.differentiate.derivative`` (an adaptive high-order scheme),
    one function evaluation per step for all outputs together. With ``eps`` it takes the
    central difference ``(f(x + eps v) - f(x - eps v)) / (2 eps)`` of that one fixed step
    instead (JAX's ``check_grads`` scheme), and estimates its error by Richardson's rule
    from the same difference at ``2 eps``.

    Args:
        f: the function, of the positional arguments ``args`` (pytrees allowed).
        args: a tuple of ``f``'s arguments: the point.
        tangents: a tuple of directions, one per argument, of the same structure and
            shapes.
        initial_step: the initial step of the adaptive scheme (ignored with ``eps``).
        rtol: the relative tolerance the adaptive scheme iterates to (ignored with
            ``eps``).
        eps: a fixed step: one central difference instead of the adaptive scheme.
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
        >>> est, _ = numerical_jvp(np.sin, (np.array([0.0]),), (np.ones(1),), eps=0.1)
        >>> bool(np.isclose(est[0], np.sin(0.1) / 0.1, rtol=1e-14))  # not cos(0) = 1
        True
    """
    if eps is not None:
        _check_eps(eps, "numerical_jvp")
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

    if eps is not None:
        h = float(eps)
        df = (along(h) - along(-h)) / (2 * h)
        err = np.abs(df - (along(2 * h) - along(-2 * h)) / (4 * h)) / 3
    else:
        def vectorised(t: np.ndarray) -> np.ndarray:
            cols = np.asarray(t, dtype=float).reshape(m, -1)
            out = np.empty_like(cols)
            for c in range(cols.shape[1]):
                for j in range(m):
                    out[j, c] = along(float(cols[j, c]))[j]
            return out.reshape(np.shape(t))

        res = derivative(vectorised, np.zeros(m), preserve_shape=True,
                         initial_step=initial_step, tolerances={"rtol": rtol, "atol": 0.0})
        df, err = np.asarray(res.df), np.asarray(res.error)
    if is_complex_out:  # back from (real parts, imaginary parts) to complex numbers
        half = m // 2
        return df[:half] + 1j * df[half:], np.hypot(err[:half], err[half:])
    return df, err


def _check_eps(eps: object, where: str) -> None:
    if (isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer))
            or not (0 < float(eps) < np.inf)):
        raise CheckOptionError(
            f"dualrev.testing.{where}: eps={eps!r} is not a finite-difference step; give a "
            "positive number (eps=1e-4 is JAX's step), or leave eps=None for the adaptive "
            "scheme.")


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
        why = ""
        if not np.isfinite(numeric[worst]):
            why = ("; the finite difference is not finite: f is not finite within a step of "
                   "the point (a domain boundary, an overflow); move the point, or give a "
                   "smaller initial_step= or eps=")
        elif not np.isfinite(analytic[worst]):
            why = "; dualrev's derivative is not finite where the finite difference is"
        raise AssertionError(
            f"{what}: derivative mismatch at element {worst} of {analytic.size}: "
            f"analytic {float(analytic[worst])!r}, numeric {float(numeric[worst])!r} "
            f"(|diff| {err[worst]:.3e} > atol {atol:g} + rtol {rtol:g} * |numeric|){why}"
        )


_MODES = ("fwd", "rev")


def _modes(modes: object) -> tuple[str, ...]:
    """``modes`` as a tuple of "fwd"/"rev", or a CheckOptionError naming the spelling."""
    given = (modes,) if isinstance(modes, str) else modes
    try:
        chosen = tuple(given)  # type: ignore[call-overload]
    except TypeError:
        chosen = (modes,)  # type: ignore[assignment]
    for m in chosen:
        if m not in _MODES:
            hint = {"forward": "fwd", "reverse": "rev", "jvp": "fwd", "vjp": "rev",
                    "fwd_rev": "fwd", "lin": None}.get(m, "") if isinstance(m, str) else ""
            more = (" ('lin', JAX's linearize mode, is not checked by dualrev: its JVPs are "
                    "those of 'fwd')" if hint is None else
                    f" (did you mean {hint!r}?)" if hint else "")
            raise CheckOptionError(
                f"dualrev.testing.check_grads: unknown mode {m!r} in modes={modes!r}{more}; "
                "modes are 'fwd' (JVPs) and 'rev' (VJPs), as in JAX: modes=('fwd', 'rev').")
    if not chosen:
        raise CheckOptionError(
            "dualrev.testing.check_grads: modes=() checks nothing; give modes=('fwd',), "
            "('rev',) or ('fwd', 'rev').")
    return chosen


def _single_precision(trees: Sequence[Any]) -> bool:
    """Whether any leaf is float32/complex64 (or narrower): the tolerances of its
    rounding then apply."""
    for tree in trees:
        for leaf in tree_flatten(tree)[0]:
            dt = np.result_type(leaf)
            if dt.kind in "fc" and np.finfo(dt).eps > 1e-10:
                return True
    return False


def _tolerances(single: bool, rtol: float | None, atol: float | None,
                eps: float | None) -> tuple[float, float]:
    """The defaults by precision and scheme (see check_grads' docstring)."""
    if single:
        d_rtol = d_atol = 2e-3
    elif eps is not None:
        d_rtol = d_atol = 1e-5
    else:
        d_rtol, d_atol = 1e-6, 1e-8
    return (d_rtol if rtol is None else float(rtol), d_atol if atol is None else float(atol))


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int = 1,
                modes: Sequence[str] = ("fwd", "rev"), atol: float | None = None,
                rtol: float | None = None, eps: float | None = None, *, seed: int = 0,
                initial_step: float | None = None) -> None:
    """Assert that dualrev's derivatives of ``f`` at ``args`` match finite differences.

    The positional order is JAX's ``jax.test_util.check_grads(f, args, order, modes,
    atol, rtol, eps)``, so ``check_grads(f, (x,), 2)`` checks second derivatives in both
    libraries. ``modes``: ``"fwd"`` checks JVPs, ``"rev"`` checks VJPs; anything else is
    refused (JAX would silently check nothing for ``modes=("forward",)``). ``order=2``
    also checks the derivatives of the JVP and VJP functions themselves (every mix:
    forward-over-forward, reverse-over-forward, forward-over-reverse, reverse-over-reverse),
    and so on. Raises AssertionError naming the mode and the worst element.

    The check is directional: for a random input direction ``v`` (and output direction
    ``u``) it compares ``J v`` from ``jvp`` with the finite difference of
    ``t -> f(x + t v)``, and ``u · J v`` from ``vjp`` with the same number (tangents and
    cotangents pair as ``Re(sum(u * w))``, without conjugation: JAX's convention), within
    ``atol + rtol * |numeric|`` per element. It also checks that the primal outputs of
    ``jvp`` and ``vjp`` equal ``f(*args)``, as JAX does.

    Differences from JAX: by default the finite differences are SciPy's adaptive scheme
    (accurate to about 1e-10), so the default tolerances are tighter than JAX's; ``eps``
    switches to JAX's single central difference of step ``eps``. ``order`` defaults to 1
    (JAX requires it).

    Args:
        f: the function, of the positional arguments ``args`` (pytrees allowed), returning
            arrays or a pytree of them.
        args: a tuple of ``f``'s arguments, all differentiated.
        order: the order of derivatives checked, at least 1.
        modes: which modes to check: ``"fwd"`` (JVPs) and/or ``"rev"`` (VJPs); a single
            string names one mode.
        atol: the absolute tolerance (scaled by the number of output elements for the VJP
            check). None: ``1e-8`` for float64/complex128 with the adaptive scheme,
            ``1e-5`` (JAX's) with ``eps``, ``2e-3`` (JAX's float32 tolerance) when an input
            or output is float32/complex64.
        rtol: the relative tolerance. None: ``1e-6``, ``1e-5`` with ``eps``, ``2e-3`` in
            single precision, as for ``atol``.
        eps: a fixed finite-difference step (JAX's default is ``1e-4``): one central
            difference ``(f(x + eps v) - f(x - eps v)) / (2 eps)`` instead of the
            adaptive scheme. Its error grows like ``eps**2``.
        seed: the seed of the random directions (``np.random.default_rng(seed)``).
        initial_step: the adaptive scheme's initial step (None: ``1e-2``); not with
            ``eps``.
    Returns:
        None; a mismatch raises ``AssertionError`` naming the mode and the worst element.
    Example:
        >>> import numpy as np
        >>> from dualrev.testing import check_grads
        >>> check_grads(lambda x: np.sin(x) * x, (np.array([0.1, 0.7]),), 2)  # order 2
        >>> check_grads(np.exp, (np.array([0.3]),), 1, ("rev",), eps=1e-4)  # JAX's scheme
        >>> import dualrev as dr
        >>> @dr.custom_jvp
        ... def bad_sin(x):
        ...     return np.sin(x)
        >>> _ = bad_sin.defjvp(lambda p, t: (bad_sin(p[0]), t[0] * np.sin(p[0])))  # wrong
        >>> check_grads(bad_sin, (np.array([0.7]),), 1)
        Traceback (most recent call last):
        ...
        AssertionError: forward mode (JVP): derivative mismatch at element 0 of 1: ...
    """
    chosen = _modes(modes)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise CheckOptionError(
            f"dualrev.testing.check_grads: order={order!r}; give a whole number of at least "
            "1 (the third positional argument, as in JAX: check_grads(f, args, 2)).")
    if eps is not None:
        _check_eps(eps, "check_grads")
        if initial_step is not None:
            raise CheckOptionError(
                "dualrev.testing.check_grads: eps= (a fixed step) and initial_step= (the "
                "adaptive scheme's first step) exclude each other; give one.")
    for name, tol in (("atol", atol), ("rtol", rtol)):
        if tol is not None and not (isinstance(tol, (int, float, np.floating, np.integer))
                                    and not isinstance(tol, bool) and 0 <= float(tol) < np.inf):
            raise CheckOptionError(
                f"dualrev.testing.check_grads: {name}={tol!r}; give a non-negative number "
                "or None (the default of the arguments' precision).")
    _check(f, tuple(args), int(order), chosen, atol, rtol, eps, seed,
           1e-2 if initial_step is None else float(initial_step), "")


def _check(f: Callable[..., Any], args: tuple[Any, ...], order: int, modes: tuple[str, ...],
           atol: float | None, rtol: float | None, eps: float | None, seed: int,
           initial_step: float, of: str) -> None:
    """check_grads' recursion; ``of`` says which derivative function ``f`` is."""
    rng = np.random.default_rng(seed)
    leaves, td = tree_flatten(args)
    v = tree_unflatten(td, [_random_like(x, rng) for x in leaves])
    value = f(*args)
    r_tol, a_tol = _tolerances(_single_precision([args, value]), rtol, atol, eps)
    numeric, _ = numerical_jvp(f, args, v, initial_step=initial_step, eps=eps)
    fwd, rev = "forward mode (JVP)" + of, "reverse mode (VJP)" + of
    if "fwd" in modes:
        y, t_out = jvp(f, args, v)
        _compare(_flat_out(y), _flat_out(value), r_tol, a_tol, fwd + " primal output")
        _compare(_flat_out(t_out), numeric, r_tol, a_tol, fwd)
    if "rev" in modes:
        out, pullback = vjp(f, *args)
        _compare(_flat_out(out), _flat_out(value), r_tol, a_tol, rev + " primal output")
        out_leaves, od = tree_flatten(out)
        u = tree_unflatten(od, [_random_like(o, rng) for o in out_leaves])
        ct_in = pullback(u)
        # cotangents pair with tangents as Re(ct * t), conjugation-free (JAX's convention)
        lhs = sum(float(np.real(np.sum(np.ravel(a) * np.ravel(b))))
                  for a, b in zip(tree_flatten(ct_in)[0], tree_flatten(v)[0], strict=True))
        rhs = float(np.real(np.sum(_flat_out(u) * numeric)))
        _compare(np.array([lhs]), np.array([rhs]), r_tol, a_tol * max(1, numeric.size), rev)
    if order > 1:
        if "fwd" in modes:
            _check(lambda *a: jvp(f, a, v)[1], args, order - 1, modes, atol, rtol, eps,
                   seed + 1, initial_step, " of the JVP function" + of)
        if "rev" in modes:
            out, _ = vjp(f, *args)
            out_leaves, od = tree_flatten(out)
            u = tree_unflatten(od, [_random_like(o, rng) for o in out_leaves])
            _check(lambda *a: vjp(f, *a)[1](u), args, order - 1, modes, atol, rtol, eps,
                   seed + 2, initial_step, " of the VJP function" + of)

"""Hypothesis strategies and a ready property for users' own derivative tests.

Requires ``hypothesis`` (dualrev's ``test`` extra); importing this module without it
raises ImportError.

    from hypothesis import given
    from dualrev.testing.strategies import arrays, assert_derivatives_consistent

    @given(arrays((3,), low=0.1, high=5.0))
    def test_my_function(x):
        assert_derivatives_consistent(my_function, x)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..transforms import jacfwd, jacrev, jvp, vjp
from ..tree import tree_flatten, tree_unflatten
from . import check_grads


def arrays(shape: Any = None, *, low: float = -3.0, high: float = 3.0,
           max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays with every element in ``[low, high]`` (a function's domain).

    ``shape`` may be a tuple or a strategy; by default shapes of up to ``max_dims``
    dimensions and ``max_side`` elements per side, scalars included.
    """
    if shape is None:
        shape = hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side)
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False,
                         allow_subnormal=False)
    return hnp.arrays(np.float64, shape, elements=elements)


def same_shape_arrays(n: int, *, low: float = -3.0, high: float = 3.0, max_dims: int = 3,
                      max_side: int = 4) -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    """``n`` float64 arrays of one random shape, elements in ``[low, high]``."""
    shapes = hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side)
    return shapes.flatmap(lambda s: st.tuples(*[arrays(s, low=low, high=high) for _ in range(n)]))


def _flat(tree: Any) -> np.ndarray:
    leaves, _ = tree_flatten(tree)
    return np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in leaves])


def assert_derivatives_consistent(f: Callable[..., Any], *args: Any, seed: int = 0,
                                  rtol: float = 1e-7, atol: float = 1e-9,
                                  finite_differences: bool = True) -> None:
    """The properties every correct derivative has, checked at ``args``:

    - the JVP is linear in the tangent: J(a u + b v) = a Ju + b Jv;
    - forward and reverse mode agree: u . (J v) from the JVP equals (J^T u) . v from the VJP;
    - jacfwd equals jacrev (for a single array argument);
    - and, with ``finite_differences``, both match SciPy's finite differences.
    """
    rng = np.random.default_rng(seed)
    leaves, _ = tree_flatten(args)

    def rand_like(tree_args: Any) -> tuple[Any, ...]:
        return tuple(rng.standard_normal(np.shape(a)) if np.ndim(a) else
                     float(rng.standard_normal()) for a in tree_args)

    u_in, v_in = rand_like(args), rand_like(args)
    a, b = rng.standard_normal(2)
    _, ju = jvp(f, args, u_in)
    _, jv = jvp(f, args, v_in)
    w_in = tuple(a * p + b * q for p, q in zip(u_in, v_in, strict=True))
    _, jw = jvp(f, args, w_in)
    np.testing.assert_allclose(_flat(jw), a * _flat(ju) + b * _flat(jv), rtol=rtol,
                               atol=atol, err_msg="the JVP is not linear in the tangent")
    out, pullback = vjp(f, *args)
    out_leaves, out_def = tree_flatten(out)
    u_out = tree_unflatten(out_def, [rng.standard_normal(np.shape(o)) if np.ndim(o) else
                                     float(rng.standard_normal()) for o in out_leaves])
    lhs = float(np.dot(_flat(u_out), _flat(jv)))
    rhs = float(np.dot(_flat(pullback(u_out)), _flat(v_in)))
    np.testing.assert_allclose(lhs, rhs, rtol=rtol, atol=atol * max(1, _flat(jv).size),
                               err_msg="forward and reverse mode disagree: u.(Jv) != (J^T u).v")
    if len(args) == 1 and len(leaves) == 1:
        np.testing.assert_allclose(jacfwd(f)(*args), jacrev(f)(*args), rtol=rtol, atol=atol,
                                   err_msg="jacfwd and jacrev disagree")
    if finite_differences:
        check_grads(f, args, modes=("fwd", "rev"), order=1, seed=seed)

"""Hypothesis property tests: random shapes and values for elementwise and reduction
primitives; linearity of the JVP in the tangent; u . (J v) equal from JVP and VJP;
forward mode equal to reverse mode."""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualrev as dr
from dualrev.testing.strategies import arrays, assert_derivatives_consistent, same_shape_arrays

# (function, low, high): an open interval inside the function's domain
UNARY = [
    (np.sin, -3, 3), (np.cos, -3, 3), (np.tanh, -3, 3), (np.exp, -3, 3), (np.log, 0.1, 5),
    (np.sqrt, 0.1, 5), (np.arctan, -3, 3), (np.log1p, -0.5, 3), (np.square, -3, 3),
    (np.arcsin, -0.9, 0.9), (np.cbrt, 0.1, 5), (np.expm1, -3, 3), (np.sinh, -2, 2),
    (np.reciprocal, 0.2, 5), (np.abs, 0.1, 3),
]
REDUCTIONS = [np.sum, np.mean, np.prod, np.max, np.min, np.var, np.std]
BINARY = [np.add, np.subtract, np.multiply, np.true_divide, np.hypot, np.arctan2,
          np.logaddexp, np.power]

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def arrays_in(lo, hi, shape):
    return arrays(np.float64, shape, min_value=lo, max_value=hi)


@st.composite
def unary_case(draw):
    f, lo, hi = draw(st.sampled_from(UNARY))
    shape = draw(shapes)
    x = draw(arrays_in(lo, hi, shape))
    u = draw(arrays_in(-1, 1, shape))
    v = draw(arrays_in(-1, 1, shape))
    return f, x, u, v


@given(unary_case(), st.floats(-2, 2), st.floats(-2, 2))
def test_jvp_is_linear_in_the_tangent(case, a, b):
    f, x, u, v = case
    _, tu = dr.jvp(f, (x,), (u,))
    _, tv = dr.jvp(f, (x,), (v,))
    _, tw = dr.jvp(f, (x,), (a * u + b * v,))
    np.testing.assert_allclose(tw, a * tu + b * tv, rtol=1e-10, atol=1e-10)


@given(unary_case())
def test_jvp_and_vjp_agree_on_u_dot_jv(case):
    f, x, u, v = case
    _, jv = dr.jvp(f, (x,), (v,))
    _, pullback = dr.vjp(f, x)
    (ju,) = pullback(u)
    np.testing.assert_allclose(np.vdot(u, jv), np.vdot(ju, v), rtol=1e-10, atol=1e-10)


@given(unary_case())
def test_elementwise_fwd_equals_rev(case):
    f, x, _, _ = case
    np.testing.assert_allclose(dr.jacfwd(f)(x), dr.jacrev(f)(x), rtol=1e-12, atol=1e-12)


@st.composite
def reduction_case(draw):
    f = draw(st.sampled_from(REDUCTIONS))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.2, 2.0),
                        unique=True))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)
                | st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple))
    keepdims = draw(st.booleans())
    return f, x, axis, keepdims


@given(reduction_case())
def test_reductions_fwd_equals_rev_and_match_numpy(case):
    f, x, axis, keepdims = case
    g = lambda a: f(a, axis=axis, keepdims=keepdims)
    group = x.size if axis is None else int(np.prod([x.shape[i] for i in np.atleast_1d(axis)]))
    assume(not (f is np.std and group == 1))  # std of one element is sqrt(0): no derivative
    jf, jr = dr.jacfwd(g)(x), dr.jacrev(g)(x)
    np.testing.assert_allclose(jf, jr, rtol=1e-11, atol=1e-12)
    out, _ = dr.jvp(g, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(out, g(x), rtol=1e-15)
    assert np.shape(jf) == np.shape(g(x)) + x.shape


@st.composite
def broadcast_case(draw):
    f = draw(st.sampled_from(BINARY))
    bshapes = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)
    s1, s2 = draw(bshapes).input_shapes
    x = draw(arrays_in(0.5, 2.0, s1))
    y = draw(arrays_in(0.5, 2.0, s2))
    return f, x, y


@given(broadcast_case())
def test_broadcasting_binary_sums_back_to_input_shape(case):
    f, x, y = case
    gx, gy = dr.grad(lambda a, b: np.sum(f(a, b)), (0, 1))(x, y)
    assert np.shape(gx) == np.shape(x) and np.shape(gy) == np.shape(y)
    for i in (0, 1):
        jf = dr.jacfwd(f, i)(x, y)
        jr = dr.jacrev(f, i)(x, y)
        np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-12)
    # The gradient of the sum is the Jacobian summed over the output axes.
    jx = dr.jacfwd(f, 0)(x, y)
    out_nd = np.ndim(f(x, y))
    np.testing.assert_allclose(gx, np.sum(jx, axis=tuple(range(out_nd))), rtol=1e-12, atol=1e-12)


@given(same_shape_arrays(2, np.float64, min_value=0.2, max_value=2.0))
def test_composite_functions_are_consistent(xy):
    x, y = xy
    f = lambda a, b: np.tanh(a * b) / (1.0 + b**2) + np.sqrt(a) * np.exp(-b)
    assert_derivatives_consistent(f, x, y, finite_differences=False)


@given(arrays(np.float64, (3,), min_value=-1.0, max_value=1.0))
def test_a_small_model_against_finite_differences(w):
    X = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.7]])
    f = lambda w: np.sum(np.logaddexp(0.0, X @ w) ** 2)
    assert_derivatives_consistent(f, w)

"""Hypothesis builds random NumPy programs from a set of operations; every program's
derivatives must agree across modes and nestings: jacfwd = jacrev, Hessians symmetric
and equal by forward-over-reverse, reverse-over-reverse and forward-over-forward, and
the JVP equal to finite differences."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import dualrev as dr
from dualrev.testing import check_grads

rng = np.random.default_rng(31)
C = rng.standard_normal((4, 4)) / 2

# each step maps a length-4 vector to a length-4 vector
STEPS = [
    ("sin", lambda v: np.sin(v)),
    ("tanh", lambda v: np.tanh(v)),
    ("gauss", lambda v: np.exp(-v * v)),
    ("square_plus", lambda v: v * v + v),
    ("matmul", lambda v: C @ v),
    ("reverse", lambda v: v[::-1]),
    ("roll", lambda v: np.roll(v, 1)),
    ("cumsum", lambda v: np.cumsum(v) / 4),
    ("outer_trace", lambda v: np.sum(np.outer(v, v), axis=0) / 4),
    ("reshape_T", lambda v: np.reshape(np.reshape(v, (2, 2)).T, (4,))),
    ("softplus", lambda v: np.logaddexp(0.0, v)),
    ("gather", lambda v: v[[0, 0, 3, 1]] * v),
    ("concat_mix", lambda v: np.concatenate([v[:2] * v[2:], v[2:] - v[:2]])),
    ("where", lambda v: np.where(v > 0, v, 0.1 * v)),
    ("normalise", lambda v: v / np.sqrt(1.0 + np.sum(v * v))),
    ("sort", lambda v: np.sort(v)),
    ("solve", lambda v: np.linalg.solve(np.eye(4) * 3 + C, v)),
]


def build(indices):
    chosen = [STEPS[i] for i in indices]

    def program(v):
        for _, step in chosen:
            v = step(v)
        return v

    program.__name__ = " -> ".join(name for name, _ in chosen)
    return program


programs = st.lists(st.integers(0, len(STEPS) - 1), min_size=1, max_size=4).map(build)
KINKED = {"where", "sort"}  # piecewise: finite differences across a kink are meaningless
smooth_programs = st.lists(
    st.sampled_from([i for i, (name, _) in enumerate(STEPS) if name not in KINKED]),
    min_size=1, max_size=4).map(build)
points = st.lists(st.floats(-1.5, 1.5), min_size=4, max_size=4).map(np.array)


@settings(max_examples=30)
@given(programs, points)
def test_modes_agree(program, x):
    jf = dr.jacfwd(program)(x)
    jr = dr.jacrev(program)(x)
    np.testing.assert_allclose(jf, jr, rtol=1e-9, atol=1e-11, err_msg=program.__name__)


@settings(max_examples=20)
@given(programs, points)
def test_hessians_agree_across_nestings(program, x):
    f = lambda v: np.sum(np.sin(program(v)))
    h1 = dr.hessian(f)(x)                      # forward over reverse
    h2 = dr.jacrev(dr.grad(f))(x)              # reverse over reverse
    h3 = dr.jacfwd(dr.jacfwd(f))(x)            # forward over forward
    np.testing.assert_allclose(h1, h2, rtol=1e-8, atol=1e-10, err_msg=program.__name__)
    np.testing.assert_allclose(h1, h3, rtol=1e-8, atol=1e-10, err_msg=program.__name__)
    np.testing.assert_allclose(h1, h1.T, rtol=1e-8, atol=1e-10, err_msg=program.__name__)


@settings(max_examples=15)
@given(smooth_programs, points)
def test_against_finite_differences(program, x):
    check_grads(program, (x,), order=2, rtol=1e-5, atol=1e-7, initial_step=1e-3)

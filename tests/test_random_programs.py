"""Hypothesis builds random NumPy programs from a set of operations; every program's
derivatives must agree across modes and nestings: jacfwd = jacrev = jacobian (non-finite
entries in the same places, and then with a NonFiniteDerivativeWarning), under vmap too,
Hessians symmetric and equal by forward-over-reverse, reverse-over-reverse and
forward-over-forward, and the JVP equal to finite differences away from kinks.

Steps map a length-4 vector to a length-4 vector: hand-written ones per family
(elementwise, reductions, shape, indexing with masks, where, tril/triu, kinks, masks
hiding a singular branch, contractions, linalg on well-conditioned matrices), and any
differentiable float64 case of the conformance spec table (the whole catalogue), fed
from the vector by a small perturbation of its sample point inside its domain and read
back by a fixed random projection. Points mix random values with exact grid values
(0, +-0.5, +-1), so ties, kinks and masked singular points occur."""

import warnings
import zlib

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.special as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dualrev as dr
from dualrev.errors import BatchedValueError, DualrevError, NonFiniteDerivativeWarning
from dualrev.testing import check_grads

rng = np.random.default_rng(31)
C = rng.standard_normal((4, 4)) / 2
MASK = np.array([True, False, True, True])
I4 = np.eye(4)


def _tt(a, b):
    return np.outer(np.tanh(a), np.tanh(b))


def _pairwise(v):
    return np.sqrt((v[:, None] - v[None, :]) ** 2)


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
    # elementwise, inside their domains
    ("log1p_sq", lambda v: np.log1p(v * v)),
    ("arctan", lambda v: np.arctan(2.0 * v)),
    ("expit_erf", lambda v: sp.expit(v) + sp.erf(v / 2)),
    ("hypot_pow", lambda v: np.hypot(v, 1.0) ** 1.5),
    ("gammaln", lambda v: sp.gammaln(v * v + 1.5)),
    ("sinc", lambda v: np.sinc(v / 2)),
    ("divide", lambda v: v / (2.0 + np.cos(v))),
    # reductions
    ("softmax", lambda v: np.exp(v - np.max(v)) / np.sum(np.exp(v - np.max(v)))),
    ("logsumexp", lambda v: v - sp.logsumexp(v)),
    ("standardise", lambda v: (v - np.mean(v)) / (np.std(v) + 1.0)),
    ("prod", lambda v: v * np.prod(v) / 4),
    ("cumprod", lambda v: np.cumprod(v / 2 + 1.0)),
    ("var_axis", lambda v: np.var(np.reshape(v, (2, 2)), axis=0).repeat(2) + v),
    # shape
    ("tile_flip", lambda v: np.tile(v, 2)[1:5] + np.flip(v)),
    ("pad_slice", lambda v: np.pad(v, 1)[:4] * 2.0 - v),
    ("stack_T", lambda v: np.stack([v, v ** 2]).T.sum(axis=1)),
    ("diag_mat", lambda v: np.diag(np.diag(v) @ C)),
    ("swap_expand", lambda v: np.squeeze(np.swapaxes(np.expand_dims(v, 0), 0, 1)) * 1.5),
    # indexing, masks
    ("mask_gather", lambda v: np.concatenate([v[MASK] ** 2, v[~MASK]])),
    ("bool_sum", lambda v: v + np.sum(v[v > 0] ** 2)),
    ("take_along", lambda v: np.take_along_axis(v, np.argsort(v), axis=0) * v),
    ("setitem", lambda v: _setitem(v)),
    # kinks (their conventions: abs'(0) = 0, ties split evenly, clip closed)
    ("abs", lambda v: np.abs(v)),
    ("relu", lambda v: np.maximum(v, 0.0)),
    ("max_pair", lambda v: np.maximum(v, v[::-1])),
    ("clip", lambda v: np.clip(v, -0.5, 0.5)),
    ("max_red", lambda v: v - np.max(v)),
    ("median", lambda v: v - np.median(v)),
    # masks hiding a singular branch (nan or inf in the branch not taken)
    ("where_sqrt", lambda v: np.where(v > 0, np.sqrt(np.abs(v)), 0.0)),
    ("where_log", lambda v: np.where(v > 0, np.log(np.abs(v)), v)),
    ("where_div", lambda v: np.where(v == 0, 1.0, np.sin(v) / np.where(v == 0, 0.0, v))),
    ("tril_dist", lambda v: np.sum(np.tril(_pairwise(v), -1), axis=0)),
    ("triu_dist", lambda v: np.sum(np.triu(_pairwise(v), 1), axis=1) + v),
    ("where_pow", lambda v: np.where(v >= 0, np.abs(v) ** 1.5, -v)),
    # contractions
    ("einsum", lambda v: np.einsum("i,ij->j", v, C)),
    ("kron", lambda v: np.kron(v[:2], v[2:])),
    ("tensordot", lambda v: np.tensordot(np.outer(v, v), C, axes=([1], [0])) @ np.ones(4) / 4),
    # linalg on well-conditioned inputs: the matrices are built from tanh(v), so their
    # condition stays bounded whatever the scale earlier steps gave v
    ("inv", lambda v: np.linalg.inv(3.0 * I4 + 0.1 * _tt(v, v)) @ v),
    ("det", lambda v: v * np.linalg.det(2.0 * I4 + 0.1 * _tt(v, C[0]))),
    ("eigvalsh", lambda v: np.linalg.eigvalsh(np.diag([1.0, 2.5, 4.0, 5.5]) + 0.1 * _tt(v, v))),
    ("svdvals", lambda v: np.linalg.svd(np.diag([4.0, 3.0, 2.0, 1.0]) + 0.1 * _tt(v, C[1]),
                                        compute_uv=False)),
    ("cholesky", lambda v: np.linalg.cholesky(3.0 * I4 + 0.2 * _tt(v, v)) @ v),
    ("qr_diag", lambda v: np.diag(np.linalg.qr(2.0 * I4 + 0.1 * _tt(v, C[2]))[1])),
    ("slogdet", lambda v: v * np.linalg.slogdet(2.0 * I4 + 0.1 * _tt(C[3], v))[1]),
    ("expm", lambda v: sla.expm(0.1 * _tt(v, C[0])) @ v),
]


def _setitem(v):
    y = v * 1.0
    y[1] = v[2] ** 2
    y[2:] += v[:2]
    return y


def build(indices):
    chosen = [STEPS[i] for i in indices]

    def program(v):
        for _, step in chosen:
            v = step(v)
        return v

    program.__name__ = " -> ".join(name for name, _ in chosen)
    return program


ORIGINAL = 17  # the first steps: the hessian test's programs (cheap and smooth enough)
programs = st.lists(st.integers(0, ORIGINAL - 1), min_size=1, max_size=4).map(build)
KINKED = {"where", "sort", "abs", "relu", "max_pair", "clip", "max_red", "median", "where_sqrt",
          "where_log", "where_div", "tril_dist", "triu_dist", "where_pow", "bool_sum",
          "take_along", "standardise"}  # piecewise (std at a constant vector has no
# derivative): finite differences across a kink are meaningless
smooth_programs = st.lists(
    st.sampled_from([i for i, (name, _) in enumerate(STEPS) if name not in KINKED]),
    min_size=1, max_size=4).map(build)
points = st.lists(st.floats(-1.5, 1.5), min_size=4, max_size=4).map(np.array)
GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)
# Exactly 0, or not within 1e-3 of it: near 0, sin(v)/v and its kin lose their
# derivative to cancellation (cos(v)/v - sin(v)/v**2), differently in each mode.
_away = st.floats(-1.5, 1.5).map(lambda t: t if abs(t) > 1e-3 else 0.0)
edgy_points = st.lists(st.one_of(st.sampled_from(GRID), _away),
                       min_size=4, max_size=4).map(np.array)


# ------------------------------------------------------------------ the whole catalogue
SLOW = ("integrate", "quad", "odeint", "solve_ivp", "so.", "dualrev.optimize", "spla.")


def _catalogue_cases():
    from tests.conformance.checks import Prepared
    from tests.conformance.specs import CASES

    out = []
    for case in CASES:
        if (case.kind != "diff" or case.dtype != "float64" or case.optional
                or any(s in case.name for s in SLOW)):
            continue
        out.append(case)
    return out, Prepared


CATALOGUE, _PREPARED = _catalogue_cases()


def catalogue_step(k):
    """Case ``k`` of the spec table as a step: its differentiable inputs are its sample
    point plus 0.02 * tanh of fixed random mixes of the vector (inside its domain: the
    samples keep more than that from domain edges and ties), its floating outputs mixed
    back into four numbers by a fixed random projection."""
    case = CATALOGUE[k]
    p = _PREPARED(case)
    if not p.diff or any(np.asarray(x).dtype.kind != "f" for x in p.leaves) or any(
            np.iscomplexobj(p.plain[i]) for i in p.diff):
        return None
    r = np.random.default_rng(zlib.crc32(case.id.encode()))
    ins = [r.standard_normal((np.size(x), 4)) for x in p.leaves]
    outs = [r.standard_normal((4, np.size(p.plain[i]))) / np.sqrt(max(np.size(p.plain[i]), 1))
            for i in p.diff]

    def step(v):
        t = np.tanh(v)
        leaves = [x + 0.02 * np.reshape(P @ t, np.shape(x)) for x, P in
                  zip(p.leaves, ins, strict=True)]
        res = p.g(*leaves)
        acc = v * 0.5
        for o, Q in zip(res, outs, strict=True):
            acc = acc + Q @ np.ravel(o)
        return acc

    return case.id, step


@st.composite
def catalogue_programs(draw):
    """A random program: hand-written steps around one or two catalogue cases."""
    parts = []
    for _ in range(draw(st.integers(1, 2))):
        parts += [STEPS[i] for i in draw(st.lists(st.integers(0, len(STEPS) - 1),
                                                  max_size=2))]
        made = catalogue_step(draw(st.integers(0, len(CATALOGUE) - 1)))
        if made is not None:
            parts.append(made)
    parts += [STEPS[i] for i in draw(st.lists(st.integers(0, len(STEPS) - 1), max_size=1))]
    if not parts:
        parts = [STEPS[0]]

    def program(v):
        for _, step in parts:
            v = step(v)
        return v

    program.__name__ = " -> ".join(name for name, _ in parts)
    return program


mixed_programs = st.lists(st.integers(0, len(STEPS) - 1), min_size=1, max_size=5).map(build)
MASKED = [i for i, (name, _) in enumerate(STEPS) if name.startswith(("where_", "tril_", "triu_"))]
# programs with a singular branch hidden by a mask somewhere: the careful replay's ground
masked_programs = st.tuples(
    st.lists(st.integers(0, len(STEPS) - 1), max_size=2), st.sampled_from(MASKED),
    st.lists(st.integers(0, len(STEPS) - 1), max_size=2),
).map(lambda t: build(t[0] + [t[1]] + t[2]))

COUNTS = {"programs": 0, "nonfinite": 0, "refused": 0, "nested": 0}


def _jacobians(program, x):
    """jacfwd, jacrev, jacobian of ``program`` at ``x``; each warns when non-finite."""
    out = {}
    for name, tr in [("jacfwd", dr.jacfwd), ("jacrev", dr.jacrev), ("jacobian", dr.jacobian)]:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                J = tr(program)(x)
            except DualrevError as e:  # a named refusal is an allowed outcome
                out[name] = e
                continue
        warned = any(w.category is NonFiniteDerivativeWarning for w in seen)
        if not np.isfinite(J).all():
            assert warned, f"{name} of {program.__name__}: a non-finite Jacobian without a word"
        out[name] = J
    return out


def assert_modes_agree(program, x):
    with np.errstate(all="ignore"):
        value = program(x)
    if not np.isfinite(value).all():
        return  # outside the program's domain
    js = _jacobians(program, x)
    COUNTS["programs"] += 1
    got = [J for J in js.values() if not isinstance(J, Exception)]
    if len(got) < len(js):
        COUNTS["refused"] += 1
    if any(not np.isfinite(J).all() for J in got):
        COUNTS["nonfinite"] += 1
    for name, J in js.items():
        if isinstance(J, Exception) or J is got[0]:
            continue
        _assert_same(J, got[0], f"{name} vs {list(js)[0]}: {program.__name__} at {x.tolist()}")


def _assert_same(J, ref, msg):
    """Equal where finite, non-finite in the same places (forward mode may sum -inf and
    inf to nan where reverse mode first sums the finite factors: both warn)."""
    np.testing.assert_array_equal(np.isfinite(J), np.isfinite(ref), err_msg=msg)
    fin = np.isfinite(ref)
    scale = max(1.0, float(np.max(np.abs(ref[fin]), initial=0.0)))
    np.testing.assert_allclose(J[fin], ref[fin], rtol=1e-8, atol=1e-9 * scale, err_msg=msg)


@settings(max_examples=150)
@given(mixed_programs, edgy_points)
def test_modes_agree(program, x):
    assert_modes_agree(program, x)


@settings(max_examples=60)
@given(masked_programs, edgy_points)
def test_modes_agree_behind_masks(program, x):
    assert_modes_agree(program, x)


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue_programs(), edgy_points)
def test_modes_agree_over_the_catalogue(program, x):
    assert_modes_agree(program, x)


@settings(max_examples=30)
@given(mixed_programs, edgy_points, edgy_points)
def test_modes_agree_under_vmap(program, x, y):
    xs = np.stack([x, y])
    with np.errstate(all="ignore"):
        if not np.isfinite(program(x)).all() or not np.isfinite(program(y)).all():
            return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteDerivativeWarning)
        loop = np.stack([dr.jacrev(program)(x), dr.jacrev(program)(y)])
        try:
            jf = dr.vmap(dr.jacfwd(program))(xs)
            jr = dr.vmap(dr.jacrev(program))(xs)
        except BatchedValueError:  # a named refusal: a boolean-mask index, a sort order
            COUNTS["refused"] += 1
            return
    COUNTS["programs"] += 1
    for J in (jf, jr):
        _assert_same(J, loop, f"vmap: {program.__name__} at {xs.tolist()}")


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


@settings(max_examples=40)
@given(mixed_programs, edgy_points)
def test_nested_modes_agree_at_kinks_and_masks(program, x):
    """Second derivatives of the whole step set at grid points: an inner transform's
    non-finite values seen from an outer one. Forward-over-reverse, reverse-over-reverse
    and reverse-then-forward agree (non-finite entries included); forward-over-forward
    may add non-finite entries where the inner jacfwd's zero basis tangent (a constant
    to the outer level) meets an infinite outer derivative, never change a finite one."""
    f = lambda v: np.sum(np.sin(program(v)))  # noqa: E731
    with np.errstate(all="ignore"):
        if not np.isfinite(f(x)):
            return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteDerivativeWarning)
        h1 = dr.hessian(f)(x)
        h2 = dr.jacrev(dr.grad(f))(x)
        h4 = dr.jacfwd(dr.grad(f))(x)
        h3 = dr.jacfwd(dr.jacfwd(f))(x)
    COUNTS["nested"] += 1
    for name, h in [("jacrev(grad)", h2), ("jacfwd(grad)", h4)]:
        _assert_same(h, h1, f"{name} vs hessian: {program.__name__} at {x.tolist()}")
    both = np.isfinite(h1) & np.isfinite(h3)
    np.testing.assert_array_equal(np.isfinite(h3), both, err_msg=program.__name__)
    np.testing.assert_allclose(h3[both], h1[both], rtol=1e-8, atol=1e-9, err_msg=program.__name__)


@settings(max_examples=15)
@given(smooth_programs, points)
def test_against_finite_differences(program, x):
    check_grads(program, (x,), order=2, rtol=1e-5, atol=1e-7, initial_step=1e-3)


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print(f"\nrandom programs: {COUNTS}")

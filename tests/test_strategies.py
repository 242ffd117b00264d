"""dualrev.testing.strategies: hypothesis's order and names, defaults that suit derivative
tests, the old spelling refused with the new one, and assert_derivatives_consistent's
keywords honoured."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualrev as dr
from dualrev.errors import CheckOptionError
from dualrev.testing import check_grads
from dualrev.testing.strategies import (
    DOMAINS,
    arrays,
    assert_derivatives_consistent,
    domain,
    pytrees,
    same_shape_arrays,
)

FLOATS = [np.float32, np.float64, np.complex64, np.complex128]
TINY = {np.dtype(t): np.finfo(t).tiny for t in FLOATS}


def _no_subnormals(x):
    a = np.abs(np.concatenate([np.ravel(x.real), np.ravel(x.imag)]) if np.iscomplexobj(x)
               else np.ravel(x))
    return bool(np.all((a == 0) | (a >= TINY[x.dtype])))


# --- the strategies' guarantees -------------------------------------------------------

@given(arrays(st.sampled_from(FLOATS)))
def test_default_elements_are_finite_normal_and_bounded(x):
    assert x.dtype in TINY and x.ndim <= 3 and all(1 <= n <= 4 for n in x.shape)
    assert np.all(np.isfinite(x)) and _no_subnormals(x)
    assert np.all(np.abs(x) <= 3.0 * (1 + 1e-6))  # modulus for complex, as documented


@given(arrays(np.float32, (3,), min_value=0.1, max_value=5.0))
def test_float32_bounds_are_rounded_inwards(x):
    # 0.1 is not a float32 number: hypothesis alone refuses it; the bound moves inside
    assert x.dtype == np.float32 and x.shape == (3,)
    assert np.all(x >= 0.1) and np.all(x <= 5.0)


@given(arrays(np.float64, 4, min_value=0.0, max_value=1.0, exclude_min=True,
              exclude_max=True))
def test_open_bounds_by_hypothesis_names(x):
    assert x.shape == (4,) and np.all((0 < x) & (x < 1))


@given(arrays(np.complex128, hnp.array_shapes(max_dims=2), min_magnitude=0.5,
              max_magnitude=2.0))
def test_complex_elements_are_bounded_in_modulus(z):
    assert z.dtype == np.complex128 and z.ndim <= 2
    assert np.all((np.abs(z) >= 0.5 * (1 - 1e-12)) & (np.abs(z) <= 2.0 * (1 + 1e-12)))


@given(arrays(np.float64, (2, 3), elements=st.sampled_from([0.5, 1.5]), unique=False))
def test_elements_is_used_as_given(x):
    assert set(np.ravel(x)) <= {0.5, 1.5}


@given(arrays(np.float64, (5,), min_value=-1.0, max_value=1.0, unique=True))
def test_unique_is_passed_to_hypothesis(x):
    assert len(set(np.ravel(x))) == 5


@given(same_shape_arrays(3, np.complex64, max_magnitude=1.0))
def test_same_shape_arrays_share_shape_and_dtype(xs):
    assert len(xs) == 3 and len({x.shape for x in xs}) == 1
    assert all(x.dtype == np.complex64 and np.all(np.abs(x) <= 1.0 + 1e-6) for x in xs)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_domains_keep_their_margin(name):
    lo, hi, open_lo, open_hi = DOMAINS[name]

    @given(domain(name, np.float64, (3,)))
    def inside(x):
        assert np.all(x >= lo + (0.1 if open_lo else 0))
        assert np.all(x <= hi - (0.1 if open_hi else 0))

    inside()


@given(domain((0.0, 1.0), margin=0))
def test_margin_zero_is_the_open_interval(x):
    assert np.all((0 < x) & (x < 1))


# --- the strategies in derivative tests ---------------------------------------------

DOMAIN_FUNCTIONS = {"positive": [np.log, np.sqrt, np.reciprocal],
                    "unit": [np.arcsin, np.arccos, np.arctanh],
                    "above_one": [np.arccosh], "negative": [lambda x: np.log(-x)],
                    "real": [np.tanh, np.exp]}


@settings(max_examples=10)
@given(st.sampled_from(sorted(DOMAIN_FUNCTIONS)).flatmap(
    lambda name: st.tuples(st.sampled_from(DOMAIN_FUNCTIONS[name]), domain(name))))
def test_functions_check_on_their_domains(case):
    f, x = case
    check_grads(f, (x,), 2)


@settings(max_examples=10)
@given(arrays(np.complex128, max_magnitude=2.0))
def test_complex_functions_check_with_jax_convention(z):
    check_grads(lambda z: np.sin(z) * z + np.conj(z) ** 2, (z,), 2)


@settings(max_examples=10)
@given(arrays(np.float32, (3,)))
def test_float32_arrays_check_at_float32_tolerances(x):
    check_grads(lambda x: np.tanh(x) * x, (x,), 1)


def _energy(tree):
    return sum(np.sum(np.sin(leaf) ** 2 * leaf) for leaf in dr.tree_flatten(tree)[0])


@settings(max_examples=10)
@given(pytrees())
def test_pytrees_of_arrays(tree):
    leaves, treedef = dr.tree_flatten(tree)
    assert 1 <= len(leaves) <= 4 and all(isinstance(v, np.ndarray) for v in leaves)
    assert dr.tree_unflatten(treedef, leaves) is not None
    check_grads(_energy, (tree,), 1)
    g = dr.grad(_energy)(tree)
    want = [2 * np.sin(v) * np.cos(v) * v + np.sin(v) ** 2 for v in leaves]
    for a, b in zip(dr.tree_flatten(g)[0], want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@settings(max_examples=10)
@given(pytrees(arrays(np.float64, (2,), min_value=0.5, max_value=2.0), max_leaves=3))
def test_assert_derivatives_consistent_takes_pytrees(tree):
    assert_derivatives_consistent(lambda t: _energy(t) + np.sum(np.log(dr.tree_flatten(t)[0][0])),
                                  tree)


@settings(max_examples=10)
@given(same_shape_arrays(2, np.float64, min_value=0.5, max_value=2.0))
def test_assert_derivatives_consistent_on_a_binary_function(xy):
    assert_derivatives_consistent(lambda x, y: np.power(x, y) * np.hypot(x, y), *xy)


def test_assert_derivatives_consistent_takes_complex_arguments():
    z = np.array([0.3 + 0.4j, -1.0 + 0.2j])
    assert_derivatives_consistent(lambda z, w: np.exp(z) * np.conj(w), z, 0.5 - 0.1j)


# --- the old spelling and other refusals ---------------------------------------------

@pytest.mark.parametrize(("call", "new"), [
    (lambda: arrays((3,), low=0.1, high=5.0), "arrays(np.float64, (3,), min_value=0.1, "
                                              "max_value=5.0)"),
    (lambda: arrays((3,)), "arrays(np.float64, (3,))"),
    (lambda: arrays(3), "arrays(np.float64, 3)"),
    (lambda: arrays(np.float64, (2, 2), low=-1.0), "arrays(np.float64, (2, 2), min_value=-1.0)"),
    (lambda: arrays(np.float32, high=2.0), "arrays(np.float32, max_value=2.0)"),
    (lambda: arrays(max_dims=2), "arrays(shape=hnp.array_shapes(max_dims=2, max_side=4))"),
    (lambda: same_shape_arrays(2, low=0.2, high=2.0),
     "same_shape_arrays(2, min_value=0.2, max_value=2.0)"),
    (lambda: same_shape_arrays(2, (3,), high=1.0),
     "same_shape_arrays(2, np.float64, (3,), max_value=1.0)"),
])
def test_the_old_spelling_names_the_new_one(call, new):
    with pytest.raises(TypeError, match="hypothesis's order and names") as info:
        call()
    assert isinstance(info.value, CheckOptionError)
    assert str(info.value).endswith("write " + new)


@given(arrays(np.float64, (3,), min_value=0.1, max_value=5.0))
def test_the_suggested_spelling_works(x):
    assert x.shape == (3,) and np.all((0.1 <= x) & (x <= 5.0))


@pytest.mark.parametrize(("call", "match"), [
    (lambda: arrays(np.int64), "has no derivatives"),
    (lambda: arrays(np.float16), "has no derivatives"),
    (lambda: arrays(bool), "has no derivatives"),
    (lambda: arrays(np.complex128, min_value=0.0), "bounded in modulus"),
    (lambda: arrays(np.complex64, exclude_max=True), "bounded in modulus"),
    (lambda: arrays(np.float64, max_magnitude=1.0), "are for complex dtypes"),
    (lambda: arrays(np.float64, min_value=2.0, max_value=1.0), "min_value <= max_value"),
    (lambda: arrays(np.float64, max_value=np.inf), "finite min_value"),
    (lambda: arrays(np.complex128, max_magnitude=-1.0), "min_magnitude <= max_magnitude"),
    (lambda: arrays(np.float64, elements=st.just(1.0), min_value=0.0), "not both"),
    (lambda: same_shape_arrays(0), "n=0"),
    (lambda: same_shape_arrays(2, np.int32), "has no derivatives"),
    (lambda: domain("pos"), "unknown domain 'pos'.*'positive'"),
    (lambda: domain("unit", np.complex128), "real intervals"),
    (lambda: domain((0.0, 0.1)), "leaves nothing"),
    (lambda: domain(3.0), "neither a name"),
    (lambda: domain("unit", margin=-1.0), "margin=-1.0"),
])
def test_refusals_say_what_to_write(call, match):
    with pytest.raises(CheckOptionError, match=match):
        call()


def test_a_drawn_dtype_is_checked_too():
    @given(arrays(st.just(np.int8), (2,)))
    def draw(x):
        raise AssertionError("unreachable: int8 is refused when drawn")

    with pytest.raises(CheckOptionError, match="has no derivatives"):
        draw()


# --- assert_derivatives_consistent: every keyword honoured ----------------------------

def _off_by(rel):
    @dr.custom_jvp
    def s(x):
        return np.sin(x)

    s.defjvp(lambda p, t: (s(p[0]), t[0] * np.cos(p[0]) * (1 + rel)))
    return s


X = np.array([0.3, -0.9, 1.4])


def test_finite_differences_catch_a_consistently_wrong_rule():
    wrong = _off_by(0.5)  # forward and reverse agree, both wrong
    assert_derivatives_consistent(wrong, X, finite_differences=False)
    with pytest.raises(AssertionError, match="derivative mismatch"):
        assert_derivatives_consistent(wrong, X)


def test_rtol_and_atol_reach_the_finite_differences():
    off = _off_by(1e-4)
    with pytest.raises(AssertionError, match="derivative mismatch"):
        assert_derivatives_consistent(off, X)
    assert_derivatives_consistent(off, X, rtol=1e-3, atol=1e-3)
    with pytest.raises(AssertionError, match="atol 1e-08"):
        assert_derivatives_consistent(off, X, rtol=1e-5)  # atol keeps its default


def test_rtol_and_atol_reach_the_identities():
    p = dr.Primitive("strategies_rev_off", np.sin, elementwise=True)
    p.defjvp(lambda g, ans, x: g * np.cos(x))
    p.defvjp(lambda g, ans, x: g * np.cos(x) * (1 + 1e-5))  # reverse mode off by 1e-5
    with pytest.raises(AssertionError, match="forward and reverse mode disagree"):
        assert_derivatives_consistent(p, X, finite_differences=False)
    assert_derivatives_consistent(p, X, finite_differences=False, rtol=1e-4, atol=1e-4)


def test_seed_chooses_the_directions():
    seen = []

    @dr.custom_jvp
    def s(x):
        return np.sin(x)

    def rule(p, t):
        seen.append(np.array(t[0], dtype=float))
        return s(p[0]), t[0] * np.cos(p[0])

    s.defjvp(rule)
    counts = []
    for seed in (3, 3, 4):
        before = len(seen)
        assert_derivatives_consistent(s, X, seed=seed, finite_differences=False)
        counts.append((before, len(seen)))
    first, again, other = (seen[a] for a, _ in counts)
    assert np.array_equal(first, again) and not np.allclose(first, other)


def test_forward_against_reverse_is_checked():
    p = dr.Primitive("strategies_rev_only", np.sin, elementwise=True)
    p.defjvp(lambda g, ans, x: g * np.cos(x))
    p.defvjp(lambda g, ans, x: g * np.cos(x) * 1.1)
    with pytest.raises(AssertionError, match="forward and reverse mode disagree"):
        assert_derivatives_consistent(p, X, finite_differences=False)

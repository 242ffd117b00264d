"""The primitive machinery: what the tape keeps, scalar fast paths, in-place sums."""

import gc
import weakref

import numpy as np
import pytest

import dualrev as dr
from dualrev import primitive
from dualrev.batching import BatchTrace
from dualrev.errors import InPlaceError, NotSavedError
from dualrev.forward import ForwardTrace
from dualrev.inplace import constant_on
from dualrev.primitive import Primitive
from dualrev.reverse import Tape
from dualrev.tracer import new_level
from tests.helpers import check_like_numpy


def _primitives():
    """Every Primitive alive: the catalogue's and any a test made."""
    return [o for o in gc.get_objects() if isinstance(o, Primitive)]


def test_every_declaration_names_only_real_arguments():
    prims = _primitives()
    assert len(prims) > 100  # the catalogue is loaded
    for p in prims:
        if p.saves is None:
            continue
        n = len(p.vjps)
        assert len(p.saves) == n, p
        for rule, (whole, shape) in zip(p.vjps, p.saves, strict=True):
            assert whole | shape <= set(range(-1, n)), p  # ans (-1) or an argument
            assert not whole & shape, p
            if rule is None:
                assert not whole | shape, p


def test_catalogue_entries_declare_what_the_tape_keeps():
    # Without a declaration the tape keeps every argument and output: correct, but a
    # catalogue entry that lost its declaration would keep intermediates alive unnoticed.
    undeclared = sorted(
        p.name for p in _primitives()
        if isinstance(p.vjps, tuple) and p.saves is None
        and any(r is not None and r.__module__.startswith("dualrev.catalogue") for r in p.vjps)
    )
    assert not undeclared


def _times(saves=None):
    """x * y whose VJP rules read y (for x) and x (for y)."""
    return Primitive("times", np.multiply).defjvp(
        lambda g, ans, x, y: g * y, lambda g, ans, x, y: x * g).defvjp(
        lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x, saves=saves)


def test_saves_resolves_names_per_rule():
    p = _times(saves=("y", "x"))
    assert p.saves == (({1}, set()), ({0}, set()))
    ans, x, y = p.keep_plan(0)  # x traced: its rule reads y only
    assert isinstance(ans, primitive.NotSaved) and isinstance(x, primitive.NotSaved) and y is True
    assert p.keep_plan((0, 1))[1:] == (True, True)  # both traced: the union
    s = Primitive("total", np.sum).defvjp(lambda g, ans, x, axis: g, saves="ans.shape x")
    assert s.saves == (({0}, {-1}),)
    assert s.keep_plan(0)[:2] == (primitive.Shaped, True)


@pytest.mark.parametrize("saves", [
    "z",                     # not an argument of the rules
    "x.values",              # only .shape narrows a name
    ("y",),                  # one entry for two rules
])
def test_saves_refuses_what_the_rules_do_not_take(saves):
    with pytest.raises(ValueError, match="saves="):
        _times(saves=saves)


def test_saves_refuses_static_parameters():
    # axis is a keyword parameter (always kept), not a positional argument
    with pytest.raises(ValueError, match="'axis'"):
        Primitive("total", np.sum).defvjp(lambda g, ans, x, axis: g, saves="x axis")
    with pytest.raises(ValueError, match="rule is None"):
        _times().defvjp(None, lambda g, ans, x, y: g * x, saves=("y", "x"))


def test_no_declaration_keeps_everything():
    times = _times()
    assert times.saves is None and times.keep_plan(0) is None
    tape = Tape(level=10**9)
    x = tape.input(np.ones(3))
    y = np.array([2.0, -3.0, 0.5])
    out = times(x, y)
    entry = tape.nodes[out._index]
    primals, ans = entry.kept, entry.out
    np.testing.assert_array_equal(primals[1], y)
    assert ans is out.primal
    np.testing.assert_array_equal(tape.backward({out._index: np.ones(3)})[0], y)


def _select(saves):
    # where(c, x, 0): a rule that would silently give zeros if c were None
    # (np.where(None, g, 0.0) selects nothing)
    return Primitive("select", lambda c, x: np.where(c, x, 0.0), elementwise=True).defvjp(
        None, lambda g, ans, c, x: np.where(c, g, 0.0), saves=saves)


def test_a_rule_reading_an_undeclared_argument_fails_loudly():
    c = np.array([True, False, True])
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(dr.grad(lambda x: np.sum(_select("c")(c, x)))(x), c * 1.0)
    with pytest.raises(NotSavedError, match="select used argument 0"):
        dr.grad(lambda x: np.sum(_select("")(c, x)))(x)
    # a plain scalar left out is refused too, not kept by luck
    with pytest.raises(NotSavedError, match="times used argument 1"):
        dr.grad(lambda x: np.sum(_times(saves=("", "x"))(x, 2.0)))(x)


def test_a_rule_reading_an_undeclared_output_fails_loudly():
    exp = Primitive("my_exp", np.exp, elementwise=True).defvjp(
        lambda g, ans, x: g * ans, saves="x")
    with pytest.raises(NotSavedError, match="my_exp used ans"):
        dr.grad(lambda x: np.sum(exp(x)))(np.ones(2))


NOT_SAVED_USES = {
    "array * v": lambda v: np.ones(2) * v, "v * 2.0": lambda v: v * 2.0,
    "2.0 - v": lambda v: 2.0 - v, "-v": lambda v: -v, "np.cos": lambda v: np.cos(v),
    "np.where": lambda v: np.where(v, 1.0, 0.0), "np.asarray": lambda v: np.asarray(v),
    "shape_of": lambda v: primitive.shape_of(v), "np.ndim": lambda v: np.ndim(v),
    ".shape": lambda v: v.shape, "bool": lambda v: bool(v), "float": lambda v: float(v),
    "==": lambda v: v == 0, "v[0]": lambda v: v[0], "np.result_type": np.result_type,
    "is_complex": lambda v: primitive.is_complex(v),
}


@pytest.mark.parametrize("use", sorted(NOT_SAVED_USES))
def test_not_saved_stand_in_raises_on_any_use(use):
    with pytest.raises(NotSavedError):
        NOT_SAVED_USES[use](primitive.NotSaved("p", 0))


def test_tape_drops_intermediates_no_rule_needs():
    refs = []

    def f(x):
        y = x * 2.0          # multiply's VJP w.r.t. x reads only the constant 2.0
        refs.append(weakref.ref(y.primal))
        z = y + 1.0          # add's VJP reads nothing
        w = np.sin(z)        # sin's reads z: z is kept, y is not
        del y
        gc.collect()
        assert refs[0]() is None, "the tape kept an intermediate no rule needs"
        return np.sum(w)

    x = np.linspace(0, 1, 1000)
    np.testing.assert_allclose(dr.grad(f)(x), 2 * np.cos(2 * x + 1), rtol=1e-14)


def test_in_place_accumulation_never_touches_shared_values():
    # The same cotangent array flows to several places (add passes it through); summing
    # into one of them must not change the others.
    def f(x):
        a = x + 0.0
        b = a + a + a          # a's cotangent is summed from three contributions
        return np.sum(b * x)

    x = np.arange(4.0)
    np.testing.assert_array_equal(dr.grad(f)(x), 6 * x)
    seed = np.ones(3)
    tape = Tape(level=10**9)
    xi = tape.input(np.ones(3))
    y = xi + xi
    tape.backward({y._index: seed})
    np.testing.assert_array_equal(seed, np.ones(3))  # the caller's seed is untouched


def test_scalar_fast_path_matches_numpy_semantics():
    with np.errstate(divide="ignore", invalid="ignore"):
        v, g = dr.value_and_grad(lambda x: x / 0.0)(1.0)
        assert v == np.inf
        v, _ = dr.value_and_grad(lambda x: (-x) ** 0.5)(2.0)
        assert np.isnan(v)  # NumPy's nan, not Python's complex root
        v, _ = dr.value_and_grad(lambda x: x ** -1.0 * 0.0 + 0.0 ** x)(-1.0)
        assert v == np.inf


@pytest.mark.parametrize("n", [3, 50])
def test_scatter_into_owned_buffer_matches_dense_rule(n):
    x = np.random.default_rng(0).standard_normal(n)
    f = lambda x: sum(x[i] * x[(i + 1) % n] for i in range(n))
    expected = np.roll(x, 1) + np.roll(x, -1)
    np.testing.assert_allclose(dr.grad(f)(x), expected, rtol=1e-14)
    # the batched (jacrev) path uses the dense rule; both must agree
    np.testing.assert_allclose(dr.jacrev(f)(x), expected, rtol=1e-14)

LIST_V, LIST_M = np.array([0.3, 0.6, 0.9]), np.array([[2.0, 0.5], [0.3, 1.5]])
LIST_ARGS = {
    "power": (lambda x: x ** [1.0, 2, 3], LIST_V),
    "arctan2": (lambda x: np.arctan2([1.0, 2, 3], x), LIST_V),
    "maximum": (lambda x: np.maximum(x, [0.5, 0.5, 0.5]), LIST_V),
    "where": (lambda x: np.where(x > 0.5, x, [5.0, 6, 7]), LIST_V),
    "rmatmul": (lambda m: [1.0, 2.0] @ m, LIST_M),
    "matmul": (lambda m: np.matmul([[1.0, 0.2], [0.1, 2.0]], m), LIST_M),
    "dot": (lambda x: np.dot(x, [1.0, 2.0, 3.0]), LIST_V),
    "tuple_operand": (lambda x: x * (1.0, 2.0, 3.0), LIST_V),
    "concatenate": (lambda x: np.concatenate([x, [1.0]]), LIST_V),
    "stack": (lambda x: np.stack([[1.0, 2, 3], x]), LIST_V),
    "einsum": (lambda m: np.einsum('ij,j->i', m, [1.0, 2.0]), LIST_M),
}


@pytest.mark.parametrize("name", sorted(LIST_ARGS))
def test_primitives_take_python_lists_as_numpy_does(name):
    # rules indexed and transposed list arguments (x ** [..], [..] @ m, solve(a, [..]))
    check_like_numpy(*LIST_ARGS[name])


ASARRAY_FAMILY = {f"numpy.{n}" for n in ("asarray", "asanyarray", "ascontiguousarray",
                                          "asfortranarray")}


def test_no_handler_ignores_a_keyword():
    # Every keyword a handler accepts is read, or has no effect on values (a reason in
    # tests/keyword_sweep.py); every **kwargs handler says what it does with them.
    from tests.keyword_sweep import NO_EFFECT, PENDING, _entries, _public_keywords, decision, sweep

    rows = sweep()
    assert len(rows) > 50  # the sweep sees the registries
    undecided = [r for r in rows if not decision(r) and r[2] != "lacks (TypeError)"]
    assert not undecided, undecided
    found = {(r[0], r[1]) for r in rows}
    # stale reasons (where this NumPy's signature can be read: NumPy 2.0's asarray family
    # has no introspectable signature, so their like= is not seen there)
    readable = {name for name, f, _ in _entries()
                if _public_keywords(f) is not None or name not in ASARRAY_FAMILY}
    stale = {k for k in set(NO_EFFECT) - found if k[0] in readable}
    assert not stale, stale
    assert not set(NO_EFFECT) & PENDING


def _sweep_cases():
    # Handlers reading (or not) their keywords in the ways the sweep's source reader
    # must tell apart; each returns nothing useful, only its body's reads matter.
    def shadowed(a, axis=None, out=None):
        return [axis for axis in a], (lambda out: out)(a)

    def through_scopes(a, axis=None, dtype=None, out=None, keep=None):
        axis += 1
        inner = lambda v=dtype: v  # a default runs in the handler's scope

        def nested():
            nonlocal keep
            keep = out
        return inner, nested, {k: axis for k in a}

    def everything(a, axis=None, **kwargs):
        return locals()

    return shadowed, through_scopes, everything


def test_keyword_sweep_reads_source_scopes():
    from tests.keyword_sweep import _handler_keywords

    shadowed, through_scopes, everything = _sweep_cases()
    assert _handler_keywords(shadowed) == (["a", "axis", "out"], ["axis", "out"], False)
    assert _handler_keywords(through_scopes) == (
        ["a", "axis", "dtype", "out", "keep"], ["keep"], False)
    assert _handler_keywords(everything) == (["a", "axis"], [], True)
    assert _handler_keywords(np.add).startswith("not a Python function")


@pytest.mark.parametrize("expr", ["M @ x", "x @ M", "M * x", "x * M", "M + x",
                                  "np.dot(M, x)", "np.linalg.solve(M, x)",
                                  "np.einsum('ij,j->i', M, x)", "np.where(M > 2, M, x)"])
@pytest.mark.parametrize("transform", ["jacfwd", "jacrev", "vmap"])
def test_a_numpy_matrix_constant_is_refused_by_name(expr, transform):
    # np.matrix's * is a matrix product (its data as an ndarray would silently make it
    # elementwise) and its results are 2-D: refused, naming np.matrix and the user's line
    M = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    f = eval(f"lambda x: {expr}", {"np": np, "M": M})
    x = np.array([[1.0, -1.0]]) if transform == "vmap" else np.array([1.0, -1.0])
    with pytest.raises(dr.DualrevError, match=r"numpy\.matrix operand .* on line \d+ of "
                       r".*np\.asarray\(M\)"):
        getattr(dr, transform)(f)(x)
    # the same with np.asarray(M) is NumPy's ndarray meaning, with its derivative
    A = np.asarray(M)
    np.testing.assert_allclose(dr.jacfwd(lambda x: A @ x)(np.ones(2)), A)


# ------------------------------------------------------------------ Trace
def test_every_trace_makes_constants_with_no_derivative_at_its_level():
    tape = Tape(new_level())
    fwd = ForwardTrace(new_level())
    batch = BatchTrace(new_level(), 3)
    try:
        assert all(isinstance(t, primitive.Trace) for t in (tape, fwd, batch))
        c = tape.constant(np.ones(2))
        x = tape.input(np.arange(2.0))
        assert tape.reaches_no_input(c._index)
        assert tape.reaches_no_input((np.sin(c) * 2.0)._index)
        assert not tape.reaches_no_input((c * x)._index)
        d = fwd.constant(np.array([1, 2]))  # an integer value: a float zero tangent
        assert d.tangent.dtype == np.float64 and not np.any(d.tangent)
        b = batch.constant(np.array([1.0, 2.0]))  # the same for every element
        np.testing.assert_array_equal(b.primal, [[1.0, 2.0]] * 3)
        assert b.shape == (2,)
    finally:
        tape.finish()
        fwd.finish()
        batch.finish()


def test_a_trace_that_makes_no_constants_refuses_a_write():
    class Bare(primitive.Trace):
        __slots__ = ()
        level = 10**9
        what = "a bare trace"

    with pytest.raises(InPlaceError, match="unknown trace"):
        constant_on(np.zeros(2), Bare())
    with pytest.raises(NotImplementedError):
        Bare().process(None, (), {})

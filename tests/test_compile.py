"""Programs compiled to Python source against the reference interpreter ``Program.run``:
the same outputs (types and bits; within one ulp where a ``math`` function stands in for
NumPy's), the same guard failing, on programs built by hand and on random ones."""

import doctest
import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import dualrev  # noqa: F401  (fills the catalogue)
from dualrev import compile as comp
from dualrev import config
from dualrev.catalogue.indexing import gather_p, scatter_p, update_p
from dualrev.catalogue.linalg import inv_p
from dualrev.catalogue.reductions import sum_p
from dualrev.catalogue.shape import reshape_p
from dualrev.compile import compile_program
from dualrev.primitive import PLAIN_CALLS, UFUNC_HANDLERS, Primitive, apply_plain
from dualrev.program import Guard, GuardFailed, Op, Program, same_value
from dualrev.staging import item_p

U = {f: UFUNC_HANDLERS[f] for f in (
    np.sin, np.cos, np.exp, np.log, np.sqrt, np.tanh, np.negative, np.square, np.fabs,
    np.absolute, np.expm1, np.log1p, np.arctan, np.sinh, np.add, np.subtract, np.multiply,
    np.true_divide, np.power, np.maximum, np.greater, np.less, np.tan, np.cosh, np.log10,
    np.log2, np.arcsinh)}


@pytest.fixture(autouse=True)
def _shortcuts_on():
    # the listings these tests read are the shortcut forms (scalar lines, out=, inline
    # forms); the agreement tests take the switch as a parameter
    with config.shortcuts(True):
        yield


def _same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    assert same_value(a, b) or (isinstance(a, np.ndarray) and a.dtype == object
                                and np.array_equal(a, b)), (a, b)


def _agree(program, runner, leaves):
    """runner.run and program.run give the same outputs or fail at the same guard."""
    try:
        want = program.run(leaves)
    except GuardFailed as e:
        with pytest.raises(GuardFailed) as got:
            runner.run(leaves)
        assert got.value.guard is e.guard
        return None
    got = runner.run(leaves)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        _same(a, b)
    return got


def test_elementwise_on_arrays_listing_and_reuse():
    x = np.array([0.25, 1.5, -2.0])
    p = Program(6, [0], {1: 3.0}, [Op(U[np.sin], (0,), {}, 2), Op(U[np.multiply], (2, 1), {}, 3),
                                     Op(U[np.exp], (3,), {}, 4), Op(U[np.add], (4, 2), {}, 5)],
                [5])
    r = compile_program(p)
    assert r.source is None
    _agree(p, r, [x])  # the first call compiles
    assert r.source is not None and "v3 = multiply(v2, 3.0)" in r.source
    # exp writes into its dying argument v3, add into v4 (v2 dies there too)
    assert r.counts["reused"] == 2 and "out=v3" in r.source
    out = _agree(p, r, [x * 2])
    assert out[0] is not x
    assert _agree(p, r, [x])[0] is not out[0]  # a fresh array per call


def test_scalar_lines_on_python_floats():
    p = Program(6, [0], {1: 1.0001, 2: 0.001}, [
        Op(U[np.sin], (0,), {}, 3), Op(U[np.multiply], (3, 1), {}, 4),
        Op(U[np.add], (4, 2), {}, 5)], [5])
    r = compile_program(p, [0.5])
    assert "math.sin(v0)" in r.source and "v4 = v3 * 1.0001" in r.source
    assert r.counts["scalar"] == 3
    for y in (0.5, -3.0, 1e-300, 0.0, -0.0):
        got, = r.run([y])
        want, = p.run([y])
        assert type(got) is type(want) is np.float64
        assert abs(got - want) <= math.ulp(want)


def test_math_falls_back_to_numpy_where_python_raises():
    # math.log(0.0) raises where NumPy gives -inf with a warning: the line falls back
    p = Program(3, [0], {}, [Op(U[np.log], (0,), {}, 1), Op(U[np.true_divide], (0, 1), {}, 2)],
                [1, 2])
    r = compile_program(p, [2.0])
    for y in (0.0, -1.0, 2.0):
        for runner in (r.run, p.run):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                runner([y])
            if y <= 0:
                assert any(issubclass(x.category, RuntimeWarning) for x in w)
        _agree(p, r, [y])
    assert r.run([0.0])[0] == -np.inf and type(r.run([0.0])[0]) is np.float64
    # float / 0.0: ZeroDivisionError in Python, NumPy's inf (dynamic path's value)
    q = Program(3, [0, 1], {}, [Op(U[np.true_divide], (0, 1), {}, 2)], [2])
    rq = compile_program(q, [1.0, 2.0])
    with np.errstate(divide="ignore"):
        _agree(q, rq, [1.0, 0.0])
        _agree(q, rq, [-1.0, -0.0])
    with np.errstate(invalid="ignore"):
        _agree(q, rq, [0.0, 0.0])
    # overflow: math.exp raises, NumPy gives inf
    e = Program(2, [0], {}, [Op(U[np.exp], (0,), {}, 1)], [1])
    re_ = compile_program(e, [1.0])
    with np.errstate(over="ignore"):
        _agree(e, re_, [1000.0])
    # a negative base to a fractional power: Python's complex is refused, NumPy's nan
    pw = Program(3, [0], {1: 0.5}, [Op(U[np.power], (0, 1), {}, 2)], [2])
    rp = compile_program(pw, [4.0])
    with np.errstate(invalid="ignore"):
        assert np.isnan(rp.run([-4.0])[0])
        _agree(pw, rp, [-4.0])
        # compiled from a call that fell back (a NumPy float), then a Python float again:
        # the type follows the values, as in the interpreter
        rn = compile_program(pw, [-4.0])
        _agree(pw, rn, [4.0])
        assert type(rn.run([4.0])[0]) is float


@pytest.mark.parametrize("ufunc", sorted(comp.MATH_FUNCTIONS, key=lambda f: f.__name__),
                         ids=lambda f: f.__name__)
def test_math_functions_within_one_ulp(ufunc):
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.uniform(-10, 10, 300), rng.uniform(-700, 700, 100),
                         rng.uniform(0, 1e-3, 100)])
    p = Program(2, [0], {}, [Op(U[ufunc], (0,), {}, 1)], [1])
    r = compile_program(p, [0.5])
    assert "math." in r.source
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in xs:
            x = float(abs(x) + 1e-300) if ufunc in (np.log, np.log10, np.log2, np.log1p) \
                else float(x)
            got, = r.run([x])
            want, = p.run([x])
            assert type(got) is type(want)
            if np.isfinite(want):
                assert abs(got - want) <= math.ulp(want), (x, got, want)
            else:
                _same(got, want)


def test_equal_guard_keeps_numpy_functions_upstream():
    # a value read exactly (float(y) on the user's line) must be computed as recorded
    p = Program(4, [0], {1: 2.0}, [Op(U[np.sin], (0,), {}, 2), Op(U[np.multiply], (2, 1), {}, 3),
                                   Guard(3, "equal", np.sin(0.3) * 2.0)], [3])
    r = compile_program(p, [0.3])
    assert "math.sin" not in r.source
    _agree(p, r, [0.3])
    _agree(p, r, [0.4])


def test_guards_fail_where_the_interpreter_fails():
    gt, mul = U[np.greater], U[np.multiply]
    steps = [Op(sum_p, (0,), {"axis": None, "keepdims": False}, 1),
             Op(gt, (1, 2), {}, 3), Guard(3, "truth", True),
             Guard(0, "shape", (3,)),
             Op(mul, (0, 0), {}, 4), Guard(4, "finite", True),
             Op(U[np.less], (1, 2), {}, 5), Guard(5, "truth", False),
             Guard(1, "equal", np.float64(6.0))]
    p = Program(6, [0], {2: 0.0}, steps, [4])
    r = compile_program(p, [np.array([1.0, 2.0, 3.0])])
    _agree(p, r, [np.array([1.0, 2.0, 3.0])])
    _agree(p, r, [np.array([-1.0, -2.0, -3.0])])        # truth
    with np.errstate(over="ignore"):
        _agree(p, r, [np.array([1e300, 2.0, 3.0])])     # finite
    _agree(p, r, [np.array([1.0, 2.0, 3.5])])           # equal
    # the first call failing a guard compiles nothing, the next compiles
    r2 = compile_program(p)
    _agree(p, r2, [np.array([-1.0, -2.0, -3.0])])
    assert r2.source is None
    _agree(p, r2, [np.array([1.0, 2.0, 3.0])])
    assert r2.source is not None
    # scalar guards (inline tests on Python floats)
    q = Program(5, [0], {1: 0.0, 2: 1.5}, [Op(gt, (0, 1), {}, 3), Guard(3, "truth", True),
                                           Op(mul, (0, 2), {}, 4), Guard(4, "finite", True),
                                           Guard(4, "equal", 3.0)], [4])
    rq = compile_program(q, [2.0])
    assert "v3 = v0 > 0.0" in rq.source
    for y in (2.0, -2.0, 1e308, 2.5):
        _agree(q, rq, [y])


def test_folding_dead_and_repeated_operations():
    c = np.array([1.0, 2.0, 3.0])
    steps = [Op(U[np.exp], (1,), {}, 2),            # constants only: folded
             Op(U[np.multiply], (0, 2), {}, 3),
             Op(U[np.cos], (0,), {}, 4),            # dead
             Op(U[np.sin], (0,), {}, 5), Op(U[np.sin], (0,), {}, 6),   # repeated
             Op(U[np.add], (5, 6), {}, 7), Op(U[np.add], (3, 7), {}, 8)]
    p = Program(9, [0], {1: c}, steps, [8])
    r = compile_program(p, [np.ones(3)])
    assert r.counts["folded"] == 1 and r.counts["dead"] == 1 and r.counts["repeated"] == 1
    assert "exp(" not in r.source and "cos(" not in r.source and r.source.count("sin(") == 1
    _agree(p, r, [np.array([0.5, -1.0, 2.0])])
    # an operation that warns is not folded: it warns on every call, as dynamically
    q = Program(3, [0], {1: 0.0}, [Op(U[np.log], (1,), {}, 2), Op(U[np.add], (0, 2), {}, 2)],
                [2])
    with np.errstate(divide="ignore"):
        rq = compile_program(q, [1.0])
    assert rq.counts["folded"] == 0
    with pytest.warns(RuntimeWarning):
        rq.run([1.0])
    # an output made of constants only is made afresh on every call
    o = Program(3, [0], {1: c}, [Op(U[np.exp], (1,), {}, 2)], [2, 0])
    ro = compile_program(o, [1.0])
    a, b = ro.run([1.0])[0], ro.run([1.0])[0]
    assert a is not b and same_value(a, np.exp(c))


def test_parameters_compared_by_value_arrays_by_identity():
    i1, i2 = np.array([0, 2]), np.array([0, 2])
    x = np.arange(4.0)
    steps = [Op(gather_p, (0,), {"idx": (i1,), "nb": 0}, 1),
             Op(gather_p, (0,), {"idx": (i2,), "nb": 0}, 2),      # another array: kept
             Op(gather_p, (0,), {"idx": (i1,), "nb": 0}, 3),      # the same array: merged
             Op(gather_p, (0,), {"idx": (slice(1, None),), "nb": 0}, 4),
             Op(gather_p, (0,), {"idx": (slice(1, None),), "nb": 0}, 5),  # equal slices
             Op(gather_p, (0,), {"idx": (slice(1, None, 1),), "nb": 0}, 6)]  # step differs
    p = Program(7, [0], {}, steps, [1, 2, 3, 4, 5, 6])
    r = compile_program(p, [x])
    assert r.counts["repeated"] == 2
    _agree(p, r, [x + 1])
    # -0.0 and 0.0, nan and nan as parameters
    assert comp._param_key(0.0) != comp._param_key(-0.0)
    assert comp._param_key(float("nan")) == comp._param_key(float("nan"))
    assert comp._param_key(True) != comp._param_key(1)


def test_no_write_into_memory_a_view_still_reads():
    x = np.array([0.1, 0.2, 0.3, 0.4])
    rev = {"idx": (slice(None, None, -1),), "nb": 0}
    steps = [Op(U[np.sin], (0,), {}, 1),
             Op(gather_p, (1,), rev, 2),             # a view of v1
             Op(U[np.exp], (1,), {}, 3),             # v1's last use, but v2 lives on
             Op(U[np.add], (2, 3), {}, 4),
             Op(reshape_p, (4,), {"shape": (2, 2)}, 5),   # a view of v4 ...
             Op(U[np.cos], (4,), {}, 6)]             # ... which is an output
    p = Program(7, [0], {}, steps, [5, 6])
    r = compile_program(p, [x])
    assert "out=v1" not in r.source and "out=v4" not in r.source
    for k in range(3):
        _agree(p, r, [x * k])


def test_merged_operations_share_their_views():
    # b repeats a (merged into it); u is a view of b, so of a: multiply must not write
    # into a, which dies there, while u is read later (found by conform's generated
    # programs: a Hessian of |x| twice)
    x = np.array([0.5, -1.0, 2.0])
    tail = {"idx": (slice(1, None),), "nb": 0}
    steps = [Op(U[np.absolute], (0,), {}, 1), Op(U[np.absolute], (0,), {}, 2),
             Op(gather_p, (2,), tail, 3), Op(U[np.multiply], (1, 4), {}, 5),
             Op(gather_p, (5,), tail, 6), Op(U[np.add], (3, 6), {}, 7)]
    p = Program(8, [0], {4: 3.0}, steps, [7])
    r = compile_program(p, [x])
    assert r.counts["repeated"] == 1 and "out=v1" not in r.source
    _agree(p, r, [x])
    _agree(p, r, [-x])


def test_no_write_into_inputs_or_constants():
    c = np.array([1.0, 2.0])
    p = Program(4, [0], {1: c}, [Op(U[np.add], (0, 1), {}, 2), Op(U[np.sin], (0,), {}, 3)],
                [3, 2])
    x = np.array([0.5, 0.25])
    keep = x.copy()
    r = compile_program(p, [x])
    r.run([x])
    assert "out=" not in r.source and same_value(x, keep)
    assert same_value(c, np.array([1.0, 2.0]))


def test_writes_in_place_are_neither_folded_nor_merged():
    # v2 and v3 are both x * 1; v3 is then written in place: merging v3 into v2 would
    # write into v2 as well
    x = np.array([1.0, 2.0, 3.0])
    w = {"idx": (0,), "nb": 0, "inplace": True}
    mul = U[np.multiply]
    steps = [Op(mul, (0, 1), {}, 2), Op(mul, (0, 1), {}, 3), Op(update_p, (4, 3), w, 5)]
    p = Program(6, [0, 4], {1: 1.0}, steps, [2, 5])
    r = compile_program(p, [x, 9.0])
    assert r.counts["repeated"] == 0
    got = _agree(p, r, [x, -1.0])
    assert got[0][0] == 1.0 and got[1][0] == -1.0
    # a constant buffer written in place, read before the write: folding it would share
    # one buffer between calls, and the second call would read the first one's write
    z = np.zeros(3)
    steps = [Op(mul, (1, 2), {}, 3), Op(U[np.add], (3, 5), {}, 6), Op(update_p, (0, 3), w, 4),
             Op(mul, (4, 2), {}, 7)]
    q = Program(8, [0, 5], {1: z, 2: 1.0}, steps, [6, 7])
    rq = compile_program(q, [5.0, x])
    assert rq.counts["folded"] == 0
    for v in (7.0, 8.0):
        got = _agree(q, rq, [v, x])
        assert same_value(got[0], x) and got[1][0] == v
    assert same_value(z, np.zeros(3))


def test_shortcuts_off_compiles_numpy_calls():
    p = Program(3, [0], {1: 2.0}, [Op(U[np.multiply], (0, 1), {}, 2)], [2])
    with config.shortcuts(False):
        r = compile_program(p, [3.0])
        assert "multiply(v0, 2.0)" in r.source
        _agree(p, r, [3.0])


def test_runner_counts_and_inputs():
    p = Program(2, [0], {}, [Op(U[np.sin], (0,), {}, 1)], [1])
    r = compile_program(p)
    assert "not yet compiled" in repr(r)
    with pytest.raises(ValueError):
        r.run([1.0, 2.0])
    r([1.0])
    assert "compiled" in repr(r)
    with pytest.raises(ValueError):
        r.run([1.0, 2.0])


def test_scatter_accumulations_written_in_place():
    # g = scatter(u, [1:]) + scatter(w, [0]) + scatter(w2, [:2]): the backward pass of
    # indexing; the adds become in-place writes into the first scatter's buffer
    def sc(v, idx, out):
        return Op(scatter_p, (v,), {"idx": idx, "nb": 0, "shape": (3,)}, out)
    add = U[np.add]
    steps = [Op(U[np.sin], (0,), {}, 3), sc(3, (slice(1, None),), 4),
             Op(U[np.multiply], (1, 2), {}, 5), sc(5, (0,), 6), Op(add, (4, 6), {}, 7),
             sc(1, (2,), 8), Op(add, (8, 7), {}, 9)]
    p = Program(10, [0, 1, 2], {}, steps, [9])
    leaves = [np.array([0.5, 1.0]), 2.0, 3.0]
    r = compile_program(p, leaves)
    assert r.counts["accumulated"] == 2 and "] += v5" in r.source
    _agree(p, r, leaves)
    _agree(p, r, [np.array([-0.5, 2.0]), np.float64(1.5), -3.0])
    # the one difference: a -0.0 outside the written region stays -0.0 (an explicit
    # 0.0 added makes it +0.0), as the dynamic backward pass's accumulation leaves it
    got, = r.run([np.array([-0.0, 1.0]), 0.0, 5.0])
    want, = p.run([np.array([-0.0, 1.0]), 0.0, 5.0])
    assert np.array_equal(got, want) and np.signbit(got[1]) and not np.signbit(want[1])
    # not when the scatter's buffer is read again, or the other operand is an input
    q = Program(6, [0, 1], {}, [sc(0, (slice(1, None),), 2), Op(add, (1, 2), {}, 3),
                                Op(add, (2, 3), {}, 4)], [4])
    rq = compile_program(q, [np.array([1.0, 2.0]), np.ones(3)])
    assert rq.counts["accumulated"] == 0
    _agree(q, rq, [np.array([1.5, 2.0]), np.ones(3)])
    # the dynamic transform and the replay agree bit for bit on the loop that motivated it
    def loop(x):
        s = 0.0
        for i in range(len(x) - 1):
            s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
        return s
    g = dualrev.replay(dualrev.grad(loop))
    x = np.random.default_rng(5).uniform(-1, 1, 8)
    g(x)
    for k in (1.0, 0.5, -2.0):
        _same(g(x * k), dualrev.grad(loop)(x * k))
    assert g.programs and any("+=" in (v.run.source or "")
                              for vs in g._cache.values() for v in vs)


# ---------------------------------------------------------------------------- random programs
_UNARY = [np.sin, np.cos, np.exp, np.log, np.sqrt, np.tanh, np.negative, np.square, np.fabs,
          np.absolute, np.expm1, np.arctan, np.sinh, np.tan]
_BINARY = [np.add, np.subtract, np.multiply, np.true_divide, np.power, np.maximum]


@st.composite
def programs(draw):
    """A random straight-line program on one shape (Python floats, NumPy floats or arrays),
    with views, reductions, guards on comparisons and values, and the inputs to run it on:
    the recording's, then others (whose guards may fail)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["float", "float64", "0d", "1d", "2d"]))
    shape = {"1d": (4,), "2d": (2, 3)}.get(kind, ())

    def value():
        v = rng.uniform(-2, 2, shape)
        return {"float": float, "float64": np.float64}.get(kind, np.asarray)(
            v if shape else float(v))

    n_in = draw(st.integers(1, 3))
    vals = [value() for _ in range(n_in)]  # the recording's values, by slot
    consts = {}
    for _ in range(draw(st.integers(0, 2))):
        consts[len(vals)] = value() if draw(st.booleans()) else float(rng.uniform(-2, 2))
        vals.append(consts[len(vals)])
    steps = []

    def add(op):
        vals.append(apply_plain(op.prim, [vals[a] for a in op.args], op.params))
        steps.append(op)
        return op.out

    pool = list(range(len(vals)))
    for _ in range(draw(st.integers(1, 12))):
        choice = draw(st.sampled_from(["unary", "binary", "binary", "view", "sum", "guard",
                                       "equal", "scatter", "repeat"]))
        slot = len(vals)
        if choice == "repeat":  # an operation done again (merged by the compiler)
            ops = [op for op in steps if type(op) is Op and op.out in pool]
            if not ops:
                continue
            op = draw(st.sampled_from(ops))
            pool.append(add(Op(op.prim, op.args, op.params, slot)))
        elif choice == "unary":
            pool.append(add(Op(U[draw(st.sampled_from(_UNARY))],
                               (draw(st.sampled_from(pool)),), {}, slot)))
        elif choice == "binary":
            pool.append(add(Op(U[draw(st.sampled_from(_BINARY))],
                               (draw(st.sampled_from(pool)), draw(st.sampled_from(pool))),
                               {}, slot)))
        elif choice == "view":
            shaped = [a for a in pool if np.shape(vals[a]) == shape and shape]
            if not shaped:
                continue
            a = draw(st.sampled_from(shaped))
            if draw(st.booleans()):
                pool.append(add(Op(gather_p, (a,), {"idx": (slice(None, None, -1),), "nb": 0},
                                   slot)))
            else:
                pool.append(add(Op(reshape_p, (a,), {"shape": shape}, slot)))
        elif choice == "scatter":  # the backward pass of x[idx]: then added up
            if not shape:
                continue
            a = draw(st.sampled_from(pool))
            idx = (slice(None, None, -1),) if np.shape(vals[a]) == shape else (0,) * len(shape)
            pool.append(add(Op(scatter_p, (a,), {"idx": idx, "nb": 0, "shape": shape}, slot)))
        else:
            s = add(Op(sum_p, (draw(st.sampled_from(pool)),), {"axis": None,
                                                                "keepdims": False}, slot))
            if choice == "guard":  # an if on a comparison
                cmp = draw(st.sampled_from([np.greater, np.less]))
                s = add(Op(U[cmp], (s, draw(st.sampled_from(pool))), {}, s + 1))
                try:
                    steps.append(Guard(s, "truth", bool(vals[s])))
                except ValueError:  # an array's truth: no guard
                    pass
            elif choice == "equal":  # float(value) on the user's line
                steps.append(Guard(s, "equal", vals[s]))
            else:
                pool.append(s)
    outputs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    program = Program(len(vals), range(n_in), consts, steps, outputs)
    others = [[value() for _ in range(n_in)] for _ in range(3)]
    return program, vals[:n_in], others


def _check_random(program, leaves, others):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = compile_program(program, leaves)
        _agree(program, r, leaves)
        for other in others:
            _agree(program, r, other)
        _agree(program, r, leaves)


@pytest.mark.parametrize("fast", [True, False], ids=["shortcuts", "no-shortcuts"])
@settings(max_examples=150)
@given(case=programs())
def test_random_programs_bit_for_bit(fast, case):
    program, leaves, others = case
    # with NumPy's functions everywhere (no math stand-ins) every bit agrees
    saved = dict(comp.MATH_FUNCTIONS)
    comp.MATH_FUNCTIONS.clear()
    try:
        with config.shortcuts(fast):
            # the generator computed its values (and so its equal guards) with the
            # shortcuts on: a Python-float operation rounds through math there and through
            # NumPy without them, so an equal guard may not hold for the recording's own
            # leaves under the other setting -- not a program the recording would make
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    program.run(leaves)
            except GuardFailed:
                assume(False)
            _check_random(program, leaves, others)
    finally:
        comp.MATH_FUNCTIONS.update(saved)


@settings(max_examples=150)
@given(programs())
def test_random_programs_with_math(case):
    program, leaves, others = case
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = compile_program(program, leaves)
        for ls in [leaves, *others]:
            try:
                want = program.run(ls)
            except GuardFailed:
                # a guard on a value computed with math can only flip at a tie: the same
                # guard fails (or, vanishingly rarely, a later one)
                with pytest.raises(GuardFailed):
                    r.run(ls)
                continue
            got = r.run(ls)
            for a, b in zip(got, want, strict=True):
                assert type(a) is type(b)
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-300, equal_nan=True)


# ---------------------------------------------------------------------------- real recordings
def _rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _loop(y):
    for _ in range(20):
        y = np.sin(y) * 1.0001 + 0.001
    return y


_A = np.random.default_rng(3).standard_normal((4, 4))
_X = np.random.default_rng(4).standard_normal((6, 3))


def _mlp(w):
    W1 = np.reshape(w[:6], (3, 2))
    r = np.tanh(_X @ W1) @ w[6:] - 1.0
    return np.mean(r * r)


def _branchy(x):
    s = np.sum(x)
    return np.sum(np.exp(x)) if s > 0 else np.sum(x ** 3)


RECORDED = {
    "grad rosen": (lambda: dualrev.grad(_rosen), lambda r: r.uniform(-1, 1, 6)),
    "value_and_grad rosen": (lambda: dualrev.value_and_grad(_rosen), lambda r: r.uniform(-1, 1, 5)),
    "grad scalar loop": (lambda: dualrev.grad(_loop), lambda r: float(r.uniform(-1, 1))),
    "hessian mlp": (lambda: dualrev.hessian(_mlp), lambda r: r.standard_normal(8)),
    "jacobian tanh": (lambda: dualrev.jacobian(lambda x: np.tanh(_A @ x)),
                      lambda r: r.standard_normal(4)),
    "jacfwd tanh": (lambda: dualrev.jacfwd(lambda x: np.tanh(_A @ x)),
                    lambda r: r.standard_normal(4)),
    "vmap grad": (lambda: dualrev.vmap(dualrev.grad(lambda x: np.sum(np.sin(x) * x))),
                  lambda r: r.standard_normal((3, 4))),
    "grad branchy": (lambda: dualrev.grad(_branchy), lambda r: r.standard_normal(5)),
}


@pytest.mark.parametrize("fast", [True, False], ids=["shortcuts", "no-shortcuts"])
@pytest.mark.parametrize("name", list(RECORDED))
def test_recorded_programs(name, fast, _shortcuts_on):
    """Programs dr.replay records from real transforms: compiled == Program.run bit for
    bit (NumPy's functions everywhere), and the replay == the dynamic transform."""
    with config.shortcuts(fast):
        _check_recorded(name)


def _check_recorded(name):
    make, draw = RECORDED[name]
    rng = np.random.default_rng(11)
    replayed = dualrev.replay(make())
    for _ in range(4):
        x = draw(rng)
        got = replayed(x)
        want = make()(x)
        for a, b in zip(np.atleast_1d(got) if not isinstance(got, tuple) else got,
                        np.atleast_1d(want) if not isinstance(want, tuple) else want,
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert replayed.stats.replays >= 1
    saved = dict(comp.MATH_FUNCTIONS)
    comp.MATH_FUNCTIONS.clear()
    try:
        for program in replayed.programs:
            runner = compile_program(program)
            for _ in range(3):
                _agree(program, runner, [draw(rng)])
    finally:
        comp.MATH_FUNCTIONS.update(saved)


def test_docstring_examples():
    assert doctest.testmod(comp).failed == 0


def test_long_programs_keep_the_interpreter(monkeypatch):
    p = Program(3, [0], {1: 2.0}, [Op(U[np.multiply], (0, 1), {}, 2)], [2])
    monkeypatch.setattr(comp, "COMPILE_MAX_STEPS", 0)
    r = compile_program(p, [3.0])
    assert r.source is None and r.counts == {"interpreted": 1}
    _agree(p, r, [4.0])


def test_arrays_taken_out_of_tuples_share_memory():
    # T = (x, 1.0) made by an opaque primitive, y = T[0] is x itself: x's buffer is not
    # written while y is read later
    pair = Primitive("pair", lambda x: (x, 1.0))
    steps = [Op(U[np.sin], (0,), {}, 1), Op(pair, (1,), {}, 2),
             Op(item_p, (2,), {"i": 0}, 3), Op(U[np.exp], (1,), {}, 4),
             Op(U[np.add], (3, 4), {}, 5)]
    p = Program(6, [0], {}, steps, [5])
    r = compile_program(p, [np.array([0.1, 0.2])])
    assert "out=v1" not in r.source
    _agree(p, r, [np.array([0.3, -0.2])])


def test_plain_calls_run_as_often_as_recorded():
    # a plain function on recorded values (call_plain) may read state: never merged
    calls = []

    def probe(x):
        calls.append(1)
        return x * 2.0

    prim = PLAIN_CALLS[probe] = Primitive("plain:probe", probe, nondiff=True)
    try:
        p = Program(3, [0], {}, [Op(prim, (0,), {}, 1), Op(prim, (0,), {}, 2)], [1, 2])
        r = compile_program(p, [np.array([1.0])])
        del calls[:]
        r.run([np.array([2.0])])
        assert len(calls) == 2 and r.counts["repeated"] == 0
    finally:
        del PLAIN_CALLS[probe]


def test_an_operation_that_raises_raises_as_interpreted():
    # a singular matrix: inv raises LinAlgError before the guard after it, in both
    steps = [Op(inv_p, (0,), {}, 1), Op(sum_p, (1,), {"axis": None, "keepdims": False}, 2),
             Op(U[np.greater], (2, 3), {}, 4), Guard(4, "truth", True)]
    p = Program(5, [0], {3: -1e300}, steps, [1])
    r = compile_program(p, [np.eye(2)])
    _agree(p, r, [2 * np.eye(2)])
    for runner in (p.run, r.run):
        with pytest.raises(np.linalg.LinAlgError):
            runner([np.ones((2, 2))])

"""Shape functions: each JVP/VJP against finite differences and forward against reverse."""

import inspect
import re

import numpy as np
import pytest

import dualrev as dr
from dualrev.testing import check_grads
from tests.helpers import NUMPY_2, check_all, check_empty, check_like_numpy

rng = np.random.default_rng(2)
A = rng.standard_normal((2, 3, 4))
M = rng.standard_normal((3, 4))
V = rng.standard_normal(5)

CASES = {
    "reshape": (lambda x: np.reshape(x, (4, 6)), A),
    "reshape_neg": (lambda x: x.reshape(3, -1), A),
    "reshape_tuple": (lambda x: x.reshape((6, 4)), A),
    "ravel": (np.ravel, A),
    "flatten": (lambda x: x.flatten(), A),
    "transpose": (np.transpose, A),
    "transpose_axes": (lambda x: np.transpose(x, (1, 2, 0)), A),
    "T": (lambda x: x.T, M),
    "method_transpose": (lambda x: x.transpose(2, 0, 1), A),
    "swapaxes": (lambda x: np.swapaxes(x, 0, 2), A),
    "moveaxis": (lambda x: np.moveaxis(x, 0, -1), A),
    "moveaxis_multi": (lambda x: np.moveaxis(x, (0, 1), (2, 0)), A),
    "expand_dims": (lambda x: np.expand_dims(x, 1), M),
    "expand_dims_multi": (lambda x: np.expand_dims(x, (0, 3)), M),
    "squeeze": (lambda x: np.squeeze(x[:, :1, :]), A),
    "squeeze_axis": (lambda x: x[:, None, :].squeeze(1), M),
    "broadcast_to": (lambda x: np.broadcast_to(x, (2, 3, 4)), M),
    "broadcast_to_scalar": (lambda x: np.broadcast_to(x[0], (3,)), V),
    "broadcast_arrays": (lambda x: np.broadcast_arrays(x, M[:, :1])[1] * x, M),
    "concatenate": (lambda x: np.concatenate([x, 2 * x, np.ones((1, 4))], axis=0), M),
    "concatenate_axis1": (lambda x: np.concatenate([x, x**2], axis=-1), M),
    "concatenate_none": (lambda x: np.concatenate([x, x[0]], axis=None), M),
    "stack": (lambda x: np.stack([x, x**2, np.sin(x)]), M),
    "stack_axis": (lambda x: np.stack([x, x**2], axis=-1), M),
    "hstack": (lambda x: np.hstack([x, x[:, :2]]), M),
    "hstack_1d": (lambda x: np.hstack([x, x[:2]]), V),
    "vstack": (lambda x: np.vstack([x, x[:1]]), M),
    "vstack_1d": (lambda x: np.vstack([x, 3 * x]), V),
    "column_stack": (lambda x: np.column_stack([x, x**2]), V),
    "dstack": (lambda x: np.dstack([x, x]), M),
    "split": (lambda x: np.split(x, 2, axis=1)[1], M),
    "array_split": (lambda x: np.array_split(x, [1, 3])[2], V),
    "repeat": (lambda x: np.repeat(x, 3), V),
    "repeat_axis": (lambda x: np.repeat(x, [1, 0, 2], axis=0), M),
    "method_repeat": (lambda x: x.repeat(2, axis=1), M),
    "tile": (lambda x: np.tile(x, (2, 1, 3)), M),
    "tile_int": (lambda x: np.tile(x, 3), V),
    "flip": (np.flip, M),
    "flip_axis": (lambda x: np.flip(x, 1), A),
    "fliplr": (np.fliplr, M),
    "flipud": (np.flipud, M),
    "roll": (lambda x: np.roll(x, 2), M),
    "roll_axis": (lambda x: np.roll(x, -1, axis=1), M),
    "roll_multi": (lambda x: np.roll(x, (1, 2), axis=(0, 1)), M),
    "pad": (lambda x: np.pad(x, ((1, 2), (0, 3))), M),
    "pad_int": (lambda x: np.pad(x, 2), V),
    "pad_constant": (lambda x: np.pad(x, 1, constant_values=5.0), V),
    # order='F' (refused until the conformance harness pinned it)
    "reshape_F": (lambda x: np.reshape(x, (4, -1), order="F"), A),
    "ravel_F": (lambda x: np.ravel(x, order="F") * x.flatten(order="F"), M),
    # the modes that copy elements (refused before; pinned refusals of the conformance
    # harness): widths beyond the axis length repeat NumPy's iterated padding
    "pad_edge": (lambda x: np.pad(x, ((1, 2), (0, 3)), mode="edge"), M),
    "pad_wrap_wide": (lambda x: np.pad(x, (2, 9), mode="wrap"), V),
    "pad_reflect_wide": (lambda x: np.pad(x, ((3, 4), (5, 1)), mode="reflect"), M),
    "pad_symmetric": (lambda x: np.pad(x, (1, 2), mode="symmetric", reflect_type="even"), A),
    "diag_2d": (np.diag, M),
    "diag_2d_k": (lambda x: np.diag(x, 1), M),
    "diag_1d": (np.diag, V),
    "diag_1d_k": (lambda x: np.diag(x, -2), V),
    "diagonal": (lambda x: np.diagonal(x, 0, 1, 2), A),
    "diagonal_offset": (lambda x: x.diagonal(1), M),
    "triu": (np.triu, M),
    "tril": (lambda x: np.tril(x, -1), M),
    "triu_stack": (lambda x: np.triu(x, 1), A),
    "trace": (np.trace, M),
    "trace_method": (lambda x: x.trace(offset=1), M),
    "atleast_2d": (lambda x: np.atleast_2d(x[0]), V),
    "atleast_3d": (np.atleast_3d, V),
    "copy": (lambda x: np.copy(x) * x.copy(), V),
    "iter_unpack": (lambda x: (lambda a, b, *rest: a * b - rest[0])(*x), V),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape_function(name):
    f, x = CASES[name]
    check_all(f, (x,), order=2)


def test_values_match_numpy():
    for name, (f, x) in CASES.items():
        import dualrev as dr
        out, _ = dr.jvp(f, (x,), (np.ones_like(x),))
        np.testing.assert_array_equal(out, f(x), err_msg=name)


def test_traced_pad_constant_is_refused_not_dropped():
    import dualrev as dr

    with pytest.raises(dr.DualrevError, match="constant_values"):
        dr.grad(lambda c: np.sum(np.pad(np.ones(2) * c, 1, constant_values=c)))(0.0)


def test_reshape_layout_orders_are_refused():
    # 'A' and 'K' depend on the memory layout, which a traced value does not have
    import dualrev as dr

    with pytest.raises(dr.DualrevError, match="order='A'"):
        dr.grad(lambda x: np.sum(np.ravel(x, order="A")))(M)


def test_pad_odd_reflection_is_refused_and_other_modes_too():
    import dualrev as dr

    with pytest.raises(dr.DualrevError, match="reflect_type='odd'"):
        dr.grad(lambda x: np.sum(np.pad(x, 2, mode="reflect", reflect_type="odd")))(V)
    with pytest.raises(dr.DualrevError, match="mode='mean'"):
        dr.grad(lambda x: np.sum(np.pad(x, 2, mode="mean")))(V)
    with pytest.raises(ValueError, match="can't extend empty axis"):  # NumPy's own error
        dr.grad(lambda x: np.sum(np.pad(x, 1, mode="wrap")))(np.zeros(0))


def test_cross_of_2_vectors_like_numpy():
    # refused until the conformance harness pinned it: NumPy (deprecated since 2.0, with a
    # DeprecationWarning at the caller's line) gives the z component of two 2-vectors, and
    # treats a 2-vector's z as 0 against a 3-vector
    import warnings

    import dualrev as dr

    for a, b in ((V[:2], V[2:4]), (np.reshape(V[:4], (2, 2)), V[3:5]), (V[:2], V[2:5])):
        with warnings.catch_warnings(record=True) as plain:
            warnings.simplefilter("always")
            try:
                want = np.cross(a, b)
            except ValueError as e:  # NumPy >= 2.5 removed 2-vectors: refused the same way
                with pytest.raises(ValueError, match=re.escape(str(e))):
                    dr.jvp(np.cross, (a, b), (np.zeros_like(a), np.zeros_like(b)))
                continue
        with warnings.catch_warnings(record=True) as traced:
            warnings.simplefilter("always")
            got = dr.jvp(np.cross, (a, b), (np.zeros_like(a), np.zeros_like(b)))[0]
        np.testing.assert_allclose(got, want, rtol=1e-14)
        assert [(w.category, str(w.message)) for w in traced] == [
            (w.category, str(w.message)) for w in plain]
        assert all(w.filename == __file__ for w in traced)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            check_all(np.cross, (a, b), order=2)


@pytest.mark.parametrize("args", [(V[:3], V[2:]), (np.stack([V[:3], V[1:4]]), V[2:])])
def test_cross(args):
    out, _ = __import__("dualrev").jvp(np.cross, args, tuple(np.zeros_like(a) for a in args))
    np.testing.assert_allclose(out, np.cross(*args), rtol=1e-14)
    check_all(np.cross, args, order=2)


@pytest.mark.skipif(not NUMPY_2, reason="np.permute_dims is new in NumPy 2.0")
def test_permute_dims_alias():
    check_all(lambda x: np.permute_dims(x, (2, 0, 1)), (A,), order=1)


EMPTY = {
    "diag_of_empty_vector": (np.diag, np.zeros(0)),
    "diag_of_empty_matrix": (np.diag, np.zeros((3, 0))),
    "diagonal": (np.diagonal, np.zeros((3, 0))),
    "trace": (np.trace, np.zeros((3, 0))),
    "roll": (lambda x: np.roll(x, 1), np.zeros(0)),
    "repeat": (lambda x: np.repeat(x, 2), np.zeros(0)),
    "tile": (lambda x: np.tile(x, 2), np.zeros(0)),
    "flip": (np.flip, np.zeros((0, 2))),
    "concatenate": (lambda x: np.concatenate([x, x]), np.zeros(0)),
    "reshape": (lambda x: np.reshape(x, (0, 5)), np.zeros(0)),
    "pad": (lambda x: np.pad(x, 1), np.zeros(0)),
    "split": (lambda x: np.split(x, 2)[0], np.zeros(0)),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_shape_functions_of_empty_arrays(name):
    check_empty(*EMPTY[name])

LIST_V, LIST_M = np.array([0.3, 0.6, 0.9]), np.array([[2.0, 0.5], [0.3, 1.5]])
LIST_ARGS = {
    "cross_list": (lambda x: np.cross(x, [1.0, 2, 3]), LIST_V),
    "cross_list_first": (lambda x: np.cross([1.0, 2, 3], x), LIST_V),
    "hstack": (lambda x: np.hstack([[1.0], x]), LIST_V),
    "column_stack": (lambda x: np.column_stack([[1.0, 2, 3], x]), LIST_V),
    "diff_prepend": (lambda x: np.diff(x, prepend=[0.0]), LIST_V),
}

@pytest.mark.parametrize("name", sorted(LIST_ARGS))
def test_shape_functions_take_python_lists(name):
    check_like_numpy(*LIST_ARGS[name])


KEYWORDS = {  # dtype= and casting= were accepted and ignored
    "concatenate_dtype": lambda x, dt: np.concatenate([x, x], dtype=dt),
    "stack_dtype": lambda x, dt: np.stack([x, x], axis=1, dtype=dt),
    "hstack_dtype": lambda x, dt: np.hstack([x, x], dtype=dt),
    "vstack_dtype": lambda x, dt: np.vstack([x, x], dtype=dt),
    "concatenate_casting_unsafe": lambda x, dt: np.concatenate([x, x], dtype=dt,
                                                               casting="unsafe"),
    "trace_dtype": lambda x, dt: np.trace(np.outer(x, x), dtype=dt),
}


@pytest.mark.parametrize("name", sorted(KEYWORDS))
def test_shape_keywords_honoured(name):
    f = KEYWORDS[name]
    check_like_numpy(lambda x: f(x, np.float32), LIST_V, reference=lambda x: f(x, None))


def test_shape_keywords_refused_like_numpy():
    import dualrev as dr

    f32 = LIST_V.astype(np.float32)
    for join in (np.concatenate, np.stack, np.vstack):
        with pytest.raises(TypeError, match="rule 'no'"):
            join([LIST_V, f32], casting="no")
        with pytest.raises(TypeError, match="rule 'no'"):
            dr.grad(lambda x, join=join: np.sum(join([x, f32], casting="no")))(LIST_V)
    with pytest.raises(ValueError, match="unsupported keyword"):
        dr.grad(lambda x: np.sum(np.pad(x, 1, end_values=3.0)))(LIST_V)
    with pytest.raises(dr.InPlaceError):
        dr.grad(lambda x: np.trace(np.outer(x, x), out=np.zeros(())))(LIST_V)


def test_append_rot90_rollaxis_splits_real_if_close():
    r = np.random.default_rng(3)
    a, b = r.standard_normal((2, 3, 4)), r.standard_normal((2, 3, 4))
    for f in (lambda t: np.append(t, b), lambda t: np.append(b, t, axis=1),
              lambda t: np.rot90(t), lambda t: np.rot90(t, -3, axes=(2, 0)),
              lambda t: np.rot90(t, 2, axes=(1, 2)), lambda t: np.rollaxis(t, 2),
              lambda t: np.rollaxis(t, 0, 3), lambda t: np.vsplit(t, 2)[1],
              lambda t: np.hsplit(t, [1])[0], lambda t: np.dsplit(t, [1, 3])[1]):
        out, tan = dr.jvp(f, (a,), (b,))
        np.testing.assert_array_equal(out, f(a))
        np.testing.assert_allclose(tan, f(b) - f(np.zeros_like(b)), atol=1e-15)
        check_grads(f, (a,), order=2)
    close = dr.jvp(np.real_if_close, (a + 1e-16j,), (b + 1j,))
    assert close[0].dtype == close[1].dtype == np.float64
    far = dr.jvp(np.real_if_close, (a + 1e-3j,), (b + 1j,))
    assert far[1].dtype == np.complex128
    with pytest.raises(ValueError, match="vsplit only works on arrays of 2 or more"):
        dr.grad(lambda t: np.sum(np.vsplit(t, 2)[0]))(a[0, 0])


def test_unique_values_and_their_derivative():
    v = np.array([3.0, 1.0, 3.0, 2.0])
    ints = []

    def f(t):
        out = np.unique(t, return_index=True, return_inverse=True, return_counts=True)
        ints.extend(out[1:])
        return out[0]

    vals = dr.jvp(f, (v,), (v,))[0]
    want = np.unique(v, return_index=True, return_inverse=True, return_counts=True)
    for got, w in zip((vals, *ints), want, strict=True):
        np.testing.assert_array_equal(got, w)
    # each unique value's derivative goes to its first occurrence
    np.testing.assert_array_equal(dr.jacrev(np.unique)(v), [[0, 1, 0, 0], [0, 0, 0, 1],
                                                            [1, 0, 0, 0]])
    z = np.array([3 + 1j, 1 - 2j, 2 + 0.5j, -1 + 1j, 0.2 - 3j])
    if "sorted" in inspect.signature(np.unique).parameters:  # NumPy >= 2.3
        np.testing.assert_array_equal(
            dr.jvp(lambda t: np.unique(t, sorted=False), (z,), (z,))[0],
            np.unique(z, sorted=False))

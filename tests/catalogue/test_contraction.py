"""matmul/@, dot, inner, outer, vdot, tensordot, einsum: every argument against finite
differences, batched (stacked) operands, and forward against reverse."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.testing import check_grads
from tests.helpers import check_all, check_empty

rng = np.random.default_rng(4)


def r(*shape):
    return rng.standard_normal(shape)


CASES = {
    "matmul_mm": (np.matmul, r(3, 4), r(4, 2)),
    "matmul_mv": (np.matmul, r(3, 4), r(4)),
    "matmul_vm": (np.matmul, r(4), r(4, 2)),
    "matmul_vv": (np.matmul, r(4), r(4)),
    "matmul_batched": (np.matmul, r(2, 3, 4), r(2, 4, 5)),
    "matmul_broadcast_stack": (np.matmul, r(3, 4), r(2, 4, 5)),
    "matmul_broadcast_stack_b": (np.matmul, r(2, 1, 3, 4), r(3, 4, 2)),
    "matmul_stack_vec": (np.matmul, r(2, 3, 4), r(4)),
    "op_matmul": (lambda a, b: a @ b, r(3, 4), r(4)),
    "dot_mm": (np.dot, r(3, 4), r(4, 2)),
    "dot_vv": (np.dot, r(4), r(4)),
    "dot_scalar": (np.dot, r(3), 2.5),
    "dot_nd": (np.dot, r(2, 3, 4), r(5, 4, 2)),
    "inner": (np.inner, r(3, 4), r(2, 4)),
    "inner_vv": (np.inner, r(4), r(4)),
    "outer": (np.outer, r(3), r(4)),
    "vdot": (np.vdot, r(2, 3), r(2, 3)),
    "tensordot_int": (np.tensordot, r(2, 3, 4), r(3, 4, 5)),
    "tensordot_axes": (lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])), r(2, 3, 4),
                       r(4, 5, 2)),
    "einsum_matmul": (lambda a, b: np.einsum("ij,jk->ik", a, b), r(3, 4), r(4, 2)),
    "einsum_implicit": (lambda a, b: np.einsum("ij,jk", a, b), r(3, 4), r(4, 2)),
    "einsum_batch": (lambda a, b: np.einsum("bij,bjk->bki", a, b), r(2, 3, 4), r(2, 4, 5)),
    "einsum_ellipsis": (lambda a, b: np.einsum("...ij,jk->...ik", a, b), r(2, 3, 4), r(4, 2)),
    "einsum_sum_within": (lambda a, b: np.einsum("ij,k->i", a, b), r(3, 4), r(2)),
    "einsum_trace": (lambda a, b: np.einsum("ii,j->j", a, b), r(3, 3), r(2)),
    "einsum_diag": (lambda a, b: np.einsum("ii->i", a) * b, r(3, 3), r(3)),
    "einsum_outer": (lambda a, b: np.einsum("i,j->ij", a, b), r(3), r(4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_contraction(name):
    f, a, b = CASES[name]
    check_all(f, (a, b), order=2)


def test_einsum_three_operands():
    a, b, c = r(3, 4), r(4, 5), r(5)
    check_all(lambda x, y, z: np.einsum("ij,jk,k->i", x, y, z), (a, b, c), order=2)


def test_matmul_closed_form():
    # The seed's rule: for f = sum((W x)^2)... df/dW = 2 (W x) x^T, df/dx = 2 W^T (W x).
    W, x = r(3, 4), r(4)
    gW, gx = dr.grad(lambda W, x: np.sum((W @ x) ** 2), (0, 1))(W, x)
    q = W @ x
    np.testing.assert_allclose(gW, 2 * np.outer(q, x), rtol=1e-13)
    np.testing.assert_allclose(gx, 2 * W.T @ q, rtol=1e-13)


def test_dot_method():
    # Only the traced receiver's method can be intercepted: ndarray.dot(traced) converts
    # its argument with __array__, which dualrev refuses loudly rather than drop the
    # derivative.
    a, b = r(3, 4), r(4)
    check_all(lambda x: x.dot(b), (a,), order=2)
    with pytest.raises(dr.TracerConversionError):
        dr.grad(lambda y: np.sum(a.dot(y)))(b)


EINSUM_BROADCAST = {  # size-1 axes and ellipsis dimensions that NumPy broadcasts
    "unit_label": ("ij,ij->ij", (1, 4), (3, 4)),
    "unit_label_both": ("ij,ij->i", (1, 4), (3, 1)),
    "unit_contracted": ("ij,jk->ik", (3, 1), (4, 2)),
    "ellipsis_unit_batch": ("...ij,...jk->...ik", (1, 2, 3), (5, 3, 4)),
    "ellipsis_ranks_differ": ("...ij,...jk->...ik", (5, 2, 3), (3, 4)),
    "ellipsis_both_units": ("...ij,...jk->...ik", (2, 1, 2, 3), (1, 4, 3, 2)),
    "ellipsis_implicit": ("...ij,...jk", (1, 2, 3), (5, 3, 4)),
    "ellipsis_empty": ("...ij,...jk->ik", (2, 3), (3, 4)),
    "ellipsis_one_side": ("...i,i->...", (3, 1, 4), (4,)),
    "ellipsis_unit_inner": ("...i,...i->...", (3, 1), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(EINSUM_BROADCAST))
def test_einsum_broadcasting_gives_gradients_of_the_operand_shape(name):
    # The cotangent of a broadcast size-1 axis came back at the broadcast size.
    spec, sa, sb = EINSUM_BROADCAST[name]
    a, b = r(*sa), r(*sb)
    f = lambda x, y: np.einsum(spec, x, y)
    np.testing.assert_allclose(dr.jvp(f, (a, b), (a, b))[0], np.einsum(spec, a, b),
                               rtol=1e-14)
    ga, gb = dr.grad(lambda x, y: np.sum(np.sin(f(x, y))), (0, 1))(a, b)
    assert ga.shape == sa and gb.shape == sb
    check_all(f, (a, b), order=2)


def test_einsum_three_operands_broadcasting():
    a, b, c = r(1, 3), r(4, 3), r(1)
    check_all(lambda x, y, z: np.einsum("ij,ij,j->i", x, y, z), (a, b, c), order=2)


def test_einsum_refuses_to_drop_ellipsis_axes_like_numpy():
    a, b = r(5, 2, 3), r(5, 3, 4)
    with pytest.raises(ValueError, match="ellipsis"):
        np.einsum("...ij,...jk->ik", a, b)
    with pytest.raises(ValueError, match="ellipsis"):
        dr.grad(lambda x: np.sum(np.einsum("...ij,...jk->ik", x, b)))(a)


EMPTY = {
    "matmul_empty_inner": (lambda x: x @ x.T, np.zeros((3, 0))),
    "matmul_empty_outer": (lambda x: x.T @ x, np.zeros((3, 0))),
    "dot_vectors": (lambda x: np.dot(x, x), np.zeros(0)),
    "einsum": (lambda x: np.einsum("ij,ij->i", x, x), np.zeros((3, 0))),
    "outer": (lambda x: np.outer(x, x), np.zeros(0)),
    "multi_dot": (lambda x: np.linalg.multi_dot([x, x.T]), np.zeros((3, 0))),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_contractions_of_empty_arrays(name):
    # The folded stack products reshaped with -1, ambiguous for an empty stack.
    check_empty(*EMPTY[name])


def test_einsum_keywords_honoured_or_refused():
    a, b = r(2, 3), r(3, 4)
    got, _ = dr.jvp(lambda x: np.einsum("ij,jk", x, b, dtype=np.float32, casting="same_kind",
                                        order="C", optimize=True), (a,), (a,))
    want = np.einsum("ij,jk", a, b, dtype=np.float32, casting="same_kind")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(TypeError, match="rule 'safe'"):  # NumPy's default casting
        dr.jvp(lambda x: np.einsum("ij,jk", x, b, dtype=np.float32), (a,), (a,))
    with pytest.raises(TypeError):
        dr.jvp(lambda x: np.einsum("ij,jk", x, b, subok=True), (a,), (a,))


def test_vdot_conjugates_its_first_argument():
    r = np.random.default_rng(20)
    a = r.standard_normal((2, 3)) + 1j * r.standard_normal((2, 3))
    b = r.standard_normal((2, 3)) + 1j * r.standard_normal((2, 3))
    value = dr.jvp(np.vdot, (a, b), (np.zeros_like(a), np.zeros_like(b)))[0]
    np.testing.assert_allclose(value, np.vdot(a, b), rtol=1e-14)
    check_grads(np.vdot, (a, b), order=2)
    check_grads(np.vdot, (a.real.copy(), b), order=1)  # a real first argument: no conjugate

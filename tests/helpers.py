"""Shared checks: every derivative against SciPy finite differences, and forward mode
against reverse mode."""

import numpy as np

import dualrev as dr
from dualrev.testing import check_grads

# NumPy 2.0 added functions and keywords (np.permute_dims, np.linalg.svdvals,
# cholesky(upper=)) that NumPy 1 lacked (kept as guards; the floor is now NumPy 2.0).
NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def fwd_rev_agree(f, args, argnums=0, rtol=1e-12, atol=1e-12):
    """jacfwd and jacrev give the same Jacobian (to rounding)."""
    jf = dr.jacfwd(f, argnums)(*args)
    jr = dr.jacrev(f, argnums)(*args)
    leaves_f, def_f = dr.tree_flatten(jf)
    leaves_r, def_r = dr.tree_flatten(jr)
    assert def_f == def_r
    for a, b in zip(leaves_f, leaves_r, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return jf


def check_all(f, args, order=2, rtol=1e-6, atol=1e-8, initial_step=1e-2):
    """JVP and VJP (and their derivatives up to ``order``) against finite differences,
    and jacfwd against jacrev for every argument."""
    check_grads(f, args, order=order, rtol=rtol, atol=atol, initial_step=initial_step)
    for i in range(len(args)):
        fwd_rev_agree(f, args, i)


def check_empty(f, x):
    """On an input or output with no elements: the value equals NumPy's and jacfwd and
    jacrev give (empty) Jacobians of shape out.shape + x.shape."""
    want = np.asarray(f(x))
    value, _ = dr.jvp(f, (x,), (np.ones(np.shape(x)),))
    np.testing.assert_array_equal(np.asarray(value), want)
    for jac in (dr.jacfwd, dr.jacrev):
        J = np.asarray(jac(f)(x))
        assert J.shape == want.shape + np.shape(x), (jac.__name__, J.shape)
        if J.size:  # empty input, non-empty output: the derivative is an empty sum
            np.testing.assert_array_equal(J, 0.0)


def check_like_numpy(f, x, order=1, reference=None):
    """``f`` (with lists or keywords besides the traced ``x``): the value equals the plain
    NumPy/SciPy call's and the derivatives are right. A float32 result's derivatives are
    compared with those of ``reference``, the same computation in float64 (finite
    differences of float32 values see their rounding)."""
    want = f(x)
    value, _ = dr.jvp(f, (x,), (np.ones(np.shape(x)) if np.ndim(x) else 1.0,))
    single = False
    for v, w in zip(dr.tree_flatten(value)[0], dr.tree_flatten(want)[0], strict=True):
        assert np.shape(v) == np.shape(w)
        assert np.result_type(v) == np.result_type(w)
        single |= np.result_type(w) == np.float32
        np.testing.assert_allclose(v, w, rtol=1e-6 if single else 1e-13)
    if not single:
        check_all(f, (x,), order=order)
        return
    check_all(reference, (x,), order=order)
    for jac in (dr.jacfwd, dr.jacrev):
        np.testing.assert_allclose(jac(f)(x), jac(reference)(x), rtol=1e-5, atol=1e-6)

"""scipy.optimize's Rosenbrock functions on traced values against SciPy's own analytic
derivatives: grad(rosen) == rosen_der, hessian(rosen) == rosen_hess, and so on."""

import numpy as np
import scipy.optimize as so

import dualrev as dr

rng = np.random.default_rng(1404)
X = rng.uniform(-1.5, 1.5, 6)
P = rng.standard_normal(6)


def test_grad_and_hessian_are_scipys():
    np.testing.assert_allclose(dr.grad(so.rosen)(X), so.rosen_der(X), rtol=1e-12)
    np.testing.assert_allclose(dr.hessian(so.rosen)(X), so.rosen_hess(X), rtol=1e-12)
    np.testing.assert_allclose(dr.jacfwd(so.rosen_der)(X), so.rosen_hess(X), rtol=1e-12)
    np.testing.assert_allclose(dr.jacrev(so.rosen_der)(X), so.rosen_hess(X), rtol=1e-12)


def test_hessian_vector_products():
    hvp = dr.jvp(dr.grad(so.rosen), (X,), (P,))[1]
    np.testing.assert_allclose(hvp, so.rosen_hess_prod(X, P), rtol=1e-12)
    np.testing.assert_allclose(dr.jacfwd(lambda p: so.rosen_hess_prod(X, p))(P),
                               so.rosen_hess(X), rtol=1e-12)
    np.testing.assert_allclose(dr.jacrev(lambda x: so.rosen_hess_prod(x, P))(X),
                               dr.jacrev(lambda x: so.rosen_hess(x) @ P)(X), rtol=1e-12)


def test_rank_two_and_vmap():
    Xs = rng.uniform(-1, 1, (5, 3))  # SciPy sums along axis 0: three points
    np.testing.assert_allclose(dr.vmap(so.rosen, in_axes=1)(Xs), so.rosen(Xs))
    np.testing.assert_allclose(dr.vmap(dr.grad(so.rosen), in_axes=1, out_axes=1)(Xs),
                               so.rosen_der(Xs))
    np.testing.assert_allclose(dr.vmap(so.rosen_hess)(Xs.T), np.stack(
        [so.rosen_hess(x) for x in Xs.T]))
    assert so.rosen(np.arange(4)) == so.rosen(np.arange(4.0))  # plain: SciPy's own

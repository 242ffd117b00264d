"""The worked examples of the seed documents, with their exact numbers."""

import numpy as np

import dualrev as dr
from examples.computational_graph import e, g
from examples.softmax_jacobian import softmax
from examples.two_layer_net import hand_written_gradients, loss


def test_e_equals_a_plus_b_times_b_plus_1():
    value, (da, db) = dr.value_and_grad(e, argnums=(0, 1))(2.0, 1.0)
    assert (value, da, db) == (6.0, 2.0, 5.0)
    assert dr.jvp(e, (2.0, 1.0), (1.0, 0.0)) == (6.0, 2.0)
    assert dr.jvp(e, (2.0, 1.0), (0.0, 1.0)) == (6.0, 5.0)


def test_g_equals_x_plus_y_times_z():
    value, grads = dr.value_and_grad(g, argnums=(0, 1, 2))(1.0, 3.0, -3.0)
    assert value == -12.0
    assert grads == (-3.0, -3.0, 4.0)
    np.testing.assert_array_equal(dr.jacfwd(lambda v: g(*v))(np.array([1.0, 3.0, -3.0])),
                                  [-3.0, -3.0, 4.0])


def test_shared_weights_sum_gradients():
    # One weight feeding three products: the gradient is the sum over its uses.
    x = np.array([1.0, 2.0, 3.0])
    assert dr.grad(lambda w: np.sum(w * x))(0.5) == 6.0
    assert dr.grad(lambda w: w * x[0] + w * x[1] + w * x[2])(0.5) == 6.0


def test_softmax_jacobian_closed_form():
    z = np.array([1.0, 2.0, 0.5, -1.0])
    p = softmax(z)
    expected = np.diag(p) - np.outer(p, p)
    for jac in (dr.jacfwd, dr.jacrev, dr.jacobian):
        np.testing.assert_allclose(jac(softmax)(z), expected, rtol=1e-13, atol=1e-16)


def test_two_layer_sigmoid_net_matches_hand_written_backprop():
    rng = np.random.default_rng(1)
    N, D_in, H, D_out = 8, 20, 6, 3
    x, y = rng.standard_normal((N, D_in)), rng.standard_normal((N, D_out))
    w1, w2 = rng.standard_normal((D_in, H)), rng.standard_normal((H, D_out))
    g1, g2 = dr.grad(loss, argnums=(0, 1))(w1, w2, x, y)
    h1, h2 = hand_written_gradients(w1, w2, x, y)
    np.testing.assert_allclose(g1, h1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g2, h2, rtol=1e-12, atol=1e-12)

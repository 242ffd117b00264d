"""The seed's two-layer sigmoid network, trained with dualrev's gradients instead of
hand-written backpropagation (which is kept here to show the two agree).

Usage: python examples/two_layer_net.py [steps]
"""

import sys

import numpy as np

import dualrev as dr


def loss(w1, w2, x, y):
    # The seed writes x.dot(w1); a method of the plain array x cannot see the traced w1
    # (NumPy converts its argument), so the function form np.dot (or x @ w1) is used; see
    # loss_as_the_seed_writes_it for the error dualrev gives. h.dot(w2) is fine: h is traced.
    h = 1 / (1 + np.exp(-np.dot(x, w1)))  # sigmoid
    y_pred = h.dot(w2)
    return np.square(y_pred - y).sum()


def loss_as_the_seed_writes_it(w1, w2, x, y):
    h = 1 / (1 + np.exp(-x.dot(w1)))  # x is plain data: its method cannot see w1
    return np.square(h.dot(w2) - y).sum()


def hand_written_gradients(w1, w2, x, y):
    """The seed's backpropagation, written out by hand."""
    h = 1 / (1 + np.exp(-x.dot(w1)))
    y_pred = h.dot(w2)
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h.T.dot(grad_y_pred)
    grad_h = grad_y_pred.dot(w2.T)
    grad_w1 = x.T.dot(grad_h * h * (1 - h))
    return grad_w1, grad_w2


def main(steps: int = 200) -> float:
    rng = np.random.default_rng(0)
    N, D_in, H, D_out = 64, 1000, 100, 10
    x, y = rng.standard_normal((N, D_in)), rng.standard_normal((N, D_out))
    w1, w2 = rng.standard_normal((D_in, H)), rng.standard_normal((H, D_out))
    learning_rate = 1e-4

    g1, g2 = dr.grad(loss, argnums=(0, 1))(w1, w2, x, y)
    h1, h2 = hand_written_gradients(w1, w2, x, y)
    print("max |AD - hand-written| gradient difference:",
          max(np.max(np.abs(g1 - h1)), np.max(np.abs(g2 - h2))))

    try:  # the seed's line as written: dualrev names it and the rewrite
        dr.grad(loss_as_the_seed_writes_it)(w1, w2, x, y)
    except dr.TracerConversionError as e:
        print("as written:", str(e).split(" calls the method")[0], "->",
              str(e).split("Write ")[1].split(" (on")[0])

    value_and_grad = dr.value_and_grad(loss, argnums=(0, 1))
    for t in range(steps):
        value, (grad_w1, grad_w2) = value_and_grad(w1, w2, x, y)
        if t % 50 == 0:
            print(t, value)
        w1 = w1 - learning_rate * grad_w1
        w2 = w2 - learning_rate * grad_w2
    final = loss(w1, w2, x, y)
    print("final loss", final)
    return final


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)

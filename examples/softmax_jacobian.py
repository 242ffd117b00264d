"""The Jacobian of softmax is diag(p) - p p^T; dualrev finds it from plain NumPy code."""

import numpy as np

import dualrev as dr


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def main() -> None:
    z = np.array([1.0, 2.0, 0.5, -1.0])
    p = softmax(z)
    J = dr.jacobian(softmax)(z)
    closed_form = np.diag(p) - np.outer(p, p)
    print("Jacobian by dualrev:\n", np.round(J, 6))
    print("max |J - (diag(p) - p p^T)| =", np.max(np.abs(J - closed_form)))

    # Cross-entropy on top: the gradient is p - onehot(label).
    label = 1
    g = dr.grad(lambda z: -np.log(softmax(z)[label]))(z)
    print("grad of cross-entropy =", np.round(g, 6), "= p - onehot:",
          np.allclose(g, p - np.eye(4)[label]))


if __name__ == "__main__":
    main()

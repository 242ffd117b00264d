"""The seeds' computational graphs, differentiated by dualrev.

e = (a + b) * (b + 1): the forward pass at a = 2, b = 1 gives c = a + b = 3,
d = b + 1 = 2, e = c * d = 6. The backward pass gives de/da = d = 2 and
de/db = d + c = 5 (b reaches e along two edges, and their contributions add).
"""

import numpy as np

import dualrev as dr


def e(a, b):
    c = a + b
    d = b + 1
    return c * d


def g(x, y, z):
    return (x + y) * z


def main() -> None:
    value, (de_da, de_db) = dr.value_and_grad(e, argnums=(0, 1))(2.0, 1.0)
    print(f"e = {value}, de/da = {de_da}, de/db = {de_db}")          # 6, 2, 5

    value, grads = dr.value_and_grad(g, argnums=(0, 1, 2))(1.0, 3.0, -3.0)
    print(f"g = {value}, gradients = {tuple(float(v) for v in grads)}")  # -12, (-3, -3, 4)

    # Forward mode gives the same derivatives, one input direction at a time.
    _, de_da_fwd = dr.jvp(e, (2.0, 1.0), (1.0, 0.0))
    _, de_db_fwd = dr.jvp(e, (2.0, 1.0), (0.0, 1.0))
    print(f"forward mode: de/da = {de_da_fwd}, de/db = {de_db_fwd}")

    # Shared weights: w is used by three multiplications; its gradient is the sum.
    x = np.array([1.0, 2.0, 3.0])
    dw = dr.grad(lambda w: np.sum(w * x))(0.5)
    print(f"shared weight gradient = {dw} (= sum of x = {x.sum()})")


if __name__ == "__main__":
    main()

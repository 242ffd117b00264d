"""Hand-written derivative rules: a numerically stable log(1 + exp(x)), and a function
that calls code dualrev cannot see into."""

import numpy as np

import dualrev as dr


@dr.custom_jvp
def log1pexp(x):
    return np.logaddexp(0.0, x)


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    # the derivative is sigmoid(x), written with tanh so it never overflows
    return log1pexp(x), t * 0.5 * (1 + np.tanh(0.5 * x))


def black_box_cube(x):
    """Stands for compiled code: it needs plain arrays."""
    return np.asarray(x, dtype=float) ** 3


@dr.custom_vjp
def cube(x):
    return black_box_cube(x)


def cube_fwd(x):
    return cube(x), x          # output, and residuals for the backward pass


def cube_bwd(x, g):
    return (g * 3 * x**2,)     # one cotangent per argument


cube.defvjp(cube_fwd, cube_bwd)


def main() -> None:
    x = np.array([-1000.0, 0.0, 1000.0])
    print("d/dx log(1 + e^x) at", x, "=", dr.grad(lambda x: np.sum(log1pexp(x)))(x))
    print("second derivative =", np.diag(dr.hessian(lambda x: np.sum(log1pexp(x)))(x)),
          "(sigmoid'(0) = 0.25)")
    y = np.array([0.5, 2.0])
    print("d/dx sum(cube(x)) =", dr.grad(lambda x: np.sum(cube(x)))(y), "= 3 x^2")


if __name__ == "__main__":
    main()

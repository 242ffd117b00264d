"""A damped pendulum integrated by RK4 into a preallocated trajectory, filled step by
step (``traj[k + 1] = ...``), and the sensitivity of the final state to the damping
and to the initial state by dualrev.jacfwd / jacrev, checked by finite differences.

The buffer is made with ``np.zeros_like`` of a traced value, so each write into it is
recorded (a plain ``np.zeros`` buffer cannot hold a traced value)."""

import sys

import numpy as np

import dualrev as dr

G_OVER_L = 9.81


def rhs(y, damping):
    """d/dt (angle, angular velocity) of a damped pendulum."""
    return np.stack([y[1], -G_OVER_L * np.sin(y[0]) - damping * y[1]])


def trajectory(y0, damping, steps=200, h=0.01):
    """RK4 from y0: all states, shape (steps + 1, 2)."""
    # traced whenever y0 or damping is: the buffer belongs to the derivative's trace
    traj = np.zeros_like(y0 + 0.0 * damping, shape=(steps + 1, 2))
    traj[0] = y0
    for k in range(steps):
        y = traj[k]
        a = rhs(y, damping)
        b = rhs(y + h / 2 * a, damping)
        c = rhs(y + h / 2 * b, damping)
        d = rhs(y + h * c, damping)
        traj[k + 1] = y + h / 6 * (a + 2 * b + 2 * c + d)
    return traj


def main(steps: int = 200) -> float:
    y0 = np.array([1.0, 0.0])
    damping = 0.3

    def final(p):  # the final state as a function of the damping
        return trajectory(y0, p, steps)[-1]

    fwd = dr.jacfwd(final)(damping)
    rev = dr.jacrev(final)(damping)
    eps = 1e-6
    fd = (final(damping + eps) - final(damping - eps)) / (2 * eps)
    print("final state:", np.round(final(damping), 6))
    print("d final / d damping, jacfwd:", np.round(fwd, 8))
    print("                     jacrev:", np.round(rev, 8))
    print("        finite differences: ", np.round(fd, 8))
    jac = dr.jacrev(lambda y: trajectory(y, damping, steps)[-1])(y0)
    fd0 = np.stack([(trajectory(y0 + eps * e, damping, steps)[-1]
                     - trajectory(y0 - eps * e, damping, steps)[-1]) / (2 * eps)
                    for e in np.eye(2)], axis=1)
    err = float(max(np.max(np.abs(fwd - fd)), np.max(np.abs(jac - fd0))))
    print("d final / d y0:\n", np.round(jac, 6))
    print(f"largest difference from finite differences: {err:.1e}")
    return err


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)

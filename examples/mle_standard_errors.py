"""Maximum-likelihood fit of a gamma distribution, with standard errors from the exact
Hessian of the negative log-likelihood (the observed information), by dualrev.

The MLE is found with dualrev.optimize.minimize (exact gradient) over log-parameters,
checked against scipy.stats.gamma.fit; the standard errors sqrt(diag(H^-1)) are compared
with the closed form of the gamma's Fisher information (at the MLE the observed and
expected information agree exactly) and with a finite-difference Hessian.
"""

import numpy as np
import scipy.optimize as so
import scipy.special as sc
import scipy.stats as st

import dualrev as dr

rng = np.random.default_rng(0)
data = rng.gamma(shape=2.5, scale=1.5, size=400)
n, log_x, sum_x = data.size, np.log(data), np.sum(data)


def nll(k, theta):
    """Negative log-likelihood of a gamma(shape k, scale theta) sample."""
    return -np.sum((k - 1.0) * log_x - data / theta - sc.gammaln(k) - k * np.log(theta))


def main() -> dict:
    # log-parameters keep k and theta positive without bounds
    res = dr.optimize.minimize(lambda p: nll(np.exp(p[0]), np.exp(p[1])), np.zeros(2),
                               method="BFGS", options={"gtol": 1e-10})
    k, theta = np.exp(res.x)
    k_ref, _, theta_ref = st.gamma.fit(data, floc=0.0)
    print(f"MLE k = {k:.6f}, theta = {theta:.6f} ({res.nit} BFGS iterations, exact "
          f"gradient); scipy.stats.gamma.fit: k = {k_ref:.6f}, theta = {theta_ref:.6f}")

    # the observed information: the Hessian in the natural parameters at the MLE
    H = dr.hessian(lambda p: nll(p[0], p[1]))(np.array([k, theta]))
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    fisher = n * np.array([[sc.polygamma(1, k), 1.0 / theta], [1.0 / theta, k / theta ** 2]])
    se_closed = np.sqrt(np.diag(np.linalg.inv(fisher)))
    grad = dr.grad(lambda p: nll(p[0], p[1]))
    H_fd = so.approx_fprime(np.array([k, theta]), grad, 1e-6)  # differences of the gradient
    se_fd = np.sqrt(np.diag(np.linalg.inv((H_fd + H_fd.T) / 2)))
    rel_closed = np.max(np.abs(se / se_closed - 1))
    rel_fd = np.max(np.abs(se / se_fd - 1))
    print(f"standard errors (dualrev Hessian): k {se[0]:.6f}, theta {se[1]:.6f}")
    print(f"closed-form Fisher information: k {se_closed[0]:.6f}, theta {se_closed[1]:.6f}; "
          f"max relative difference: {rel_closed:.1e}")
    print(f"finite-difference Hessian: max relative difference: {rel_fd:.1e}")
    return {"mle": (k, theta), "mle_ref": (k_ref, theta_ref), "rel_closed": rel_closed,
            "rel_fd": rel_fd}


if __name__ == "__main__":
    main()

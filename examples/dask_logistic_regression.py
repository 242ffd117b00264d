# needs: dask, distributed
"""Logistic regression over rows that live on a dask.distributed cluster, fitted by
Newton-CG twice: with dualrev's exact gradient and Hessian-vector products of the plain
NumPy loss, and with a hand-written (dask-glm-style) gradient and Hessian-vector product.

    python examples/dask_logistic_regression.py                          # 10^6 rows
    python examples/dask_logistic_regression.py --rows 1e8 --chunks 1e6  # 10^8 rows

(10^8 rows: 4.8 GB on the workers; about 5 minutes on two cores, each fit 13 passes.)

A ``LocalCluster`` with two worker processes (one thread each) generates the rows on the
workers (``da.random.default_rng(seed)``, each chunk from its own stream) and keeps them
there (``persist``); only the coefficients (a few floats) and the results of each pass
travel to this process. The loss is written once, as for NumPy arrays::

    def loss(w):
        z = X @ w
        return np.mean(np.logaddexp(0.0, z) - y * z)

``dr.value_and_grad(loss)(w)`` returns the value and the gradient as lazy Dask arrays,
computed together by one ``dask.compute``; ``dr.hvp(loss)(w, v)`` the Hessian times ``v``
(forward over reverse). The script checks what it compares: both fits converge
(``success``) to the same coefficients, the two gradients and Hessian-vector products
agree at a random point, and
the coefficients lie within 5 standard errors of the true ones the data were drawn with.
It counts every ``dask.compute`` made while fitting (a counting scheduler wraps the
client's), and checks that a value-and-gradient and an HVP are one computation each: a
computation hidden inside a transform would be another pass over the rows.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

# One BLAS thread per worker process: the workers inherit this environment (two workers
# with one thread each on two cores; threaded BLAS on top would oversubscribe them).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy.optimize as so  # noqa: E402
import scipy.special  # noqa: E402

import dualrev as dr  # noqa: E402

TRUE_W = np.array([0.5, -1.0, 2.0, 0.0, -0.25])  # p = 5 features; repeated for more


def true_coefficients(features: int) -> np.ndarray:
    """The coefficients the labels are drawn with (``TRUE_W`` repeated to ``features``)."""
    return np.resize(TRUE_W, features)


def make_data(rows: int, chunks: int, features: int, seed: int = 0) -> tuple[Any, Any]:
    """``X`` (rows x features, standard normal) and labels ``y`` in {0, 1} with
    P(y = 1) = sigmoid(X @ w_true), as lazy Dask arrays: each chunk is drawn where it is
    computed (on a worker), from the seeded generator's stream for that chunk."""
    import dask.array as da

    rng = da.random.default_rng(seed)
    X = rng.standard_normal((rows, features), chunks=(chunks, features))
    u = rng.random(rows, chunks=chunks)
    y = (u < scipy.special.expit(X @ true_coefficients(features))).astype(np.float64)
    return X, y


def dualrev_problem(X: Any, y: Any) -> tuple[Callable, Callable]:
    """The loss written for NumPy arrays, and dualrev's value-and-gradient and HVP of it."""

    def loss(w: Any) -> Any:
        z = X @ w
        return np.mean(np.logaddexp(0.0, z) - y * z)

    return dr.value_and_grad(loss), dr.hvp(loss)


def handwritten_problem(X: Any, y: Any) -> tuple[Callable, Callable]:
    """The same loss's gradient X^T (s - y) / n and Hessian-vector product
    X^T (s (1 - s) X v) / n with s = sigmoid(X w), written by hand in Dask."""
    n = X.shape[0]

    def value_and_grad(w: np.ndarray) -> tuple[Any, Any]:
        z = X @ w
        value = (np.logaddexp(0.0, z) - y * z).sum() / n
        return value, X.T @ (scipy.special.expit(z) - y) / n

    def hvp(w: np.ndarray, v: np.ndarray) -> Any:
        s = scipy.special.expit(X @ w)
        return X.T @ (s * (1.0 - s) * (X @ v)) / n

    return value_and_grad, hvp


def newton_cg(value_and_grad: Callable, hvp: Callable, w0: np.ndarray,
              xtol: float) -> so.OptimizeResult:
    """scipy's Newton-CG with one ``dask.compute`` per value-and-gradient (the value and
    the gradient share the pass over the rows) and one per Hessian-vector product."""
    import dask

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = dask.compute(*value_and_grad(w))
        return float(value), np.asarray(grad, dtype=np.float64)

    def hessp(w: np.ndarray, v: np.ndarray) -> np.ndarray:
        (hv,) = dask.compute(hvp(w, v))
        return np.asarray(hv, dtype=np.float64)

    return so.minimize(fun, w0, jac=True, hessp=hessp, method="Newton-CG",
                       options={"xtol": xtol, "maxiter": 100})


class CountingScheduler:
    """A scheduler that counts the computations handed to the client (a ``dask.compute``,
    or a conversion of a Dask array to NumPy anywhere) and passes them on."""

    def __init__(self, get: Callable) -> None:
        self.get = get
        self.count = 0

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.get(dsk, keys, **kwargs)


def _fit(name: str, problem: tuple[Callable, Callable], w0: np.ndarray, rows: int,
         xtol: float, counter: CountingScheduler) -> dict[str, Any]:
    before = counter.count
    t0 = time.perf_counter()
    res = newton_cg(*problem, w0, xtol)
    seconds = time.perf_counter() - t0
    computes = counter.count - before
    passes = res.nfev + res.nhev  # our own passes over the rows (one dask.compute each)
    print(f"{name:12s} rows {rows:.0e}  {seconds:7.2f} s  {res.nit:2d} iterations "
          f"({res.nfev} value+gradient, {res.nhev} Hessian-vector products; "
          f"{computes} dask computes)  {rows * computes / seconds:.3g} rows/s "
          f"(row passes per second)  success = {res.success}")
    return {"result": res, "seconds": seconds, "computes": computes, "passes": passes}


def main(rows: int = 10**6, chunks: int = 10**5, features: int = 5, workers: int = 2,
         seed: int = 0, xtol: float = 1e-9, processes: bool = True) -> dict[str, Any]:
    """Fit both ways on a fresh ``LocalCluster`` (closed on return, also on failure) and
    check the fits; returns the numbers it printed.

    Args:
        rows: the number of rows.
        chunks: rows per chunk.
        features: the number of coefficients.
        workers: worker processes (one thread each).
        seed: the data's seed.
        xtol: Newton-CG's tolerance on the coefficients.
        processes: worker processes (True) or threads in this process (False).
    Returns:
        ``{"dualrev": ..., "handwritten": ..., "w": ..., "w_true": ..., "se": ...,
        "grad_difference": ..., "coef_difference": ..., "hvp_difference": ...,
        "computes_per_value_and_grad": ..., "computes_per_hvp": ...}``.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        X, y = client.persist(make_data(rows, chunks, features, seed))
        counter = CountingScheduler(client.get)
        ours, hand = dualrev_problem(X, y), handwritten_problem(X, y)
        w0 = np.zeros(features)
        with dask.config.set(scheduler=counter):
            # the two gradients and HVPs at a random point, in one computation
            w_rand, v_rand = np.random.default_rng(seed + 1).standard_normal((2, features))
            g_ours, g_hand, h_ours, h_hand = dask.compute(
                ours[0](w_rand)[1], hand[0](w_rand)[1],
                ours[1](w_rand, v_rand), hand[1](w_rand, v_rand))
            grad_difference = _relative(g_ours, g_hand)
            hvp_difference = _relative(h_ours, h_hand)
            print(f"at a random point, max relative difference: gradients "
                  f"{grad_difference:.1e}, Hessian-vector products {hvp_difference:.1e}")
            _check({"same gradients": grad_difference < 1e-10,
                    "same Hessian-vector products": hvp_difference < 1e-10})
            # what one call of each costs in computations
            start = counter.count
            dask.compute(*ours[0](w_rand))
            per_vg = counter.count - start
            start = counter.count
            dask.compute(ours[1](w_rand, w_rand))
            per_hvp = counter.count - start

            fits = {"dualrev": _fit("dualrev", ours, w0, rows, xtol, counter),
                    "handwritten": _fit("handwritten", hand, w0, rows, xtol, counter)}
            w = fits["dualrev"]["result"].x
            # standard errors from the exact Hessian at the fit: p Hessian-vector products
            H = np.stack(dask.compute(*[ours[1](w, e) for e in np.eye(features)]))
        se = np.sqrt(np.diag(np.linalg.inv(H)) / rows)

    w_hand, w_true = fits["handwritten"]["result"].x, true_coefficients(features)
    coef_difference = float(np.max(np.abs(w - w_hand)))
    z = (w - w_true) / se
    print(f"coefficients: dualrev {np.round(w, 4)}, hand-written {np.round(w_hand, 4)}, "
          f"max difference {coef_difference:.1e}")
    print(f"true {w_true}; (fitted - true) / standard error: {np.round(z, 2)}")
    print(f"dask computes per call: dualrev value_and_grad {per_vg}, hvp {per_hvp} "
          f"(1: the caller's dask.compute, none inside the transform)")
    _check({"converged": all(f["result"].success for f in fits.values()),
            "same coefficients": coef_difference < 1e-6,
            "one dask.compute per call": per_vg == per_hvp == 1,
            "within 5 standard errors of the truth": bool(np.all(np.abs(z) < 5))})
    return {**fits, "w": w, "w_true": w_true, "se": se, "grad_difference": grad_difference,
            "coef_difference": coef_difference, "hvp_difference": hvp_difference,
            "computes_per_value_and_grad": per_vg,
            "computes_per_hvp": per_hvp}


def _check(ok: dict[str, bool]) -> None:
    failed = [k for k, v in ok.items() if not v]
    if failed:
        raise AssertionError(f"check failed: {', '.join(failed)}")
    print("checks: " + ", ".join(ok))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _cli(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, default=1e6, help="rows (1e8 for the full run)")
    parser.add_argument("--chunks", type=float, default=1e5, help="rows per chunk")
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args(argv)
    return main(rows=int(a.rows), chunks=int(a.chunks), features=a.features,
                workers=a.workers, seed=a.seed)


if __name__ == "__main__":
    _cli()

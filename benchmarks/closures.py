"""What closure conversion (dualrev.closure.lift) costs, in microseconds.

    python benchmarks/closures.py [--repeat 7]

Rows (min over ``--repeat`` runs of many calls each): ``lift`` of a typical callback while
no transform runs (it returns at once), ``lift`` of a lambda closing over one traced value
and of a bound method of an object holding one, inside a transform; a call of the lifted
callback with the same parameters (its cached copy) and with new ones (a rebuild); and
end to end, ``scipy.integrate.quad`` with no transform (dualrev's dispatcher around
SciPy's), and ``grad`` of a quad whose integrand closes over the parameter beside the
same quad written with ``args=``. BLAS threads are pinned to one.
"""

from __future__ import annotations

import argparse
import os
import timeit

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.integrate as si  # noqa: E402

import dualrev as dr  # noqa: E402
from dualrev.catalogue.scipy_functions import ORIGINALS  # noqa: E402
from dualrev.closure import lift  # noqa: E402


class Model:
    def __init__(self, k: float) -> None:
        self.k = k
        self.name = "decay"
        self.grid = np.linspace(0.0, 1.0, 50)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        return -self.k * y


def per_call(fn, number: int, repeat: int) -> float:
    """The least time of one call, in microseconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    rows: list[tuple[str, float]] = []
    a = 1.3
    lam = lambda x: np.exp(-a * x ** 2)  # noqa: E731
    rows.append(("lift, no transform running", per_call(lambda: lift(lam), 100_000, repeat)))

    def inside(t):
        f = lambda x: np.exp(-t * x ** 2)  # noqa: E731
        rows.append(("lift of a lambda over one traced value",
                     per_call(lambda: lift(f), 5_000, repeat)))
        m = Model(t)
        rows.append(("lift of a bound method (object of 3 attributes)",
                     per_call(lambda: lift(m.rhs), 5_000, repeat)))
        g, params = lift(f)
        plain = lambda x: np.exp(-1.3 * x ** 2)  # noqa: E731
        base = per_call(lambda: plain(0.5), 20_000, repeat)
        rows.append(("lifted call, same parameters (cached copy), over the plain call",
                     per_call(lambda: g(0.5, 1.3), 20_000, repeat) - base))
        flip = [1.3, 1.4]

        def rebuilt():
            flip.reverse()
            return g(0.5, flip[0])

        rows.append(("lifted call, new parameters (a rebuild), over the plain call",
                     per_call(rebuilt, 20_000, repeat) - base))
        return t

    dr.grad(inside)(a)
    original = ORIGINALS[si.quad]
    rows.append(("SciPy's quad (no dualrev)",
                 per_call(lambda: original(lam, 0.0, 1.0), 200, repeat)))
    rows.append(("quad through dualrev's dispatcher, no transform",
                 per_call(lambda: si.quad(lam, 0.0, 1.0), 200, repeat)))
    closure = dr.grad(lambda t: si.quad(lambda x: np.exp(-t * x ** 2), 0.0, 1.0)[0])
    with_args = dr.grad(lambda t: si.quad(lambda x, t: np.exp(-t * x ** 2), 0.0, 1.0,
                                          args=(t,))[0])
    rows.append(("grad of quad, integrand closing over t", per_call(lambda: closure(a), 20,
                                                                    repeat)))
    rows.append(("grad of quad, t through args=", per_call(lambda: with_args(a), 20, repeat)))
    print("| row | microseconds |\n|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()

"""Seeded sparsity patterns for tests/test_colouring.py, and the colour counts networkx's
``greedy_color`` strategies need on their column intersection graphs, recorded in
tests/data/colouring_networkx.json so that the comparison runs where networkx is absent.

``python -m tests.colouring_networkx`` recomputes the table (networkx needed; about three
minutes: networkx's DSATUR and independent-set strategies take 10-20 s on a 2000-column
random pattern).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

TABLE = Path(__file__).resolve().parent / "data" / "colouring_networkx.json"

#: networkx's greedy_color strategies (random_sequential is unseeded there: its count
#: varies from run to run, and is never the least)
STRATEGIES = ("largest_first", "random_sequential", "smallest_last", "independent_set",
              "connected_sequential_bfs", "connected_sequential_dfs",
              "saturation_largest_first")


def random_pattern(m: int, n: int, per_row: int, seed: int) -> sp.csr_matrix:
    """``per_row`` distinct random columns in each row."""
    rng = np.random.default_rng(seed)
    cols = np.argsort(rng.random((m, n)), axis=1)[:, :per_row]
    rows = np.repeat(np.arange(m), per_row)
    return sp.csr_matrix((np.ones(rows.size, bool), (rows, cols.ravel())), shape=(m, n))


def banded(n: int, w: int) -> sp.csr_matrix:
    """Half-bandwidth ``w``."""
    return sp.csr_matrix(sp.diags([np.ones(n - abs(k)) for k in range(-w, w + 1)],
                                  list(range(-w, w + 1)), shape=(n, n)), dtype=bool)


def block(n: int, b: int) -> sp.csr_matrix:
    """Dense ``b`` x ``b`` blocks on the diagonal (the last one smaller)."""
    i = np.arange(n)
    return sp.csr_matrix((i[:, None] // b) == (i[None, :] // b))


def arrow(n: int, w: int = 0) -> sp.csr_matrix:
    """A band of half-width ``w``, and a full last row and column."""
    P = banded(n, w).tolil()
    P[-1, :] = True
    P[:, -1] = True
    return sp.csr_matrix(P, dtype=bool)


def stencil(N: int) -> sp.csr_matrix:
    """The 5-point Laplacian on an N x N grid."""
    T = banded(N, 1).astype(float)
    eye = sp.eye(N)
    return sp.csr_matrix(sp.kron(T, eye) + sp.kron(eye, T), dtype=bool)


def stencil3(N: int) -> sp.csr_matrix:
    """The 7-point Laplacian on an N x N x N grid."""
    T = banded(N, 1).astype(float)
    eye = sp.eye(N)
    return sp.csr_matrix(sp.kron(sp.kron(T, eye), eye) + sp.kron(sp.kron(eye, T), eye)
                         + sp.kron(sp.kron(eye, eye), T), dtype=bool)


@functools.cache
def cases() -> dict[str, sp.csr_matrix]:
    """The patterns of the recorded table, by name (built once; do not modify them)."""
    out = {f"random-2000x2000x5-seed{s}": random_pattern(2000, 2000, 5, s)
           for s in range(4)}
    out.update({f"random-300x300x4-seed{s}": random_pattern(300, 300, 4, s)
                for s in range(3)})
    out.update({
        "random-400x250x3-seed7": random_pattern(400, 250, 3, 7),
        "banded-2000-w1": banded(2000, 1),
        "banded-2000-w3": banded(2000, 3),
        "block-2000-b7": block(2000, 7),
        "arrow-300": arrow(300),
        "arrow-300-w1": arrow(300, 1),
        "stencil-40": stencil(40),
        "stencil-33": stencil(33),
    })
    return out


def column_graph(P: sp.csr_matrix):  # -> networkx.Graph
    import networkx as nx

    P = sp.csc_matrix(P, dtype=bool)
    G = sp.csr_matrix(P.T @ P)
    G.setdiag(False)
    G.eliminate_zeros()
    g = nx.from_scipy_sparse_array(G)
    return g


def networkx_counts(P: sp.csr_matrix, strategies=STRATEGIES) -> dict[str, int]:
    """The colours each networkx strategy needs on P's column intersection graph."""
    import networkx as nx

    g = column_graph(P)
    return {s: max(nx.greedy_color(g, s).values(), default=-1) + 1 for s in strategies}


def main() -> None:
    import networkx as nx

    table = {"networkx": nx.__version__, "cases": {}}
    for name, P in cases().items():
        t = time.perf_counter()
        counts = networkx_counts(P)
        table["cases"][name] = {"counts": counts,
                                "best": min(counts.values())}
        print(name, counts, f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()

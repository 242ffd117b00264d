"""Graph colourings for compressed sparse derivatives, and the recovery of the matrix
from its compressed products.

A Jacobian ``J`` (m x n) whose columns are coloured so that no two columns of one colour
share a nonzero row is known from ``B = J @ S`` (one forward pass of ``c`` tangents,
``S[j, colours[j]] = 1``): each entry of ``B`` holds exactly one entry of ``J``. Rows
coloured the same way give ``C = W.T @ J`` (one reverse pass of ``c`` cotangents). A
symmetric Hessian needs less: a *star colouring* of its adjacency graph (a proper
colouring in which every path on four vertices uses at least three colours) lets every
entry be read directly from ``B = H @ S``, at ``(i, colour j)`` or at the symmetric
``(j, colour i)`` (Coleman and Moré 1984; Gebremedhin, Manne and Pothen, "What color is
your Jacobian?", SIAM Review 2005).

The colourings are greedy in a vertex order (``ORDERS``). Graphs are built with
``scipy.sparse`` products; the sequential greedy part runs over Python lists. networkx
is not used (nor needed): its ``greedy_color`` takes about 10 s for DSATUR on a
2000-vertex column graph, and its graphs hold Python dicts per vertex, too slow for
10^6 columns (docs/design.md, 2026-12-06).
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import DualrevError

__all__ = ["ORDERS", "GraphTooLargeError", "colour_columns", "colour_rows", "colour_symmetric",
           "recover_columns", "recover_rows", "recover_symmetric"]

#: the vertex orders the colourings take; ``"best"`` tries several (see colour_columns)
ORDERS = ("best", "smallest_last", "largest_first", "natural", "incidence_degree",
          "dsatur")

# the orders "best" tries after smallest-last, for distance-2 and for star colourings
_BEST_DISTANCE2 = ("dsatur",)
_BEST_STAR = ("natural", "largest_first", "incidence_degree", "dsatur")
#: "best" tries the orders after smallest-last on graphs of at most this many adjacency
#: entries (DSATUR takes about 1.6 s on 4·10^5 of them on the shared 2-core machine); on
#: larger ones a valid cyclic star colouring is kept without trying greedy ones
BEST_LIMIT = 200_000
#: the most colours the lattice colourings of 3-D grids are tried with (k² candidates
#: each: 7 colours the 7-point stencil)
LAYERED = 8
#: a vertex of more neighbours than this and ten times the median is a hub, which
#: colour_symmetric's "best" gives a colour of its own
HUB_DEGREE = 32
# Culberson's iterated greedy passes "best" runs on a distance-2 colouring at most
_RECOLOUR_PASSES = 8


#: the most entries a column (or row) intersection graph may have (int64 indices: 400 MB)
GRAPH_LIMIT = 50_000_000


class GraphTooLargeError(DualrevError):
    """A distance-2 colouring whose intersection graph would be too large to build: a
    row with most of the columns makes them all conflict (as many colours, that is
    passes, as its entries). Colour the other way, or split the dense row off.

    Example:
        >>> import scipy.sparse as sp
        >>> from dualrev.sparse import colour_columns
        >>> P = sp.lil_matrix((20000, 20000))
        >>> P.setdiag(1)
        >>> P[0, ::2] = 1  # a row with half the columns
        >>> colour_columns(P)
        Traceback (most recent call last):
        ...
        dualrev.colouring.GraphTooLargeError: dualrev: colour_columns: the column ...
    """

    def __init__(self, what: str, entries: int, line: int, count: int, total: int,
                 side: str, other: str) -> None:
        super().__init__(
            f"dualrev: {what}: the {side} intersection graph would have about {entries} "
            "entries "
            f"(above GRAPH_LIMIT = {GRAPH_LIMIT}): {other} {line} of the pattern has "
            f"{count} of the {total} {side}s, which all need different colours (at "
            f"least {count} passes); colour the other way "
            f"({'colour_rows' if side == 'column' else 'colour_columns'}), or split the "
            f"dense {other} off")


def _csr(pattern: Any, what: str) -> sp.csr_matrix:
    """The pattern as a canonical boolean CSR matrix (sorted, no duplicates). A sparse
    matrix's stored entries all count, explicit zeros too (as SciPy reads
    ``jac_sparsity``): a value that is zero at one point may not be at another. A dense
    array's non-zeros count."""
    if sp.issparse(pattern):
        Q = sp.csr_matrix(pattern)
        P = sp.csr_matrix((np.ones(Q.nnz, dtype=bool), Q.indices.copy(), Q.indptr.copy()),
                          shape=Q.shape)
        P.sum_duplicates()
        P.sort_indices()
        return P
    a = np.asarray(pattern)
    if a.ndim != 2:
        raise ValueError(f"{what}: the pattern must be 2-D, got shape {a.shape}")
    P = sp.csr_matrix(a != 0)
    P.sort_indices()
    return P


def _check_order(order: str, what: str) -> None:
    if order not in ORDERS:
        raise ValueError(f"{what}: order must be one of {ORDERS}, got {order!r}")


def _without_diagonal(G: sp.csr_matrix, as_lists: bool = True) -> tuple[Any, Any]:
    """The adjacency lists (indptr, indices) of square ``G`` less its diagonal."""
    n = G.shape[0]
    counts = np.diff(G.indptr)
    row = np.repeat(np.arange(n), counts)
    keep = G.indices != row
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[keep], minlength=n), out=indptr[1:])
    if not as_lists:
        return indptr, G.indices[keep].astype(np.int64)
    return indptr.tolist(), G.indices[keep].tolist()


def _column_graph(P: sp.csr_matrix) -> tuple[list[int], list[int]]:
    """The column intersection graph: columns adjacent when they share a row."""
    Pc = P.tocsc()
    G = (Pc.T @ Pc).tocsr()
    G.sort_indices()
    return _without_diagonal(G)


def _symmetric_graph(P: sp.csr_matrix, as_lists: bool = True) -> tuple[Any, Any]:
    """The adjacency graph of ``P | P.T`` (lists, or arrays where ``as_lists`` is
    False)."""
    G = (P + P.T).tocsr()
    G.sort_indices()
    return _without_diagonal(G, as_lists)


# ---------------------------------------------------------------------------------------
# vertex orders

def _smallest_last(n: int, indptr: list[int], indices: list[int]) -> list[int]:
    """Matula and Beck's smallest-last order: repeatedly remove a vertex of least degree
    in what remains; colour in the reverse order of removal. Linear time with buckets of
    vertices by their remaining degree."""
    deg = [indptr[v + 1] - indptr[v] for v in range(n)]
    buckets: list[set[int]] = [set() for _ in range(max(deg, default=0) + 1)]
    for v, d in enumerate(deg):
        buckets[d].add(v)
    removed = bytearray(n)
    order = []
    d = 0
    for _ in range(n):
        d = max(d - 1, 0)  # one removal lowers the least degree by at most one
        while not buckets[d]:
            d += 1
        v = buckets[d].pop()
        removed[v] = 1
        order.append(v)
        for u in indices[indptr[v]:indptr[v + 1]]:
            if not removed[u]:
                du = deg[u]
                buckets[du].discard(u)
                deg[u] = du - 1
                buckets[du - 1].add(u)
    order.reverse()
    return order


def _incidence_degree(n: int, indptr: list[int], indices: list[int]) -> list[int]:
    """Coleman and Moré's incidence-degree order: next, a vertex with the most
    neighbours already ordered (buckets by that count, as smallest-last)."""
    inc = [0] * n
    buckets: list[set[int]] = [set(range(n))]
    if n:
        buckets += [set() for _ in range(max(indptr[v + 1] - indptr[v] for v in range(n)))]
    done = bytearray(n)
    order = []
    d = 0
    for _ in range(n):
        while not buckets[d]:
            d -= 1
        v = buckets[d].pop()
        done[v] = 1
        order.append(v)
        for u in indices[indptr[v]:indptr[v + 1]]:
            if not done[u]:
                du = inc[u]
                buckets[du].discard(u)
                inc[u] = du + 1
                buckets[du + 1].add(u)
                if du + 1 > d:
                    d = du + 1
    return order


def _largest_first(n: int, indptr: list[int], indices: list[int]) -> list[int]:
    return np.argsort(-np.diff(np.asarray(indptr)), kind="stable").tolist()


def _order(order: str, n: int, indptr: list[int], indices: list[int]) -> list[int]:
    if order == "natural":
        return list(range(n))
    if order == "largest_first":
        return _largest_first(n, indptr, indices)
    if order == "incidence_degree":
        return _incidence_degree(n, indptr, indices)
    if order == "dsatur":
        # a static order for the star colouring: the one DSATUR colours the graph in
        return _dsatur(n, indptr, indices)[1]
    return _smallest_last(n, indptr, indices)


# ---------------------------------------------------------------------------------------
# distance-1 greedy colourings (of the column or row intersection graph)

def _greedy(n: int, indptr: list[int], indices: list[int], seq: Any) -> list[int]:
    """Each vertex in turn takes the least colour none of its neighbours has."""
    colours = [-1] * n
    mark = [-1] * (n + 1)  # mark[c] == v: colour c is taken by a neighbour of v
    for v in seq:
        for u in indices[indptr[v]:indptr[v + 1]]:
            c = colours[u]
            if c >= 0:
                mark[c] = v
        c = 0
        while mark[c] == v:
            c += 1
        colours[v] = c
    return colours


def _dsatur(n: int, indptr: list[int], indices: list[int]) -> tuple[list[int], list[int]]:
    """Brélaz's DSATUR: next, the uncoloured vertex whose neighbours show the most
    distinct colours (ties: the larger degree, then the lower index), given the least
    colour free there. A heap with stale entries skipped. Returns (colours, order)."""
    colours = [-1] * n
    seen: list[set[int]] = [set() for _ in range(n)]  # the neighbours' colours
    heap = [(0, indptr[v] - indptr[v + 1], v) for v in range(n)]
    heapq.heapify(heap)
    order = []
    mark = [-1] * (n + 1)
    push, pop = heapq.heappush, heapq.heappop
    while heap:
        sat, negdeg, v = pop(heap)
        if colours[v] >= 0 or -sat != len(seen[v]):
            continue
        nbrs = indices[indptr[v]:indptr[v + 1]]
        for c in seen[v]:
            mark[c] = v
        c = 0
        while mark[c] == v:
            c += 1
        colours[v] = c
        order.append(v)
        for u in nbrs:
            if colours[u] < 0:
                s = seen[u]
                if c not in s:
                    s.add(c)
                    push(heap, (-len(s), indptr[u] - indptr[u + 1], u))
    return colours, order


def _recolour(n: int, indptr: list[int], indices: list[int], colours: list[int]
              ) -> list[int]:
    """Culberson's iterated greedy: colour again, taking the colour classes one after
    another (here the largest class last, so the small ones fold into earlier colours).
    A class is independent, so each vertex gets a colour no higher than its class's
    position: the count never grows."""
    k = max(colours, default=-1) + 1
    sizes = np.bincount(np.asarray(colours, dtype=np.int64), minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")[::-1]] = np.arange(k)
    seq = np.argsort(rank[np.asarray(colours, dtype=np.int64)], kind="stable").tolist()
    return _greedy(n, indptr, indices, seq)


def _distance1(n: int, indptr: list[int], indices: list[int], order: str,
               bound: int) -> list[int]:
    """A greedy colouring of the graph in ``order``; ``"best"``: smallest-last, and
    when it needs more than ``bound`` colours (a lower bound), the fewest of the other
    orders, then iterated greedy passes while they help."""
    if order == "dsatur":
        return _dsatur(n, indptr, indices)[0]
    if order != "best":
        return _greedy(n, indptr, indices, _order(order, n, indptr, indices))
    best = _greedy(n, indptr, indices, _smallest_last(n, indptr, indices))
    k = max(best, default=-1) + 1
    for other in _BEST_DISTANCE2 if len(indices) <= BEST_LIMIT else ():
        if k <= bound:
            return best
        c = _distance1(n, indptr, indices, other, bound)
        if max(c) + 1 < k:
            best, k = c, max(c) + 1
    for _ in range(_RECOLOUR_PASSES):
        if k <= bound:
            break
        c = _recolour(n, indptr, indices, best)
        best = c
        if max(c) + 1 == k:
            # a pass that saves nothing is often followed by one that does; one more
            c = _recolour(n, indptr, indices, best)
            if max(c) + 1 == k:
                break
            best = c
        k = max(best) + 1
    return best


def _grid_lengths(rows: np.ndarray, cols: np.ndarray) -> list[int]:
    """The row lengths of a grid a stencil pattern may live on: its entries' distinct
    offsets ``|j - i|`` above 1, where there are few (a 2-D stencil on an N-wide grid
    has N among them); none where there are many."""
    offsets = np.unique(np.abs(cols - rows))
    offsets = offsets[offsets > 1]
    return offsets.tolist() if offsets.size <= 16 else []


def _cyclic(P: sp.csr_matrix, ks: Any, valid: Any, layered: int = 0
            ) -> np.ndarray | None:
    """A lattice colouring for the least ``k`` in ``ks`` that
    ``valid(rows, cols, colours, k)`` accepts, or None: ``j mod k``; ``(x + s*y) mod k``
    on a 2-D grid N wide (``x = j mod N``, ``y = j // N``; ``(x + 2y) mod 5`` colours
    the 5-point stencil), N one of the pattern's offsets; and for ``k <= layered``,
    ``(x + s*y + t*z) mod k`` on a 3-D grid A wide and B per layer, both offsets
    (``(x + 2y + 3z) mod 7`` colours the 7-point stencil). Each candidate is first tried
    on a principal window of rows and columns (a failure there is one everywhere, for
    the distance-2 and the star conditions alike), then on the whole pattern."""
    m, n = P.shape
    j = np.arange(n, dtype=np.int64)
    rows, cols = _entries(P)
    mid = m // 2
    # a stencil's offsets show in any rows away from the boundary: read the middle ones
    sample = slice(P.indptr[max(mid - 512, 0)], P.indptr[min(mid + 512, m)])
    grids = _grid_lengths(rows[sample], cols[sample])
    width = 4 * max(grids, default=max(ks, default=1)) + 64
    lo, hi = max(mid - width // 2, 0), min(mid + width // 2, min(m, n))
    if m == n:
        window, jw = P[lo:hi, lo:hi], j[lo:hi]
    else:
        window, jw = P[lo:hi], j
    wrows, wcols = _entries(window)
    layers = [(A, B) for A in grids for B in grids if B > A and B % A == 0]

    def forms(k: int) -> Any:
        yield lambda i: i % k
        for N in grids:
            for step in range(k):
                yield lambda i, N=N, step=step: (i % N + step * (i // N)) % k
        if k <= layered:
            for A, B in layers:
                for s in range(k):
                    for t in range(k):
                        yield lambda i, A=A, B=B, s=s, t=t: (
                            i % A + s * ((i // A) % (B // A)) + t * (i // B)) % k

    for k in ks:
        for form in forms(k):
            if not valid(wrows, wcols, form(jw), k):
                continue
            colours = form(j)
            if valid(rows, cols, colours, k):
                # numbered 0 .. k-1 with none unused (a narrow grid may leave some out)
                return np.unique(colours, return_inverse=True)[1].astype(np.int64)
    return None


def _valid_columns(rows: np.ndarray, cols: np.ndarray, colours: np.ndarray,
                   k: int) -> bool:
    return _distinct_in_rows(rows, colours[cols], k)


def colour_columns(pattern: Any, order: str = "best") -> np.ndarray:
    """A colour per column such that no two columns of one colour share a nonzero row
    (a distance-2 colouring of the bipartite row/column graph: a colouring of the
    column intersection graph), for forward mode: one tangent per colour.

    Guaranteed: every row's columns have distinct colours, and the colours are
    ``0 .. k-1`` with none unused; ``k`` is at least the most entries of one row (the
    lower bound). Which ``k`` depends on ``order`` (greedy in a vertex order):
    ``"smallest_last"`` (Matula and Beck), ``"largest_first"`` (by degree),
    ``"natural"`` (column order), ``"incidence_degree"`` (Coleman and Moré),
    ``"dsatur"`` (Brélaz: the most distinctly coloured neighbours next). ``"best"``
    (default) first tries lattice colourings with as many colours as the lower bound
    (``j mod k``; ``(x + s*y) mod k`` for a 2-D grid whose width is one of the
    pattern's offsets; ``(x + s*y + t*z) mod k`` for a 3-D one, up to ``LAYERED``
    colours): optimal where valid, as on banded patterns and 5- and 7-point stencils,
    and found in vectorised passes. Otherwise it runs smallest-last, then
    (on column graphs of at most ``BEST_LIMIT`` entries) DSATUR, keeps the fewer, and
    improves it with iterated greedy passes (Culberson), which never add a colour. On
    the random, banded, block, arrow and stencil patterns of tests/test_colouring.py it
    needs no more colours than the best of networkx's ``greedy_color`` strategies
    (docs/sparse.md, "Colouring").

    Args:
        pattern: the (m, n) pattern: a dense array (its non-zeros) or a
            ``scipy.sparse`` matrix (its stored entries, explicit zeros included).
        order: one of ``ORDERS``.
    Returns:
        An int64 array of shape ``(n,)``: each column's colour, from 0.
    Raises:
        ValueError: an unknown ``order``, or a pattern that is not 2-D.
        GraphTooLargeError: the column intersection graph would have more than
            ``GRAPH_LIMIT`` entries (rows with most of the columns), where no lattice
            colouring is found.
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import colour_columns
        >>> c = colour_columns(np.eye(5) + np.eye(5, k=1) + np.eye(5, k=-1))
        >>> int(c.max()) + 1
        3
    """
    _check_order(order, "colour_columns")
    return _colour_distance2(_csr(pattern, "colour_columns"), order, "colour_columns",
                             "column", "row")


def _colour_distance2(P: sp.csr_matrix, order: str, what: str, side: str,
                      other: str) -> np.ndarray:
    """A colour per column of ``P`` such that columns sharing a row differ."""
    if P.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    bound = max(int(np.diff(P.indptr).max(initial=1)), 1)
    if order == "best":
        # columns taken cyclically: optimal where valid (banded patterns, 2-D stencils)
        cyclic = _cyclic(P, [bound], _valid_columns, layered=LAYERED)
        if cyclic is not None:
            return cyclic
    counts = np.diff(P.indptr)
    entries = int((counts.astype(np.int64) ** 2).sum())  # the graph's size, at most
    if entries > GRAPH_LIMIT:
        line = int(counts.argmax())
        raise GraphTooLargeError(what, entries, line, int(counts[line]), P.shape[1], side,
                                 other)
    indptr, indices = _column_graph(P)
    return np.asarray(_distance1(P.shape[1], indptr, indices, order, bound),
                      dtype=np.int64)


def colour_rows(pattern: Any, order: str = "best") -> np.ndarray:
    """A colour per row such that no two rows of one colour share a nonzero column
    (``colour_columns`` of the transposed pattern), for reverse mode: one cotangent per
    colour, ``C = W.T @ J`` with ``W[i, colours[i]] = 1``.

    Guaranteed: every column's rows have distinct colours; the colours are ``0 .. k-1``
    with none unused; ``order`` as in ``colour_columns``.

    Args:
        pattern: the (m, n) pattern: a dense array (its non-zeros) or a
            ``scipy.sparse`` matrix (its stored entries, explicit zeros included).
        order: one of ``ORDERS``.
    Returns:
        An int64 array of shape ``(m,)``: each row's colour, from 0.
    Raises:
        ValueError: an unknown ``order``, or a pattern that is not 2-D.
        GraphTooLargeError: the row intersection graph would have more than
            ``GRAPH_LIMIT`` entries (columns with most of the rows).
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import colour_rows
        >>> P = np.zeros((4, 4), bool); P[:, 0] = True; P[np.arange(4), np.arange(4)] = True
        >>> colour_rows(P).max() + 1, colour_rows(P.T).max() + 1  # a full column; a row
        (np.int64(4), np.int64(2))
    """
    _check_order(order, "colour_rows")
    return _colour_distance2(_csr(pattern, "colour_rows").T.tocsr(), order, "colour_rows",
                             "row", "column")


# ---------------------------------------------------------------------------------------
# star colouring (symmetric patterns)

def _star(n: int, indptr: list[int], indices: list[int], seq: list[int]) -> list[int]:
    """Greedy star colouring in the order ``seq``.

    A vertex ``v`` takes the least colour that keeps the colouring proper and puts it
    on no path of four vertices with two colours. Such a path has ``v`` at an end,
    ``v-w-x-y`` with colour(x) = colour(v) and colour(y) = colour(w): ``x`` then has two
    neighbours of colour(w) (a *hub* over ``w``), so every hub over a neighbour ``w``
    forbids its colour; or inside, ``w-v-x-y`` with colour(w) = colour(x) and
    colour(y) = colour(v): when two neighbours share a colour, the colours around each
    of them are forbidden. Kept per vertex: ``first[x]``, for each colour around ``x``,
    its first neighbour of that colour (``~u`` once there are two: ``x`` is a hub), and
    ``hubs[w]``, the colours of the hubs over ``w``. The work is about the number of
    edges times the number of colours, also for a vertex adjacent to all others.
    """
    colours = [-1] * n
    first: list[dict[int, int] | None] = [None] * n
    hubs: list[set[int] | None] = [None] * n
    mark = [-1] * (n + 2)
    for v in seq:
        nbrs = [u for u in indices[indptr[v]:indptr[v + 1]] if colours[u] >= 0]
        mine: dict[int, int] = {}
        repeated = []
        for w in nbrs:
            cw = colours[w]
            mark[cw] = v  # proper
            hw = hubs[w]
            if hw:
                for c in hw:  # v-w-x-y, x a hub over w
                    mark[c] = v
            u = mine.get(cw)
            if u is None:
                mine[cw] = w
            else:
                if u >= 0:
                    mine[cw] = ~u
                    repeated.append(u)
                repeated.append(w)
        for x in repeated:  # w-v-x-y: the colours around x
            fx = first[x]
            if fx:
                for c in fx:
                    mark[c] = v
        c = 0
        while mark[c] == v:
            c += 1
        colours[v] = c
        first[v] = mine
        for cw, u in mine.items():
            if u < 0:  # v is a hub over its neighbours of colour cw
                for w in nbrs:
                    if colours[w] == cw:
                        h = hubs[w]
                        if h is None:
                            hubs[w] = {c}
                        else:
                            h.add(c)
        for w in nbrs:  # v is a new neighbour of colour c around w
            fw = first[w]
            if fw is None:
                first[w] = {c: v}
                continue
            u = fw.get(c)
            if u is None:
                fw[c] = v
                continue
            cw = colours[w]
            if u >= 0:  # w becomes a hub over u and v
                fw[c] = ~u
                h = hubs[u]
                if h is None:
                    hubs[u] = {cw}
                else:
                    h.add(cw)
            h = hubs[v]
            if h is None:
                hubs[v] = {cw}
            else:
                h.add(cw)
    return colours


def _has_path4(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """Whether the graph has a path on four vertices a-u-v-b: an edge u-v whose ends
    have other neighbours, two distinct ones (where both have one other, a triangle is
    not such a path)."""
    deg = np.diff(np.asarray(indptr, dtype=np.int64))
    u = np.repeat(np.arange(deg.size, dtype=np.int64), deg)
    v = np.asarray(indices, dtype=np.int64)
    du, dv = deg[u], deg[v]
    both = (du >= 2) & (dv >= 2)
    if ((du + dv >= 5) & both).any():
        return True
    total = np.bincount(u, weights=v, minlength=deg.size).astype(np.int64)
    return bool((both & (total[u] - v != total[v] - u)).any())


def colour_symmetric(pattern: Any, order: str = "best") -> np.ndarray:
    """A star colouring of the adjacency graph of a symmetric (n, n) pattern (a
    Hessian's), for Hessian-vector products: one vector per colour, and every entry of
    ``H`` read directly from ``B = H @ S`` by ``recover_symmetric``.

    Guaranteed: the colouring is proper (no two adjacent vertices share a colour) and
    every path on four vertices uses at least three colours (so for each nonzero
    ``H[i, j]``, colour j is unique among row i's entries or colour i among row j's);
    the colours are ``0 .. k-1`` with none unused. The pattern is read as
    ``pattern | pattern.T`` (the diagonal does not matter). ``"best"`` gets: a
    tridiagonal pattern (Rosenbrock's Hessian) 3 colours at every n, a diagonal one 1,
    an arrow (a diagonal and a full last row and column) 2, an arrow around a
    tridiagonal band 4, a band of half-width w 2w + 1, the 5-point stencil 5, the
    13-point one (the Hessian of a sum of squares of 5-point residuals) 13, the 3-D
    7-point stencil 7; a
    distance-2 colouring would need n for an arrow. ``order`` is the order vertices are
    coloured in greedily (``"dsatur"``: the order DSATUR colours the graph in).
    ``"best"`` (default) gives each *hub* (a vertex of more than ``HUB_DEGREE``
    neighbours and ten times the median, as a global parameter makes) a colour of its
    own and colours the rest without them (a colour used once lies on no two-coloured
    path); it tries lattice colourings (as ``colour_columns``) from the lower bound up (1
    without edges, 2, or 3 with a path on four vertices), keeps one at the bound, and
    on graphs of more than ``BEST_LIMIT`` adjacency entries keeps the first found;
    otherwise it also runs the greedy colouring in smallest-last order and, on graphs up
    to ``BEST_LIMIT``, in the other orders, and keeps the fewest colours.

    Args:
        pattern: the (n, n) pattern: a dense array (its non-zeros) or a
            ``scipy.sparse`` matrix (its stored entries, explicit zeros included).
        order: one of ``ORDERS``.
    Returns:
        An int64 array of shape ``(n,)``: each vertex's (row's and column's) colour.
    Raises:
        ValueError: an unknown ``order``, or a pattern that is not square.
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import colour_symmetric
        >>> n = 1000
        >>> tridiagonal = np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)
        >>> int(colour_symmetric(tridiagonal).max()) + 1
        3
    """
    _check_order(order, "colour_symmetric")
    P = _csr(pattern, "colour_symmetric")
    n = P.shape[0]
    if P.shape[1] != n:
        raise ValueError(f"colour_symmetric: the pattern must be square, got {P.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    indptr_a, indices_a = _symmetric_graph(P, as_lists=False)
    if order != "best":
        indptr, indices = indptr_a.tolist(), indices_a.tolist()
        return np.asarray(_star(n, indptr, indices, _order(order, n, indptr, indices)),
                          dtype=np.int64)
    # a lower bound: 1 without edges, 2 with one, 3 with a path on four vertices
    bound = 1 if not indices_a.size else 3 if _has_path4(indptr_a, indices_a) else 2
    S = _csr(P + P.T, "colour_symmetric")
    deg = np.diff(indptr_a)
    widest = int(deg.max()) + 1
    large = indices_a.size > BEST_LIMIT
    best = None
    hubs = deg > max(HUB_DEGREE, 10 * int(np.median(deg)))
    if hubs.any() and not hubs.all():
        # vertices adjacent to (nearly) all others, as a global parameter makes: each
        # its own colour, the rest coloured without them. A colour used once lies on no
        # two-coloured path, so paths through a hub need nothing more: an arrow takes
        # 2 colours, an arrow around a band the band's and 1
        rest = np.flatnonzero(~hubs)
        inner = colour_symmetric(S[rest][:, rest], "best")
        split = np.empty(n, dtype=np.int64)
        split[rest] = inner
        split[hubs] = inner.max(initial=-1) + 1 + np.arange(int(hubs.sum()))
        if large:
            return split
        best = split.tolist()
    # vertices taken cyclically: a band of half-width w takes 2w + 1 colours so
    cyclic = _cyclic(S, range(bound, min(widest, bound + 16) + 1), _is_star,
                     layered=LAYERED)
    if cyclic is not None:
        if cyclic.max(initial=0) + 1 == bound or large:
            # optimal (tridiagonal patterns); or on a large graph, where greedy orders
            # find no fewer on bands and stencils, at seconds' cost
            return cyclic
        if best is None or cyclic.max() < max(best):
            best = cyclic.tolist()
    indptr, indices = indptr_a.tolist(), indices_a.tolist()
    tries = ("smallest_last",) + (() if large else _BEST_STAR)
    for other in tries:
        if best is not None and max(best) + 1 <= bound:
            break
        c = _star(n, indptr, indices, _order(other, n, indptr, indices))
        if best is None or max(c) < max(best):
            best = c
    return np.asarray(best, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# recovery

def _colours_array(colours: Any, size: int, what: str) -> np.ndarray:
    c = np.asarray(colours)
    if c.shape != (size,) or (size and (c.dtype.kind not in "iu" or c.min() < 0)):
        raise ValueError(f"{what}: colours must be {size} non-negative integers, got "
                         f"shape {c.shape} and dtype {c.dtype}")
    return c.astype(np.int64, copy=False)


def _compressed(compressed: Any, shape: tuple[int, int], what: str,
                rows_fixed: bool = True) -> np.ndarray:
    """``compressed`` as an array of ``shape``; the colours' side may be longer (an
    unused colour)."""
    B = compressed.toarray() if sp.issparse(compressed) else np.asarray(compressed)
    if rows_fixed:
        fits = B.ndim == 2 and B.shape[0] == shape[0] and B.shape[1] >= shape[1]
    else:
        fits = B.ndim == 2 and B.shape[1] == shape[1] and B.shape[0] >= shape[0]
    if not fits:
        raise ValueError(f"{what}: the compressed matrix must have shape {shape}, got "
                         f"{B.shape}")
    return B


def _counts(rows: np.ndarray, colours: np.ndarray, k: int) -> tuple[np.ndarray, Any]:
    """Per entry, how many entries of its row have its colour; and a look-up of that
    count for any (row, colour) key: a table where rows x colours is small, else the
    sorted keys and their counts."""
    keys = rows * k + colours
    size = (int(rows.max()) + 1) * k if rows.size else 0
    if size <= 4 * rows.size + 1024:
        table = np.bincount(keys, minlength=size)
        return table[keys], table
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse], (uniq, counts)


def _lookup(table: Any, keys: np.ndarray) -> np.ndarray:
    if isinstance(table, tuple):
        uniq, counts = table
        return counts[np.searchsorted(uniq, keys)]
    return table[keys]


def _entries(P: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of the entries of canonical ``P``, in its order."""
    rows = np.repeat(np.arange(P.shape[0], dtype=np.int64), np.diff(P.indptr))
    return rows, P.indices.astype(np.int64)


def _distinct_in_rows(rows: np.ndarray, colours: np.ndarray, k: int) -> bool:
    """Whether no row has two entries of one colour."""
    return not rows.size or int(_counts(rows, colours, k)[0].max()) <= 1


def _is_star(rows: np.ndarray, cols: np.ndarray, colours: np.ndarray, k: int) -> bool:
    """Whether ``colours`` is a star colouring of the symmetric pattern with these
    entries: proper, and at every edge i-j colour j is unique in row i or colour i in
    row j (two repeats there would make a path on four vertices with two colours)."""
    off = rows != cols
    rows, cols = rows[off], cols[off]
    if not rows.size:
        return True
    ci, cj = colours[rows], colours[cols]
    if (ci == cj).any():
        return False
    here, table = _counts(rows, cj, k)
    there = _lookup(table, cols * k + ci)
    return bool(((here == 1) | (there == 1)).all())


def recover_columns(pattern: Any, colours: Any, compressed: Any) -> sp.csr_matrix:
    """``J`` from its compressed product ``B = J @ S`` (``S[j, colours[j]] = 1``, one
    column per colour of a column colouring): ``J[i, j] = B[i, colours[j]]`` at every
    entry of the pattern.

    Args:
        pattern: the (m, n) pattern the colouring was made for.
        colours: the column colours, as ``colour_columns`` gives them.
        compressed: ``B``, an (m, k) array (k colours), of any dtype.
    Returns:
        A ``scipy.sparse.csr_matrix`` of shape (m, n) with the pattern's entries (stored
        even where they are zero at this point), of ``B``'s dtype.
    Raises:
        ValueError: shapes that do not fit, or colours that are not a valid column
            colouring of the pattern (two columns of a colour in one row).
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import colour_columns, recover_columns
        >>> J = np.diag([1.0, 2, 3, 4]) + np.diag([5.0, 6, 7], 1)
        >>> c = colour_columns(J != 0)
        >>> S = np.eye(int(c.max()) + 1)[c]
        >>> bool((recover_columns(J != 0, c, J @ S).toarray() == J).all())
        True
    """
    P = _csr(pattern, "recover_columns")
    m, n = P.shape
    c = _colours_array(colours, n, "recover_columns")
    k = int(c.max(initial=-1)) + 1
    B = _compressed(compressed, (m, k), "recover_columns")
    rows, cols = _entries(P)
    cc = c[cols]
    if not _distinct_in_rows(rows, cc, k):
        raise ValueError("recover_columns: two columns of one colour share a row of the "
                         "pattern; colour it with colour_columns(pattern)")
    return sp.csr_matrix((B[rows, cc], P.indices, P.indptr), shape=(m, n))


def recover_rows(pattern: Any, colours: Any, compressed: Any) -> sp.csr_matrix:
    """``J`` from its compressed product ``C = W.T @ J`` (``W[i, colours[i]] = 1``, one
    cotangent per colour of a row colouring): ``J[i, j] = C[colours[i], j]``.

    Args:
        pattern: the (m, n) pattern the colouring was made for.
        colours: the row colours, as ``colour_rows`` gives them.
        compressed: ``C``, a (k, n) array (k colours), of any dtype.
    Returns:
        A ``scipy.sparse.csr_matrix`` of shape (m, n) with the pattern's entries, of
        ``C``'s dtype.
    Raises:
        ValueError: shapes that do not fit, or colours that are not a valid row
            colouring of the pattern.
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import colour_rows, recover_rows
        >>> J = np.diag([1.0, 2, 3, 4]) + np.diag([5.0, 6, 7], 1)
        >>> c = colour_rows(J != 0)
        >>> W = np.eye(int(c.max()) + 1)[c]
        >>> bool((recover_rows(J != 0, c, W.T @ J).toarray() == J).all())
        True
    """
    P = _csr(pattern, "recover_rows")
    m, n = P.shape
    c = _colours_array(colours, m, "recover_rows")
    k = int(c.max(initial=-1)) + 1
    C = _compressed(compressed, (k, n), "recover_rows", rows_fixed=False)
    rows, cols = _entries(P)
    cr = c[rows]
    if not _distinct_in_rows(cols, cr, k):
        raise ValueError("recover_rows: two rows of one colour share a column of the "
                         "pattern; colour it with colour_rows(pattern)")
    return sp.csr_matrix((C[cr, cols], P.indices, P.indptr), shape=(m, n))


def recover_symmetric(pattern: Any, colours: Any, compressed: Any) -> sp.csr_matrix:
    """A symmetric ``H`` from ``B = H @ S`` (``S[j, colours[j]] = 1``) for a star
    colouring: each entry ``H[i, j]`` is read at ``B[i, colours[j]]`` where colour j is
    unique among row i's entries, else at ``B[j, colours[i]]`` (the star colouring makes
    one of them unique). No system is solved: every entry is one entry of ``B``.

    Args:
        pattern: the (n, n) pattern the colouring was made for, read as
            ``pattern | pattern.T``.
        colours: the colours, as ``colour_symmetric`` gives them.
        compressed: ``B``, an (n, k) array (k colours), of any dtype.
    Returns:
        A ``scipy.sparse.csr_matrix`` of shape (n, n) with the entries of
        ``pattern | pattern.T``, of ``B``'s dtype (symmetric).
    Raises:
        ValueError: shapes that do not fit, or colours with which some entry is read
            nowhere (not a star colouring of the pattern).
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import colour_symmetric, recover_symmetric
        >>> H = np.diag([1.0, 2, 3, 4, 5]) + np.diag([6.0, 7, 8, 9], 1)
        >>> H = H + np.triu(H, 1).T
        >>> c = colour_symmetric(H != 0)
        >>> S = np.eye(int(c.max()) + 1)[c]
        >>> bool((recover_symmetric(H != 0, c, H @ S).toarray() == H).all())
        True
    """
    P = _csr(pattern, "recover_symmetric")
    n = P.shape[0]
    if P.shape[1] != n:
        raise ValueError(f"recover_symmetric: the pattern must be square, got {P.shape}")
    P = _csr(P + P.T, "recover_symmetric")
    c = _colours_array(colours, n, "recover_symmetric")
    k = int(c.max(initial=-1)) + 1
    B = _compressed(compressed, (n, k), "recover_symmetric")
    rows, cols = _entries(P)
    if not rows.size:
        return sp.csr_matrix((n, n), dtype=B.dtype)
    ci, cj = c[rows], c[cols]
    here, table = _counts(rows, cj, k)
    # the count at the symmetric position (j, colour i), an entry since (j, i) is one
    there = _lookup(table, cols * k + ci)
    direct = here == 1
    if ((ci == cj) & (rows != cols)).any() or not (direct | (there == 1)).all():
        raise ValueError("recover_symmetric: the colours are not a star colouring of the "
                         "pattern (an entry is read nowhere); colour it with "
                         "colour_symmetric(pattern)")
    width = B.shape[1]
    data = np.ravel(B)[np.where(direct, rows * width + cj, cols * width + ci)]
    return sp.csr_matrix((data, P.indices, P.indptr), shape=(n, n))

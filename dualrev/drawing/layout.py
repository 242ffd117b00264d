"""A layered (Sugiyama-style) layout of a directed acyclic graph, left to right, in pure
Python: no Graphviz needed.

1. Layers: the longest path from the sources (each edge spans at least its ``minlen``);
   nodes marked ``late`` (constants, edge labels) are then moved right, next to their
   earliest successor, so that they sit beside the operation that reads them.
2. Edges spanning several layers get a dummy node per layer crossed (up to ``MAX_SPAN``
   layers; longer edges are drawn directly, so that a weight read by every step of a
   long loop does not add a dummy per step).
3. Order within each layer: barycenter sweeps, down and up, keeping the ordering with
   the fewest crossings (counted per pair of layers with a Fenwick tree).
4. Coordinates: each layer is a column as wide as its widest box; in a column the boxes
   keep their order and a minimum gap, and are pulled towards their neighbours' centres
   by isotonic regression (pool adjacent violators), a few times in both directions.

Each step is O(V + E) per sweep (plus sorting within layers), so a graph of 10^4 nodes
lays out in about a second. The result is deterministic: no hashing of objects, no
randomness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_SPAN = 12  # longer edges get no dummy nodes (see the module docstring)
LAYER_GAP = 36.0  # horizontal space between columns
NODE_GAP = 14.0  # vertical space between boxes of one column
DUMMY_GAP = 6.0  # around an edge's dummy node
MARGIN = 12.0

Point = tuple[float, float]


@dataclass
class Layout:
    """Positions: one box ``(x, y, width, height)`` per node (top-left corner) and one
    polyline per edge, from the source's right side through the dummy nodes to the
    target's left side (two points for an edge drawn directly)."""

    width: float
    height: float
    boxes: list[tuple[float, float, float, float]]
    paths: list[list[Point]]
    layers: list[int]


def layered_layout(sizes: Sequence[tuple[float, float]], edges: Sequence[tuple[int, int]],
                   late: Sequence[bool] | None = None, sweeps: int | None = None,
                   direction: str = "LR") -> Layout:
    """Lay out the DAG with ``sizes[i] = (width, height)`` of node ``i`` and ``edges`` as
    ``(source, target)`` pairs. ``late[i]``: place node ``i`` just before its earliest
    successor rather than after its latest predecessor. ``sweeps``: rounds of crossing
    reduction (default: 4, fewer for very large graphs). ``direction``: ``"LR"`` (layers
    are columns, edges run left to right) or ``"TB"`` (layers are rows, top to bottom;
    paths then leave a box's bottom and enter the next one's top). Raises ValueError on a
    cycle."""
    if direction == "TB":  # the left-to-right layout of the transposed boxes, transposed
        t = layered_layout([(h, w) for w, h in sizes], edges, late, sweeps, "LR")
        return Layout(t.height, t.width, [(y, x, h, w) for x, y, w, h in t.boxes],
                      [[(y, x) for x, y in pts] for pts in t.paths], t.layers)
    if direction != "LR":
        raise ValueError(f"layered_layout: direction={direction!r}; give 'LR' or 'TB'")
    n = len(sizes)
    late = [False] * n if late is None else list(late)
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succ[u].append(v)
        pred[v].append(u)
    layer = _layers(n, succ, pred, late)
    # the real graph plus a chain of dummies for each edge spanning several layers
    width = [w for w, _ in sizes]
    height = [h for _, h in sizes]
    lay = list(layer)
    up: list[list[int]] = [list(p) for p in pred]
    down: list[list[int]] = [list(s) for s in succ]
    chains: list[list[int]] = []  # per edge: the dummy nodes it passes through
    for u, v in edges:
        span = layer[v] - layer[u]
        if span <= 1 or span > MAX_SPAN:
            chains.append([])
            continue
        down[u].remove(v)
        up[v].remove(u)
        prev = u
        chain = []
        for k in range(layer[u] + 1, layer[v]):
            d = len(lay)
            lay.append(k)
            width.append(0.0)
            height.append(2.0)
            up.append([prev])
            down.append([])
            down[prev].append(d)
            chain.append(d)
            prev = d
        down[prev].append(v)
        up[v].append(prev)
        chains.append(chain)
    # long edges take no part in ordering: drop them from the neighbour lists
    for u, v in edges:
        if layer[v] - layer[u] > MAX_SPAN:
            down[u].remove(v)
            up[v].remove(u)
    total = len(lay)
    nlayers = max(lay) + 1 if lay else 0
    rows: list[list[int]] = [[] for _ in range(nlayers)]
    for v in _first_seen(total, n, down, lay):
        rows[lay[v]].append(v)
    if sweeps is None:
        sweeps = 4 if total < 4000 else 2 if total < 20000 else 1
    rows = _order(rows, up, down, total, sweeps)
    xs, ys = _coordinates(rows, up, down, width, height, lay, n)
    boxes = [(xs[i], ys[i], width[i], height[i]) for i in range(n)]
    paths = []
    for (u, v), chain in zip(edges, chains, strict=True):
        pts = [(xs[u] + width[u], ys[u] + height[u] / 2)]
        pts.extend((xs[d], ys[d] + 1.0) for d in chain)
        pts.append((xs[v], ys[v] + height[v] / 2))
        paths.append(pts)
    w = max((x + wd for x, _, wd, _ in boxes), default=0.0) + MARGIN
    h = max((y + ht for _, y, _, ht in boxes), default=0.0) + MARGIN
    return Layout(w, h, boxes, paths, layer)


def estimate(sizes: Sequence[tuple[float, float]], edges: Sequence[tuple[int, int]],
             late: Sequence[bool] | None = None) -> tuple[tuple[float, float],
                                                          tuple[float, float]]:
    """The ``(width, height)`` a ``layered_layout`` of the graph is about to take, left
    to right and top to bottom, from one layering (O(V + E), no ordering or placement):
    the layers' widest (tallest) boxes side by side, and the fullest layer's boxes one
    beside the other, with the gaps. A lower bound (an edge's dummies and the alignment
    of boxes with their neighbours only add), close enough to compare the directions."""
    n = len(sizes)
    late = [False] * n if late is None else list(late)
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succ[u].append(v)
        pred[v].append(u)
    layer = _layers(n, succ, pred, late)
    nlayers = max(layer) + 1 if layer else 0
    across = [0.0] * nlayers  # LR: a column's width; TB: a row's height
    along = [0.0] * nlayers   # LR: a column's height; TB: a row's width
    down = [0.0] * nlayers
    wide = [0.0] * nlayers
    for (w, h), k in zip(sizes, layer, strict=True):
        if across[k] < w:
            across[k] = w
        along[k] += h + NODE_GAP
        if down[k] < h:
            down[k] = h
        wide[k] += w + NODE_GAP
    gaps = LAYER_GAP * max(nlayers - 1, 0) + 2 * MARGIN
    less = NODE_GAP if nlayers else 0.0
    lr = (sum(across) + gaps, max(along, default=0.0) - less + 2 * MARGIN)
    tb = (max(wide, default=0.0) - less + 2 * MARGIN, sum(down) + gaps)
    return lr, tb


def _layers(n: int, succ: list[list[int]], pred: list[list[int]], late: list[bool]) -> list[int]:
    """Longest-path layering from the sources, then the ``late`` nodes moved right."""
    indeg = [len(p) for p in pred]
    order = [v for v in range(n) if indeg[v] == 0]
    for v in order:  # Kahn's algorithm: ``order`` grows while it is read
        for s in succ[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                order.append(s)
    if len(order) != n:
        raise ValueError("layered_layout: the graph has a cycle")
    layer = [0] * n
    for v in order:
        for s in succ[v]:
            if layer[s] < layer[v] + 1:
                layer[s] = layer[v] + 1
    for v in reversed(order):
        if late[v] and succ[v]:
            layer[v] = min(layer[s] for s in succ[v]) - 1
    return layer


def _first_seen(total: int, n: int, down: list[list[int]], lay: list[int]) -> list[int]:
    """Every node once, real ones in their given order, each dummy right after the node
    its chain leaves from: the initial order within each layer."""
    seen = [False] * total
    out = []
    for v in range(n):
        stack = [v]
        while stack:
            u = stack.pop()
            if seen[u]:
                continue
            if u < n and u != v:
                continue  # a real node is placed in its own turn
            seen[u] = True
            out.append(u)
            stack.extend(d for d in reversed(down[u]) if d >= n and not seen[d])
    return out


def _order(rows: list[list[int]], up: list[list[int]], down: list[list[int]], total: int,
           sweeps: int) -> list[list[int]]:
    """Barycenter sweeps; the ordering with the fewest crossings wins."""
    pos = [0.0] * total
    for row in rows:
        for i, v in enumerate(row):
            pos[v] = float(i)
    best = [list(r) for r in rows]
    best_cross = _crossings(rows, down, pos)
    for _ in range(sweeps):
        for neighbours, layers in ((up, range(1, len(rows))),
                                   (down, range(len(rows) - 2, -1, -1))):
            for k in layers:
                row = rows[k]
                key = []
                for i, v in enumerate(row):
                    nb = neighbours[v]
                    if nb:
                        key.append((sum(pos[u] for u in nb) / len(nb), i, v))
                    else:
                        key.append((pos[v], i, v))
                key.sort()
                row[:] = [v for _, _, v in key]
                for i, v in enumerate(row):
                    pos[v] = float(i)
        cross = _crossings(rows, down, pos)
        if cross < best_cross:
            best_cross = cross
            best = [list(r) for r in rows]
    return best


def _crossings(rows: list[list[int]], down: list[list[int]], pos: list[float]) -> int:
    """Edge crossings between adjacent layers: inversions of the targets' positions when
    the edges are sorted by their sources', counted with a Fenwick tree."""
    total = 0
    for k in range(len(rows) - 1):
        size = len(rows[k + 1])
        if size < 2:
            continue
        tree = [0] * (size + 1)
        seen = 0
        for u in rows[k]:  # rows[k] is in position order
            targets = sorted(int(pos[v]) for v in down[u])
            for t in targets:
                # edges seen so far whose target lies strictly below t
                i, below = t + 1, 0
                while i > 0:
                    below += tree[i]
                    i -= i & -i
                total += seen - below
            for t in targets:
                i = t + 1
                while i <= size:
                    tree[i] += 1
                    i += i & -i
                seen += 1
    return total


def _coordinates(rows: list[list[int]], up: list[list[int]], down: list[list[int]],
                 width: list[float], height: list[float], lay: list[int],
                 n: int) -> tuple[list[float], list[float]]:
    total = len(lay)
    colw = [max((width[v] for v in row), default=0.0) for row in rows]
    colx = []
    x = MARGIN
    for w in colw:
        colx.append(x)
        x += w + LAYER_GAP if w else LAYER_GAP / 2
    xs = [0.0] * total
    for k, row in enumerate(rows):
        for v in row:
            xs[v] = colx[k] + (colw[k] - width[v]) / 2
    gap = [NODE_GAP if v < n else DUMMY_GAP for v in range(total)]
    ys = [0.0] * total
    for row in rows:
        y = 0.0
        for v in row:
            ys[v] = y
            y += height[v] + gap[v]
    rounds = 3 if total < 20000 else 1
    passes = [(up, range(1, len(rows))), (down, range(len(rows) - 2, -1, -1))] * rounds
    passes.append((None, range(len(rows))))
    for neighbours, layers in passes:
        for k in layers:
            row = rows[k]
            if len(row) == 1:  # a lone box goes where its neighbours pull it
                v = row[0]
                nb = (up[v] + down[v]) if neighbours is None else neighbours[v]
                if nb:
                    ys[v] = sum(ys[u] + height[u] / 2 for u in nb) / len(nb) - height[v] / 2
                continue
            want = []
            for v in row:
                nb = (up[v] + down[v]) if neighbours is None else neighbours[v]
                if nb:
                    c = sum(ys[u] + height[u] / 2 for u in nb) / len(nb)
                    want.append(c - height[v] / 2)
                else:
                    want.append(ys[v])
            _place(row, want, ys, height, gap)
    top = min(ys) if ys else 0.0
    ys = [y - top + MARGIN for y in ys]
    return xs, ys


def _place(row: list[int], want: list[float], ys: list[float], height: list[float],
           gap: list[float]) -> None:
    """Tops as close to ``want`` (least squares) as the order and the gaps allow: with
    ``off[i]`` the least distance from the first top to the i-th, ``want[i] - off[i]``
    must be made non-decreasing, which pool-adjacent-violators does in one pass."""
    off = []
    o = 0.0
    for v in row:
        off.append(o)
        o += height[v] + max(gap[v], 0.0)
    blocks: list[list[float]] = []  # [sum, count] of pooled values, in order
    for w, o in zip(want, off, strict=True):
        blocks.append([w - o, 1.0])
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1]
                                   > blocks[-1][0] / blocks[-1][1]):
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    i = 0
    for s, c in blocks:
        mean = s / c
        for _ in range(int(c)):
            ys[row[i]] = mean + off[i]
            i += 1


def overlaps(boxes: Sequence[tuple[float, float, float, float]],
             tolerance: float = 0.01) -> list[tuple[int, int]]:
    """Pairs of boxes that overlap (for tests and checks), by a sweep over x: O(n log n)
    plus the pairs that share an x range."""
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][0])
    active: list[int] = []
    out = []
    for i in order:
        x, y, w, h = boxes[i]
        active = [j for j in active if boxes[j][0] + boxes[j][2] > x + tolerance]
        for j in active:
            _, yj, _, hj = boxes[j]
            if y < yj + hj - tolerance and yj < y + h - tolerance:
                out.append((min(i, j), max(i, j)))
        active.append(i)
    return out

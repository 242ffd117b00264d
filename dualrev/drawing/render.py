"""Writing a graph out: SVG from the layered layout (layout.py), Graphviz DOT, and the
text form. Everything is deterministic (fixed precision, no dict-order or id effects),
so that the tutorial's figures can be compared byte for byte with fresh ones.

The picture reads left to right, as the seeds draw it: inputs on the left, each value a
box (its name and forward value, and below in red its derivative), each operation a
small rounded gate, each argument edge labelled with what flows back along it (``← 2``,
reverse mode) or forward (``→ 1``, forward mode). Constants are grey, inputs blue,
outputs green; operations recorded inside a nested transform have a coloured border,
explained by a legend.
"""

from __future__ import annotations

import shutil
import subprocess
from html import escape
from typing import Any

from ..errors import DualrevError
from . import layout as layered
from . import values

FONT = 12.0
CHAR_W = 7.23  # the advance of a 12px monospace glyph (DejaVu Sans Mono, Liberation Mono)
LINE_H = 15.0
PAD_X, PAD_Y = 8.0, 5.0
LABEL_FONT = 11.0
LABEL_CHAR_W = 6.63
CAPTION_H = 26.0
_FILL = {"input": "#dbeafe", "const": "#f1f5f9", "value": "#ffffff", "op": "#fef3c7",
         "group": "#ede9fe", "guard": "#fee2e2"}
_OUTPUT_FILL = "#dcfce7"
_STROKE = "#334155"
_GRAD = "#b91c1c"  # what the backward pass carries
_TANGENT = "#1d4ed8"  # what the forward pass carries
# borders of operations recorded inside nested transforms, one colour per context
_PALETTE = ["#7c3aed", "#0891b2", "#ea580c", "#db2777", "#65a30d", "#4f46e5", "#a16207",
            "#0f766e"]


def _text_width(lines: list[str], char_w: float = CHAR_W) -> float:
    return max((len(s) for s in lines), default=1) * char_w


def drawn(graph: Any) -> tuple[list[tuple[str, Any]], list[tuple[int, int]], list[bool]]:
    """The layout's nodes: ``("node", Node)`` for each graph node, then ``("label",
    Edge)`` for each labelled edge (a label takes room like a node, so that none
    overlaps another or a box); the layout's edges; which nodes go ``late`` (constants,
    inputs and labels: beside the operation that reads them)."""
    items: list[tuple[str, Any]] = [("node", n) for n in graph.nodes]
    index = {n.id: k for k, n in enumerate(graph.nodes)}
    edges = []
    late = [n.kind in ("const", "input") for n in graph.nodes]
    for e in graph.edges:
        u, v = index[e.src], index[e.dst]
        if e.label:
            k = len(items)
            items.append(("label", e))
            late.append(True)
            edges += [(u, k), (k, v)]
        else:
            edges.append((u, v))
    return items, edges, late


def _size(kind: str, obj: Any, direction: str) -> tuple[float, float]:
    if kind == "label":  # beside the edge's line: under the text (LR), left of it (TB)
        return len(obj.label) * LABEL_CHAR_W + (6.0 if direction == "LR" else 10.0), \
            LINE_H + 4.0
    lines = obj.lines or [obj.name]
    w = _text_width(lines) + 2 * PAD_X
    h = len(lines) * LINE_H + 2 * PAD_Y
    if obj.kind == "op":
        w += 6.0
    return w, h


#: a left-to-right drawing at most this wide is kept (it fits a notebook or a screen
#: without scrolling sideways, and it is how the seeds draw); a wider one is drawn top to
#: bottom where that makes the drawing's long side shorter
WIDE = 1200.0


def choose_direction(graph: Any) -> str:
    """The direction ``direction="auto"`` draws ``graph`` in: ``"LR"`` (left to right,
    as the seeds draw) while the drawing stays within ``WIDE`` px across, else whichever
    of ``"LR"`` and ``"TB"`` gives the shorter long side (a chain of operations is long
    and thin: drawn top to bottom it reads by scrolling down, as a notebook does). Read
    from the layers alone (``layout.estimate``), so choosing costs no second layout."""
    return _choose(*drawn(graph))


def _choose(items: list[tuple[str, Any]], edges: list[tuple[int, int]],
            late: list[bool]) -> str:
    (w, h), (tw, th) = layered.estimate([_size(k, o, "LR") for k, o in items], edges, late)
    if w <= WIDE:
        return "LR"
    return "TB" if max(tw, th) < max(w, h) else "LR"


def resolve(graph: Any, direction: str) -> str:
    """``direction``, with ``"auto"`` replaced by ``choose_direction``'s choice."""
    return choose_direction(graph) if direction == "auto" else direction


def place(graph: Any, direction: str = "LR") -> tuple[layered.Layout, list[tuple[str, Any]],
                                                      list[tuple[int, int]]]:
    """The Python layout of ``graph``: the ``Layout`` (boxes in the order of ``drawn``'s
    items), the items and the layout's edges."""
    return _placed(graph, direction)[:3]


def _placed(graph: Any, direction: str) -> tuple[layered.Layout, list[tuple[str, Any]],
                                                 list[tuple[int, int]], str]:
    """``place``, and the direction it chose (the graph's items are made once)."""
    items, edges, late = drawn(graph)
    if direction == "auto":
        direction = _choose(items, edges, late)
    sizes = [_size(k, o, direction) for k, o in items]
    return (layered.layered_layout(sizes, edges, late, direction=direction), items, edges,
            direction)


def _f(x: float) -> str:
    s = f"{x:.1f}"
    return s[:-2] if s[-1] == "0" and s[-2] == "." else s


def _caption(graph: Any) -> str:
    what = {"reverse": "backward pass: ∂ on each value, ← what each edge hands back",
            "forward": "forward pass: ∂ on each value, → what each edge carries",
            "values": "forward pass: the value of each node"}[graph.mode]
    return f"{graph.title} — {graph.mode} mode — {what}"


def fold_note(graph: Any) -> str:
    """The second caption line of a graph with folded loops: what a ``×N`` box shows."""
    runs = [n for n in graph.nodes if n.kind == "group" and n.repeats > 1]
    if not runs:
        return ""
    names = list(dict.fromkeys(n.name for n in runs))
    counts = ", ".join(names)
    steps = f"{names[0][1:]} identical steps" if len(names) == 1 else "N identical steps"
    return (f"{counts}: {steps} drawn as one box (view(expand=True) draws each); "
            "values are the last step's, edges in sum all steps")


def svg(graph: Any, engine: str = "python", direction: str = "LR") -> str:
    """SVG text of ``graph``: dualrev's layout, or Graphviz's (engine ``"dot"``/``"auto"``)."""
    if engine in ("dot", "auto"):
        exe = shutil.which("dot")
        if exe is not None:
            text = dot(graph, resolve(graph, direction))
            run = subprocess.run([exe, "-Tsvg"], input=text.encode(), capture_output=True,
                                 check=False)
            if run.returncode != 0:
                raise DualrevError("dualrev.graph: Graphviz's dot failed: "
                                   + run.stderr.decode(errors="replace")[:400])
            return run.stdout.decode()
        if engine == "dot":
            raise DualrevError("dualrev.graph: engine='dot' needs Graphviz's dot program on "
                               "PATH; engine='python' (the default) needs nothing")
    lay, items, edges, direction = _placed(graph, direction)
    tb = direction == "TB"
    contexts = graph.contexts
    colour = {c: _PALETTE[k % len(_PALETTE)] for k, c in enumerate(contexts)}
    legend_h = (len(contexts) * 18.0 + 10.0) if contexts else 0.0
    caption = _caption(graph)
    note = fold_note(graph)
    width = max(lay.width, max(len(caption), len(note)) * CHAR_W + 2 * layered.MARGIN,
                max((len(c) + 4) * CHAR_W + 2 * layered.MARGIN for c in contexts)
                if contexts else 0.0)
    dy = CAPTION_H + (LINE_H if note else 0.0)
    height = lay.height + dy + legend_h
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="DejaVu Sans Mono, Liberation '
        f'Mono, Menlo, Consolas, monospace" font-size="{_f(FONT)}">',
        f"<title>{escape(caption)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{_STROKE}"/></marker></defs>',
        f'<rect width="{_f(width)}" height="{_f(height)}" fill="white"/>',
        f'<text class="caption" x="{_f(layered.MARGIN)}" y="17" fill="#475569">'
        f"{escape(caption)}</text>",
        *([f'<text class="caption" x="{_f(layered.MARGIN)}" y="{_f(17 + LINE_H)}" '
           f'fill="#475569">{escape(note)}</text>'] if note else []),
        '<g class="edges" fill="none" stroke-width="1.2">',
    ]
    label_box = {}
    for k, (kind, obj) in enumerate(items):
        if kind == "label":
            label_box[id(obj)] = k
    index = {n.id: k for k, n in enumerate(graph.nodes)}
    path_of = {}
    for (u, v), pts in zip(edges, lay.paths, strict=True):
        path_of[(u, v)] = pts
    for e in graph.edges:
        u, v = index[e.src], index[e.dst]
        if id(e) in label_box:
            k = label_box[id(e)]
            x, y, w, h = lay.boxes[k]
            if tb:
                first = path_of[(u, k)][:-1] + [(x + 2.0, y)]
                second = [(x + 2.0, y + h)] + path_of[(k, v)][1:]
            else:
                first = path_of[(u, k)][:-1] + [(x, y + h - 2.0)]
                second = [(x + w, y + h - 2.0)] + path_of[(k, v)][1:]
            pts = first + second
        else:
            pts = path_of[(u, v)]
        # dashed: a traced argument without a derivative (an index, a mask)
        dash = ("" if e.differentiable or graph.nodes[u].kind == "const"
                else ' stroke-dasharray="4 3"')
        out.append(f'<path class="edge" data-src="{e.src}" data-dst="{e.dst}" '
                   f'd="{_curve(pts, dy, tb)}" stroke="#64748b"{dash} marker-end="url(#arrow)"/>')
    out.append("</g>")
    out.append(f'<g class="edge-labels" font-size="{_f(LABEL_FONT)}">')
    for k, (kind, obj) in enumerate(items):
        if kind != "label":
            continue
        x, y, w, h = lay.boxes[k]
        fill = _GRAD if graph.mode == "reverse" else _TANGENT
        out.append(f'<g class="label" data-src="{obj.src}" data-dst="{obj.dst}">'
                   f'<rect x="{_f(x)}" y="{_f(y + dy)}" width="{_f(w)}" height="{_f(h)}" '
                   f'fill="white" fill-opacity="0.85"/>'
                   f'<text x="{_f(x + 8.0 if tb else x + w / 2)}" '
                   f'y="{_f(y + dy + LINE_H - 3.0)}" '
                   f'text-anchor="{"start" if tb else "middle"}" fill="{fill}">'
                   f'{escape(obj.label)}</text></g>')
    out.append("</g>")
    out.append('<g class="nodes">')
    deriv_fill = _GRAD if graph.mode == "reverse" else _TANGENT
    for k, (kind, node) in enumerate(items):
        if kind != "node":
            continue
        x, y, w, h = lay.boxes[k]
        y += dy
        fill = _OUTPUT_FILL if node.output else _FILL[node.kind]
        stroke = colour.get(node.context, _STROKE)
        sw = "2" if node.context or node.output else "1"
        cls = node.kind + (" output" if node.output else "")
        out.append(f'<g class="node {cls}" id="{node.id}" data-name="{escape(node.name)}">'
                   f"<title>{escape(_tooltip(node))}</title>")
        rx = h / 2 if node.kind == "op" else 4.0
        extra = ' stroke-dasharray="6 2"' if node.kind == "group" else ""
        out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" '
                   f'rx="{_f(min(rx, 12.0))}" fill="{fill}" stroke="{stroke}" '
                   f'stroke-width="{sw}"{extra}/>')
        lines = node.lines or [node.name]
        anchor = ' text-anchor="middle"' if node.kind == "op" else ""
        tx = x + w / 2 if node.kind == "op" else x + PAD_X
        out.append(f'<text x="{_f(tx)}" y="{_f(y + PAD_Y)}"{anchor} xml:space="preserve">')
        n_value = node.split if node.kind in ("input", "value") else len(lines)
        for j, line in enumerate(lines):
            colour_attr = (f' fill="{deriv_fill}"' if j >= n_value and node.kind in
                           ("input", "value") else "")
            weight = ' font-weight="bold"' if j == 0 and node.kind in ("op", "group") else ""
            out.append(f'<tspan x="{_f(tx)}" dy="{_f(LINE_H if j else LINE_H - 3.0)}"'
                       f'{colour_attr}{weight}>{escape(line)}</tspan>')
        out.append("</text></g>")
    out.append("</g>")
    if contexts:
        y0 = lay.height + dy + 4.0
        out.append('<g class="legend">')
        for k, c in enumerate(contexts):
            yy = y0 + k * 18.0
            out.append(f'<rect x="{_f(layered.MARGIN)}" y="{_f(yy)}" width="14" height="12" '
                       f'rx="2" fill="white" stroke="{colour[c]}" stroke-width="2"/>'
                       f'<text x="{_f(layered.MARGIN + 20)}" y="{_f(yy + 10)}">'
                       f"{escape(c)}</text>")
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _tooltip(node: Any) -> str:
    parts = [node.name]
    if node.detail:
        parts.append(node.detail)
    if node.context:
        parts.append(f"recorded under {node.context}")
    return " — ".join(parts)


def _curve(pts: list[tuple[float, float]], dy: float, tb: bool = False) -> str:
    """A smooth path through ``pts``: cubic pieces leaving and entering along the layout's
    direction (horizontally, or vertically for ``tb``)."""
    x0, y0 = pts[0]
    d = [f"M{_f(x0)},{_f(y0 + dy)}"]
    for x1, y1 in pts[1:]:
        if tb:
            my = (y1 - y0) / 2
            c = f"{_f(x0)},{_f(y0 + my + dy)} {_f(x1)},{_f(y1 - my + dy)}"
        else:
            mx = (x1 - x0) / 2
            c = f"{_f(x0 + mx)},{_f(y0 + dy)} {_f(x1 - mx)},{_f(y1 + dy)}"
        d.append(f"C{c} {_f(x1)},{_f(y1 + dy)}")
        x0, y0 = x1, y1
    return " ".join(d)


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(graph: Any, direction: str = "LR") -> str:
    """Graphviz DOT: left to right (or top to bottom), the same labels and colours as the
    SVG, one cluster per nested transform's pass."""
    direction = resolve(graph, direction)
    contexts = graph.contexts
    colour = {c: _PALETTE[k % len(_PALETTE)] for k, c in enumerate(contexts)}
    out = ["digraph dualrev {", f"  rankdir={direction};",
           f"  label={_dot_str(chr(10).join(filter(None, (_caption(graph), fold_note(graph)))))};"
           " labelloc=t;",
           '  node [fontname="monospace", fontsize=11, style=filled];',
           '  edge [fontname="monospace", fontsize=10, color="#64748b"];']
    by_context: dict[tuple[str, int], list[str]] = {}
    for node in graph.nodes:
        fill = _OUTPUT_FILL if node.output else _FILL[node.kind]
        shape = {"op": "ellipse", "group": "box3d", "guard": "octagon"}.get(node.kind, "box")
        label = "\\l".join(_dot_str(s)[1:-1] for s in (node.lines or [node.name]))
        label = label + ("\\l" if node.kind not in ("op",) else "")
        attrs = [f'label="{label}"', f"shape={shape}", f'fillcolor="{fill}"']
        if node.context:
            attrs += [f'color="{colour[node.context]}"', "penwidth=2"]
        # one cluster per transform call: sibling calls share a label, not a cluster
        key = (node.context, getattr(node, "scope", 0) if node.context else 0)
        by_context.setdefault(key, []).append(f"  {node.id} [{', '.join(attrs)}];")
    for k, (c, scope) in enumerate(by_context):
        if not c:
            out += by_context[(c, scope)]
            continue
        out.append(f"  subgraph cluster_{k} {{")
        out.append(f'    label={_dot_str(c)}; color="{colour[c]}";')
        out += ["  " + s for s in by_context[(c, scope)]]
        out.append("  }")
    fontcolor = _GRAD if graph.mode == "reverse" else _TANGENT
    by_id = {n.id: n for n in graph.nodes}
    for e in graph.edges:
        attrs = []
        if e.label:
            attrs += [f"label={_dot_str(e.label)}", f'fontcolor="{fontcolor}"']
        if not e.differentiable and by_id[e.src].kind != "const":
            attrs.append("style=dashed")
        tail = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"  {e.src} -> {e.dst}{tail};")
    out.append("}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ text


def expression(graph: Any, value: Any, by_id: dict[str, Any],
               into: dict[str, list[Any]]) -> str:
    """How a value was computed, as the user would write it: ``a + b``, ``-x``,
    ``np.sin(c)``, ``z[1]``, ``np.sum(x, axis=(0,))``; a group's values read
    ``×1000(x0, w)``."""
    sources = into.get(value.id, [])
    if not sources:
        return ""
    op = by_id[sources[0].src]
    args = sorted(into.get(op.id, []), key=lambda e: (e.argpos is None, e.argpos or 0))
    names = [_arg_text(by_id[e.src]) for e in args]
    sym = op.name
    written = getattr(op, "written", "")
    if written:
        if op.name == "set" or op.name.startswith("[]"):
            # a write, x[idx] = v or x[idx] += v: the value is x after it
            return f"{written.split('[', 1)[0]} after {written}"
        return written + (f", {op.detail}" if op.detail and written.endswith(")") else "")
    if op.kind == "group":
        return f"{sym.removesuffix('()')}({', '.join(names)})"
    if sym in ("+", "-", "*", "/", "**", "@", "//", "%") and len(names) == 2:
        return f"{names[0]} {sym} {names[1]}"
    if sym in ("+", "-") and len(names) == 1:
        return f"{sym}{names[0]}"
    if sym.startswith("[") and names:
        return f"{names[0]}{sym}"
    params = f", {op.detail}" if op.detail else ""
    return f"{sym}({', '.join(names)}{params})"


def _arg_text(node: Any) -> str:
    return node.name if len(node.name) <= 24 else node.name[:21] + "..."


def text(graph: Any) -> str:
    """One line per value, in topological order: ``c = a + b → 3   ∂e/∂c = 2``, and for
    a value reached along several edges its derivative as the sum of their shares."""
    by_id = {n.id: n for n in graph.nodes}
    into: dict[str, list[Any]] = {}
    out_of: dict[str, list[Any]] = {}
    for e in graph.edges:
        into.setdefault(e.dst, []).append(e)
        out_of.setdefault(e.src, []).append(e)
    head = f"{graph.title} — {graph.mode} mode"
    counts = {k: sum(1 for n in graph.nodes if n.kind == k) for k in ("input", "op", "group")}
    head += (f": {counts['input']} input(s), {counts['op']} operation(s)"
             + (f", {counts['group']} group(s)" if counts["group"] else "")
             + f", {len(graph.outputs)} output(s)")
    rows = []
    for node in graph.nodes:
        if node.kind in ("op", "group", "guard") or (node.kind == "const"
                                                     and not node.output):
            continue
        expr = expression(graph, node, by_id, into)
        left = f"{node.name} = {expr} → " if expr else f"{node.name} = "
        left += values.one_line(node.value)
        if node.output:
            left += "  [output]"
        if node.context:
            left += f"  ({node.context})"
        right = ""
        if graph.mode != "values" and node.kind != "const":
            deriv = node.grad if graph.mode == "reverse" else node.tangent
            right = graph.derivative_name(node) + " = " + (
                values.one_line(deriv) if deriv is not None else "0 (no path)")
            shares = [e for e in out_of.get(node.id, []) if (e.grad if graph.mode == "reverse"
                                                            else e.tangent) is not None]
            if graph.mode == "reverse" and len(shares) > 1 and all(
                    values.is_scalar(e.grad) for e in shares):
                terms = [f"{values.one_line(e.grad)} (via {_via(by_id, out_of, e)})"
                         for e in shares]
                right += " = " + terms[0] + "".join(
                    f" - {t[1:]}" if t.startswith("-") else f" + {t}" for t in terms[1:])
        rows.append((left, right))
    width = min(max((len(a) for a, _ in rows), default=0), 56)
    body = [f"  {a.ljust(width)}   {b}".rstrip() for a, b in rows]
    groups = [n for n in graph.nodes if n.kind == "group"]
    notes = [f"  {n.name}: {n.detail}" for n in groups]
    if fold_note(graph):
        notes.append("  " + fold_note(graph))
    notes += [f"  {n.name}" + (f"  ({n.detail})" if n.detail else "")
              for n in graph.nodes if n.kind == "guard"]
    if graph.contexts:
        notes.append("  contexts: " + "; ".join(graph.contexts))
    return "\n".join([head, *body, *notes])


def _via(by_id: dict[str, Any], out_of: dict[str, list[Any]], e: Any) -> str:
    """The value an edge's operation makes (what the share came back from)."""
    op = by_id[e.dst]
    made = out_of.get(op.id, [])
    return by_id[made[0].dst].name if made else op.name

"""dualrev.graph (dualrev/drawing/): the recorded graph's nodes, values and derivatives
against the seeds' numbers and dualrev's transforms; the SVG (parsed, every label there,
no two boxes overlapping); the layout; DOT, text, files, the command line; the
tutorial's figures (fresh, and rendered to PNG by rsvg-convert or a headless Chromium
where one is installed)."""

from __future__ import annotations

import os
import re
import runpy
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest

import dualrev as dr
from dualrev.drawing import Graph, layered_layout, main, overlaps
from dualrev.drawing import layout as layout_module
from dualrev.errors import DualrevError, EscapedTracerError
from dualrev.primitive import Primitive

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures"
SVG = "{http://www.w3.org/2000/svg}"


def e(a, b):
    c = a + b
    d = b + 1
    return c * d


def g(x, y, z):
    p = x + y
    return p * z


def softmax(z):
    ex = np.exp(z - np.max(z))
    return ex / np.sum(ex)


def values_of(graph: Graph) -> dict[str, float]:
    return {n.name: n.value for n in graph.nodes if n.kind != "op"}


def shares(graph: Graph, src: str, attr: str = "grad") -> list:
    return sorted(getattr(ed, attr) for ed in graph.edges_from(src))


# ------------------------------------------------------------------ the seeds' graphs


def test_e_has_the_seeds_nodes_values_and_gradients():
    gr = dr.graph(e)(2.0, 1.0)
    assert [n.kind for n in gr.nodes].count("op") == 3
    assert sorted(n.name for n in gr.nodes if n.kind == "op") == ["*", "+", "+"]
    assert {n.name for n in gr.nodes if n.kind in ("input", "value")} == {"a", "b", "c", "d", "e"}
    assert [n.name for n in gr.nodes if n.kind == "const"] == ["1"]
    assert values_of(gr) == {"a": 2, "b": 1, "c": 3, "d": 2, "e": 6, "1": 1}
    grads = {n.name: n.grad for n in gr.nodes if n.kind in ("input", "value")}
    assert grads == {"a": 2, "b": 5, "c": 2, "d": 3, "e": 1}   # de/dc = d, de/dd = c
    assert [n.name for n in gr.inputs] == ["a", "b"] and [n.name for n in gr.outputs] == ["e"]
    # the branch at b sums: 2 back from c, 3 back from d
    assert shares(gr, "b") == [2.0, 3.0]
    # multiply swaps: c's edge carries d = 2, d's carries c = 3; add hands 2 to both
    mul = next(n for n in gr.nodes if n.name == "*")
    by_id = {n.id: n for n in gr.nodes}
    assert {by_id[ed.src].name: ed.grad for ed in gr.edges_into(mul)} == {
        "c": 2.0, "d": 3.0}
    assert shares(gr, "a") == [2.0]
    assert "∂e/∂b = 5 = 2 (via c) + 3 (via d)" in str(gr)
    assert "c = a + b → 3" in str(gr) and "d = b + 1 → 2" in str(gr)
    assert gr["c"].lines == ["c = 3", "∂e/∂c = 2"]


def test_without_frames_the_values_and_gradients_stay(monkeypatch):
    # An interpreter without sys._getframe loses the local names, not the graph.
    from dualrev.drawing import record
    monkeypatch.setattr(record, "_getframe", None)
    gr = dr.graph(e)(2.0, 1.0)
    assert [n.name for n in gr.inputs] == ["a", "b"]
    vals = {n.name: (n.value, n.grad) for n in gr.nodes if n.kind in ("input", "value")}
    assert sorted(vals.values()) == [(1, 5), (2, 2), (2, 3), (3, 2), (6, 1)]
    assert sorted(n.name for n in gr.nodes if n.kind == "op") == ["*", "+", "+"]


def test_g_has_the_seeds_numbers():
    gr = dr.graph(g)(1.0, 3.0, -3.0)
    assert values_of(gr) == {"x": 1, "y": 3, "z": -3, "p": 4, "g": -12}
    assert [gr[k].grad for k in "xyzp"] == [-3, -3, 4, -3]
    assert shares(gr, "p") == [-3.0] and shares(gr, "z") == [4.0]   # multiply swaps
    assert shares(gr, "x") == shares(gr, "y") == [-3.0]   # add hands -3 to both
    want = dr.grad(g, argnums=(0, 1, 2))(1.0, 3.0, -3.0)
    assert tuple(n.grad for n in gr.inputs) == want


def test_shared_weights_sum_their_gradients():
    x = np.array([1.0, 2.0, 3.0])
    gr = dr.graph(lambda w: w * x[0] + w * x[1] + w * x[2])(0.5)
    assert gr["w"].grad == 6.0 and shares(gr, "w") == [1.0, 2.0, 3.0]
    assert "∂out/∂w = 6 = 1 (via v1) + 2 (via v2) + 3 (via v4)" in str(gr)
    # written as a broadcast and a sum: the sum hands 1 to every element, the
    # broadcast of w sums them back
    gr = dr.graph(lambda w: np.sum(w * x))(0.5)
    assert gr["w"].grad == 6.0
    assert np.array_equal(gr["v1"].grad, np.ones(3))
    assert [n.name for n in gr.nodes if n.kind == "op"] == ["*", "np.sum"]


def test_softmax_jacobian_on_the_input():
    z = np.array([1.0, 2.0, 0.5])
    p = softmax(z)
    gr = dr.graph(softmax)(z)
    assert np.allclose(gr["z"].grad, np.diag(p) - np.outer(p, p))
    assert np.allclose(gr["z"].grad, dr.jacobian(softmax)(z))
    assert np.allclose(gr["softmax"].value, p)
    assert [n.name for n in gr.nodes if n.kind == "op"] == ["np.max", "-", "np.exp", "np.sum",
                                                            "/"]
    # a cotangent instead of the basis: one row of the Jacobian
    row = dr.graph(softmax, seed=np.eye(3)[1])(z)
    assert np.allclose(row["z"].grad, p[1] * (np.eye(3)[1] - p))
    assert row.derivative_name(row["z"]) == "adjoint of z"


def test_two_layer_net_gradients_equal_the_hand_written_ones():
    def loss(w1, w2, x, y):
        h = 1 / (1 + np.exp(-np.dot(x, w1)))
        y_pred = h.dot(w2)
        return np.square(y_pred - y).sum()

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    w1, w2 = rng.standard_normal((3, 2)), rng.standard_normal((2, 2))
    gr = dr.graph(loss, argnums=(0, 1))(w1, w2, x, y)
    h = 1 / (1 + np.exp(-x.dot(w1)))
    grad_y_pred = 2.0 * (h.dot(w2) - y)
    assert np.allclose(gr["w2"].grad, h.T.dot(grad_y_pred))
    assert np.allclose(gr["w1"].grad, x.T.dot(grad_y_pred.dot(w2.T) * h * (1 - h)))
    assert np.allclose(gr["h"].value, h) and np.allclose(gr["y_pred"].grad, grad_y_pred)
    # the undifferentiated arguments are constants named after their parameters
    assert gr["x"].kind == "const" and gr["y"].kind == "const"
    assert np.array_equal(gr["x"].value, x)
    assert "v2 = x @ w1" in str(gr) and "y_pred = h @ w2" in str(gr)


# ------------------------------------------------------------------ modes, seeds, arguments


def test_forward_mode_draws_tangents():
    gr = dr.graph(e, mode="forward")(2.0, 1.0)   # basis: d(node)/d(a, b)
    assert {k: list(gr[k].tangent) for k in "abcde"} == {
        "a": [1, 0], "b": [0, 1], "c": [1, 1], "d": [0, 1], "e": [2, 5]}
    assert gr.derivative_name(gr["c"]) == "∂c/∂(a, b)"
    assert all(n.grad is None for n in gr.nodes)
    # along one direction, as jvp: e's tangent is de/da; each edge into * carries its share
    gr = dr.graph(e, mode="forward", seed=(1.0, 0.0))(2.0, 1.0)
    assert gr["e"].tangent == dr.jvp(e, (2.0, 1.0), (1.0, 0.0))[1] == 2.0
    mul = next(n for n in gr.nodes if n.name == "*")
    assert sorted(ed.tangent for ed in gr.edges_into(mul)) == [0.0, 2.0]
    assert "→ 2" in {ed.label for ed in gr.edges}
    def sin(t):
        return np.sin(t)

    one = dr.graph(sin, mode="forward")(0.3)
    assert one.derivative_name(one.outputs[0]) == "∂sin/∂t"
    assert np.isclose(one.outputs[0].tangent, np.cos(0.3))


def test_values_mode_and_the_refused_keywords():
    gr = dr.graph(e, mode="values")(2.0, 1.0)
    assert values_of(gr)["e"] == 6 and all(n.grad is None and n.tangent is None
                                           for n in gr.nodes)
    assert not any(ed.label for ed in gr.edges)
    with pytest.raises(DualrevError, match="mode="):
        dr.graph(e, mode="sideways")
    with pytest.raises(DualrevError, match="seed= has no meaning"):
        dr.graph(e, mode="values", seed=1.0)
    with pytest.raises(DualrevError, match="depth="):
        dr.graph(e, depth=-1)
    with pytest.raises(DualrevError, match="depth="):
        dr.graph(e, depth=True)
    with pytest.raises(DualrevError, match="expand="):
        dr.graph(e, expand="yes")
    with pytest.raises(DualrevError, match="needs a function"):
        dr.graph(3.0)
    with pytest.raises(DualrevError, match="at least one positional argument"):
        dr.graph(lambda: 1.0)()
    with pytest.raises(DualrevError, match="seed='basis'"):
        dr.graph(e, seed="rows")(2.0, 1.0)
    with pytest.raises(DualrevError, match="seed='basis'"):
        dr.graph(e, mode="forward", seed="rows")(2.0, 1.0)
    with pytest.raises(DualrevError, match="structure"):
        dr.graph(lambda x: (x, x), seed=1.0)(2.0)
    with pytest.raises(DualrevError, match="one per argument"):
        dr.graph(e, mode="forward", seed=(1.0,))(2.0, 1.0)
    with pytest.raises(DualrevError, match="structure"):
        dr.graph(lambda p: p["a"] * 2, mode="forward", seed=((1.0, 2.0),))({"a": 1.0})
    with pytest.raises(DualrevError, match="argnums"):
        dr.graph(e, argnums=5)(2.0, 1.0)
    with pytest.raises(DualrevError, match="floating-point outputs"):
        dr.graph(lambda x: np.int64(3))(2.0)


def test_argnums_pytrees_kwargs_and_has_aux():
    def f(params, x, scale=1.0):
        return np.sum(np.tanh(x @ params["w"]) * scale) + params["b"], {"n": 3}

    params = {"w": np.array([[1.0, -1.0], [0.5, 2.0]]), "b": 0.25}
    x = np.array([0.3, -0.2])
    gr = dr.graph(f, argnums=0, has_aux=True)(params, x, scale=np.array([2.0, 3.0]))
    assert gr.aux == {"n": 3}
    assert [n.name for n in gr.inputs] == ["params['b']", "params['w']"]
    want = dr.grad(f, has_aux=True)(params, x, scale=np.array([2.0, 3.0]))[0]
    assert np.allclose(gr["params['w']"].grad, want["w"]) and gr["params['b']"].grad == 1.0
    assert gr["x"].kind == "const" and gr["scale"].kind == "const"   # named constants
    # a forward seed with the argument's structure
    fw = dr.graph(f, argnums=0, has_aux=True, mode="forward",
                  seed=({"w": np.zeros((2, 2)), "b": 1.0},))(params, x)
    assert fw.outputs[0].tangent == 1.0
    # tuple outputs and a returned input
    two = dr.graph(lambda a, b: (a * b, a))(2.0, 3.0, )
    assert [n.name for n in two.outputs] == ["out[0]", "a"]
    assert two["a"].output and two.derivative_name(two["a"]) == "∂(out[0], a)/∂a"
    assert two["a"].grad.shape == (2,)   # one adjoint per output element (the basis)
    const_out = dr.graph(lambda a: 1.5)(2.0)
    assert const_out.outputs[0].kind == "const" and const_out["a"].grad is None


def test_names_from_locals_and_unique():
    def f(x):
        x = x * 2   # rebinds the parameter: the value is x'
        y = np.sin(x)
        parts = [y, y * 3]
        return parts[1] - x

    gr = dr.graph(f)(0.5)
    assert {"x", "x'", "y", "parts[1]", "f"} <= {n.name for n in gr.nodes}
    assert gr["x'"].value == 1.0 and np.isclose(gr["y"].value, np.sin(1.0))
    with pytest.raises(KeyError, match="no node named"):
        gr["q"]
    with pytest.raises(KeyError, match="operations"):
        dr.graph(e)(2.0, 1.0)["+"]


def test_an_argument_without_a_derivative_is_a_dashed_edge():
    # a primitive whose second argument has no VJP (like an index): traced, no derivative
    scale_p = Primitive("scale_by", lambda x, k: x * k)
    scale_p.defvjp(lambda g, ans, x, k: g * k, None)
    gr = dr.graph(lambda x, k: scale_p(x, k * 1.0))(2.0, 3.0)
    by_id = {n.id: n for n in gr.nodes}
    k_edge = [ed for ed in gr.edges if not ed.differentiable and by_id[ed.src].kind != "const"]
    assert len(k_edge) == 1 and by_id[k_edge[0].src].name == "v2"
    assert gr["x"].grad == 3.0 and gr["k"].grad is None
    assert 'stroke-dasharray="4 3"' in gr.to_svg()
    assert "style=dashed" in gr.to_dot()


def test_forward_mode_goes_through_a_custom_vjp_by_its_rules():
    # the tangent is the transposed backward rule's (10 cos x), not the body's (cos x)
    @dr.custom_vjp
    def f(x):
        return np.sin(x)

    f.defvjp(lambda x: (np.sin(x), np.cos(x)), lambda res, g: (10.0 * g * res,))
    assert dr.graph(f)(0.3).outputs[0].value == np.sin(0.3)
    gr = dr.graph(f, mode="forward")(0.3)
    assert gr.outputs[0].tangent == pytest.approx(10.0 * np.cos(0.3), rel=1e-15)
    assert "custom_vjp(f)(x) →" in str(gr)  # the machinery's parameters are not drawn


def test_a_traced_value_of_a_finished_graph_escapes():
    kept = []
    dr.graph(lambda x: kept.append(x) or x * 2)(1.0)
    with pytest.raises(EscapedTracerError):
        kept[0] + 1.0


def test_drawing_inside_another_transform_shows_plain_values():
    drawn = []

    def f(x):
        drawn.append(dr.graph(lambda x: np.sin(x))(x))
        return x * 2

    assert dr.grad(f)(0.3) == 2.0
    assert np.isclose(drawn[0].outputs[0].value, np.sin(0.3))
    assert np.isclose(drawn[0]["x"].grad, np.cos(0.3))


# ------------------------------------------------------------------ nesting: levels


def test_grad_of_grad_shows_the_inner_passes():
    def h(x):
        y = np.sin(x)
        return y * x

    gr = dr.graph(dr.grad(h))(0.5)
    assert gr.contexts == ["grad L1 forward", "grad L1 backward"]
    assert gr["y"].context == "grad L1 forward"
    assert gr.outputs[0].context == "grad L1 backward"
    assert np.isclose(gr.outputs[0].value, dr.grad(h)(0.5))
    assert np.isclose(gr["x"].grad, dr.grad(dr.grad(h))(0.5))
    svg = gr.to_svg()
    assert "grad L1 backward" in svg and "cluster" in gr.to_dot()


def test_a_hessians_nested_recording_shows_its_levels():
    f = lambda x: np.sum(x ** 3)   # noqa: E731
    x = np.array([1.0, 2.0])
    gr = dr.graph(dr.hessian(f), mode="values")(x)
    assert np.allclose(gr.outputs[0].value, dr.hessian(f)(x))
    ctx = set(gr.contexts)
    # hessian = jacfwd(jacrev(f)): jacfwd encloses (L1), jacrev is nested in it (L2)
    assert "jacrev L2 forward › jacfwd L1 primal" in ctx
    assert "jacrev L2 backward › jacfwd L1 tangent" in ctx
    assert any(c.endswith("(batched)") for c in ctx)
    # levels are counted from the graph's own: the same labels whatever ran before
    dr.grad(np.sin)(1.0)
    assert set(dr.graph(dr.hessian(f), mode="values")(x).contexts) == ctx


def test_sequential_transforms_are_siblings_not_nesting():
    def h(x):
        return np.sin(x) * x

    def two(x):
        a = dr.grad(h)(x)
        b = dr.grad(h)(2 * x)
        return a + b

    gr = dr.graph(two)(0.5)
    # two level-1 transforms, one after the other: no L2 anywhere
    assert gr.contexts == ["grad L1 forward", "grad L1 backward"]
    assert np.isclose(gr.outputs[0].value, two(0.5))
    assert np.isclose(gr["x"].grad, dr.grad(two)(0.5))
    # each call keeps its own DOT cluster, both labelled L1
    dot = gr.to_dot()
    assert dot.count("subgraph cluster_") == 4
    assert dot.count('label="grad L1 forward"') == 2
    # real nesting is drawn as nesting: grad of grad inside the function
    gg = dr.graph(lambda x: dr.grad(dr.grad(h))(x))(0.5)
    assert "grad L2 forward › grad L1 forward" in gg.contexts
    assert "grad L2 backward › grad L1 forward" in gg.contexts
    assert not any("L3" in c for c in gg.contexts)
    assert np.isclose(gg.outputs[0].value, dr.grad(dr.grad(h))(0.5))


# ------------------------------------------------------------------ large graphs


def loop(x, w):
    for _ in range(1000):
        x = np.sin(x) * w + 0.1
    return np.sum(x)


def test_a_loop_is_drawn_as_one_block_and_expands():
    x0 = np.array([0.5, 1.0])
    gr = dr.graph(loop)(x0, 0.9)
    (block,) = [n for n in gr.nodes if n.kind == "group"]
    assert block.repeats == 1000 and block.ops == ["np.sin", "*", "+"]
    assert block.name == "×1000" and "3 ops per step" in block.detail
    assert np.allclose(gr["x"].grad, dr.grad(loop)(x0, 0.9))
    assert np.isclose(gr["w"].grad, dr.grad(loop, 1)(x0, 0.9))
    # the block's shares: what flows back into w from all 1000 steps together
    assert np.isclose(shares(gr, "w")[0], gr["w"].grad)
    assert gr["x'"].value == pytest.approx(gr.outputs[0].value / 2 * np.ones(2))
    assert len(gr.nodes) < 10
    full = gr.view(expand=True)
    assert sum(n.kind == "op" for n in full.nodes) == 3001
    assert np.allclose(full["x"].grad, gr["x"].grad)
    assert dr.graph(loop, expand=True)(x0, 0.9).nodes[-1].name == "loop"
    assert gr.view().expand is False


def test_short_repetitions_stay_drawn():
    gr = dr.graph(lambda x: np.sin(np.sin(np.sin(x))))(0.3)   # 3 ops: below MIN_RUN_OPS
    assert [n.name for n in gr.nodes if n.kind == "op"] == ["np.sin"] * 3


def test_a_10k_operation_tape_is_quick():
    def long(x, w):
        for _ in range(3334):
            x = np.sin(x) * w + 0.1
        return np.sum(x)

    t = time.perf_counter()
    gr = dr.graph(long)(np.ones(3), 0.9)
    svg = gr.to_svg()
    elapsed = time.perf_counter() - t
    assert len(gr._rec.tape.nodes) > 10_000
    ET.fromstring(svg)
    assert elapsed < 5.0, elapsed   # about 0.2 s on a 2-core CI machine


def dense(x, w):
    return np.tanh(x @ w)


def mlp(x, w1, w2):
    h = dense(x, w1)
    return np.sum(dense(h, w2) ** 2)


def test_depth_collapses_calls():
    args = (np.ones(2), np.ones((2, 3)) / 4, np.ones((3, 1)))
    gr = dr.graph(mlp, depth=0)(*args)
    groups = [n for n in gr.nodes if n.kind == "group"]
    assert [n.name for n in groups] == ["dense()", "dense()"]
    assert groups[0].ops == ["@", "np.tanh"]
    assert "h = dense(x, w1)" in str(gr)
    want = dr.grad(mlp, argnums=(0, 1, 2))(*args)
    assert all(np.allclose(gr[k].grad, w) for k, w in zip(("x", "w1", "w2"), want,
                                                         strict=True))
    flat = gr.view(depth=None)
    assert not any(n.kind == "group" for n in flat.nodes)
    assert [n.name for n in flat.nodes if n.kind == "op"] == ["@", "np.tanh", "@", "np.tanh",
                                                               "**", "np.sum"]
    assert not any(n.kind == "group" for n in gr.view(depth=5).nodes)   # no call that deep
    with pytest.raises(DualrevError, match="depth="):
        gr.view(depth="deep")
    with pytest.raises(DualrevError, match="expand="):
        gr.view(expand="all")


# ------------------------------------------------------------------ the picture


def parse_svg(text: str):
    root = ET.fromstring(text)
    boxes = []
    for grp in root.iter(f"{SVG}g"):
        cls = grp.get("class", "")
        if cls.split()[:1] in (["node"], ["label"]):
            r = grp.find(f"{SVG}rect")
            boxes.append((float(r.get("x")), float(r.get("y")), float(r.get("width")),
                          float(r.get("height"))))
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}tspan")]
    texts += [t.text or "" for t in root.iter(f"{SVG}text") if len(t) == 0]
    return root, boxes, texts


@pytest.mark.parametrize("direction", ["LR", "TB"])
@pytest.mark.parametrize("case", ["e", "g", "softmax", "net", "nested", "loop"])
def test_svg_parses_holds_every_label_and_no_boxes_overlap(case, direction):
    gr = {"e": lambda: dr.graph(e)(2.0, 1.0),
          "g": lambda: dr.graph(g, mode="forward")(1.0, 3.0, -3.0),
          "softmax": lambda: dr.graph(softmax)(np.array([1.0, 2.0, 0.5])),
          "net": lambda: dr.graph(mlp, depth=0)(np.ones(2), np.ones((2, 3)), np.ones((3, 1))),
          "nested": lambda: dr.graph(dr.grad(lambda x: np.sin(x) * x))(0.5),
          "loop": lambda: dr.graph(loop)(np.ones(2), 0.9)}[case]()
    svg = gr.to_svg(direction=direction)
    root, boxes, texts = parse_svg(svg)
    for n in gr.nodes:
        for line in n.lines:
            assert line in texts, (n, line)
    for ed in gr.edges:
        if ed.label:
            assert ed.label in texts
    labelled = sum(1 for ed in gr.edges if ed.label)
    assert len(boxes) == len(gr.nodes) + labelled
    assert overlaps(boxes) == []
    assert overlaps(gr.layout(direction).boxes) == []
    assert len(list(root.iter(f"{SVG}path"))) >= len(gr.edges)
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    assert svg == gr.to_svg(direction=direction)   # deterministic


def test_svg_is_jupyters_and_dot_has_every_node_and_edge():
    gr = dr.graph(e)(2.0, 1.0)
    assert gr._repr_svg_() == gr.to_svg()
    dot = gr.to_dot()
    assert dot.startswith("digraph dualrev {") and "rankdir=LR;" in dot
    assert "rankdir=TB;" in gr.to_dot("TB")
    for n in gr.nodes:
        assert f"  {n.id} [" in dot
    for ed in gr.edges:
        assert f"{ed.src} -> {ed.dst}" in dot
    assert 'label="← 3"' in dot and "∂e/∂b = 5" in dot
    with pytest.raises(DualrevError, match="direction="):
        gr.to_svg(direction="RL")
    with pytest.raises(DualrevError, match="direction="):
        gr.to_dot(direction="up")
    with pytest.raises(DualrevError, match="engine="):
        gr.to_svg(engine="graphviz")
    assert "dualrev.graph of e(a, b), reverse mode: 9 nodes (3 operations)" in repr(gr)


def test_engines(tmp_path, monkeypatch):
    gr = dr.graph(e)(2.0, 1.0)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DualrevError, match="needs Graphviz"):
        gr.to_svg(engine="dot")
    assert gr.to_svg(engine="auto") == gr.to_svg()   # no dot: the Python layout
    monkeypatch.undo()
    # a stand-in for Graphviz's dot: echoes its option and the DOT text's rankdir line
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho \"<svg xmlns='http://www.w3.org/2000/svg'>"
                    "<!-- $1 $(grep rankdir) --></svg>\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    out = gr.to_svg(engine="dot")
    assert "-Tsvg   rankdir=LR;" in out and out == gr.to_svg(engine="auto")
    gr.save(tmp_path / "d.svg", engine="dot")
    assert (tmp_path / "d.svg").read_text() == out
    assert "-Tsvg   rankdir=TB;" in gr.to_svg(engine="dot", direction="TB")
    fake.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    with pytest.raises(DualrevError, match="dot failed: broken"):
        gr.to_svg(engine="dot")


def test_save(tmp_path):
    gr = dr.graph(e)(2.0, 1.0)
    assert gr.save(tmp_path / "g.svg") == str(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == gr.to_svg()
    gr.save(tmp_path / "g.dot")
    gr.save(str(tmp_path / "g.gv"), direction="TB")
    gr.save(tmp_path / "t.svg", direction="TB")
    gr.save(tmp_path / "g.txt")
    assert (tmp_path / "g.dot").read_text() == gr.to_dot()
    assert (tmp_path / "g.gv").read_text() == gr.to_dot("TB")
    assert (tmp_path / "t.svg").read_text() == gr.to_svg(direction="TB")
    assert (tmp_path / "g.txt").read_text() == str(gr) + "\n"
    with pytest.raises(DualrevError, match="cannot tell the format"):
        gr.save(tmp_path / "g.png")


# ------------------------------------------------------------------ the layout


def test_layout_layers_orders_and_places():
    # a diamond plus a source read late: its layer is just before its reader
    sizes = [(40, 20), (30, 20), (30, 20), (40, 20), (10, 10)]
    edges = [(0, 1), (0, 2), (1, 3), (2, 3), (4, 3)]
    lay = layered_layout(sizes, edges, late=[False, False, False, False, True])
    assert lay.layers == [0, 1, 1, 2, 1]
    assert overlaps(lay.boxes) == []
    for (u, v), pts in zip(edges, lay.paths, strict=True):
        x, y, w, h = lay.boxes[u]
        assert pts[0] == (x + w, y + h / 2)
        assert pts[-1] == (lay.boxes[v][0], lay.boxes[v][1] + lay.boxes[v][3] / 2)
    tb = layered_layout(sizes, edges, direction="TB")
    assert overlaps(tb.boxes) == [] and tb.boxes[3][1] > tb.boxes[0][1]
    with pytest.raises(ValueError, match="cycle"):
        layered_layout([(1, 1)] * 2, [(0, 1), (1, 0)])
    with pytest.raises(ValueError, match="direction"):
        layered_layout(sizes, edges, direction="BT")


def test_layout_dummies_and_long_edges():
    n = layout_module.MAX_SPAN + 3
    chain = [(i, i + 1) for i in range(n - 1)]
    short = layered_layout([(10, 10)] * n, [*chain, (0, 3)])
    assert len(short.paths[-1]) == 4   # two dummy nodes on the way
    long = layered_layout([(10, 10)] * n, [*chain, (0, n - 1)])
    assert len(long.paths[-1]) == 2   # drawn directly
    # crossing reduction untangles a crossed pair
    lay = layered_layout([(10, 10)] * 4, [(0, 3), (1, 2)], sweeps=2)
    assert lay.boxes[0][1] < lay.boxes[1][1] and lay.boxes[3][1] < lay.boxes[2][1]
    assert overlaps([(0, 0, 10, 10), (5, 5, 10, 10), (20, 0, 5, 5)]) == [(0, 1)]
    touching = [(0, 0, 10, 10), (9.995, 0, 10, 10)]   # within the default tolerance
    assert overlaps(touching) == [] and overlaps(touching, tolerance=0.0) == [(0, 1)]


# ------------------------------------------------------------------ command line


def test_command_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "e.svg"
    assert main([f"{ROOT / 'docs' / 'figures' / 'make_figures.py'}:e", "--args", "2", "1",
                 "-o", str(out), "--print"]) == 0
    assert out.read_text() == dr.graph(e)(2.0, 1.0).to_svg()
    assert "∂e/∂b = 5" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymod.py").write_text("import numpy as np\n"
                                       "def f(x, w):\n    return np.sum(np.tanh(x) * w)\n")
    assert main(["mymod:f", "--args", "[0.5, -1]", "2", "--argnums", "0", "--mode", "forward",
                 "--direction", "TB", "-o", "f.dot", "--expand", "--depth", "0",
                 "--engine", "python"]) == 0
    assert "rankdir=TB" in (tmp_path / "f.dot").read_text()
    assert main(["mymod:f", "--args", "[0.5, -1]", "2"]) == 0 and (tmp_path / "f.svg").exists()
    for bad in (["mymod"], ["mymod:nothing", "--args", "1"], ["mymod:f", "--args", "(1,"],
                ["mymod:f"], ["mymod:np", "--args", "1"]):
        with pytest.raises(SystemExit) as info:
            main(bad)
        assert info.value.code == 2
    assert main(["mymod:f", "--args", "1", "2", "--argnums", "7"]) == 1
    assert "argnums" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-W", "error", "-m", "dualrev.graph",
                          "examples.computational_graph:g", "--args", "1", "3", "-3",
                          "-o", str(tmp_path / "g.svg")], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "wrote" in run.stdout and ET.parse(tmp_path / "g.svg").getroot().tag == f"{SVG}svg"


def test_dualrev_graph_stays_the_function():
    with pytest.raises(ImportError, match="dualrev.graph is a function"):
        import dualrev.graph  # noqa: F401
    assert callable(dr.graph) and dr.graph is dr.drawing.graph


# ------------------------------------------------------------------ the tutorial's figures


def test_the_tutorials_figures_are_fresh():
    make = runpy.run_path(str(FIGURES / "make_figures.py"))
    fresh = make["render_all"]()
    committed = {p.name for p in FIGURES.glob("*.svg")}
    assert committed == set(fresh), "run python docs/figures/make_figures.py"
    stale = [n for n, text in fresh.items() if (FIGURES / n).read_text(encoding="utf-8") != text]
    assert not stale, f"stale figures {stale}: run python docs/figures/make_figures.py"
    assert make["main"](["--check"]) == 0   # the script's own check agrees
    for name in fresh:  # graphs in the tutorial, other generated pictures in design.md
        doc = make["SHOWN_IN"].get(name, "design.md" if name in make["TEXT_FIGURES"]
                                   else "tutorial.md")
        assert f"figures/{name}" in (ROOT / "docs" / doc).read_text(), (name, doc)


def test_every_figure_the_docs_show_exists():
    """Every ``![alt](figures/...)`` in README and docs/*.md names a committed file and has
    alt text; the pictures of a run (matplotlib PNGs, not redrawn here) exist and are shown
    where make_figures.py says; and the layer diagram lists every module of LAYERS."""
    make = runpy.run_path(str(FIGURES / "make_figures.py"))
    shown = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        prose = re.sub(r"`[^`\n]*`", "", doc.read_text())  # (code spans show the syntax)
        for alt, target in re.findall(r"!\[([^\]]*)\]\(([^)\s]+)\)", prose):
            path = (doc.parent / target).resolve()
            assert path.is_file(), f"{doc.name}: {target} does not exist"
            assert len(alt.split()) >= 3, f"{doc.name}: {target} needs alt text (what it shows)"
            shown.add(path.name)
    for name in make["PNG_FIGURES"]:
        assert (FIGURES / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"figures/{name}" in (ROOT / "docs" / make["SHOWN_IN"][name]).read_text(), name
    assert set(make["render_all"]()) <= shown
    from tests.test_layers import LAYERS

    svg = (FIGURES / "layers.svg").read_text()
    for layer in LAYERS:
        for module in layer:
            assert (module.removeprefix("dualrev.") if module != "dualrev"
                    else "dualrev (__init__)") in svg, module


def _renderer():
    exe = shutil.which("rsvg-convert")
    if exe:
        return "rsvg", exe
    for name in ("chromium", "chromium-browser", "google-chrome", "headless_shell"):
        exe = shutil.which(name)
        if exe:
            return "chromium", exe
    return None, None


def _png_size_and_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return w, h, zlib.decompress(idat)


@pytest.mark.parametrize("name", sorted(p.name for p in FIGURES.glob("*.svg")))
def test_a_real_renderer_draws_each_figure(name, tmp_path):
    kind, exe = _renderer()
    if kind is None:
        pytest.skip("no SVG renderer: install rsvg-convert (Debian package librsvg2-bin) or "
                    "chromium to render the figures")
    svg = FIGURES / name
    root = ET.parse(svg).getroot()
    width, height = float(root.get("width")), float(root.get("height"))
    png = tmp_path / "out.png"
    if kind == "rsvg":
        cmd = [exe, str(svg), "-o", str(png)]
    else:
        cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", f"--screenshot={png}",
               f"--window-size={int(np.ceil(width))},{int(np.ceil(height))}", svg.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    w, h, pixels = _png_size_and_pixels(png)
    assert abs(w - width) <= 1 and abs(h - height) <= 1, (w, h, width, height)
    assert len(set(pixels)) > 8   # not a blank page: text, boxes, colours


def _loop_of_writes(x):
    y = np.zeros_like(x, shape=(6, 2))
    for i in range(5):
        y[i] = y[i - 1] * x[:2] + np.sum(x * 2.0)
    return np.sum(y)


def _chain_of_writes(x):
    y = np.zeros_like(x, shape=(6,))
    y[0] = x
    for i in range(1, 6):
        y[i] = y[i - 1] * x
    return np.sum(y)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_loops_of_in_place_writes_fold_and_keep_their_derivatives(mode):
    # a buffer made inside f (np.zeros_like: a tape entry with no primitive) and written
    # by identical blocks: it crashed the folding; in forward mode the shares of one
    # input into a group were summed across outputs of different shapes (a broadcast
    # error, or a meaningless sum where the shapes broadcast)
    x = np.array([0.5, 2.0, 1.0])
    g = dr.graph(_loop_of_writes, mode=mode)(x)
    assert [n.kind for n in g.nodes].count("group") == 1
    want = dr.jacfwd(_loop_of_writes)(x)
    got = g.outputs[0].tangent if mode == "forward" else g.inputs[0].grad
    np.testing.assert_allclose(got, want, rtol=1e-12)
    h = 1e-6
    np.testing.assert_allclose(want, [(_loop_of_writes(x + h * e) - _loop_of_writes(x - h * e))
                                      / (2 * h) for e in np.eye(3)], rtol=1e-7)
    if mode == "forward":  # the edge from x into the group carries x's tangent
        group = next(n for n in g.nodes if n.kind == "group")
        edge = next(e for e in g.edges_into(group) if e.src == g.inputs[0].id)
        np.testing.assert_array_equal(edge.tangent, g.inputs[0].tangent)
    # y[k] = x^(k+1): d/dx sum = sum (k+1) x^k, at 1.5
    c = dr.graph(_chain_of_writes, mode=mode)(1.5)
    closed = sum((k + 1) * 1.5 ** k for k in range(6))
    got = c.outputs[0].tangent if mode == "forward" else c.inputs[0].grad
    np.testing.assert_allclose(got, closed, rtol=1e-13)
    assert dr.graph(_chain_of_writes, mode=mode, expand=True)(1.5).to_svg().startswith("<")
    # the loop as the issue wrote it: y[i] = y[i - 1] * x from i = 0 (y[-1] = x first):
    # y = (x^2, ..., x^6, x), d/dx sum = sum k x^(k-1) for k = 1..6
    w = dr.graph(_wrapping_writes, mode=mode)(1.3)
    assert [n.kind for n in w.nodes].count("group") == 1
    got = w.outputs[0].tangent if mode == "forward" else w.inputs[0].grad
    np.testing.assert_allclose(got, sum(k * 1.3 ** (k - 1) for k in range(1, 7)), rtol=1e-13)


def _wrapping_writes(x):
    y = np.ones(6) * x
    for i in range(5):
        y[i] = y[i - 1] * x
    return np.sum(y)


def test_passes_are_announced_only_while_a_drawing_records():
    # a trace made outside a drawing is a plain one (nothing per operation); inside,
    # it announces its passes, and nothing is left announced afterwards
    from dualrev import tracer

    seen = []

    def h(x):
        seen.append(type(x._trace).__name__)
        return np.sin(x) * x

    dr.grad(h)(0.5)
    gr = dr.graph(dr.grad(h))(0.5)
    assert seen == ["Tape", "_AnnouncedTape"]
    assert tracer.DRAWING[0] == 0 and tracer.current_passes() == ()
    assert gr.contexts == ["grad L1 forward", "grad L1 backward"]
    with pytest.raises(ZeroDivisionError):
        dr.graph(lambda x: dr.grad(lambda y: y * (1 // 0))(x))(0.5)
    assert tracer.DRAWING[0] == 0 and tracer.current_passes() == ()

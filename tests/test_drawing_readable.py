"""Drawings that stay readable (issue 26): the direction chosen from the graph's shape,
loops of transformed steps folded into one block, and every seed example and a 20-step
training loop within 4,000 px on the long side with the text at its full size."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import dualrev as dr
from dualrev.drawing import main
from dualrev.errors import DualrevError
from examples.computational_graph import e, g
from examples.softmax_jacobian import softmax
from examples.two_layer_net import loss

SVG = "{http://www.w3.org/2000/svg}"
LONG_SIDE = 4000.0
# legibility: text is never scaled to fit (the SVG's size is its viewBox's), boxes' text
# is 12 px and edge labels' 11 px, and a box is at least one line of text tall
MIN_FONT, MIN_LABEL_FONT, MIN_BOX_H = 12.0, 11.0, 25.0


def measure(svg: str) -> tuple[float, float]:
    """The drawing's width and height, after checking that nothing was shrunk."""
    root = ET.fromstring(svg)
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert float(root.get("font-size")) >= MIN_FONT
    for grp in root.iter(f"{SVG}g"):
        if grp.get("font-size") is not None:
            assert float(grp.get("font-size")) >= MIN_LABEL_FONT
        if grp.get("class", "").startswith("node "):
            assert float(grp.find(f"{SVG}rect").get("height")) >= MIN_BOX_H
    return width, height


NET_RNG = np.random.default_rng(1)
N, D_IN, H, D_OUT = 8, 20, 6, 3
X_NET, Y_NET = NET_RNG.standard_normal((N, D_IN)), NET_RNG.standard_normal((N, D_OUT))
W1, W2 = NET_RNG.standard_normal((D_IN, H)), NET_RNG.standard_normal((H, D_OUT))
STEPS, RATE = 20, 0.01


def train(params):
    """The seed's two-layer net trained by STEPS gradient steps in a Python loop."""
    for _ in range(STEPS):
        grads = dr.grad(loss, argnums=(0, 1))(params[0], params[1], X_NET, Y_NET)
        params = (params[0] - RATE * grads[0], params[1] - RATE * grads[1])
    return loss(params[0], params[1], X_NET, Y_NET)


def train_by_hand(params):
    w1, w2 = params
    for _ in range(STEPS):
        g1, g2 = dr.grad(loss, argnums=(0, 1))(w1, w2, X_NET, Y_NET)
        w1, w2 = w1 - RATE * g1, w2 - RATE * g2
    return w1, w2


def neuron(w0, w1, w2, x0, x1):
    # a 12-operation neuron: its left-to-right drawing is over 3,000 px wide
    z = w0 * x0 + w1 * x1 + w2
    s = 1 / (1 + np.exp(-z))
    return (s - 0.5) ** 2 + s / 3


SEEDS = {
    "e": lambda: dr.graph(e)(2.0, 1.0),
    "e forward": lambda: dr.graph(e, mode="forward")(2.0, 1.0),
    "g": lambda: dr.graph(g)(1.0, 3.0, -3.0),
    "shared weights": lambda: dr.graph(lambda w: np.sum(w * np.array([1.0, 2.0, 3.0])))(0.5),
    "shared weights unrolled": lambda: dr.graph(
        lambda w: w * 1.0 + w * 2.0 + w * 3.0)(0.5),
    "softmax jacobian": lambda: dr.graph(softmax)(np.array([1.0, 2.0, 0.5, -1.0])),
    "two-layer net": lambda: dr.graph(loss, argnums=(0, 1))(W1, W2, X_NET, Y_NET),
    "neuron": lambda: dr.graph(neuron)(2.0, -3.0, -3.0, -1.0, -2.0),
    "training loop": lambda: dr.graph(train)((W1, W2)),
}


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_every_seed_and_a_training_loop_fit_4000_px_at_full_size(case):
    gr = SEEDS[case]()
    w, h = measure(gr.to_svg())
    assert max(w, h) <= LONG_SIDE, (case, w, h, gr.preferred_direction())
    # Jupyter shows the same drawing
    assert gr._repr_svg_() == gr.to_svg()


def test_the_direction_is_chosen_from_the_shape_and_an_explicit_one_wins():
    small = SEEDS["e"]()
    assert small.preferred_direction() == "LR"   # as the seeds draw it
    chain = SEEDS["neuron"]()
    assert chain.preferred_direction() == "TB"
    lr = measure(chain.to_svg(direction="LR"))
    tb = measure(chain.to_svg(direction="TB"))
    assert lr[0] > 3000 and max(tb) < max(lr)   # the case: too wide left to right
    assert chain.to_svg() == chain.to_svg(direction="TB")
    assert "rankdir=TB;" in chain.to_dot() and "rankdir=LR;" in chain.to_dot(direction="LR")
    assert "rankdir=LR;" in small.to_dot()
    # every writer honours an explicit direction
    assert chain.layout(direction="LR").width == pytest.approx(lr[0] - 0.0, abs=200)
    lay_tb = chain.layout()
    assert lay_tb.height > lay_tb.width
    for bad in ("lr", "BT", None):
        with pytest.raises(DualrevError, match="direction="):
            chain.to_svg(direction=bad)
        with pytest.raises(DualrevError, match="direction="):
            chain.to_dot(direction=bad)


def test_a_training_loop_folds_into_one_block_with_the_last_steps_values():
    params = (W1, W2)
    gr = dr.graph(train)(params)
    (block,) = [n for n in gr.nodes if n.kind == "group"]
    assert block.repeats == STEPS and block.name == f"×{STEPS}"
    flat = gr.view(expand=True)
    assert not any(n.kind == "group" for n in flat.nodes)
    assert len(gr.nodes) <= 30 and len(flat.nodes) > 1000   # 27 against 1164
    # the block's outputs are the last step's values: the parameters after STEPS steps
    w1, w2 = train_by_hand(params)
    made = [gr.nodes[int(ed.dst[1:])] for ed in gr.edges_from(block)]
    got = sorted((n.value for n in made), key=np.size)
    np.testing.assert_allclose(got[0], w2, rtol=1e-12)
    np.testing.assert_allclose(got[1], w1, rtol=1e-12)
    assert [n.name for n in made] == ["params[0]'", "params[1]'"]   # the loop's locals
    # the gradients through all 20 steps (second derivatives of loss) are dr.grad's
    want = dr.grad(train)(params)
    for node, wv in zip(gr.inputs, want, strict=True):
        np.testing.assert_allclose(node.grad, wv, rtol=1e-9, atol=1e-12)
    for node, fv in zip(flat.inputs, want, strict=True):
        np.testing.assert_allclose(node.grad, fv, rtol=1e-9, atol=1e-12)
    # the caption, the box and the text say which step's values are shown
    svg, text, dot = gr.to_svg(), str(gr), gr.to_dot()
    for out in (html.unescape(svg), text, dot):
        assert f"{STEPS} identical steps" in out and "last step's" in out
    assert "values: the last step's" in block.lines
    assert any("grad L1 forward" in line for line in block.lines)
    assert "identical steps" not in flat.to_svg()


def test_the_command_line_chooses_and_obeys_the_direction(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chain.py").write_text(
        "import numpy as np\n"
        "def neuron(w0, w1, w2, x0, x1):\n"
        "    z = w0 * x0 + w1 * x1 + w2\n"
        "    s = 1 / (1 + np.exp(-z))\n"
        "    return (s - 0.5) ** 2 + s / 3\n")
    args = ["chain:neuron", "--args", "2", "-3", "-3", "-1", "-2"]
    assert main(args + ["-o", "auto.dot"]) == 0
    assert main(args + ["-o", "lr.dot", "--direction", "LR"]) == 0
    assert "rankdir=TB;" in (tmp_path / "auto.dot").read_text()
    assert "rankdir=LR;" in (tmp_path / "lr.dot").read_text()
    with pytest.raises(SystemExit):
        main(args + ["--direction", "BT"])

"""``dualrev.graph`` of a recorded program (dualrev/drawing/program.py): the nodes and
edges follow the program's steps, guards are drawn as guards, values come from running
the program, and the graph is written by the same layout and writers."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

import dualrev as dr
from dualrev.drawing import Graph, ProgramGraph, program_graph
from dualrev.primitive import UFUNC_HANDLERS
from dualrev.program import Op, Program


def f(x: Any) -> Any:
    y = np.sin(x[1:]) * x[:-1]
    if np.sum(y) > 0:
        return np.sum(y ** 2)
    return np.sum(np.cos(y))


@pytest.fixture(scope="module")
def program() -> Program:
    g = dr.replay(dr.grad(f))
    g(np.array([0.5, 1.0, 2.0]))
    return g.programs[0]


def test_nodes_and_edges_follow_the_steps(program: Program) -> None:
    g = dr.graph(program)
    assert isinstance(g, ProgramGraph) and isinstance(g, Graph) and g.mode == "values"
    ops = [n for n in g.nodes if n.kind == "op"]
    assert len(ops) == len(program.ops)
    assert [n.entry for n in ops] == [k for k, s in enumerate(program.steps) if type(s) is Op]
    assert ops[0].name == "[1:]" and ops[1].name == "np.sin" and ops[3].name == "*"
    # one edge per argument, one from each operation to its value, one into each guard
    n_args = sum(len(op.args) for op in program.ops)
    assert len(g.edges) == n_args + len(program.ops) + len(program.guards)
    assert len(g.inputs) == 1 and g.inputs[0].name == "x"
    assert g.inputs[0].lines == ["x: f64[3]"]
    (out,) = g.outputs
    assert out.name == "out" and out.entry == program.outputs[0]
    consts = [n for n in g.nodes if n.kind == "const"]
    assert {n.entry for n in consts} == set(program.consts)


def test_guards_are_drawn_as_guards(program: Program) -> None:
    g = dr.graph(program)
    assert [n.entry for n in g.guards] == [k for k, s in enumerate(program.steps)
                                           if type(s) is not Op]
    truth = g.guards[0]
    assert truth.name == "guard bool(v7) is True"
    assert "if np.sum(y) > 0:" in truth.detail
    (into,) = g.edges_into(truth)
    src = next(n for n in g.nodes if n.id == into.src)
    assert src.kind == "value" and src.entry == program.guards[0].slot
    assert not into.differentiable
    assert g.guards[1].name == "guard all finite(out) is True"


def test_values_from_running_the_program(program: Program) -> None:
    x = np.array([0.3, 0.7, 1.1])
    g = dr.graph(program, x)
    (out,) = g.outputs
    np.testing.assert_array_equal(out.value, program.run([x])[0])
    np.testing.assert_allclose(out.value, dr.grad(f)(x), rtol=1e-14)
    sin_value = next(n for n in g.nodes if n.name == "v2")
    np.testing.assert_array_equal(sin_value.value, np.sin(x[1:]))
    with pytest.raises(dr.ProgramCallError, match="guard truth"):
        dr.graph(program, np.array([0.3, -0.7, 1.1]))  # the other branch
    with pytest.raises(dr.ProgramCallError, match="shape"):
        dr.graph(program, np.ones(4))


def test_written_by_the_same_writers(program: Program) -> None:
    g = dr.graph(program, np.array([0.3, 0.7, 1.1]))
    text = str(g)
    assert text.splitlines()[0] == ("program of f — values mode: 1 input(s), "
                                    f"{len(program.ops)} operation(s), 1 output(s)")
    assert "  v2 = np.sin(v1) → [0.6442 0.8912]" in text
    assert "  guard bool(v7) is True" in text
    svg = g.to_svg()
    assert svg.startswith("<svg") and svg.count('class="node guard"') == 2
    dot = g.to_dot()
    assert dot.count("shape=octagon") == 2
    assert g.view(expand=True) is g
    assert repr(g).startswith("<dualrev.graph of program of f, values mode:")


def test_a_loaded_program_draws_as_the_recorded_one(program: Program) -> None:
    buf = io.BytesIO()
    dr.save_program(program, buf)
    buf.seek(0)
    loaded = dr.load_program(buf)
    a, b = dr.graph(program), dr.graph(loaded)
    assert [(n.kind, n.name, n.lines) for n in a.nodes] == \
        [(n.kind, n.name, n.lines) for n in b.nodes]
    assert [(e.src, e.dst, e.argpos) for e in a.edges] == \
        [(e.src, e.dst, e.argpos) for e in b.edges]


def test_a_hand_built_program_and_refusals() -> None:
    sin, mul = UFUNC_HANDLERS[np.sin], UFUNC_HANDLERS[np.multiply]
    prog = Program(4, [0, 1], {}, [Op(sin, (0,), {}, 2), Op(mul, (2, 1), {}, 3)], [3, 0])
    g = program_graph(prog)
    assert [n.name for n in g.inputs] == ["x0", "x1"]
    assert [n.name for n in g.outputs] == ["out[0]", "x0"]  # an input returned as it is
    assert g.title == "program"
    with pytest.raises(dr.ProgramCallError, match="no recorded call signature"):
        program_graph(prog, 1.0, 2.0)
    with pytest.raises(dr.DualrevError, match="a recorded Program is needed"):
        program_graph(f)  # type: ignore[arg-type]
    # a function is still recorded first
    assert callable(dr.graph(f)) and not isinstance(dr.graph(f), Graph)


def test_the_command_line_draws_a_saved_program(program: Program, tmp_path: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from dualrev.drawing.cli import main

    saved = tmp_path / "grad_f.npz"
    dr.save_program(program, saved)
    out = tmp_path / "g.txt"
    assert main([str(saved), "--args", "[0.3, 0.7, 1.1]", "-o", str(out), "--print"]) == 0
    text = out.read_text()
    assert text.startswith("program of f — values mode") and "guard bool(v7) is True" in text
    assert f"wrote {out}" in capsys.readouterr().out
    assert main([str(saved), "--args", "[1.0, 2.0]", "-o", str(out)]) == 1  # a wrong shape
    assert "shape" in capsys.readouterr().err


def test_an_argument_written_into_is_drawn_as_such() -> None:
    def h(x: Any, buf: Any) -> Any:
        buf *= 2.0
        return np.sum(np.sin(x) * buf)

    g = dr.replay(dr.grad(h))
    g(np.ones(3), np.ones(3))
    drawn = dr.graph(g.programs[0])
    assert [n.name for n in drawn.outputs] == ["out", "x1 (written)"]

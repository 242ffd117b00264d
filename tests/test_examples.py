"""Every example script runs, and prints what its docstring promises (those that need an
optional library are marked extras; the Dask example has its own module,
tests/test_examples_dask.py)."""

import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.extras import need


def _own_module(path: Path) -> bool:
    """An example whose first line is ``# needs: dask, distributed`` needs optional
    libraries and a size of its own: its own test module (marked extras) runs it
    (tests/test_examples_dask.py)."""
    return path.read_text().startswith("# needs:")


EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").glob("*.py")
                  if not p.name.startswith("_") and not _own_module(p))
#: examples that need an optional library: marked extras, skipped without it
NEEDS = {"torch_physics_layer": "torch"}


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.extras) if p.stem in NEEDS else p for p in EXAMPLES],
    ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, capsys, monkeypatch):
    if path.stem in NEEDS:
        need(NEEDS[path.stem])
    # the 2-D PDE example's default is n = 10^5 unknowns: a 20 x 20 grid here
    # Rosenbrock at its documented n = 100, where SciPy's finite-difference defaults fail
    argv = {"pde_bratu_2d": ["--n", "400"], "optimize_rosenbrock": []}.get(path.stem, ["20"])
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip()
    if path.stem == "computational_graph":
        assert "e = 6.0, de/da = 2.0, de/db = 5.0" in out
        assert "g = -12.0, gradients = (-3.0, -3.0, 4.0)" in out
    if path.stem == "draw_graph":
        assert "∂e/∂b = 5 = 2 (via c) + 3 (via d)" in out
        assert "de/dc = 2.0  de/dd = 3.0  de/db = 5.0" in out
        assert "training loop: " in out and "(×20)" in out
        assert Path(out.split("wrote ")[-1].strip()).read_text().startswith("<svg")
    if path.stem == "optimize_rosenbrock":
        _check_rosenbrock(out)
    if path.stem == "pde_bratu_2d":
        _check_pde(out)
    if path.stem == "newton_krylov":  # Newton-GMRES on dr.linearize's f_jvp
        assert "(quadratic = True)" in out and "FAILED" not in out, out
        assert float(out.split("max |u - u_dense_newton| = ")[1].split()[0]) < 1e-10
    if path.stem == "sparse_least_squares":
        assert "3 colours" in out and "converged = True" in out
    if path.stem == "custom_rules":
        assert "[0.   0.25 0.  ]" in out
    if path.stem == "rk4_trajectory":
        assert float(out.split("finite differences: ")[-1].split()[0]) < 1e-6
    if path.stem == "fit_sensitivity":  # d popt / d y_i and d stderr / d y_i vs refits
        diffs = [float(v) for v in re.findall(r"vs refitting: ([0-9.e+-]+)", out)]
        assert len(diffs) == 2 and max(diffs) < 1e-6, out
    if path.stem == "torch_physics_layer":
        first, last = (float(v) for v in re.findall(r"loss: ([0-9.e+-]+) -> ([0-9.e+-]+)",
                                                     out)[0])
        assert last < first / 100, out
        assert float(out.split("max difference ")[1].split()[0]) < 1e-12, out
    if path.stem == "two_layer_net":
        diff = float(out.splitlines()[0].split(":")[1])
        assert diff < 1e-6
        assert "as written: dualrev: `x.dot(w1)` -> `x @ w1`" in out
    if path.stem == "mle_standard_errors":
        mle, fit = out.splitlines()[0].split("; scipy.stats.gamma.fit:")
        ours = [float(v) for v in re.findall(r"= ([0-9.]+)", mle)]
        ref = [float(v) for v in re.findall(r"= ([0-9.]+)", fit)]
        assert max(abs(a / b - 1) for a, b in zip(ours, ref, strict=True)) < 1e-4
        closed, fd = (float(line.split("max relative difference: ")[1].rstrip(")"))
                      for line in out.splitlines()[2:4])
        assert closed < 1e-8 and fd < 1e-4
    if path.stem == "ode_parameter_fit":
        fitted = out.split("fitted:")[1].split("]")[0].strip(" [")
        true = out.split("true:")[1].split("]")[0].strip(" [")
        assert np.allclose([float(v) for v in fitted.split()],
                           [float(v) for v in true.split()], atol=0.05)
        assert float(out.split("Jacobians agree to ")[1].split()[0]) < 1e-3
        z = out.split("(fitted - true) / se:")[1].split("]")[0].strip(" [")
        assert np.all(np.abs([float(v) for v in z.split()]) < 4)  # the errors cover the truth


def _check_pde(out):
    """The PDE example's three solutions agree and its pattern is the 5-point stencil."""
    assert "structural = True, the 5-point stencil = True" in out, out
    assert "the same pattern = True" in out, out
    dists = [float(v) for v in re.findall(r"/ max \|u_c\| = ([0-9.e+-]+)", out)]
    assert len(dists) == 2 and dists[0] < 1e-7 and dists[1] < 1e-4, out
    assert "FAILED" not in out


def test_pde_example_reaction_diffusion_and_its_checks(capsys):
    """The reaction-diffusion problem of the same example, and its check failing where a
    residual is large or the solutions part."""
    path = Path(__file__).parent.parent / "examples" / "pde_bratu_2d.py"
    mod = runpy.run_path(str(path), run_name="pde_example")
    out = mod["main"](["--n", "400", "--problem", "reaction-diffusion"])
    _check_pde(capsys.readouterr().out)
    assert out["n"] == 400 and out["newton"] < 1e-8
    assert mod["_check"]("x", 1e-10, 1e-8, 1e-9, 1e-7)
    assert not mod["_check"]("x", 1e-3, 0.0, 1e-9, 1e-7)  # residual too large
    assert not mod["_check"]("x", 0.0, 1e-3, 1e-9, 1e-7)  # the solutions differ


def _check_rosenbrock(out: str) -> None:
    """Each method's line: both runs succeeded, both reached the minimum, and the finite
    differences took more than ten times dualrev's evaluations (read from the print, so
    that what the example says is what is checked)."""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["BFGS", "Newton-CG", "trust-constr"]
    for line in lines:
        assert line.count("success=True") == 2, line
        errors = [float(v) for v in re.findall(r"max\|x-1\| = ([0-9.e+-]+)", line)]
        assert len(errors) == 2 and max(errors) < 1e-4, line
        ours, fd = (int(v) for v in re.findall(r"(\d+) evaluations", line))
        assert fd > 10 * ours, line

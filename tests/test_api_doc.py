"""docs/api.md is generated from the docstrings (docs/make_api.py): it is current, it
covers every public name, each public function documents every parameter, what it
returns and an example, and every example runs and prints what it shows."""

from __future__ import annotations

import doctest
import inspect
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

import dualrev
import dualrev.optimize
from tests.extras import need

ROOT = Path(__file__).resolve().parent.parent
make = runpy.run_path(str(ROOT / "docs" / "make_api.py"))
NAMES = make["public_names"]()
IDS = [make["qualified"](m, n) for m, n in NAMES]


def test_api_md_is_current():
    assert (ROOT / "docs" / "api.md").read_text() == make["build"](), \
        "run python docs/make_api.py"


def test_every_public_name_is_documented():
    documented = {make["qualified"](m, n) for m, n in NAMES}
    public = {f"dualrev.{n}" for n in dualrev.__all__}
    public |= {f"dualrev.optimize.{n}" for n in dualrev.optimize.__all__}
    assert public - documented == set()


def _parameters(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    out = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append(prefix + p.name)
    return out


@pytest.mark.parametrize(("module", "name"), NAMES, ids=IDS)
def test_docstring_has_its_sections(module, name):
    obj = getattr(module, name)
    body, sections = make["split_sections"](inspect.getdoc(obj) or "")
    assert body, "a summary"
    assert ">>>" in sections.get("Example", sections.get("Examples", "")), "an example"
    if inspect.isclass(obj) and issubclass(obj, Exception):
        return  # an error's parameters are its message's parts, not the user's to pass
    documented = [a for a, _ in make["parse_args"](sections.get("Args", ""))]
    assert documented == _parameters(obj), "Args: every parameter, in order"
    if not inspect.isclass(obj):
        assert sections.get("Returns"), "Returns:"


def _example(module, name):
    _, sections = make["split_sections"](inspect.getdoc(getattr(module, name)) or "")
    return sections.get("Example", sections.get("Examples", ""))


def _optional_libraries(text):
    """The optional libraries an example imports (the bridges' torch, jax)."""
    return sorted(set(re.findall(r"^>>> import .*?\b(torch|jax)\b", text, re.M)))


@pytest.mark.parametrize(("module", "name"), [
    pytest.param(m, n, marks=[pytest.mark.extras] if _optional_libraries(_example(m, n)) else [])
    for m, n in NAMES], ids=IDS)
def test_example_runs(module, name):
    text = _example(module, name)
    # an example that imports an optional library needs it (and is marked extras)
    for lib in _optional_libraries(text):
        need(lib)
    test = doctest.DocTestParser().get_doctest(text, {"np": np, "dr": dualrev},
                                               make["qualified"](module, name), None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                   | doctest.NORMALIZE_WHITESPACE)
    with np.printoptions(precision=6, suppress=True, legacy=False):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0

"""dualrev/__init__.py: every public name listed (``__all__``, ``dir``, completion), the
lazy submodules loaded only when used, and the typed user file run as a program."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import dualrev

ROOT = Path(__file__).resolve().parents[1]
LAZY_MODULES = ("drawing", "optimize", "sparse", "testing")


def _run(code: str) -> str:
    """``code`` in a fresh interpreter (the checkout's dualrev first on its path)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_dir_lists_every_public_name_lazy_ones_included():
    names = dir(dualrev)
    assert names == sorted(set(names))
    assert set(dualrev.__all__) <= set(names)
    assert {*LAZY_MODULES, "graph", "__version__", "errors", "tree"} <= set(names)
    # not the helpers __init__ imports for itself
    assert not {"Any", "annotations", "without_derivatives", "TYPE_CHECKING"} & set(names)
    # (what IPython's completion of `dr.gr` offers)
    assert [n for n in names if n.startswith("gr")] == ["grad", "graph"]


def test_every_name_in_all_resolves_and_is_public():
    assert len(dualrev.__all__) == len(set(dualrev.__all__))
    for name in dualrev.__all__:
        value = getattr(dualrev, name)
        assert not isinstance(value, types.ModuleType), name  # (submodules: by attribute)
        assert not name.startswith("_")
    # every public function or class the package namespace holds is in __all__, except
    # the two helpers kept for dualrev's own use
    public = {n for n, v in vars(dualrev).items() if not n.startswith("_")
              and not isinstance(v, types.ModuleType)}
    assert public - set(dualrev.__all__) <= {"Any", "TypeVar", "annotations",
                                             "catalogue_declared", "without_derivatives",
                                             "TYPE_CHECKING"}


def test_lazy_names_are_their_modules_and_function():
    import dualrev.drawing

    for name in LAZY_MODULES:
        assert getattr(dualrev, name) is sys.modules[f"dualrev.{name}"]
    assert dualrev.graph is dualrev.drawing.graph
    try:
        dualrev.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no attribute 'no_such_name'" in str(e)
    else:
        raise AssertionError("dualrev.no_such_name resolved")


def test_importing_dualrev_loads_no_lazy_module():
    out = _run(
        "import sys, dualrev\n"
        "names = dir(dualrev)\n"  # listing them loads nothing either
        "print(sorted(m for m in sys.modules if m in ('hypothesis',) or "
        "m.split('.')[:2] in [['dualrev', n] for n in ('drawing', 'optimize', 'sparse', "
        "'testing')]))\n"
        "from dualrev import *\n"  # loads graph's module only (graph is in __all__)
        "print('hypothesis' in sys.modules, 'dualrev.optimize' in sys.modules, "
        "'dualrev.testing' in sys.modules, callable(graph), callable(grad))\n")
    assert out.split("\n")[:2] == ["[]", "False False False True True"], out


def test_typed_user_file_runs_with_the_numbers_it_states():
    # tests/typing/user_fit.py is what mypy and pyright check (tests/test_typing.py); run
    # as a program it checks its gradients, Jacobian, Hessian and fit against closed forms
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "typing" / "user_fit.py")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "user_fit: ok"

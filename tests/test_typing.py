"""The static types: ``mypy --strict`` and pyright on the typed user files of
tests/typing/ (marker ``typing``; ``nox -s typing`` runs these after the README's
install, with the checkers pinned in noxfile.py).

Each checker runs in a temporary folder holding copies of the files, so that it finds
dualrev only as installed, the way a user's project does (mypy and pyright also search
the current folder). Without a checker, scipy-stubs, or dualrev installed from this
checkout, a test skips saying so; where ``DUALREV_REQUIRE_TYPING`` is set (the nox
session) it fails instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.typing

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "tests" / "typing").glob("user_*.py"))


def _missing(what: str) -> None:
    if os.environ.get("DUALREV_REQUIRE_TYPING"):
        raise AssertionError(f"{what} (required in this run: DUALREV_REQUIRE_TYPING)")
    pytest.skip(what)


def _need(module: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        _missing(f"{module} is not installed (pip install {install})")


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the checkout with the typed files, where dualrev imports as
    installed from this checkout (else skip, or fail where required)."""
    d = tmp_path_factory.mktemp("typed_user")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    out = subprocess.run([sys.executable, "-c", "import dualrev; print(dualrev.__file__)"],
                         capture_output=True, text=True, cwd=d, env=env, timeout=120)
    where = Path(out.stdout.strip()).resolve().parent if out.returncode == 0 else None
    if where != ROOT / "dualrev":
        _missing(f"dualrev is not installed from this checkout (pip install -e \".[test]\" "
                 f"in {ROOT}); it imports from {where}")
    try:  # (user_fit.py checks that minimize returns SciPy's OptimizeResult)
        importlib.metadata.version("scipy-stubs")
    except importlib.metadata.PackageNotFoundError:
        _missing("scipy-stubs is not installed (pip install scipy-stubs)")
    for f in FILES:
        shutil.copy(f, d / f.name)
    return d


def _checker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    env["PYRIGHT_PYTHON_IGNORE_WARNINGS"] = "1"  # (no look-up of newer versions)
    return env


def test_mypy_strict_accepts_the_user_files_and_reports_each_mistake(user_dir: Path):
    _need("mypy", "mypy")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir",
         str(user_dir / ".mypy_cache"), *(f.name for f in FILES)],
        capture_output=True, text=True, cwd=user_dir, env=_checker_env(), timeout=600)
    # --strict warns of an unused "type: ignore": a mistake user_errors.py makes that
    # mypy stopped reporting fails here, as does any error in user_fit.py
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Success: no issues found in {len(FILES)} source files" in out.stdout


def test_pyright_accepts_the_user_files_and_reports_each_mistake(user_dir: Path):
    _need("pyright", "'pyright[nodejs]'")
    config = {"typeCheckingMode": "strict", "reportUnnecessaryTypeIgnoreComment": "error",
              "include": [f.name for f in FILES]}
    (user_dir / "pyrightconfig.json").write_text(json.dumps(config))
    out = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, "--outputjson"],
        capture_output=True, text=True, cwd=user_dir, env=_checker_env(), timeout=600)
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise AssertionError(out.stdout + out.stderr) from None
    problems = [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
                for d in report["generalDiagnostics"]]
    assert not problems, "\n".join(problems)
    assert report["summary"]["filesAnalyzed"] == len(FILES)


def test_each_expected_mistake_is_a_mypy_error_on_its_line(user_dir: Path):
    """user_errors.py without its ignores: mypy reports an error on every line that had
    one and on no other (an ignore can hide only the error of its own line)."""
    _need("mypy", "mypy")
    text = (user_dir / "user_errors.py").read_text()
    marked = {i + 1 for i, line in enumerate(text.splitlines())
              if "  # type: ignore[" in line}
    bare = user_dir / "bare" / "user_errors.py"
    bare.parent.mkdir(exist_ok=True)
    bare.write_text("\n".join(line.split("  # type: ignore[")[0]
                              for line in text.splitlines()) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir",
         str(user_dir / ".mypy_cache"), "user_errors.py"],  # (numpy's stubs: cached)
        capture_output=True, text=True, cwd=bare.parent, env=_checker_env(), timeout=600)
    reported = {int(line.split(":")[1]) for line in out.stdout.splitlines()
                if ": error:" in line}
    assert len(marked) >= 15
    assert reported == marked, (sorted(marked - reported), sorted(reported - marked),
                                out.stdout)

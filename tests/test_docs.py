"""The Python blocks of the docs and README run, in order, per file."""

import linecache
import re
from pathlib import Path

import pytest

from tests.extras import need

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.fixture
def registries_restored():
    """The docs register primitives of their own (extending.md replaces scipy.special's
    erf): the registries are put back afterwards, so that later tests see dualrev's."""
    from dualrev import primitive

    tables = [primitive.UFUNC_HANDLERS, primitive.FUNCTION_HANDLERS, primitive.PRIMITIVES]
    saved = [dict(t) for t in tables]
    yield
    for t, s in zip(tables, saved, strict=True):
        t.clear()
        t.update(s)


def needs(path: Path) -> list[str]:
    """The optional libraries a doc's blocks import, from its first line's
    ``<!-- needs: dask, distributed -->`` (such a doc's test is marked extras)."""
    m = re.match(r"<!-- needs: ([\w., ]+) -->", path.read_text())
    return [n.strip() for n in m.group(1).split(",")] if m else []


@pytest.mark.parametrize("path", [pytest.param(p, marks=[pytest.mark.extras] if needs(p) else [])
                                  for p in DOCS], ids=[p.name for p in DOCS])
def test_doc_code_blocks_run(path, registries_restored):
    for name in needs(path):
        need(name)
    text = path.read_text()
    namespace: dict = {}
    for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        block = m.group(1)
        # Each block gets its own source name, registered with linecache, so that
        # inspect.getsource (hypothesis calls it on @given tests) reads the block rather
        # than the wrong lines of the markdown file, and tracebacks show the block.
        name = f"{path}:{text.count(chr(10), 0, m.start(1)) + 1}"
        linecache.cache[name] = (len(block), None, block.splitlines(True), name)
        exec(compile(block, name, "exec"), namespace)


def test_fresh_interpreter_blocks_do_what_the_docs_say():
    """A ```python fresh block shows what happens in a new interpreter (the import order
    of `from scipy... import` and `import dualrev`, which the in-process blocks above
    cannot show: dualrev is imported there). Each runs in one; where a ```text block
    follows, its first line is the error the run ends with, up to the "...". """
    import os
    import subprocess
    import sys

    found = 0
    for path in DOCS:
        text = path.read_text()
        for m in re.finditer(r"```python fresh\n(.*?)```\n\n(?:```text\n(.*?)\n)?", text,
                             flags=re.S):
            found += 1
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            run = subprocess.run([sys.executable, "-c", m.group(1)], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300, check=False)
            if m.group(2) is None:
                assert run.returncode == 0, (path.name, run.stderr)
                continue
            expected = m.group(2).split("...")[0].strip()
            last = run.stderr.strip().splitlines()[-1]
            assert run.returncode != 0 and last.startswith(expected), (path.name, last)
    assert found


def test_the_import_order_list_names_every_function_dualrev_replaces():
    """users.md's list of the SciPy functions a `from scipy... import` before `import
    dualrev` leaves unrouted is every module-level function dualrev replaces (its
    dispatchers' table), by name; scipy.ndimage's and the Lyapunov and Riccati solvers
    are named by family. A function added to the table without the docs fails here."""
    import inspect

    import dualrev  # noqa: F401 - fills the table
    from dualrev.scipy_dispatch import ORIGINALS

    text = (ROOT / "docs" / "users.md").read_text()
    start = text.index("- *Affected*")
    listed = set(re.findall(r"`(?:[\w.]+\.)?(\w+)`", text[start:text.index("- *Not", start)]))
    missing = []
    for original in ORIGINALS.values():
        name, module = getattr(original, "__qualname__", ""), original.__module__
        if inspect.isclass(original) or "." in name or module.startswith(
                ("scipy.stats", "scipy.ndimage")):
            continue  # classes and their methods: patched on the class, any order works
        if re.fullmatch(r"solve_(continuous|discrete)_(are|lyapunov)", name):
            continue
        if name not in listed:
            missing.append(f"{module}.{name}")
    assert not missing, f"docs/users.md, import order: add {sorted(missing)}"
    assert "scipy.ndimage's filters and interpolation" in text

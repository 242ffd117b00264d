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

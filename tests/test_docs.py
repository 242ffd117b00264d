"""The Python blocks of the docs and README run, in order, per file."""

import linecache
import re
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_doc_code_blocks_run(path, registries_restored):
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

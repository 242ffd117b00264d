"""docs/api.md, generated from the docstrings of every public name:
``python docs/make_api.py`` rewrites it, ``--check`` only compares (exit status 1 if it is
stale). tests/test_api_doc.py runs the comparison, checks that every public function
documents each of its parameters, what it returns and an example, and runs the examples.

Docstrings follow one layout (Google style), which this script turns into Markdown::

    One-line summary.

    Longer text (Markdown: lists, `code`, **bold**).

    Args:
        name: what it is (continuation lines indented further).
    Returns:
        what comes back, with its shape.
    Raises:
        SomeError: when.
    Example:
        >>> import numpy as np, dualrev as dr
        >>> print(dr.grad(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0])))
        [2. 4.]
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dualrev  # noqa: E402
import dualrev.closure  # noqa: E402
import dualrev.config  # noqa: E402
import dualrev.integrate  # noqa: E402
import dualrev.optimize  # noqa: E402
import dualrev.sparse  # noqa: E402
import dualrev.testing  # noqa: E402
import dualrev.testing.strategies  # noqa: E402

API = ROOT / "docs" / "api.md"
SECTIONS = ("Args", "Returns", "Raises", "Example", "Examples", "Yields", "Attributes")

HEADER = """# API reference

Every public name of dualrev, generated from its docstring by `docs/make_api.py`
(`help(dualrev.grad)` shows the same text); `tests/test_api_doc.py` checks that this page
is current and runs every example. What is differentiable (the NumPy and SciPy functions)
is listed in [catalogue.md](catalogue.md), with what is not supported.

Conventions shared by the transforms: `argnums` is an int (one argument, its derivative
returned as it is) or a tuple (a tuple of derivatives); arguments and outputs may be
pytrees (tuples, lists, dicts of arrays); a Jacobian has the shape `out.shape + in.shape`
(JAX's); keyword arguments of the transformed function are passed through and not
differentiated; complex numbers pair cotangents with tangents as `Re(ct · t)`.
"""

# (module, name) of every public name, in the page's order
GROUPS: list[tuple[str, list[tuple[Any, str]]]] = [
    ("Transforms", [(dualrev, n) for n in (
        "grad", "value_and_grad", "jvp", "vjp", "jacfwd", "jacrev", "jacobian", "hessian",
        "hvp", "vmap", "linearize", "linear_transpose")]),
    ("Values, rules and updates", [(dualrev, n) for n in (
        "stop_gradient", "strip", "at", "custom_jvp", "custom_vjp", "register_function",
        "register_ufunc", "Primitive")]),
    ("Checkpointing", [(dualrev, n) for n in ("checkpoint", "checkpoint_loop")]),
    ("Pytrees", [(dualrev, n) for n in (
        "tree_flatten", "tree_unflatten", "tree_map", "ravel_pytree", "register_pytree_node",
        "register_dataclass", "register_pytree_node_class")]),
    ("Record and replay", [(dualrev, "replay")]),
    ("Saving recorded programs", [(dualrev, n) for n in ("save_program", "load_program")]),
    ("Drawing", [(dualrev, "graph")]),
    ("Debugging NaNs", [(dualrev, "debug_nans"), (dualrev.config, "set_debug_nans")]),
    ("Bridges to PyTorch and JAX", [(dualrev, n) for n in ("to_torch", "to_jax")]),
    ("ODEs and integrals (dualrev.integrate)", [(dualrev.integrate, n)
                                               for n in dualrev.integrate.__all__]),
    ("SciPy callbacks (dualrev.closure)", [(dualrev.closure, n) for n in (
        "lift", "lift_all")]),
    ("Optimisation (dualrev.optimize)", [(dualrev.optimize, n)
                                         for n in dualrev.optimize.__all__]),
    ("Sparse Jacobians and Hessians (dualrev.sparse)", [
        (dualrev.sparse, n) for n in dualrev.sparse.__all__
        if n not in ("FORMATS", "MODES", "ORDERS")]),
    ("Testing (dualrev.testing)", [(dualrev.testing, n) for n in (
        "check_grads", "numerical_jvp", "CheckOptionError")]),
    ("Hypothesis strategies (dualrev.testing.strategies)", [
        (dualrev.testing.strategies, n) for n in dualrev.testing.strategies.__all__
        if n != "DOMAINS"]),
    ("Traced values", [(dualrev, n) for n in ("Traced", "Dual", "Tape")]),
    ("Errors", [(dualrev, n) for n in (
        "DualrevError", "NoDerivativeRule", "TracerConversionError", "PlainBufferError",
        "InPlaceError", "StaleViewError", "EscapedTracerError", "CustomRuleError",
        "SolverNotConvergedError", "SingularSolutionError", "SparseOptionError", "ProgressError",
        "ClosureError", "CheckpointError", "ForeignArrayError",
        "NonFiniteDerivativeWarning", "NonFiniteError", "ReplayError", "ReplayWarning",
        "ProgramNotPortable", "ProgramFormatError", "ProgramCallError", "NonLinearError")]),
]


def public_names() -> list[tuple[Any, str]]:
    """Every (module, name) the page documents."""
    return [item for _, items in GROUPS for item in items]


def qualified(module: Any, name: str) -> str:
    return f"{module.__name__}.{name}"


def signature(obj: Any, qualname: str) -> str:
    """The call's signature as a user writes it (no annotations, ``self`` left out)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return qualname
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    text = str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))
    ret = sig.return_annotation
    if ret is not inspect.Signature.empty and not inspect.isclass(obj):
        r = ret if isinstance(ret, str) else getattr(ret, "__name__", str(ret))
        text += f" -> {r}"
    return qualname + text


def split_sections(doc: str) -> tuple[str, dict[str, str]]:
    """The docstring's free text and its sections (``Args:`` ... ``Example:``)."""
    lines = doc.splitlines()
    body: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = body
    for line in lines:
        m = re.fullmatch(r"(\w+):\s*", line)
        if m and m.group(1) in SECTIONS:
            current = sections.setdefault(m.group(1), [])
            continue
        current.append(line)
    return ("\n".join(body).strip(),
            {k: inspect.cleandoc("\n".join(v)) for k, v in sections.items()})


def parse_args(text: str) -> list[tuple[str, str]]:
    """``name: text`` entries of an ``Args:`` section (continuations joined)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = re.fullmatch(r"(\*{0,2}[\w.]+)(?: \([^)]*\))?: (.*)", line)
        if m and not line.startswith(" "):
            out.append((m.group(1), m.group(2)))
        elif out:
            out[-1] = (out[-1][0], f"{out[-1][1]} {line.strip()}".strip())
    return out


def render(module: Any, name: str) -> str:
    obj = getattr(module, name)
    qual = qualified(module, name)
    doc = inspect.getdoc(obj) or ""
    body, sections = split_sections(doc)
    out = [f"### `{qual}`", "", "```", signature(obj, qual), "```", ""]
    if body:
        out += [body, ""]
    if "Args" in sections:
        out += ["**Arguments**", ""]
        out += [f"- `{a}` — {t}" for a, t in parse_args(sections["Args"])]
        out.append("")
    for key, title in (("Returns", "Returns"), ("Yields", "Yields"),
                       ("Attributes", "Attributes"), ("Raises", "Raises")):
        if key in sections:
            out += [f"**{title}**", "", sections[key], ""]
    for key in ("Example", "Examples"):
        if key in sections:
            # pycon (a console session): tests/test_docs.py executes ```python blocks,
            # tests/test_api_doc.py runs these examples under doctest
            out += ["**Example**", "", "```pycon", sections[key], "```", ""]
    return "\n".join(out)


def build() -> str:
    parts = [HEADER]
    for title, items in GROUPS:
        parts.append(f"## {title}\n")
        parts += [render(m, n) for m, n in items]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = build()
    if "--check" in argv:
        if API.read_text() != text:
            print("docs/api.md is stale: run python docs/make_api.py")
            return 1
        return 0
    API.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

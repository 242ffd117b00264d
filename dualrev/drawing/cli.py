"""The command line: ``python -m dualrev.graph module:function --args 2 1 -o e.svg``.

The target is ``module:function`` (imported as Python imports it, the current directory
first) or ``path/to/file.py:function``; ``--args`` are Python literals (``2``, ``-3.5``,
``"[1, 2, 3]"``), lists becoming float arrays. A target ending in ``.npz`` is a program
saved by ``dualrev.save_program``, drawn as it is (``--args``, optional, run it to show
the values).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import DualrevError
from ..program_io import load_program
from .program import program_graph
from .record import DIRECTIONS, ENGINES, MODES, graph


def _load(target: str) -> Callable[..., Any]:
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{target!r}: give module:function or path/to/file.py:function")
    if module_name.endswith(".py") or os.sep in module_name:
        name = os.path.splitext(os.path.basename(module_name))[0]
        spec = importlib.util.spec_from_file_location(name, module_name)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot load {module_name!r}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{target!r} is a {type(obj).__name__}, not a function")
    return obj


def _literal(text: str) -> Any:
    try:
        v = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"--args: {text!r} is not a Python literal (a number, or a list "
                         "of them in quotes: '[1, 2, 3]')") from e
    if isinstance(v, (list, tuple)):
        return np.asarray(v, dtype=float)
    return v


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit
    status (0, or 2 for a usage error, as argparse does)."""
    parser = argparse.ArgumentParser(
        prog="python -m dualrev.graph",
        description="Draw the computational graph of a function, values forward and "
                    "gradients backward, as SVG (no Graphviz needed), DOT or text.")
    parser.add_argument("target", help="module:function or path/to/file.py:function, or "
                        "a saved program (.npz, dualrev.save_program)")
    parser.add_argument("--args", nargs="*", default=[], metavar="VALUE",
                        help="positional arguments, as Python literals: 2 -3.5 '[1, 2]'")
    parser.add_argument("-o", "--output", help="file to write: .svg (default "
                        "<function>.svg), .dot, .gv or .txt")
    parser.add_argument("--argnums", type=int, nargs="+", help="the differentiated "
                        "arguments (default: all)")
    parser.add_argument("--mode", choices=MODES, default="reverse")
    parser.add_argument("--expand", action="store_true",
                        help="draw every step of repeated blocks")
    parser.add_argument("--depth", type=int, help="draw each function call at this "
                        "nesting as one node")
    parser.add_argument("--engine", choices=ENGINES, default="python",
                        help="layout: python (built in), dot (Graphviz), auto")
    parser.add_argument("--direction", choices=DIRECTIONS, default="auto",
                        help="auto (default: left to right unless too wide), LR (left to right) "
                        "or TB (top to bottom)")
    parser.add_argument("--print", action="store_true", dest="show",
                        help="also print the graph as text")
    ns = parser.parse_args(argv)
    if ns.target.endswith(".npz"):
        return _draw_saved(ns)
    try:
        f = _load(ns.target)
        args = [_literal(a) for a in ns.args]
    except (ValueError, ImportError, AttributeError, OSError) as e:
        parser.error(str(e))
    if not args:
        parser.error("give the function's arguments with --args")
    argnums = None if ns.argnums is None else tuple(ns.argnums)
    try:
        g = graph(f, argnums, mode=ns.mode, expand=ns.expand, depth=ns.depth)(*args)
        path = ns.output or f"{getattr(f, '__name__', 'graph')}.svg"
        g.save(path, engine=ns.engine, direction=ns.direction)
    except DualrevError as e:
        print(f"python -m dualrev.graph: {e}", file=sys.stderr)
        return 1
    if ns.show:
        print(g)
    print(f"wrote {path}")
    return 0


def _draw_saved(ns: argparse.Namespace) -> int:
    """Draw a program saved by ``dualrev.save_program``; ``--args`` run it for values."""
    try:
        program = load_program(ns.target)
        g = program_graph(program, *[_literal(a) for a in ns.args])
        path = ns.output or os.path.splitext(os.path.basename(ns.target))[0] + ".svg"
        g.save(path, engine=ns.engine, direction=ns.direction)
    except (DualrevError, ValueError) as e:
        print(f"python -m dualrev.graph: {e}", file=sys.stderr)
        return 1
    if ns.show:
        print(g)
    print(f"wrote {path}")
    return 0

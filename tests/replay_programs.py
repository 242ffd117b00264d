"""Random programs as scientists write them, rendered as Python source, for checking
``dualrev.replay`` against the dynamic transforms (tests/test_replay_programs.py).

A program is a list of steps ``(kind, p)`` of small integers; ``build`` reads each step
modulo the menu of statement kinds, so every list is a valid program. The statements are
the constructs of numerical code: elementwise arithmetic and functions, reductions,
indexing and slicing, in-place writes into copies (``u = v.copy(); u[1:-1] += ...``) and
into buffers filled in a loop (``out = np.zeros(n); out[i] = ...``), ``np.where`` masks,
``if`` on values, ``while`` loops whose trip count depends on values, ``for`` loops over
ranges, the builtins ``max`` and ``abs``, calls to small helper functions (some with
their own ``if``), and slices of a temporary read after its last use.

Each program is rendered twice from the same statements: ``plain`` (what the user
writes, which the transforms run) and ``instrumented``, where every decision the Python
control flow takes on a value (an ``if``/``while`` condition, ``max``'s comparison) goes
through ``_b(k, cond)``, which logs ``(k, outcome)``. Running the instrumented program on
plain arrays gives the *path* a call takes; two calls with the same path take the same
branches, so a replay recorded on one must replay on the other, and a call with a path
not seen before must re-record.
"""

from __future__ import annotations

import linecache
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: values of the condition templates below are compared with these thresholds; inputs
#: alternate in sign and scale (``input_sequence``), so the odd functions' sums flip
UNARY = [
    "np.sin({a})", "np.cos({a})", "np.tanh({a})", "np.exp(-{a} * {a})",
    "{a} * np.tanh({a})", "np.sqrt({a} * {a} + 1.0)", "np.log1p({a} * {a})",
    "np.abs({a})", "1.0 / (1.0 + {a} * {a})", "np.arctan({a}) * 2.0", "-{a}",
    "{a} ** 2 * 0.5", "np.sinh({a} * 0.5)",
]
BINARY = [
    "{a} + {b}", "{a} - 0.5 * {b}", "{a} * np.tanh({b})", "{a} / (1.0 + {b} * {b})",
    "np.maximum({a}, {b})", "np.minimum({a}, {b}) + 0.1", "np.hypot({a}, {b})",
    "np.sin({a}) * np.cos({b})",
]
REDUCE = [
    "np.sum({a})", "np.mean({a} * {a})", "np.max({a})", "np.dot({a}, {b}) * 0.2",
    "np.linalg.norm({a})", "{a}[0]", "np.prod(1.0 + 0.1 * np.tanh({a}))", "{a}[-1] * 2.0",
    "np.min({a})", "np.sum({a}[1:] * {b}[:-1])",
]
CONDS = [
    "np.sum({a}) > {c}", "{a}[0] < {b}[-1]", "{s} > {c}", "np.max({a}) > {c} + 0.5",
    "np.mean({a}) * {s} < 0.0", "{a}[1] > 0",
]
HELPERS = [
    "def {h}(a, b):\n    return a * np.tanh(b) + 0.1 * b\n",
    "def {h}(a, b):\n    c = a.copy()\n    c[0] = c[0] + np.sum(b) * 0.1\n    return np.sin(c)\n",
    "def {h}(a, b):\n    if ⟦{k}: np.sum(a) > np.sum(b)⟧:\n        return a - 0.5 * b\n"
    "    return np.sin(b) + 0.2 * a\n",
    "def {h}(a, b, scale=0.7):\n    return np.where(a > b, a * scale, b - a * 0.1)\n",
    "def {h}(a, b):\n    out = 0.0\n    for i in range(a.shape[0]):\n"
    "        out = out + a[i] * np.cos(b[i])\n    return a * 0.5 + out * 0.1\n",
]

_MARK = re.compile(r"⟦(\d+): (.*?)⟧")
_VALUE = re.compile(r"⟨(\d+): (.*?)⟩")
_MAX = re.compile(r"⟪(\d+): (.*?) ,, (.*?)⟫")


@dataclass
class Generated:
    """One program: its source lines, the helper functions it calls, its size ``n``,
    the constructs it uses and whether its control flow depends on values."""

    n: int
    helpers: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    vectors: list[str] = field(default_factory=lambda: ["x"])
    scalars: list[str] = field(default_factory=list)
    constructs: list[str] = field(default_factory=list)
    branches: int = 0

    @property
    def branchy(self) -> bool:
        """Whether Python's control flow depends on values (``if``, ``while``, ``max``):
        such a program is refused under ``vmap``, dynamic and replayed alike."""
        return self.branches > 0

    def source(self, output: str, instrumented: bool = False) -> str:
        """The module source: helpers, then ``def f(x)`` returning a scalar
        (``output="scalar"``) or a vector (``"vector"``)."""
        v, others = self.vectors[-1], self.vectors[1:-1]
        if output == "scalar":
            ret = f"np.sum(np.sin({v}) * {v})"
            ret += "".join(f" + 0.05 * np.sum({o})" for o in others)
        else:
            ret = f"{v} * 1.0" + "".join(f" + 0.05 * {o}" for o in others)
        ret += "".join(f" + 0.1 * {s}" for s in self.scalars)
        text = "\n".join(self.helpers) + "\n\ndef f(x):\n"
        text += "".join(f"    {line}\n" for line in self.body)
        text += f"    return {ret}\n"
        return _render(text, instrumented)


def _render(text: str, instrumented: bool) -> str:
    if instrumented:
        text = _MARK.sub(lambda m: f"_b({m.group(1)}, {m.group(2)})", text)
        text = _VALUE.sub(lambda m: f"_v({m.group(1)}, {m.group(2)})", text)
        return _MAX.sub(lambda m: f"_max({m.group(1)}, {m.group(2)}, {m.group(3)})", text)
    text = _MARK.sub(lambda m: m.group(2), text)
    text = _VALUE.sub(lambda m: m.group(2), text)
    return _MAX.sub(lambda m: f"max({m.group(2)}, {m.group(3)})", text)


KINDS = ["unary", "binary", "scalar", "reduce", "slice", "copy_write", "buffer_loop",
         "where", "if", "while", "for", "max_abs", "helper", "mask_write", "int_index",
         "views"]


def build(steps: list[tuple[int, int]], n: int, allow_branches: bool = True,
          exclude: frozenset[str] = frozenset()) -> Generated:
    """The program of ``steps`` on an input vector of size ``n`` (``allow_branches=False``:
    no value-dependent Python control flow, for vmap; ``exclude``: statement kinds drawn
    as the next kind instead)."""
    g = Generated(n=n)
    for t, (kind, p) in enumerate(steps):
        while KINDS[kind % len(KINDS)] in exclude:
            kind += 1
        _statement(g, kind, p, t, allow_branches)
    return g


def _fresh(g: Generated, prefix: str) -> str:
    return f"{prefix}{len(g.vectors) + len(g.scalars)}"


def _statement(g: Generated, kind: int, p: int, t: int, allow_branches: bool) -> None:
    r = random.Random(p)
    V, S, n = g.vectors, g.scalars, g.n
    a, b = r.choice(V), r.choice(V)
    c = round(r.uniform(-0.5, 0.5), 2)
    name = KINDS[kind % len(KINDS)]
    if name in ("if", "while", "max_abs", "mask_write", "int_index") and not allow_branches:
        name = "where"
    if name == "helper" and not allow_branches and p % len(HELPERS) == 2:
        p += 1
    if name in ("scalar", "max_abs") and not S:
        name = "reduce"
    g.constructs.append(name)
    out = _fresh(g, "s" if name in ("reduce", "max_abs", "int_index") else "v")
    body = g.body
    if name == "unary":
        body.append(f"{out} = " + r.choice(UNARY).format(a=a))
    elif name == "binary":
        body.append(f"{out} = " + r.choice(BINARY).format(a=a, b=b))
    elif name == "scalar":
        s = r.choice(S)
        body.append(f"{out} = {a} * np.tanh({s}) + {c}")
    elif name == "reduce":
        body.append(f"{out} = " + r.choice(REDUCE).format(a=a, b=b))
    elif name == "slice":
        perm = list(range(n))
        r.shuffle(perm)
        body.append(f"{out} = " + r.choice([
            f"np.concatenate([{a}[1:], {a}[:1]])", f"{a}[::-1] * 0.8",
            f"np.cumsum({a}) * 0.3", f"{a}[{perm}]", f"np.roll({a}, 1) - {b}",
            f"np.diff({a}, prepend=0.0)"]))
    elif name == "copy_write":
        body.append(f"{out} = {a}.copy()")
        body.append(r.choice([
            f"{out}[1:-1] += 0.5 * ({b}[2:] - 2.0 * {b}[1:-1] + {b}[:-2])",
            f"{out}[::2] *= 0.5",
            f"{out}[0] = np.sum({b}) * 0.2",
            f"{out}[-1] -= {b}[0] * {b}[1]"]))
    elif name == "views":  # a repeated temporary, slices of it read after its last use
        body.append(f"u{t} = np.abs({a})")
        body.append(f"t{t} = np.abs({a})")
        body.append(f"{out} = " + r.choice([
            f"np.sin(t{t}) * t{t} + 0.1 * np.sum(t{t}[1:] * t{t}[:-1])",
            f"np.concatenate([np.cos(t{t})[:1], np.cos(t{t})[1:] * t{t}[1:]])",
            f"np.roll(np.sin(t{t}) * 2.0, 1) + np.sum(t{t}[1:] * u{t}[:-1])"]))
    elif name == "mask_write":  # a mask from values: which elements are written
        k = _branch(g)
        body.append(f"{out} = {a}.copy()")
        body.append(f"{out}[⟨{k}: {out} > {c}⟩] *= 0.5")
    elif name == "int_index":  # an index computed from values: the result's shape
        k = _branch(g)
        body.append(f"{out} = np.sum({a}[:int(⟨{k}: np.sum({b} * {b}) * 0.5⟩) % {n} + 1]) * 0.5")
    elif name == "buffer_loop":
        body.append(f"{out} = np.zeros({n})")
        body.append(f"for i in range({n}):")
        body.append(f"    {out}[i] = {a}[i] * np.cos({b}[(i + 1) % {n}]) + 0.1 * i")
    elif name == "where":
        body.append(f"{out} = " + r.choice([
            f"np.where({a} > {c}, {a}, 0.3 * {a})",
            f"np.where({a} * {b} > 0, np.sin({a}), {b})"]))
    elif name == "if":
        k = _branch(g)
        cond = r.choice(CONDS).format(a=a, b=b, c=c, s=r.choice(S) if S else f"np.sum({b})")
        body.append(f"if ⟦{k}: {cond}⟧:")
        body.append(f"    {out} = " + r.choice(UNARY).format(a=a))
        body.append("else:")
        body.append(f"    {out} = " + r.choice(BINARY).format(a=a, b=b))
    elif name == "while":
        k = _branch(g)
        lim = round(r.uniform(1.0, 3.0) * n, 1)
        body.append(f"{out} = {a} * 0.5")
        body.append(f"k{t} = 0")
        body.append(f"while k{t} < 4 and ⟦{k}: np.sum({out} * {out}) < {lim}⟧:")
        body.append(f"    {out} = {out} * 1.5 + 0.05 * np.tanh({b})")
        body.append(f"    k{t} += 1")
    elif name == "for":
        body.append(f"{out} = {a}")
        body.append(f"for _ in range({r.randint(2, 4)}):")
        body.append(f"    {out} = np.sin({out}) * 1.0001 + 0.001 * {b}")
    elif name == "max_abs":
        s1, s2 = r.choice(S), r.choice(S)
        if r.random() < 0.5:
            k = _branch(g)
            body.append(f"{out} = ⟪{k}: {s1} ,, {s2} * 0.5 + {c}⟫")
        else:
            body.append(f"{out} = abs({s1}) + 0.1")
    elif name == "helper":
        h = f"h{len(g.helpers)}"
        src = HELPERS[p % len(HELPERS)]
        if "⟦" in src:
            src = src.format(h=h, k=_branch(g))
        else:
            src = src.format(h=h)
        g.helpers.append(src)
        body.append(f"{out} = {h}({a}, {b})")
    if out.startswith("s"):
        S.append(out)
    else:
        V.append(out)


def _branch(g: Generated) -> int:
    g.branches += 1
    return g.branches


_COUNTER = [0]


def compile_program(source: str, extra: dict[str, Any] | None = None) -> Callable[..., Any]:
    """``f`` of a rendered program, its source registered with linecache (tracebacks and
    the guards' ``where`` show the program's lines)."""
    _COUNTER[0] += 1
    filename = f"<replay-program-{_COUNTER[0]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"np": np, **(extra or {})}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102  (generated test code)
    return namespace["f"]


def path_of(g: Generated, output: str, x: np.ndarray) -> tuple[tuple[int, Any], ...]:
    """The decisions a call of ``g`` on the plain array ``x`` takes, in order."""
    log: list[tuple[int, Any]] = []

    def b(k: int, cond: Any) -> bool:
        v = bool(cond)
        log.append((k, v))
        return v

    def read(k: int, value: Any) -> Any:
        # a value that decides a mask or an index: the recording holds it exactly
        a = np.asarray(value)
        log.append((k, (a.dtype.str, a.shape, a.tobytes())))
        return value

    def max_(k: int, first: Any, second: Any) -> Any:
        # builtins.max(a, b) keeps a unless b > a
        return second if b(k, second > first) else first

    f = compile_program(g.source(output, instrumented=True), {"_b": b, "_v": read, "_max": max_})
    f(np.array(x, dtype=float))
    return tuple(log)


def input_sequence(seed: int, n: int, batch: int | None = None) -> list[np.ndarray]:
    """Inputs of one shape whose signs and scales alternate, so that decisions on odd
    functions of them flip back and forth; the last two are near the first two (their
    paths are usually seen before: a replay, not a recording)."""
    rng = np.random.default_rng(seed)
    shape = (n,) if batch is None else (batch, n)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape) * 0.05
    return [x, -x, 1.7 * x + w, -0.6 * x, 1.01 * x, -0.99 * x + w * 0.1]

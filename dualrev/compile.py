"""A recorded ``Program`` compiled to one Python function.

``compile_program(program)`` returns a ``Runner`` whose ``run(leaves)`` gives the same
output leaves as ``program.run(leaves)`` and raises ``GuardFailed`` at the same guard,
without the interpreter's per-step dispatch: each operation is one line of generated
source calling the primitive's implementation (a ufunc itself for elementwise entries),
guards are inline ``if`` tests, and the source is compiled once with ``compile``.

The runner is specialised to the signature of the first leaves it runs (their types,
shapes and dtypes: the replay cache keys a program by exactly these, so every later call
has the same): that first call runs the reference interpreter, noting the type, shape and
dtype of every value, and compiles from what it saw. On that knowledge the compiler

- folds constants: an operation whose inputs are all constants runs once, at compile time
  (not when it warns, raises, is written in place or reaches an output, or gives more
  than ``FOLD_MAX_BYTES``);
- drops dead operations (whose results reach no output and no guard) and repeated ones
  (same primitive, same inputs, same parameters: arrays among the parameters compared by
  identity, floats by their bits);
- frees each array at its last use (``del``) and lets an elementwise ufunc write into an
  input that dies there (``out=``) where that input is a temporary the program made
  itself, is no view and is seen by nothing else, with the output's shape and dtype;
- runs Python floats through Python arithmetic and ``math`` (the scalar fast path of
  ``apply_plain`` decided once, statically): arithmetic, ``sqrt``, ``fabs`` and the
  comparisons are exact; ``MATH_FUNCTIONS`` (``sin``, ``exp``, ``log``...) come from the C
  library rather than NumPy's loops and can differ from them in the last bit (at most one
  ulp measured). Where ``math`` raises (``log(0.0)``, an overflow), the line falls back
  to the NumPy call, whose value and warning the dynamic path gives. Values that an
  ``"equal"`` guard reads exactly keep NumPy's functions all the way up.

``runner.source`` is the generated listing (for debugging and docs/replay.md).
"""

from __future__ import annotations

import functools
import keyword
import math
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import config
from .primitive import PLAIN_CALLS, PLAIN_SCALARS, Primitive, apply_plain
from .program import Guard, GuardFailed, Op, Program, _all_finite, same_value

__all__ = ["COMPILE_MAX_STEPS", "FOLD_MAX_BYTES", "MATH_FUNCTIONS", "Runner", "compile_program",
           "register_inline"]

#: the form of a primitive's line: ``form(out, args, params, seen, name)`` returns source
#: statements assigning ``out`` (or None: call the implementation). ``args`` are the
#: arguments' source, ``seen`` their ``_Seen`` (type, shape, dtype), ``name(obj)`` a
#: namespace name holding ``obj``.
InlineForm = Callable[[str, list[str], dict[str, Any], list[Any], Callable[[Any], str]],
                      str | None]
_INLINE: dict[Primitive, InlineForm] = {}


_FRESH: set[Primitive] = set()
_ACCUMULATE: dict[Primitive, InlineForm] = {}


def register_inline(prim: Primitive, form: InlineForm | None, *, fresh: bool = False,
                    accumulate: InlineForm | None = None) -> None:
    """Let compiled programs run ``prim`` as the source ``form`` gives (for example
    ``x[idx]`` for getitem), which must compute exactly what ``prim.impl`` computes on
    arguments of the types seen. Called by the catalogue where the primitive is declared.

    Example:
        >>> from dualrev.compile import register_inline
        >>> from dualrev.primitive import Primitive
        >>> twice = Primitive("twice", lambda x: x + x)
        >>> register_inline(twice, lambda out, args, params, seen, name:
        ...                 f"{out} = {args[0]} + {args[0]}")
    """
    if form is not None:
        _INLINE[prim] = form
    if fresh:
        _FRESH.add(prim)
    if accumulate is not None:
        _ACCUMULATE[prim] = accumulate

#: folded constants larger than this are computed on every run instead (memory held per
#: cached program against time saved)
FOLD_MAX_BYTES = 1 << 20
#: programs with more steps than this keep the reference interpreter: compiling costs
#: about 50-80 us a step (a 6000-step program: 0.3-0.5 s), the interpreter about 1 us a
#: step more per call than the compiled function
COMPILE_MAX_STEPS = 20_000

#: ufuncs run on Python floats by a ``math`` function: correctly rounded ones (exact)...
_EXACT_MATH: dict[Any, str] = {np.sqrt: "sqrt", np.fabs: "fabs"}
#: ... and those whose C-library version can differ from NumPy's in the last bit (measured
#: at most one ulp against NumPy 2.4 on x86-64; tanh, two ulp apart, stays on NumPy)
MATH_FUNCTIONS: dict[Any, str] = {
    np.sin: "sin", np.cos: "cos", np.tan: "tan", np.exp: "exp", np.expm1: "expm1",
    np.log: "log", np.log1p: "log1p", np.log10: "log10", np.log2: "log2",
    np.sinh: "sinh", np.cosh: "cosh", np.arctan: "atan", np.arcsinh: "asinh",
}
#: elementwise operators written as Python operators on floats (``scalar_impl`` mirrors)
_BINARY_OPS: dict[Any, str] = {operator.add: "+", operator.sub: "-", operator.mul: "*",
                               operator.truediv: "/", operator.pow: "**"}
# comparisons on floats: the same truth as NumPy's (nan included), a Python bool
_COMPARISONS: dict[Any, str] = {np.greater: ">", np.less: "<", np.greater_equal: ">=",
                                np.less_equal: "<=", np.equal: "==", np.not_equal: "!="}
_FLOATS = (float, np.float64)


class Runner:
    """A compiled program: ``run(leaves)`` returns the output leaves.

    Until its first call ``run`` is the reference interpreter plus the compiler; from then
    on it is the generated function (a plain function: nothing between the caller and
    the program's first line).

    Attributes:
        program: the program compiled.
        run: ``run(leaves) -> list`` of output leaves; raises ``GuardFailed``.
        source: the generated Python source (None before the first call).
        counts: what the optimisations did (``folded``, ``dead``, ``repeated``,
            ``reused``, ``accumulated``, ``scalar`` operations; ``lines``), or
            ``interpreted`` (the step count) where the program is run by
            ``Program.run`` instead: more than ``COMPILE_MAX_STEPS`` steps, or Python's
            compiler gave up.
    """

    __slots__ = ("program", "run", "source", "counts")

    def __init__(self, program: Program) -> None:
        self.program = program
        self.source: str | None = None
        self.counts: dict[str, int] = {}
        self.run: Callable[[Sequence[Any]], list[Any]] = self._first_run

    def __call__(self, leaves: Sequence[Any]) -> list[Any]:
        return self.run(leaves)

    def _first_run(self, leaves: Sequence[Any]) -> list[Any]:
        if len(self.program.steps) > COMPILE_MAX_STEPS:
            self.counts = {"interpreted": len(self.program.steps)}
            self.run = self.program.run
            return self.run(leaves)
        outputs, seen = _observe(self.program, leaves)
        try:
            fn, self.source, self.counts = _generate(self.program, seen)
        except (RecursionError, MemoryError, SyntaxError) as e:
            # Python's compiler gave up (a limit of this interpreter): the reference
            # interpreter runs the program, as correct and slower
            self.counts = {"interpreted": len(self.program.steps), "why": repr(e)[:200]}
            self.run = self.program.run
            return outputs
        self.run = fn
        return outputs

    def __repr__(self) -> str:
        state = "compiled" if self.source is not None else "not yet compiled"
        return f"<Runner {state}, {len(self.program.steps)} steps>"


def compile_program(program: Program, example: Sequence[Any] | None = None) -> Runner:
    """Compile ``program`` to Python source; returns a ``Runner``.

    Args:
        program: the recorded program.
        example: input leaves of the program's signature: compile now from a run on
            them. Without it the runner compiles at its first call, from that call.
    Returns:
        A ``Runner``: ``runner.run(leaves)`` equals ``program.run(leaves)`` (raising
        ``GuardFailed`` at the same guard) for leaves of the signature it compiled for.
    Example:
        >>> import numpy as np
        >>> from dualrev.primitive import UFUNC_HANDLERS
        >>> from dualrev.program import Op, Program
        >>> from dualrev.compile import compile_program
        >>> sin, mul = UFUNC_HANDLERS[np.sin], UFUNC_HANDLERS[np.multiply]
        >>> p = Program(4, inputs=[0], consts={1: 2.0},
        ...             steps=[Op(sin, (0,), {}, 2), Op(mul, (2, 1), {}, 3)], outputs=[3])
        >>> runner = compile_program(p)
        >>> print(runner.run([np.array([0.0, 1.0])]))
        [array([0.        , 1.68294197])]
        >>> print(runner.source)   # multiply writes into v2, dying there
        def replayed(leaves):
            v0, = leaves
            v2 = sin(v0)
            del v0
            v3 = multiply(v2, 2.0, out=v2)
            del v2
            return [v3]
        <BLANKLINE>
    """
    runner = Runner(program)
    if example is not None:
        runner.run(example)
    return runner


# ---------------------------------------------------------------------------- observe
class _Seen:
    """What the first run saw of one value: its type, shape, dtype and size."""

    __slots__ = ("type", "shape", "dtype", "nbytes", "owner", "writeable")

    def __init__(self, value: Any) -> None:
        self.type = type(value)
        if self.type is np.ndarray:
            self.shape = value.shape
            self.dtype = value.dtype
            self.nbytes = value.nbytes
            self.owner = value.base is None
            self.writeable = value.flags.writeable
        else:
            self.shape = self.dtype = None
            self.nbytes = 0
            self.owner = self.writeable = False


def _observe(program: Program, leaves: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """``program.run(leaves)``, noting every value's ``_Seen`` by value number: inputs,
    constants and each operation's output have numbers in order of definition (a slot
    written twice has two)."""
    if len(leaves) != len(program.inputs):
        raise ValueError(f"the program takes {len(program.inputs)} input leaves, "
                         f"got {len(leaves)}")
    v: list[Any] = [None] * program.n_slots
    number: dict[int, int] = {}  # slot -> its current value number
    seen: list[_Seen] = []
    consts: dict[int, Any] = {}  # value number -> constant
    for s, c in program.consts.items():
        v[s] = c
        number[s] = len(seen)
        consts[len(seen)] = c
        seen.append(_Seen(c))
    inputs = []
    for s, x in zip(program.inputs, leaves, strict=True):
        v[s] = x
        number[s] = len(seen)
        inputs.append(len(seen))
        seen.append(_Seen(x))
    slots = list(program.consts) + list(program.inputs)  # value number -> its slot
    steps: list[tuple[Any, ...]] = []

    def numbered(s: int) -> int:
        if s not in number:  # read before any write: None, as in Program.run
            number[s] = len(seen)
            consts[len(seen)] = None
            slots.append(s)
            seen.append(_Seen(None))
        return number[s]

    for step in program.steps:
        if type(step) is Op:
            args = tuple(numbered(a) for a in step.args)
            v[step.out] = apply_plain(step.prim, [v[a] for a in step.args], step.params)
            number[step.out] = len(seen)
            steps.append(("op", step, args, len(seen)))
            slots.append(step.out)
            seen.append(_Seen(v[step.out]))
        else:
            steps.append(("guard", step, numbered(step.slot)))
            if not step.holds(v[step.slot]):
                raise GuardFailed(step)
    outputs = [v[o] for o in program.outputs]
    return outputs, {"seen": seen, "consts": consts, "inputs": inputs, "steps": steps,
                     "outputs": [numbered(o) for o in program.outputs], "slots": slots}


# ---------------------------------------------------------------------------- analyse
def _fresh(prim: Primitive, params: dict[str, Any]) -> bool:
    """Whether the primitive's result is a new array that shares memory with nothing
    (a ufunc without ``out=``); any other result may be a view of an argument."""
    return (isinstance(prim.impl, np.ufunc) or prim in _FRESH) and "out" not in params


def _scalar_type(t: type) -> bool:
    """Whether values of type ``t`` are immutable scalars (sharing no memory)."""
    return t in (float, int, bool, complex, str, type(None)) or issubclass(t, np.generic)


def _mutates(params: dict[str, Any]) -> bool:
    """Whether an operation may write into its arguments (``inplace=True`` writes)."""
    for k, val in params.items():
        if (k == "inplace" or k == "out" or k.startswith("overwrite")) and val is not False \
                and val is not None:
            return True
    return False


class _Groups:
    """Union-find over value numbers: values that may share memory."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _param_key(v: Any) -> Any:
    """A hashable key equal for parameters that are the same value: scalars by type and
    bits, containers by their items, arrays and other objects by identity."""
    t = type(v)
    if t is float:
        return (t, v.hex()) if v == v else (t, "nan")
    if t in (int, bool, str, type(None), bytes) or v is Ellipsis:
        return (t, v)
    if isinstance(v, np.generic):
        return (t, v.tobytes())
    if t is tuple or t is list:
        return (t, tuple(_param_key(x) for x in v))
    if t is slice:
        return (t, _param_key(v.start), _param_key(v.stop), _param_key(v.step))
    if t is dict:
        return (t, tuple((k, _param_key(x)) for k, x in v.items()))
    if isinstance(v, np.dtype):
        return (np.dtype, v.str, v.descr)
    return ("id", id(v))


def _fold(prim: Primitive, args: list[Any], params: dict[str, Any]) -> tuple[bool, Any]:
    """Run an operation at compile time: (True, value), or (False, None) where it warns or
    raises (the run-time line then warns or raises on every call, as the dynamic path)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="raise"):
            warnings.simplefilter("error")
            return True, apply_plain(prim, args, params)
    except Exception:  # noqa: BLE001  (anything: the operation stays a run-time line)
        return False, None


# ---------------------------------------------------------------------------- generate
class _Emitter:
    """The namespace and lines of the generated function."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "GuardFailed": GuardFailed, "same_value": same_value, "all_finite": _all_finite,
            "math": math, "float64": np.float64, "bool_": np.bool_, "shape": np.shape,
            "add_reduce": np.add.reduce, "zeros": np.zeros}
        self.by_id: dict[int, str] = {}
        self.lines: list[str] = []

    def name(self, obj: Any, hint: str) -> str:
        """A namespace name holding ``obj`` (one per object)."""
        key = id(obj)
        got = self.by_id.get(key)
        if got is not None:
            return got
        base = "".join(c if c.isalnum() else "_" for c in hint).strip("_") or "f"
        if base[0].isdigit() or base[0] in "vg" and base[1:2].isdigit() or base == "v" \
                or keyword.iskeyword(base):
            base = "f_" + base
        name = base
        k = 1
        while name in self.namespace or name in ("leaves", "replayed"):
            k += 1
            name = f"{base}_{k}"
        self.namespace[name] = obj
        self.by_id[key] = name
        return name

    def literal(self, value: Any, hint: str) -> str:
        """``value`` as source: a literal where it reads back identical, else a name."""
        t = type(value)
        if t is float and math.isfinite(value):
            return repr(value)
        if t in (int, bool, type(None)) or (t is str and value.isidentifier()):
            return repr(value)
        if t is tuple and len(value) < 8 and all(type(x) is int for x in value):
            return repr(value)  # a shape: the tuple is a constant of the code object
        return self.name(value, hint)


def _generate(program: Program, info: dict[str, Any]) -> tuple[Callable[..., list[Any]], str,
                                                               dict[str, int]]:
    seen: list[_Seen] = info["seen"]
    steps: list[tuple[Any, ...]] = info["steps"]
    out_numbers: list[int] = info["outputs"]
    n = len(seen)
    counts = {"folded": 0, "dead": 0, "repeated": 0, "reused": 0, "accumulated": 0,
              "scalar": 0, "lines": 0}

    # which values may share memory, which are ever written in place, which are outputs
    groups = _Groups(n)
    for step in steps:
        if step[0] == "op":
            _, op, args, out = step
            if not _fresh(op.prim, op.params):
                for a in args:  # arrays, and containers that may hold arrays
                    if not _scalar_type(seen[a].type):
                        groups.union(a, out)
    mutated = set()
    for step in steps:
        if step[0] == "op" and _mutates(step[1].params):
            mutated.update(groups.find(a) for a in step[2])
    outgroups = {groups.find(o) for o in out_numbers}

    # constant folding and repeated operations, in one forward pass
    opaque = set(PLAIN_CALLS.values())
    const: dict[int, Any] = dict(info["consts"])
    canon = list(range(n))
    table: dict[Any, int] = {}
    kept: list[tuple[Any, ...]] = []
    for step in steps:
        if step[0] == "guard":
            _, guard, a = step
            kept.append(("guard", guard, canon[a]))
            continue
        _, op, args, out = step
        args = tuple(canon[a] for a in args)
        # a plain function called on recorded values (call_plain) may draw random numbers
        # or read state: run it as often as recorded
        pure = op.prim not in opaque and not _mutates(op.params) \
            and groups.find(out) not in mutated and not any(
                groups.find(a) in mutated for a in args)
        if pure and all(a in const for a in args) and groups.find(out) not in outgroups:
            ok, value = _fold(op.prim, [const[a] for a in args], op.params)
            if ok and type(value) is seen[out].type and (
                    type(value) is not np.ndarray or value.nbytes <= FOLD_MAX_BYTES):
                const[out] = value
                counts["folded"] += 1
                continue
        if pure:
            try:
                key = (id(op.prim), args, _param_key(op.params) if op.params else ())
                hash(key)
            except TypeError:
                key = None
            if key is not None:
                prev = table.get(key)
                if prev is not None:
                    # one object from now on: what may share the duplicate's memory (its
                    # views) may share the original's
                    canon[out] = prev
                    groups.union(prev, out)
                    counts["repeated"] += 1
                    continue
                table[key] = out
        kept.append(("op", op, args, out))
    outputs = [canon[o] for o in out_numbers]
    # the groups merged: which are written in place, which reach an output, anew
    mutated = {groups.find(a) for step in steps
               if step[0] == "op" and _mutates(step[1].params) for a in step[2]}
    outgroups = {groups.find(o) for o in out_numbers}

    # guards on constants are decided now; dead operations dropped
    needed = set(outputs)
    live: list[tuple[Any, ...]] = []
    for step in reversed(kept):
        if step[0] == "guard":
            _, guard, a = step
            if a in const:
                if guard.holds(const[a]):
                    continue
                live.append(("fail", guard))
                continue
            needed.add(a)
            live.append(step)
            continue
        _, op, args, out = step
        if out in needed or _mutates(op.params):
            needed.update(args)
            live.append(step)
        else:
            counts["dead"] += 1
    live.reverse()
    # after a guard that always fails nothing runs
    for i, step in enumerate(live):
        if step[0] == "fail":
            del live[i + 1:]
            break

    # add(a, scatter(v)) where both die there: a[idx] += v
    if config.SHORTCUTS and _ACCUMULATE:
        live = _fuse_accumulations(live, seen, groups, mutated, outgroups, outputs, counts)

    # values an "equal" guard reads exactly, and everything they come from
    exact: set[int] = set()
    for step in live:
        if step[0] == "guard" and step[1].kind == "equal":
            exact.add(step[2])
    for step in reversed(live):
        if step[0] == "op" and step[3] in exact:
            exact.update(step[2])

    # how each operation runs: its form, and what each value is held as in the function
    shortcuts = config.SHORTCUTS
    held: dict[int, str] = {}  # value -> "float" / "bool" where not its seen type
    forms: dict[int, tuple[str, Any]] = {}
    for step in live:
        if step[0] != "op":
            continue
        _, op, args, out = step
        forms[out] = _form(op, args, out, seen, shortcuts, exact, held)
        if forms[out][0] != "call":
            counts["scalar"] += 1

    # last uses, per value and per memory group (outputs live to the end)
    end = len(live)
    last: dict[int, int] = {}
    for i, step in enumerate(live):
        if step[0] in ("op", "acc"):
            for a in step[2]:
                last[a] = i
        elif step[0] == "guard":
            last[step[2]] = i
    for o in outputs:
        last[o] = end
    group_last: dict[int, int] = {}
    for vnum, i in last.items():
        r = groups.find(vnum)
        group_last[r] = max(group_last.get(r, -1), i)

    em = _Emitter()
    inputs = info["inputs"]
    # a value is named after its slot (v7), with its write's count where a slot is
    # written more than once (v7_2)
    names: dict[int, str] = {}
    writes: dict[int, int] = {}
    for vnum, slot in enumerate(info["slots"]):
        writes[slot] = writes.get(slot, 0) + 1
        names[vnum] = f"v{slot}" if writes[slot] == 1 else f"v{slot}_{writes[slot]}"
    for vnum, c in const.items():
        names[vnum] = em.literal(c, f"c{vnum}")
    owned: set[int] = set()  # temporaries this function made, no view, seen by no one else
    lines = em.lines
    if inputs:
        lines.append(f"{', '.join(names[i] for i in inputs)}, = leaves")
    else:
        lines.append("if len(leaves):\n        raise ValueError('the program takes no inputs')")

    def use(vnum: int, as_held: bool = False) -> str:
        """Source for a value, converted to its seen type unless the user takes it as
        held (a scalar line)."""
        name = names[vnum]
        h = held.get(vnum)
        if h is None or as_held:
            return name
        return f"float64({name})" if h == "float" and seen[vnum].type is np.float64 else (
            f"bool_({name})" if h == "bool" else name)

    for i, step in enumerate(live):
        kind = step[0]
        if kind == "fail":
            lines.append(f"raise GuardFailed({em.name(step[1], f'g{step[1].slot}')})")
            continue
        if kind == "guard":
            _, guard, a = step
            lines.append(_guard_line(em, guard, use(a, True), held.get(a), seen[a]))
            continue
        if kind == "acc":  # a[idx] += v, then the result is a's buffer
            _, op, args, out, sop = step
            a, vargs = args[0], args[1:]
            lines.extend(_ACCUMULATE[sop.prim](
                names[a], [use(x) for x in vargs], sop.params, [seen[x] for x in vargs],
                functools.partial(em.literal, hint=sop.prim.name)).split("\n"))
            lines.append(f"{names[out]} = {names[a]}")
            owned.add(out)
            dead = sorted({x for x in args if last.get(x) == i and seen[x].type is np.ndarray
                           and x not in const and names[x].startswith("v")})
            if dead:
                lines.append(f"del {', '.join(names[x] for x in dead)}")
            continue
        _, op, args, out = step
        form, detail = forms[out]
        impl = _impl_name(em, op)
        params = "".join(f", {k}={em.literal(p, f'{op.prim.name}_{k}')}"
                         for k, p in op.params.items())
        inline = _INLINE.get(op.prim) if form == "call" and shortcuts else None
        if inline is not None:
            src = inline(names[out], [use(a) for a in args], op.params, [seen[a] for a in args],
                         functools.partial(em.literal, hint=op.prim.name))
            if src is not None:
                lines.extend(src.split("\n"))
                form = "inline"
        if form == "call":
            argsrc = [use(a) for a in args]
            extra = ""
            if shortcuts and _fresh(op.prim, op.params) and not op.params \
                    and seen[out].type is np.ndarray and seen[out].shape:
                target = _reusable(args, i, out, seen, owned, groups, group_last, outgroups)
                if target is not None:  # (dead after this line: no union needed)
                    extra = f", out={names[target]}"
                    counts["reused"] += 1
            lines.append(f"{names[out]} = {impl}({', '.join(argsrc)}{params}{extra})")
            if _fresh(op.prim, op.params) and seen[out].type is np.ndarray:
                owned.add(out)
        elif form != "inline":
            held_args = [use(a, True) for a in args]
            fallback = f"{impl}({', '.join(held_args)}{params})"
            lines.append(_scalar_line(form, detail, names[out], held_args, fallback, em))
        # free the arrays whose last use this was
        dead = sorted({a for a in args if last.get(a) == i and seen[a].type is np.ndarray
                       and a not in const and names[a].startswith("v")})
        if dead:
            lines.append(f"del {', '.join(names[a] for a in dead)}")
    if not live or live[-1][0] != "fail":
        lines.append(f"return [{', '.join(use(o) for o in outputs)}]")
    body = "\n".join("    " + ln for ln in lines)
    source = f"def replayed(leaves):\n{body}\n"
    counts["lines"] = len(lines)
    namespace = em.namespace
    exec(compile(source, "<dualrev replay>", "exec"), namespace)  # noqa: S102
    fn = namespace["replayed"]
    return fn, source, counts


def _fuse_accumulations(live: list[tuple[Any, ...]], seen: list[_Seen], groups: _Groups,
                        mutated: set[int], outgroups: set[int], outputs: list[int],
                        counts: dict[str, int]) -> list[tuple[Any, ...]]:
    """``c = add(a, b)`` with ``b = scatter(v)`` (a primitive with an ``accumulate``
    form) used nowhere else, and ``a`` a fresh temporary of ``c``'s shape and dtype that
    dies there with everything sharing its memory: one ``("acc", add, (a, *v), c, scatter)``
    step at the add's place, the scatter dropped. ``a`` then differs from ``a + b`` only
    where ``a`` holds -0.0 outside the written region (``-0.0 + 0.0`` is +0.0): the
    dynamic backward pass accumulates this way too (``vjp_add``)."""
    producer: dict[int, tuple[int, Any]] = {}
    uses: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, step in enumerate(live):
        if step[0] == "op":
            producer[step[3]] = (i, step[1])
            for a in step[2]:
                uses[a] = uses.get(a, 0) + 1
                last[a] = i
        elif step[0] == "guard":
            uses[step[2]] = uses.get(step[2], 0) + 1
            last[step[2]] = i
    for o in outputs:
        uses[o] = uses.get(o, 0) + 1
        last[o] = len(live)
    group_last: dict[int, int] = {}
    for vnum, i in last.items():
        r = groups.find(vnum)
        group_last[r] = max(group_last.get(r, -1), i)
    fused: dict[int, tuple[Any, ...]] = {}
    dropped: set[int] = set()
    for i, step in enumerate(live):
        if step[0] != "op" or step[1].prim.impl is not np.add or step[1].params \
                or len(step[2]) != 2:
            continue
        _, op, (x, y), out = step
        want = seen[out]
        if want.type is not np.ndarray or want.dtype.kind != "f":
            continue
        for a, b in ((x, y), (y, x)):
            pb, pa = producer.get(b), producer.get(a)
            if pb is None or pa is None or a == b or pb[0] in dropped:
                continue
            j, sop = pb
            form = _ACCUMULATE.get(sop.prim)
            sa = seen[a]
            if form is None or uses.get(b) != 1 or not _fresh(pa[1].prim, pa[1].params) \
                    or sa.type is not np.ndarray or not sa.owner or not sa.writeable \
                    or sa.shape != want.shape or sa.dtype != want.dtype \
                    or seen[b].shape != want.shape or seen[b].dtype != want.dtype:
                continue
            vargs = live[j][2]
            r = groups.find(a)
            if r in outgroups or r in mutated or group_last.get(r, -1) > i \
                    or any(groups.find(v) in (r,) or groups.find(v) in mutated for v in vargs):
                continue
            if form("t", [f"v{k}" for k in range(len(vargs))], sop.params,
                    [seen[v] for v in vargs], repr) is None:
                continue
            fused[i] = ("acc", op, (a, *vargs), out, sop)
            dropped.add(j)
            counts["accumulated"] = counts.get("accumulated", 0) + 1
            break
    if not fused:
        return live
    return [fused.get(i, step) for i, step in enumerate(live) if i not in dropped]


def _impl_name(em: _Emitter, op: Op) -> str:
    impl = op.prim.impl
    if isinstance(impl, np.ufunc):
        return em.name(impl, impl.__name__)
    return em.name(impl, op.prim.name)


def _reusable(args: tuple[int, ...], i: int, out: int, seen: list[_Seen], owned: set[int],
              groups: _Groups, group_last: dict[int, int], outgroups: set[int]) -> int | None:
    """An argument of operation ``i`` that its output may be written into: a temporary
    the function made (a ufunc's fresh array), no output, with nothing sharing its memory
    alive after ``i``, and the output's shape and dtype."""
    want = seen[out]
    for a in args:
        s = seen[a]
        if a not in owned or s.type is not np.ndarray or not s.owner or not s.writeable:
            continue
        if s.shape != want.shape or s.dtype != want.dtype:
            continue
        r = groups.find(a)
        if r in outgroups or group_last.get(r, -1) > i:
            continue
        # no other argument shares its memory (it would be read while written)
        if any(b != a and groups.find(b) == r for b in args):
            continue
        return a
    return None


def _form(op: Op, args: tuple[int, ...], out: int, seen: list[_Seen], shortcuts: bool,
          exact: set[int], held: dict[int, str]) -> tuple[str, Any]:
    """How an operation runs: ``("call", None)`` (its implementation, as ``apply_plain``
    would on the seen types), or a scalar line: ``("binary", op)``, ``("neg", None)``,
    ``("math", name)``, ``("square", None)``, ``("compare", op)``. Sets ``held`` for
    a scalar line's output."""
    prim = op.prim
    if not shortcuts:
        return "call", None
    types = [seen[a].type for a in args]
    plain = all(t in PLAIN_SCALARS for t in types)
    scalar = prim.scalar_impl
    if scalar is not None and plain:
        # apply_plain's scalar path, decided here: the same operator on the same numbers,
        # of the same types unless an argument is a float standing for a NumPy float
        # (then the dynamic path's result is a NumPy float: converted where it leaves)
        if any(a in held for a in args):
            held[out] = "float"
        if scalar in _BINARY_OPS and len(args) == 2:
            sym = _BINARY_OPS[scalar]
            if all(t in _FLOATS for t in types) and sym in ("+", "-", "*"):
                return "exact", sym  # never raises on floats (an inf, not an error)
            return "binary", sym
        if scalar is operator.neg and len(args) == 1:
            return "neg", None
        return "scalar_impl", scalar
    if op.params or not all(t in _FLOATS for t in types) or seen[out].type not in _FLOATS \
            and seen[out].type is not np.bool_:
        return "call", None
    impl = prim.impl
    if len(args) == 1:
        if impl is np.square:
            held[out] = "float"
            return "square", None
        if impl is np.negative:
            held[out] = "float"
            return "neg", None
        fn = _EXACT_MATH.get(impl)
        if fn is None and out not in exact:
            fn = MATH_FUNCTIONS.get(impl)
        if fn is not None:
            held[out] = "float"
            return ("exact" if fn == "fabs" else "math"), fn
    elif len(args) == 2 and impl in _COMPARISONS:
        held[out] = "bool"
        return "compare", _COMPARISONS[impl]
    return "call", None


def _scalar_line(form: str, detail: Any, out: str, args: list[str], fallback: str,
                 em: _Emitter) -> str:
    """One scalar operation as source, with its fallback to the implementation where
    Python raises and NumPy gives an inf or nan (and its warning) instead."""
    if form == "compare":
        return f"{out} = {args[0]} {detail} {args[1]}"
    if form == "square":
        return f"{out} = {args[0]} * {args[0]}"
    if form == "neg":
        return f"{out} = -{args[0]}"
    if form == "exact":  # float + - * float, fabs: nothing to fall back from
        return f"{out} = {args[0]} {detail} {args[1]}" if len(args) == 2 else \
            f"{out} = math.{detail}({args[0]})"
    if form == "binary":
        expr = f"{args[0]} {detail} {args[1]}"
    elif form == "math":
        expr = f"math.{detail}({args[0]})"
    else:  # the primitive's own scalar version
        expr = f"{em.name(detail, getattr(detail, '__name__', 'scalar'))}({', '.join(args)})"
    return (f"try:\n        {out} = {expr}\n    except (ArithmeticError, ValueError):\n"
            f"        {out} = {fallback}")


def _guard_line(em: _Emitter, guard: Guard, src: str, held: str | None, seen: _Seen) -> str:
    """A guard as an inline test raising GuardFailed with the guard."""
    g = em.name(guard, f"g{guard.slot}")
    kind = guard.kind
    exp = guard.expected
    if kind == "truth" and exp is True:
        test = f"not {src}"
    elif kind == "truth" and exp is False:
        test = src
    elif kind == "finite" and held == "float":
        test = f"math.isfinite({src}) is not {bool(exp)}"
    elif kind == "finite" and exp is True and seen.type is np.ndarray and seen.dtype.kind == "f":
        # a finite sum proves every element finite; an overflowing one asks element-wise
        test = f"not (math.isfinite(add_reduce({src}, None)) or all_finite({src}))"
    elif kind == "equal" and held == "float" and type(exp) in _FLOATS and exp == exp \
            and exp != 0:
        test = f"{src} != {em.literal(float(exp), 'e')}"
    else:
        if held is not None:  # the guard reads the value as the dynamic path holds it
            src = f"float64({src})" if held == "float" and seen.type is np.float64 else (
                f"bool_({src})" if held == "bool" else src)
        test = f"not {g}.holds({src})"
    return f"if {test}:\n        raise GuardFailed({g})"

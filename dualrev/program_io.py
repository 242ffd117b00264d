"""Saving a recorded program to a file and loading it back, without pickle.

A saved program is one compressed ``.npz`` file (NumPy's zip of ``.npy`` arrays): the entry
``program.json`` holds the description as UTF-8 JSON bytes, the entries ``a0``, ``a1``, ...
the arrays it refers to (constants, array parameters, guards' recorded values). The
description names each primitive by its portable key (``Primitive.key``, declared with
the primitive: dualrev's own are keyed by their names), and every parameter, constant
and guard value by its type: None, bool, int, float (nan and infinities included), complex,
str, tuple, list, dict, slice, Ellipsis, NumPy dtypes and scalar types, NumPy scalars
(their exact bytes), arrays (by reference to an entry), SciPy sparse matrices in CSR, CSC
or COO format (by their arrays) and NumPy's and SciPy's routed functions (by name).
Nothing else is written: a function or an object would need pickle, which runs code when
it is read, so saving a program holding one raises ``ProgramNotPortable``. Loading reads
the arrays with ``allow_pickle=False`` and validates the format version, every key and
every entry before it builds the ``Program``.
"""

from __future__ import annotations

import collections
import io
import json
import os
import platform
import struct
import sys
from collections.abc import Callable
from importlib import metadata
from typing import IO, Any

import numpy as np
import scipy.sparse as sparse

from .errors import ProgramFormatError, ProgramNotPortable
from .primitive import PRIMITIVES, Primitive, function_name, named_function, primitive_for_key
from .program import GUARD_KINDS, CallSignature, Guard, Op, Program
from .tree import LEAF, TreeDef

#: what the description's "format" says
FORMAT = "dualrev.program"
#: the version of the description this dualrev writes and reads
FORMAT_VERSION = 1
#: the zip entry holding the description
DESCRIPTION = "program.json"

_PY_TYPES: dict[str, type] = {"float": float, "int": int, "complex": complex, "bool": bool,
                              "str": str}
_PY_NAMES = {t: n for n, t in _PY_TYPES.items()}
#: the arrays a SciPy sparse matrix (or array) of each saved format is made of
_SPARSE_PARTS = {"csr": ("data", "indices", "indptr"), "csc": ("data", "indices", "indptr"),
                 "coo": ("data", "row", "col")}


def _dualrev_version() -> str:
    try:
        return metadata.version("dualrev")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


# ------------------------------------------------------------------------- writing


class _Writer:
    """Encodes values into JSON-able data, collecting the arrays (one entry per array
    object, so that a constant met twice is one array again when loaded)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._ids: dict[int, tuple[np.ndarray, str]] = {}

    def value(self, v: Any, where: Callable[[], str]) -> Any:
        t = type(v)
        if v is None or t is bool or t is str or t is int:
            return v
        if t is float:
            return {"$": "float", "v": _float_text(v)}
        if t is complex:
            return {"$": "complex", "v": [_float_text(v.real), _float_text(v.imag)]}
        if t is tuple or t is list:
            return {"$": t.__name__, "v": [self.value(u, where) for u in v]}
        if t is dict:
            return {"$": "dict", "v": [[self.value(k, where), self.value(u, where)]
                                       for k, u in v.items()]}
        if t is slice:
            return {"$": "slice", "v": [self.value(u, where)
                                        for u in (v.start, v.stop, v.step)]}
        if v is Ellipsis:
            return {"$": "ellipsis"}
        if isinstance(v, np.dtype):
            return {"$": "dtype", "v": _dtype_text(v, where)}
        if isinstance(v, type):
            return {"$": "type", "v": _type_name(v, where)}
        if isinstance(v, np.generic):
            dt = _dtype_text(v.dtype, where)
            return {"$": "scalar", "dtype": dt, "hex": v.tobytes().hex()}
        if t is np.ndarray:
            _dtype_text(v.dtype, where)
            hit = self._ids.get(id(v))
            if hit is None or hit[0] is not v:
                name = f"a{len(self.arrays)}"
                self.arrays[name], layout = _compact(v)
                hit = self._ids[id(v)] = (v, {"$": "array", "v": name, **layout})
            return hit[1]
        if sparse.issparse(v) and v.format in _SPARSE_PARTS and v.ndim == 2:
            # a SciPy sparse matrix or array by its own arrays, in their order
            return {"$": "sparse", "format": v.format, "array": isinstance(v, sparse.sparray),
                    "shape": list(v.shape),
                    "v": [self.value(getattr(v, part), where)
                          for part in _SPARSE_PARTS[v.format]]}
        if callable(v):
            fname = function_name(v)
            if fname is not None:
                return {"$": "function", "v": fname}
        kind = f"{t.__module__}.{t.__qualname__}"
        raise ProgramNotPortable(
            f"{where()} is a {kind} ({_short(v)}), which a saved program cannot describe "
            "without pickle",
            "Only None, bool, int, float, complex, str, tuple, list, dict, slice, "
            "Ellipsis, NumPy dtypes, scalars and arrays, CSR/CSC/COO sparse matrices and "
            "NumPy's and SciPy's routed functions are saved (docs/replay.md); keep other "
            "functions and objects out of the recorded computation (pass their results "
            "as arrays)")

    def tree(self, td: TreeDef, where: Callable[[], str]) -> Any:
        if td.kind == "leaf":
            return "*"
        if td.kind == "none":
            return None
        kids = [self.tree(c, where) for c in td.children]
        if td.kind in ("tuple", "list"):
            return {td.kind: kids}
        if td.kind == "dict":
            return {"dict": [[self.value(k, where), c] for k, c in zip(td.meta, kids,
                                                                       strict=True)]}
        if td.kind == "namedtuple":
            cls = td.meta
            return {"namedtuple": [cls.__module__, cls.__qualname__, list(cls._fields)],
                    "children": kids}
        raise ProgramNotPortable(f"{where()} has a pytree node of kind {td.kind!r}",
                                 "Return tuples, lists, dicts or namedtuples")


def _compact(a: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The array to store for ``a`` and how to lay it out again as ``a`` is (``_laid``):
    a broadcast axis (stride 0) stored once, reversed axes and the order of the axes in
    memory (a transpose, Fortran order) kept, read-only kept. NumPy's results can depend
    on the layout (a sum's rounding follows its memory order), and a loaded program must
    compute what the recorded one does, bit for bit."""
    layout: dict[str, Any] = {}
    if not a.flags.writeable:
        layout["readonly"] = True
    if a.ndim == 0 or a.size <= 1 or a.flags.c_contiguous:
        return a, layout
    c = a
    bcast = [i for i, (st, n) in enumerate(zip(a.strides, a.shape, strict=True))
             if st == 0 and n > 1]
    if bcast:
        c = c[tuple(slice(0, 1) if i in bcast else slice(None) for i in range(a.ndim))]
        layout["broadcast"] = list(a.shape)
    flip = [i for i, (st, n) in enumerate(zip(c.strides, c.shape, strict=True))
            if st < 0 and n > 1]
    if flip:
        c = np.flip(c, axis=tuple(flip))
        layout["flip"] = flip
    perm = sorted(range(c.ndim), key=lambda i: (-abs(c.strides[i]) if c.shape[i] > 1 else 0, i))
    if perm != list(range(c.ndim)) and not c.flags.c_contiguous:
        c = c.transpose(perm)
        layout["perm"] = perm
    return np.ascontiguousarray(c), layout


def _laid(stored: np.ndarray, d: dict[str, Any]) -> np.ndarray:
    """The array ``_compact`` stored, laid out as it was."""
    a = stored
    perm = d.get("perm")
    if perm is not None:
        if sorted(perm) != list(range(a.ndim)):
            raise ValueError(f"perm {perm} for {a.ndim} axes")
        a = a.transpose(np.argsort(perm))
    flip = d.get("flip")
    if flip is not None:
        a = np.flip(a, axis=tuple(int(i) for i in flip))
    shape = d.get("broadcast")
    if shape is not None:
        a = np.broadcast_to(a, tuple(int(n) for n in shape))
    elif d.get("readonly"):
        a.flags.writeable = False
    return a


def _float_text(x: float) -> str:
    """``repr`` (exact for every float but nan), or a nan's bits (its sign and payload),
    ``nan:fff8000000000000``."""
    if x != x:
        return "nan:" + struct.pack(">d", x).hex()
    return repr(x)


def _float_of(text: str) -> float:
    if text.startswith("nan:"):
        (x,) = struct.unpack(">d", bytes.fromhex(text[4:]))
        return float(x)
    return float(text)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _dtype_text(dt: np.dtype, where: Callable[[], str]) -> str:
    if dt.kind in "OV" or dt.fields is not None or dt.subdtype is not None:
        raise ProgramNotPortable(
            f"{where()} has the dtype {dt}: object and structured arrays cannot be saved "
            "without pickle", "Use arrays of numbers")
    return dt.str


def _type_name(t: type, where: Callable[[], str]) -> str:
    name = _PY_NAMES.get(t)
    if name is not None:
        return name
    if t is np.ndarray:
        return "numpy.ndarray"
    if issubclass(t, np.generic) and getattr(np, t.__name__, None) is t:
        return f"numpy.{t.__name__}"
    raise ProgramNotPortable(f"{where()} is the type {t.__module__}.{t.__qualname__}",
                             "Only Python's number types, str, numpy.ndarray and NumPy's "
                             "scalar types are saved")


def _portable_key(prim: Primitive, k: int) -> str:
    key = prim.key
    if key is not None and PRIMITIVES.get(key) is prim:
        return key
    if prim.custom is not None or prim.name.startswith(("custom_jvp(", "custom_vjp(")):
        why = ("it is the custom rule of a user function, whose Python code a saved "
               "program does not carry")
        rewrite = ("Save the program of a function without custom_jvp/custom_vjp, or "
                   "declare the operation as a Primitive with key= in an importable module")
    elif key is not None:
        why = (f"another primitive has since declared its key {key!r} (its module ran "
               "again)")
        rewrite = "Record the program again with the primitive now declared"
    else:
        why = "it was created without a portable key (key=)"
        rewrite = (f"Declare it as Primitive({prim.name!r}, ..., key='yourpackage."
                   f"{prim.name}') at the top level of a module that the loading process "
                   "imports first")
    raise ProgramNotPortable(f"step {k} ({prim.name}) uses a primitive without a portable "
                             f"identity: {why}", rewrite)


def program_description(program: Program) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON-able description of ``program`` and the arrays it refers to, by entry
    name (what ``save_program`` writes). Raises ``ProgramNotPortable`` for anything
    the format cannot describe."""
    w = _Writer()
    consts = [[s, w.value(c, lambda s=s: f"the constant in slot {s}")]
              for s, c in sorted(program.consts.items())]
    steps: list[Any] = []
    for k, step in enumerate(program.steps):
        if type(step) is Op:
            prim = step.prim
            key = _portable_key(prim, k)
            params = {}
            for name, v in step.params.items():
                params[name] = w.value(v, lambda k=k, p=prim, n=name:
                                       f"step {k} ({p.name}): its parameter {n}")
            steps.append(["op", key, list(step.args), params, step.out])
        else:
            expected = w.value(step.expected, lambda k=k, g=step:
                               f"step {k} (guard {g.kind} of v{g.slot}): its recorded value")
            steps.append(["guard", step.kind, step.slot, expected, step.where])
    outs_where = "the output's structure"
    out_types = [w.value(t, lambda i=i: f"the type of output {i}")
                 for i, t in enumerate(program.out_types)]
    desc: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "dualrev": _dualrev_version(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "n_slots": program.n_slots,
        "inputs": list(program.inputs),
        "outputs": list(program.outputs),
        "consts": consts,
        "steps": steps,
        "out_def": w.tree(program.out_def, lambda: outs_where),
        "out_types": out_types,
    }
    sig = CallSignature.of(program)
    if sig is not None:
        desc["signature"] = _signature(w, sig)
    meta = {}
    for name, v in program.meta.items():
        if name in ("signature", "call"):
            continue
        try:
            meta[name] = w.value(v, lambda: "")
        except ProgramNotPortable:
            continue  # (facts about the recording only: the program runs without them)
    desc["meta"] = meta
    return desc, w.arrays


def _signature(w: _Writer, sig: CallSignature) -> dict[str, Any]:
    def where(what: str) -> Callable[[], str]:
        return lambda: f"the recorded call's {what}"

    leaves = []
    for k, spec in enumerate(sig.leaves):
        if spec[0] == "input":
            _, t, shape, dtype, layout = spec
            leaves.append({"input": w.value(t, where(f"argument leaf {k}")),
                           "shape": None if shape is None else list(shape),
                           "dtype": None if dtype is None else
                           _dtype_text(np.dtype(dtype), where(f"argument leaf {k}")),
                           "layout": layout})
        else:
            _, t, value = spec
            if isinstance(value, tuple) and len(value) == 2 and value[0] == "id":
                raise ProgramNotPortable(
                    f"the recorded call's argument leaf {k} is a {t.__name__} object, "
                    "which the program was recorded for by identity",
                    "Pass arrays and numbers as arguments (an object's state cannot be "
                    "checked in another process)")
            leaves.append({"static": w.value(value, where(f"argument leaf {k}"))})
    return {"static": [[pos, w.value(v, where(f"static argument {pos}"))]
                       for pos, v in sig.static],
            "tree": w.tree(sig.tree, where("structure")),
            "leaves": leaves}


def save_program(program: Program, file: str | os.PathLike[str] | IO[bytes]) -> None:
    """Save a recorded program to a file, portably and without pickle.

    The file is one compressed ``.npz`` (NumPy's zip of arrays; the path is used as given): a JSON
    description (format version, the dualrev, NumPy and Python versions that wrote it,
    slots, steps, guards, inputs, outputs, the output's structure and types, the call
    signature it was recorded for) and the arrays it refers to. Each primitive is named
    by its portable key; see docs/replay.md for what is saved and what is refused.

    Args:
        program: a ``Program``: recorded by ``dualrev.replay`` (``replayed.programs``),
            loaded, or built by hand.
        file: a path, or a binary file object open for writing.
    Returns:
        None.
    Raises:
        ProgramNotPortable: a step's primitive has no portable key (a ``custom_jvp`` /
            ``custom_vjp`` of a user function, a ``Primitive`` created without ``key=``),
            or a parameter, constant, guard or argument is a value the format cannot
            describe without pickle (a function, an object); the message names the step.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "grad_f.npz")
        >>> f = dr.replay(dr.grad(lambda x: np.sum(np.sin(x) ** 2)))
        >>> g = f(np.array([0.5, 1.0]))
        >>> dr.save_program(f.programs[0], path)
        >>> h = dr.load_program(path)
        >>> print(h(np.array([0.5, 1.0])) - g)
        [0. 0.]
    """
    desc, arrays = program_description(program)
    text = json.dumps(desc, allow_nan=False, separators=(",", ":"))
    entries = {DESCRIPTION: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    entries.update(arrays)
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as fh:  # (np.savez would add .npz to a path without it)
            np.savez_compressed(fh, **entries)
    else:
        np.savez_compressed(file, **entries)


# ------------------------------------------------------------------------- reading


class _Reader:
    """Decodes a description, validating each entry (``ProgramFormatError``)."""

    def __init__(self, path: str, arrays: Any) -> None:
        self.path = path
        self.arrays = arrays
        self._loaded: dict[str, np.ndarray] = {}
        self._laid: dict[str, np.ndarray] = {}

    def fail(self, what: str) -> ProgramFormatError:
        return ProgramFormatError(self.path, what)

    def value(self, d: Any) -> Any:
        t = type(d)
        if d is None or t is bool or t is str or t is int:
            return d
        if t is not dict or "$" not in d:
            raise self.fail(f"a value is written as {_short(d)}, which is no encoded value")
        tag = d["$"]
        v = d.get("v")
        try:
            if tag == "float":
                return _float_of(self._text(v))
            if tag == "complex":
                return complex(_float_of(self._text(v[0])), _float_of(self._text(v[1])))
            if tag == "tuple" or tag == "list":
                items = [self.value(u) for u in self._list(v)]
                return tuple(items) if tag == "tuple" else items
            if tag == "dict":
                out = {}
                for pair in self._list(v):
                    k, u = self._list(pair)
                    out[self.value(k)] = self.value(u)
                return out
            if tag == "slice":
                a, b, c = self._list(v)
                return slice(self.value(a), self.value(b), self.value(c))
            if tag == "ellipsis":
                return Ellipsis
            if tag == "dtype":
                return self.dtype(v)
            if tag == "type":
                return self.type(v)
            if tag == "scalar":
                dt = self.dtype(d.get("dtype"))
                raw = bytes.fromhex(self._text(d.get("hex")))
                if len(raw) != dt.itemsize:
                    raise self.fail(f"a {dt} scalar has {len(raw)} bytes")
                return np.frombuffer(raw, dtype=dt)[0]
            if tag == "array":
                if set(d) - {"$", "v", "perm", "flip", "broadcast", "readonly"}:
                    raise ValueError(f"unknown layout {sorted(set(d) - {'$', 'v'})}")
                return self.laid_array(v, d)
            if tag == "sparse":
                return self.sparse(d)
            if tag == "function":
                func = named_function(self._text(v))
                if func is None:
                    raise self.fail(f"the function {_short(v)} is none a saved program "
                                    "may call (NumPy's and SciPy's functions that dualrev "
                                    "routes, dualrev's catalogue's)")
                return func
        except ProgramFormatError:
            raise
        except (TypeError, ValueError) as e:
            raise self.fail(f"a {tag} value is malformed: {_short(d)} ({e})") from None
        raise self.fail(f"unknown value type {tag!r}")

    def _text(self, v: Any) -> str:
        if type(v) is not str:
            raise ValueError(f"{_short(v)} is no string")
        return v

    def _list(self, v: Any) -> list[Any]:
        if type(v) is not list:
            raise ValueError(f"{_short(v)} is no list")
        return v

    def dtype(self, v: Any) -> np.dtype:
        try:
            dt = np.dtype(self._text(v))
        except TypeError as e:
            raise self.fail(f"unknown dtype {_short(v)}") from e
        if dt.kind in "OV" or dt.fields is not None or dt.subdtype is not None:
            raise self.fail(f"the dtype {dt} is refused (object or structured)")
        return dt

    def type(self, v: Any) -> type:
        name = self._text(v)
        t = _PY_TYPES.get(name)
        if t is not None:
            return t
        if name == "numpy.ndarray":
            return np.ndarray
        if name.startswith("numpy."):
            t = getattr(np, name[6:], None)
            if isinstance(t, type) and issubclass(t, np.generic):
                return t
        raise self.fail(f"unknown type {name!r}")

    def sparse(self, d: dict[str, Any]) -> Any:
        fmt = d.get("format")
        if fmt not in _SPARSE_PARTS or type(d.get("array")) is not bool:
            raise ValueError(f"format {fmt!r}")
        shape = tuple(_int(self, n, "a sparse matrix's shape") for n in self._list(d["shape"]))
        v = d.get("v")
        parts = [self.value(u) for u in self._list(v)]
        if len(parts) != 3 or len(shape) != 2 or not all(
                type(a) is np.ndarray and a.ndim == 1 for a in parts):
            raise ValueError(f"parts {_short(v)}")
        cls = getattr(sparse, f"{fmt}_{'array' if d['array'] else 'matrix'}")
        data, a, b = parts
        return cls((data, (a, b)) if fmt == "coo" else (data, a, b), shape=shape)

    def laid_array(self, name: Any, d: dict[str, Any]) -> np.ndarray:
        key = json.dumps(d, sort_keys=True)
        a = self._laid.get(key)
        if a is None:
            a = self._laid[key] = _laid(self.array(name), d)
        return a

    def array(self, name: Any) -> np.ndarray:
        name = self._text(name)
        a = self._loaded.get(name)
        if a is not None:
            return a
        if name == DESCRIPTION or name not in self.arrays:
            raise self.fail(f"the array {name!r} it refers to is not in the file")
        try:
            a = self.arrays[name]
        except ValueError as e:  # an object array: NumPy refuses it without pickle
            raise self.fail(f"the array {name!r} cannot be read without pickle ({e}); "
                            "a saved program never holds one: the file was altered") from None
        if type(a) is not np.ndarray or a.dtype.kind in "OV":
            raise self.fail(f"the array {name!r} has the refused dtype {a.dtype}")
        self._loaded[name] = a
        return a

    def tree(self, d: Any) -> TreeDef:
        if d == "*":
            return LEAF
        if d is None:
            return TreeDef("none")
        if type(d) is not dict or len(d) not in (1, 2):
            raise self.fail(f"a pytree structure is written as {_short(d)}")
        try:
            if "tuple" in d or "list" in d:
                kind = "tuple" if "tuple" in d else "list"
                return TreeDef(kind, None, tuple(self.tree(c) for c in self._list(d[kind])))
            if "dict" in d:
                pairs = [self._list(p) for p in self._list(d["dict"])]
                return TreeDef("dict", tuple(self.value(k) for k, _ in pairs),
                               tuple(self.tree(c) for _, c in pairs))
            if "namedtuple" in d:
                module, qualname, fields = self._list(d["namedtuple"])
                kids = tuple(self.tree(c) for c in self._list(d["children"]))
                cls = _namedtuple(self._text(module), self._text(qualname),
                                  [self._text(f) for f in self._list(fields)])
                return TreeDef("namedtuple", cls, kids)
        except ProgramFormatError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise self.fail(f"a pytree structure is malformed: {_short(d)} ({e})") from None
        raise self.fail(f"unknown pytree node {_short(d)}")


def _namedtuple(module: str, qualname: str, fields: list[str]) -> type:
    """The namedtuple class ``module.qualname`` where the module is imported and holds
    it with these fields (nothing is imported to find it), else a new namedtuple of that
    name and fields."""
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if (isinstance(obj, type) and issubclass(obj, tuple)
            and list(getattr(obj, "_fields", ())) == fields):
        return obj
    return collections.namedtuple(qualname.rsplit(".", 1)[-1], fields)  # type: ignore[misc]


def _int(r: _Reader, v: Any, what: str, n_slots: int | None = None) -> int:
    if type(v) is not int or v < 0 or (n_slots is not None and v >= n_slots):
        bound = "" if n_slots is None else f" in [0, {n_slots})"
        raise r.fail(f"{what} is {_short(v)}, not an integer{bound}")
    return v


def program_from_description(desc: Any, arrays: Any, path: str = "<description>",
                             any_version: bool = False) -> Program:
    """The ``Program`` a description (``program_description``'s, as read back from JSON)
    and its arrays (a mapping from entry name) describe, every entry validated (the
    dualrev version that wrote it too, unless ``any_version``). Raises
    ``ProgramFormatError``."""
    r = _Reader(path, arrays)
    if type(desc) is not dict or desc.get("format") != FORMAT:
        raise r.fail("not a saved dualrev program (its description names no "
                     f"format {FORMAT!r})")
    version = desc.get("version")
    if version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise r.fail(f"format version {_short(version)}; this dualrev reads version "
                     f"{FORMAT_VERSION}" + (" (the file was written by a newer dualrev: "
                                            "upgrade dualrev to load it)" if newer else ""))
    written_by = desc.get("dualrev")
    if not any_version and written_by != _dualrev_version():
        raise r.fail(f"saved by dualrev {_short(written_by)}; this is dualrev "
                     f"{_dualrev_version()}. A primitive's parameters may mean something "
                     "else in another version: record the program again, or load it with "
                     "any_version=True to run it as this version reads it")
    n = _int(r, desc.get("n_slots"), "n_slots")
    # every slot is an input's, a constant's or a step's: a larger count is no program's
    # (and is not allocated)
    most = sum(len(v) for v in (desc.get("inputs"), desc.get("consts"), desc.get("steps"))
               if type(v) is list)
    if n > most:
        raise r.fail(f"n_slots is {n}, more than its inputs, constants and steps fill")
    defined = [False] * n

    def slots(v: Any, what: str) -> list[int]:
        if type(v) is not list:
            raise r.fail(f"{what} is {_short(v)}, not a list of slots")
        return [_int(r, s, what, n) for s in v]

    inputs = slots(desc.get("inputs"), "inputs")
    for s in inputs:
        defined[s] = True
    consts: dict[int, Any] = {}
    for entry in _entries(r, desc.get("consts"), "consts"):
        if type(entry) is not list or len(entry) != 2:
            raise r.fail(f"a constant is written as {_short(entry)}")
        s = _int(r, entry[0], "a constant's slot", n)
        consts[s] = r.value(entry[1])
        defined[s] = True
    steps: list[Op | Guard] = []
    for k, st in enumerate(_entries(r, desc.get("steps"), "steps")):
        if type(st) is not list or not st or st[0] not in ("op", "guard") or len(st) != 5:
            raise r.fail(f"step {k} is written as {_short(st)}")
        if st[0] == "op":
            _, key, args, params, out = st
            prim = primitive_for_key(key) if type(key) is str else None
            if prim is None:
                raise r.fail(
                    f"step {k} names the primitive {_short(key)}, which this process does "
                    "not know: a user's primitive is known once the module declaring it "
                    "(Primitive(..., key=...)) is imported; a dualrev primitive missing "
                    "here was written by another dualrev version")
            a = slots(args, f"step {k}'s arguments")
            for s in a:
                if not defined[s]:
                    raise r.fail(f"step {k} reads slot {s} before anything is written there")
            if type(params) is not dict:
                raise r.fail(f"step {k}'s parameters are {_short(params)}")
            p = {name: r.value(v) for name, v in params.items()}
            o = _int(r, out, f"step {k}'s output slot", n)
            defined[o] = True
            steps.append(Op(prim, tuple(a), p, o))
        else:
            _, kind, slot, expected, where = st
            if kind not in GUARD_KINDS:
                raise r.fail(f"step {k} is a guard of unknown kind {_short(kind)}")
            s = _int(r, slot, f"step {k}'s slot", n)
            if not defined[s]:
                raise r.fail(f"step {k} guards slot {s} before anything is written there")
            exp = r.value(expected)
            if kind in ("truth", "finite") and type(exp) is not bool:
                raise r.fail(f"step {k}: a {kind} guard expects a bool, not {_short(exp)}")
            if kind == "shape" and not (type(exp) is tuple and all(
                    type(d) is int for d in exp)):
                raise r.fail(f"step {k}: a shape guard expects a shape, not {_short(exp)}")
            if where is not None and type(where) is not str:
                raise r.fail(f"step {k}'s source line is {_short(where)}")
            steps.append(Guard(s, kind, exp, where))
    outputs = slots(desc.get("outputs"), "outputs")
    for s in outputs:
        if not defined[s]:
            raise r.fail(f"output slot {s} is never written")
    out_def = r.tree(desc.get("out_def"))
    # (outputs past the structure's leaves: arguments written into, meta["writeback"])
    if out_def.num_leaves > len(outputs):
        raise r.fail(f"the output structure has {out_def.num_leaves} leaves for "
                     f"{len(outputs)} outputs")
    out_types = [r.value(t) for t in _entries(r, desc.get("out_types"), "out_types")]
    if out_types and (len(out_types) != out_def.num_leaves or not all(
            isinstance(t, type) for t in out_types)):
        raise r.fail("out_types must be one type per leaf of the output")
    program = Program(n, inputs, consts, steps, outputs, out_def, out_types)
    meta = desc.get("meta", {})
    if type(meta) is not dict:
        raise r.fail(f"meta is {_short(meta)}")
    program.meta.update({k: r.value(v) for k, v in meta.items()})
    wb = program.meta.get("writeback", [])
    if type(wb) is not list or not all(
            type(p) is tuple and len(p) == 2 and all(type(i) is int for i in p)
            and 0 <= p[0] < len(inputs) and out_def.num_leaves <= p[1] < len(outputs)
            for p in wb):
        raise r.fail(f"meta['writeback'] is {_short(wb)}")
    if desc.get("signature") is not None:
        program.meta["call"] = _read_signature(r, desc["signature"], len(inputs))
    program.meta["saved_by"] = {k: desc.get(k) for k in ("dualrev", "numpy", "python")}
    return program


def _entries(r: _Reader, v: Any, what: str) -> list[Any]:
    if type(v) is not list:
        raise r.fail(f"{what} is {_short(v)}, not a list")
    return v


def _read_signature(r: _Reader, d: Any, n_inputs: int) -> CallSignature:
    if type(d) is not dict:
        raise r.fail(f"the signature is {_short(d)}")
    static = []
    for pair in _entries(r, d.get("static"), "the signature's static arguments"):
        if type(pair) is not list or len(pair) != 2:
            raise r.fail(f"a static argument is written as {_short(pair)}")
        static.append((_int(r, pair[0], "a static argument's position"), r.value(pair[1])))
    tree = r.tree(d.get("tree"))
    leaves: list[tuple[Any, ...]] = []
    for spec in _entries(r, d.get("leaves"), "the signature's leaves"):
        if type(spec) is not dict:
            raise r.fail(f"an argument leaf is written as {_short(spec)}")
        if "input" in spec:
            t = r.value(spec["input"])
            shape = spec.get("shape")
            if not isinstance(t, type) or (shape is not None and not (
                    type(shape) is list and all(type(x) is int for x in shape))):
                raise r.fail(f"an input leaf is written as {_short(spec)}")
            dtype = None if spec.get("dtype") is None else r.dtype(spec["dtype"])
            layout = spec.get("layout")
            if layout not in (None, "C", "F", "strided") or (layout is None) != (shape is None):
                raise r.fail(f"an input leaf's layout is {_short(layout)}")
            leaves.append(("input", t, None if shape is None else tuple(shape), dtype,
                           layout))
        elif "static" in spec:
            v = r.value(spec["static"])
            leaves.append(("static", type(v), v))
        else:
            raise r.fail(f"an argument leaf is written as {_short(spec)}")
    if tree.num_leaves != len(leaves):
        raise r.fail(f"the signature's structure has {tree.num_leaves} leaves for "
                     f"{len(leaves)} described")
    if sum(1 for s in leaves if s[0] == "input") != n_inputs:
        raise r.fail(f"the signature has {sum(1 for s in leaves if s[0] == 'input')} input "
                     f"leaves; the program takes {n_inputs}")
    return CallSignature(static, tree, leaves)


def load_program(file: str | os.PathLike[str] | IO[bytes], *,
                 any_version: bool = False) -> Program:
    """Load a program saved by ``save_program``, without pickle.

    The file is read with ``numpy.load(..., allow_pickle=False)``; the description's
    format and version, every primitive key (which this process must know: a user's
    primitive is known once its module is imported), slot, parameter, guard and the
    signature are validated before the ``Program`` is built. Nothing in the file runs.

    The program runs with ``program.run(leaves)`` on its input leaves, or is called like
    the recorded function, ``program(*args)``: the arguments are checked against the
    recorded signature (structure, shapes, dtypes, static values), the guards on the
    way, and the result has the recorded structure and types. A guard that fails raises
    ``ProgramCallError`` (there is no function to record again from).

    Args:
        file: a path, or a binary file object open for reading.
        any_version: load a file another dualrev version saved (refused by default: a
            primitive's parameters may mean something else there; the format version is
            checked in any case).
    Returns:
        The ``Program``; ``meta["saved_by"]`` holds the versions of dualrev, NumPy and
        Python that saved it.
    Raises:
        ProgramFormatError: not a saved program, another format version, another
            dualrev version (without ``any_version``), an unknown primitive key, a
            malformed entry, or an array that needs pickle.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> import io
        >>> f = dr.replay(dr.jacobian(lambda x: np.tanh(x[:2] * x[1:])))
        >>> J = f(np.array([0.5, 1.0, 2.0]))
        >>> saved = io.BytesIO()     # (or a path: "jac.npz")
        >>> dr.save_program(f.programs[0], saved)
        >>> _ = saved.seek(0)
        >>> jac = dr.load_program(saved)
        >>> x = np.array([0.1, 0.2, 0.3])
        >>> bool(np.array_equal(jac(x), dr.jacobian(lambda x: np.tanh(x[:2] * x[1:]))(x)))
        True
    """
    path = os.fspath(file) if isinstance(file, (str, os.PathLike)) else repr(file)
    try:
        npz = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ProgramFormatError(path, f"not a NumPy .npz file ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ProgramFormatError(path, "not a saved dualrev program (a single array, not "
                                 "an .npz file)")
    with npz:
        if DESCRIPTION not in npz.files:
            raise ProgramFormatError(path, "not a saved dualrev program (no "
                                     f"{DESCRIPTION} entry)")
        try:
            raw = npz[DESCRIPTION]
        except ValueError as e:
            raise ProgramFormatError(path, f"its description needs pickle ({e})") from None
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ProgramFormatError(path, "its description is not UTF-8 bytes")
        try:
            desc = json.loads(raw.tobytes().decode("utf-8"),
                              parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
            raise ProgramFormatError(path, f"its description is not valid JSON ({e})") from None
        return program_from_description(desc, npz, path, any_version)


def _no_constant(name: str) -> Any:
    raise ValueError(f"the JSON constant {name} (floats are written as strings)")


def dumps_program(program: Program) -> bytes:
    """``save_program`` to bytes (the ``.npz`` file's contents)."""
    buf = io.BytesIO()
    save_program(program, buf)
    return buf.getvalue()


def loads_program(data: bytes, *, any_version: bool = False) -> Program:
    """``load_program`` from bytes (an ``.npz`` file's contents)."""
    return load_program(io.BytesIO(data), any_version=any_version)

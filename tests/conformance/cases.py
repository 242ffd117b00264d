"""The case model of the conformance harness: argument templates, sample domains and
``Case`` (one entry, one keyword variant, one dtype, one shape class)."""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


# ------------------------------------------------------------------ sample domains
def _real(rng: np.random.Generator, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, shape)


def _signed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # away from 0, where abs/sign/sqrt-like entries have kinks
    return rng.uniform(0.3, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def _distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # well separated values: no ties for sort/max/argmax, so derivatives exist
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n / 2) * 0.4 + rng.uniform(0.05, 0.15, n)
    return v.reshape(shape)


def _matrix(rng: np.random.Generator, shape: tuple[int, ...], cplx: bool) -> np.ndarray:
    m = rng.standard_normal(shape)
    if cplx:
        m = m + 1j * rng.standard_normal(shape)
    return m


def _unitary(rng: np.random.Generator, shape: tuple[int, ...], cplx: bool) -> np.ndarray:
    q, _ = np.linalg.qr(_matrix(rng, shape, cplx))
    return q


def sample(dom: str, shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """A sample array of ``shape`` in domain ``dom``, with dtype ``dtype``.

    Complex samples get an imaginary part of the same kind (small where the real
    domain is an interval, so that branch cuts stay away)."""
    cplx = dtype == "complex128"
    n = shape[-1] if shape else 1
    if dom == "real":
        x = _signed(rng, shape)
        if cplx:
            x = x + 1j * _signed(rng, shape)
    elif dom == "pos":
        x = _real(rng, shape, 0.5, 2.0)
        if cplx:
            x = x + 1j * _real(rng, shape, -0.4, 0.4)
    elif dom == "unit":
        x = _real(rng, shape, 0.15, 0.75) * rng.choice([-1.0, 1.0], shape)
        if cplx:
            x = x + 1j * _real(rng, shape, -0.15, 0.15)
    elif dom == "gt1":
        x = _real(rng, shape, 1.3, 3.0)
        if cplx:
            x = x + 1j * _real(rng, shape, -0.3, 0.3)
    elif dom == "prob":
        x = _real(rng, shape, 0.15, 0.85)
    elif dom == "tail":  # probabilities away from 1/2 (where ndtri vanishes)
        x = _real(rng, shape, 0.6, 0.9)
    elif dom == "neg":  # negative, away from 0 (log-probabilities: ndtri_exp)
        x = _real(rng, shape, -3.0, -0.2)
    elif dom == "nonint":
        x = rng.integers(-3, 3, shape) + _real(rng, shape, 0.2, 0.8)
        if cplx:
            x = x + 1j * (rng.integers(-3, 3, shape) + _real(rng, shape, 0.2, 0.8))
    elif dom == "distinct":
        x = _distinct(rng, shape)
    elif dom == "distinct_sorted":  # increasing, for interp's xp and searchsorted
        x = np.sort(_distinct(rng, shape), axis=-1)
        if cplx:
            x = x + 0j
    elif dom == "nan":  # nan at the first position, for the nan-ignoring entries
        x = _signed(rng, shape)
        if cplx:
            x = x + 1j * _signed(rng, shape)
        x.flat[0] = np.nan
    elif dom == "nonfinite":
        x = _signed(rng, shape)
        x.flat[:3] = [np.nan, np.inf, -np.inf]
    elif dom == "mask":
        return np.arange(int(np.prod(shape))).reshape(shape) % 2 == 0
    elif dom == "general":  # square, well conditioned
        x = _matrix(rng, shape, cplx) * 0.3 + np.eye(n) * 1.5
    elif dom == "spd":  # symmetric / Hermitian positive definite
        b = _matrix(rng, shape, cplx) * 0.5
        x = b @ np.conj(np.swapaxes(b, -1, -2)) + np.eye(n) * 1.0
    elif dom == "sym":  # symmetric / Hermitian, well separated eigenvalues
        q = _unitary(rng, shape, cplx)
        lam = np.arange(1, n + 1) * 1.0 - n / 2 - 0.3
        x = (q * lam) @ np.conj(np.swapaxes(q, -1, -2))
        x = (x + np.conj(np.swapaxes(x, -1, -2))) / 2
    elif dom == "svd":  # rectangular, well separated singular values
        m, k = shape[-2], shape[-1]
        r = min(m, k)
        u = _unitary(rng, shape[:-2] + (m, r), cplx)
        v = _unitary(rng, shape[:-2] + (k, r), cplx)
        s = np.arange(r, 0, -1) * 0.7 + 0.5
        x = (u * s) @ np.conj(np.swapaxes(v, -1, -2))
    elif dom == "eig":  # general (non-normal), well separated eigenvalues; a real one
        # has a complex-conjugate pair (a rotation block), so eig's results are complex
        lam = np.diag(np.arange(1, n + 1) * 1.2 + (0.5j * (-1) ** np.arange(n) if cplx
                                                    else 0))
        if not cplx and n >= 2:
            lam[:2, :2] = [[1.0, 0.8], [-0.8, 1.0]]
        q = np.eye(n) + 0.3 * _matrix(rng, shape, cplx)
        x = q @ lam @ np.linalg.inv(q)
    elif dom == "singular":  # square of rank n - 1
        b = _matrix(rng, shape[:-1] + (n - 1,), cplx)
        c = _matrix(rng, shape[:-2] + (n - 1, n), cplx)
        x = b @ c
    elif dom == "sqrtm":  # spd, so the principal square root is real
        b = _matrix(rng, shape, cplx) * 0.3
        x = b @ np.conj(np.swapaxes(b, -1, -2)) + np.eye(n) * 1.0
    else:
        raise ValueError(f"unknown sample domain {dom!r}")
    return np.asarray(x, dtype=np.complex128 if cplx else np.float64)


@dataclass(frozen=True)
class A:
    """A differentiable array argument: ``shape`` in domain ``dom``, in the case's dtype
    (``real=True`` keeps it real even in complex cases)."""

    shape: tuple[int, ...]
    dom: str = "real"
    real: bool = False


@dataclass(frozen=True)
class Ints:
    """A constant integer array argument (not differentiated)."""

    shape: tuple[int, ...]
    lo: int = 0
    hi: int = 3


@dataclass(frozen=True)
class F:
    """A constant float array argument (not differentiated), always float64."""

    shape: tuple[int, ...]
    dom: str = "real"


def _walk(tmpl: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(tmpl, (A, Ints, F)):
        return fn(tmpl)
    if isinstance(tmpl, list):
        return [_walk(t, fn) for t in tmpl]
    if isinstance(tmpl, tuple):
        return tuple(_walk(t, fn) for t in tmpl)
    if isinstance(tmpl, dict):
        return {k: _walk(v, fn) for k, v in tmpl.items()}
    return tmpl


@dataclass
class Case:
    """One check target: ``fn(*args, **kwargs)`` with the templates filled in.

    kind: "diff" (value and every derivative check), "value" (value, and zero
    derivative where the output is floating) or "raises" (traced call must raise
    ``raises``)."""

    name: str
    entry: Any
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    shape: str = ""
    dtype: str = "float64"
    kind: str = "diff"
    raises: Any = None
    tol: float = 1e-6
    #: vmap against the loop of single calls: 1e-12 for values, 1e-10 for derivatives,
    #: unless the batched evaluation is another computation of the same numbers (an ODE
    #: solved for the whole batch at once, under one step-size control)
    batch_tol: float | None = None
    second: bool = True
    jax: str | None = None
    #: generated by a cross product of shapes x keywords: dropped where NumPy itself
    #: rejects the combination (e.g. axis=1 on a 0-d array)
    optional: bool = False

    @property
    def id(self) -> str:
        lab = f"[{self.label}]" if self.label else ""
        sh = f"-{self.shape}" if self.shape else ""
        return f"{self.name}{lab}-{self.dtype}{sh}"

    def applies(self) -> bool:
        """Whether the plain NumPy/SciPy call accepts this case (NumPy versions differ in
        the keywords they accept). Also notes whether the call has a floating output
        (``has_floating_output``), which decides the modes that apply."""
        args, kwargs = self.instantiate()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self.fn(*args, **kwargs)
        except Exception:
            return False
        self._floating = any(is_floating(o) for o in flat(out))
        self._complex = any(is_floating(o) and np.result_type(o).kind == "c" for o in flat(out))
        return True

    @property
    def has_floating_output(self) -> bool:
        """Whether the plain call returns a floating output, i.e. something to
        differentiate (the derivative modes apply only then)."""
        if not hasattr(self, "_floating"):
            self.applies()
        return getattr(self, "_floating", False)

    @property
    def has_complex_output(self) -> bool:
        """Whether the plain call returns a complex output."""
        if not hasattr(self, "_floating"):
            self.applies()
        return getattr(self, "_complex", False)

    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    def instantiate(self, dtype: str | None = None,
                    draw: int = 0) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Concrete (args, kwargs): float32 cases get the float64 sample cast down, so
        both runs see the same numbers. ``draw`` > 0 gives another sample of the same
        templates (the vmap check stacks several)."""
        dtype = dtype or self.dtype
        rng = np.random.default_rng([self.seed(), draw] if draw else self.seed())
        base = "complex128" if dtype == "complex128" else "float64"

        def fill(t: Any) -> Any:
            if isinstance(t, A):
                x = sample(t.dom, t.shape, "float64" if t.real else base, rng)
                return x.astype(np.float32) if dtype == "float32" else x
            if isinstance(t, Ints):
                return rng.integers(t.lo, t.hi, t.shape)
            return sample(t.dom, t.shape, "float64", rng)

        return _walk(self.args, fill), _walk(self.kwargs, fill)

    def templates(self) -> list[A]:
        """The ``A`` templates, in the order of the leaves ``split`` returns."""
        found: list[A] = []
        _walk((self.args, self.kwargs), lambda t: found.append(t) if isinstance(t, A) else t)
        return found

    def split(self, args: Any, kwargs: Any) -> tuple[list[Any], Callable[..., Any]]:
        """The differentiable leaves of (args, kwargs) and ``rebuild(*leaves)`` giving the
        call's (args, kwargs) with those leaves replaced."""
        marks: list[Any] = []
        _walk((self.args, self.kwargs), lambda t: marks.append(isinstance(t, A)) or t)
        flat: list[Any] = []
        _flatten_like((self.args, self.kwargs), (args, kwargs), flat)
        leaves = [v for v, m in zip(flat, marks, strict=True) if m]

        def rebuild(*new: Any) -> tuple[Any, Any]:
            it = iter(new)
            vals = iter(v if not m else next(it) for v, m in zip(flat, marks, strict=True))
            return _walk((self.args, self.kwargs), lambda t: next(vals))

        return leaves, rebuild


def flat(o: Any) -> list[Any]:
    """The leaves of a (nested) tuple/list output."""
    if isinstance(o, (tuple, list)):
        return [v for item in o for v in flat(item)]
    return [o]


def is_numeric(o: Any) -> bool:
    """A number or an array of numbers (not a bool, a dtype, a string...)."""
    return isinstance(o, (np.ndarray, np.generic, float, int, complex)) and not isinstance(
        o, bool)


def is_floating(o: Any) -> bool:
    """A real or complex floating number or array: an output with a derivative."""
    return is_numeric(o) and np.result_type(o).kind in "fc"


def _flatten_like(tmpl: Any, val: Any, out: list[Any]) -> None:
    if isinstance(tmpl, (A, Ints, F)):
        out.append(val)
    elif isinstance(tmpl, (list, tuple)):
        for t, v in zip(tmpl, val, strict=True):
            _flatten_like(t, v, out)
    elif isinstance(tmpl, dict):
        for k in tmpl:
            _flatten_like(tmpl[k], val[k], out)

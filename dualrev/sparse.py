"""Sparse Jacobians and Hessians: structural sparsity detection, colouring, compressed
evaluation.

``jacobian_sparsity``/``hessian_sparsity`` find which entries can be non-zero for every
input, in one run of the function on ``Pattern`` values (dualrev/sparsity.py).
Columns of a Jacobian that share no nonzero row can be probed together: push one tangent
per *colour* (the sum of the basis vectors of the columns with that colour) and each
entry of the compressed product belongs to exactly one column. A banded Jacobian with
10^4 columns needs only a handful of colours, whatever its size. ``jacobian`` and
``hessian`` return ``scipy.sparse`` matrices computed that way.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

# the colourings live in colouring.py; these names are dualrev.sparse's too
from .colouring import ORDERS as ORDERS
from .colouring import GraphTooLargeError as GraphTooLargeError
from .colouring import colour_columns as colour_columns
from .colouring import colour_rows as colour_rows
from .colouring import colour_symmetric as colour_symmetric
from .colouring import recover_columns as recover_columns
from .colouring import recover_rows as recover_rows
from .colouring import recover_symmetric as recover_symmetric
from .errors import NonStructuralSparsityWarning, SparsityError
from .primitive import Tracer, concrete
from .transforms import (
    Dependencies,
    _as_input,
    _basis_dtype,
    _dtype_of,
    _jvp_batched,
    _split_aux,
    _vjp_batched,
    dependencies,
    grad,
    jvp_batched,
)
from .tree import tree_flatten

__all__ = [
    "FORMATS", "MODES", "ORDERS", "GraphTooLargeError", "NonStructuralSparsityWarning",
    "SparseHessianFunction",
    "SparseJacobian", "SparseJacobianFunction", "Sparsity", "SparsityError",
    "colour_columns", "colour_rows", "colour_symmetric", "detect_sparsity", "hessian",
    "hessian_sparsity", "jacobian", "jacobian_sparsity", "recover_columns", "recover_rows",
    "recover_symmetric",
]

#: the sparse formats ``jacobian`` and ``hessian`` return
FORMATS = ("csr", "csc", "coo")


class Sparsity:
    """A detected sparsity pattern: ``pattern``, a boolean ``scipy.sparse.csr_matrix``
    (rows: the output's elements, columns: the input's, both flattened in C order);
    ``notes``, what it relies on (decisions taken on values at the given point,
    primitives without a pattern rule, each with the user's line); ``structural``, True
    when it holds for every input (no decision on values was taken).

    Args:
        found: what ``dualrev.transforms.dependencies`` found.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> s = dr.sparse.jacobian_sparsity(lambda x: x[1:] - x[:-1], np.ones(3))
        >>> s
        Sparsity(2x3, 4 entries, structural)
        >>> s.shape, s.nnz, s.structural
        ((2, 3), 4, True)
    """

    __slots__ = ("pattern", "notes", "structural", "out_shape", "in_shape", "out_kind")

    def __init__(self, found: Dependencies) -> None:
        self.pattern: sp.csr_matrix = found.pattern
        self.notes: list[str] = found.notes
        self.structural: bool = found.structural
        self.out_shape = tuple(found.out_shapes[0]) if len(found.out_shapes) == 1 else None
        self.in_shape = tuple(found.in_shapes[0]) if len(found.in_shapes) == 1 else None
        self.out_kind = "f"  # the output's dtype kind, where known

    @classmethod
    def given(cls, pattern: sp.csr_matrix, out_shape: tuple[int, ...] | None,
              in_shape: tuple[int, ...] | None) -> Sparsity:
        """A pattern the caller gave (taken as structural, with no notes)."""
        s = cls.__new__(cls)
        s.pattern, s.notes, s.structural = pattern, [], True
        s.out_shape, s.in_shape, s.out_kind = out_shape, in_shape, "f"
        return s

    @property
    def shape(self) -> tuple[int, int]:
        """The pattern's (rows, columns)."""
        return self.pattern.shape

    @property
    def nnz(self) -> int:
        """The number of entries that may be non-zero."""
        return int(self.pattern.nnz)

    def __repr__(self) -> str:
        m, n = self.shape
        how = "structural" if self.structural else "taken at the given point"
        return (f"Sparsity({m}x{n}, {self.nnz} entries, {how}"
                + (f", {len(self.notes)} notes" if self.notes else "") + ")")


def jacobian_sparsity(f: Callable[..., Any], *args: Any, argnums: int = 0) -> Sparsity:
    """The structural sparsity pattern of ``f``'s Jacobian in argument ``argnums``:
    which entries may be non-zero for every input, found in one run of ``f`` on values
    that carry, for each element, the input elements it depends on.

    Control flow on values (``if x[0] > 0``) and boolean masks computed from values are
    taken at ``args``; ``.structural`` is then False and ``.notes`` name the lines.
    Integer indices and orders computed from values (``x[np.argmax(x)]``, ``np.sort``)
    make each selected element depend on everything they may select, so the pattern
    still holds for every input. A primitive that states no pattern makes its output
    depend on all of its inputs' inputs (a note says which).

    Args:
        f: the function; its output may be any array (its elements are the rows).
        *args: the arguments to run ``f`` at.
        argnums: the argument whose elements are the columns.
    Returns:
        A ``Sparsity``; ``.pattern`` has shape ``(f(*args).size, args[argnums].size)``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> s = dr.sparse.jacobian_sparsity(lambda x: x[1:] * x[:-1], np.ones(4))
        >>> print(s.pattern.toarray().astype(int))
        [[1 1 0 0]
         [0 1 1 0]
         [0 0 1 1]]
    """
    return Sparsity(dependencies(f, args, argnums))


def hessian_sparsity(f: Callable[..., Any], *args: Any, argnums: int = 0) -> Sparsity:
    """The structural sparsity pattern of scalar ``f``'s Hessian in argument
    ``argnums``: the Jacobian pattern of its gradient (reverse mode run on pattern
    values: ``jacobian_sparsity(grad(f))``), symmetric.

    Args:
        f: a scalar-valued function.
        *args: the arguments to run it at.
        argnums: the argument whose elements are the rows and columns.
    Returns:
        A ``Sparsity`` of shape ``(n, n)``, ``n = args[argnums].size``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.sum(x[1:] * x[:-1]) + np.sum(x ** 3)
        >>> print(dr.sparse.hessian_sparsity(f, np.ones(4)).pattern.toarray().astype(int))
        [[1 1 0 0]
         [1 1 1 0]
         [0 1 1 1]
         [0 0 1 1]]
    """
    found = dependencies(grad(f, argnums), args, argnums)
    found.pattern = sp.csr_matrix(found.pattern + found.pattern.T, dtype=bool)
    return Sparsity(found)


#: preparations kept per function object (the most recently used ones)
CACHE_SIZE = 8

#: the directions ``jacobian`` takes: one batched JVP pass of column colours, one batched
#: VJP pass of row colours, or whichever needs fewer colours (ties go forward)
MODES = ("auto", "forward", "reverse")


def _refuse_traced(tree: Any, what: str) -> None:
    for leaf in tree_flatten(tree)[0]:
        if isinstance(leaf, Tracer):
            raise SparsityError(
                f"dualrev.{what} was called on a traced value (inside another transform): "
                "its scipy.sparse result cannot carry derivatives. Differentiate the dense "
                f"transform instead (dr.{what.split('.')[-1]}), or take the sparse result "
                "outside the transform.")


def _fingerprint(leaf: Any) -> Any:
    """What the cached pattern depends on in a non-differentiated argument: its shape,
    dtype and values (indices and masks read from constants shape the pattern), hashed;
    a non-numeric object by itself when hashable, else by identity."""
    if isinstance(leaf, (np.ndarray, np.generic, float, int, complex)):
        a = np.ascontiguousarray(leaf)
        if a.dtype.kind in "biufc":
            return (a.shape, a.dtype.str, hashlib.blake2b(a.view(np.uint8).data,
                                                          digest_size=16).digest())
    try:
        hash(leaf)
    except TypeError:
        return ("id", id(leaf))
    return (type(leaf), leaf)


def _point_key(args: tuple[Any, ...], kwargs: dict[str, Any], argnums: int,
               fixed: bool) -> Any:
    """The key a preparation is kept under: the differentiated argument's shape and
    dtype, and (unless the pattern was given) the other arguments' fingerprints."""
    argnums %= len(args)  # (a negative argnums counts from the end)
    x = args[argnums]
    key: tuple[Any, ...] = (np.shape(x), np.result_type(x).str)
    if not fixed:
        others = [a for i, a in enumerate(args) if i != argnums]
        leaves, structure = tree_flatten((others, sorted(kwargs.items())))
        key += (structure, *(_fingerprint(v) for v in leaves))
    return key


def _user_pattern(sparsity: Any, shape: tuple[int, int], what: str,
                  symmetric: bool) -> sp.csr_matrix:
    """A given ``sparsity`` as a boolean csr pattern of ``shape``, validated."""
    if isinstance(sparsity, Sparsity):
        P = sparsity.pattern
    else:
        try:
            P = (sparsity if sp.issparse(sparsity) else np.asarray(sparsity))
        except Exception as e:  # noqa: BLE001  (reported with what was given)
            raise SparsityError(f"dualrev.{what}: sparsity must be a Sparsity, an array or "
                                f"a scipy.sparse matrix, got {type(sparsity).__name__}") from e
        if P.ndim != 2 or (not sp.issparse(P) and P.dtype.kind not in "biuf"):
            raise SparsityError(f"dualrev.{what}: sparsity must be a 2-d array or sparse "
                                f"matrix of the entries that may be non-zero, got "
                                f"{type(sparsity).__name__} of shape {np.shape(P)}")
    if tuple(P.shape) != shape:
        raise SparsityError(
            f"dualrev.{what}: the sparsity pattern has shape {tuple(P.shape)}, but the "
            f"function's {'Hessian' if symmetric else 'Jacobian'} here has shape {shape} "
            "(output elements x input elements, both flattened in C order). Pass a pattern "
            "of that shape, or sparsity=None to detect it.")
    if sp.issparse(P):  # its stored entries, explicit zeros too (as SciPy's jac_sparsity)
        Q = sp.csr_matrix(P)
        Q.sum_duplicates()
        P = sp.csr_matrix((np.ones(Q.nnz, dtype=bool), Q.indices, Q.indptr), shape=Q.shape)
    else:
        P = sp.csr_matrix(np.asarray(P) != 0)
    if symmetric:  # a Hessian is symmetric: a one-sided pattern would miss entries
        P = sp.csr_matrix(P + P.T, dtype=bool)
    return P


class _Gather:
    """A recovery (``recover_columns``/``rows``/``symmetric``) as a gather: which element
    of the pass's output (``(colours, size)``, C order) each stored entry of the result
    reads, in the result's format. Found once, by recovering from values that code
    their own positions, and checked against a recovery from random values; a recovery
    that is not a gather (one that solves for entries) is called at every evaluation."""

    __slots__ = ("recover", "pattern", "colours", "arrange", "format", "shape", "take",
                 "parts")

    def __init__(self, recover: Callable[..., Any], pattern: sp.csr_matrix,
                 colours: np.ndarray, c: int, size: int,
                 arrange: Callable[[np.ndarray], np.ndarray], format: str,
                 direct: Callable[[sp.csr_matrix], np.ndarray] | None = None) -> None:
        self.recover, self.pattern, self.colours = recover, pattern, colours
        self.arrange, self.format, self.shape = arrange, format, pattern.shape
        code = np.arange(1, c * size + 1, dtype=np.float64).reshape(c, size)
        R = sp.csr_matrix(recover(pattern, colours, arrange(code)))
        # direct: the positions a direct recovery reads, in csr order; where they agree
        # the recovery is that gather and needs no second look
        known = direct is not None and R.nnz == pattern.nnz and np.array_equal(
            R.data, direct(R) + 1.0)
        R = R.asformat(format)
        take = np.rint(R.data).astype(np.int64) - 1
        parts = ((R.row, R.col) if format == "coo" else (R.indices, R.indptr))
        same = known
        if not known:
            probe = np.random.default_rng(0).uniform(1.0, 2.0, (c, size))
            again = sp.csr_matrix(recover(pattern, colours, arrange(probe))).asformat(format)
            same = (R.nnz == again.nnz and np.array_equal(R.data, take + 1.0)
                    and all(np.array_equal(a, b) for a, b in zip(
                        parts, (again.row, again.col) if format == "coo"
                        else (again.indices, again.indptr), strict=True))
                    and np.array_equal(again.data, probe.ravel()[take]))
        self.take = take if same else None
        self.parts = parts

    def __call__(self, out: np.ndarray) -> Any:
        """The result from the pass's output ``out``, shape ``(colours, size)``."""
        if self.take is None:
            return sp.csr_matrix(self.recover(self.pattern, self.colours,
                                              self.arrange(out))).asformat(self.format)
        values = np.ravel(out)[self.take]
        a, b = (p.copy() for p in self.parts)  # results must not share their structure
        if self.format == "coo":
            return sp.coo_matrix((values, (a, b)), shape=self.shape)
        cls = sp.csr_matrix if self.format == "csr" else sp.csc_matrix
        return cls((values, a, b), shape=self.shape)


def _same_pattern(found: Sparsity, st: _Prepared) -> bool:
    P = st.pattern
    return (found.shape == P.shape and found.nnz == P.nnz
            and not (found.pattern != P).nnz)


class _Prepared:
    """One preparation: the pattern, its colouring, the seeds and the recovery, for one
    input key."""

    __slots__ = ("sparsity", "pattern", "mode", "colours", "seeds", "out_shape",
                 "out_kind", "redetect", "gather")

    def __init__(self, sparsity: Sparsity, mode: str, colours: np.ndarray,
                 seeds: np.ndarray, out_shape: tuple[int, ...], out_kind: str,
                 redetect: bool) -> None:
        self.sparsity, self.pattern = sparsity, sparsity.pattern
        self.mode, self.colours, self.seeds = mode, colours, seeds
        self.out_shape, self.out_kind, self.redetect = out_shape, out_kind, redetect
        self.gather: _Gather | None = None


def _seeds(colours: np.ndarray, n: int, shape: tuple[int, ...], dtype: Any,
           empty: bool) -> np.ndarray:
    """One seed per colour, the sum of the basis vectors of its elements: shape
    ``(colours,) + shape``; none for an ``empty`` pattern (nothing to probe)."""
    c = int(colours.max()) + 1 if colours.size and not empty else 0
    S = np.zeros((c, n), dtype=dtype)
    if c:
        S[colours, np.arange(n)] = 1
    return S.reshape((c,) + tuple(shape))


class _SparseDerivative:
    """What ``SparseJacobianFunction`` and ``SparseHessianFunction`` share: the cache of
    preparations per input, the protocol (``prepare``, ``sparsity``, ``colours``,
    ``n_colours``, ``mode``, ``passes``) and the checks of the arguments."""

    _what = "sparse"

    def __init__(self, f: Callable[..., Any], argnums: int, sparsity: Any, format: str,
                 order: str, has_aux: bool) -> None:
        what = self._what
        if isinstance(argnums, (tuple, list)):
            raise SparsityError(
                f"dualrev.{what}: argnums must be one int (the argument whose elements are "
                f"the columns), got {argnums!r}; for several arguments concatenate them "
                "into one array (np.concatenate of their ravels) and split it inside f")
        if not isinstance(argnums, (int, np.integer)) or isinstance(argnums, bool):
            raise SparsityError(f"dualrev.{what}: argnums must be an int, got {argnums!r}")
        if format not in FORMATS:
            raise SparsityError(f"dualrev.{what}: format must be one of {FORMATS}, got "
                                f"{format!r}")
        try:  # an unknown order is refused now, not at the first call
            colour_columns(sp.csr_matrix((1, 1), dtype=bool), order)
        except ValueError as e:
            raise SparsityError(f"dualrev.{what}: {e}") from None
        if sparsity is not None and isinstance(sparsity, str):
            raise SparsityError(f"dualrev.{what}: sparsity must be None, a Sparsity, an "
                                f"array or a scipy.sparse matrix, got {sparsity!r}")
        self.f = f
        self.argnums = int(argnums)
        self.format = format
        self.order = order
        self.has_aux = has_aux
        self._given = sparsity
        self._cache: dict[Any, _Prepared] = {}
        self._last: _Prepared | None = None
        #: batched evaluation passes made (detection and colouring not counted)
        self.passes = 0
        functools.update_wrapper(self, f, updated=())  # type: ignore[arg-type]

    # ---------------------------------------------------------------- protocol
    @property
    def sparsity(self) -> Sparsity | None:
        """The pattern of the latest preparation (None before the first)."""
        return None if self._last is None else self._last.sparsity

    @property
    def colours(self) -> np.ndarray | None:
        """The latest preparation's colour per column (forward) or row (reverse)."""
        return None if self._last is None else self._last.colours

    @property
    def n_colours(self) -> int:
        """The number of seeds one evaluation pushes (0 before the first preparation)."""
        return 0 if self._last is None else int(self._last.seeds.shape[0])

    def prepare(self, *args: Any, **kwargs: Any) -> Any:
        """Detect (or validate) the pattern and colour it for these arguments, without
        evaluating the derivative; returns ``self``. A later call with arguments of the
        same key (the differentiated argument's shape and dtype; the other arguments'
        values unless ``sparsity`` was given) reuses it."""
        self._state(args, kwargs)
        return self

    # ---------------------------------------------------------------- internals
    def _check_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        what = self._what
        if not -len(args) <= self.argnums < len(args):
            raise SparsityError(f"dualrev.{what}: argnums={self.argnums} but the function "
                                f"was called with {len(args)} positional arguments")
        _refuse_traced((args, kwargs), what)
        x = args[self.argnums]
        if isinstance(x, (dict, list, tuple)):
            raise SparsityError(
                f"dualrev.{what}: the differentiated argument must be an array, got a "
                f"{type(x).__name__}; pass one flat array (dualrev.tree_flatten's leaves "
                "raveled and concatenated) and rebuild the structure inside f")
        x = _as_input(x)
        if _dtype_of(x).kind == "c":
            raise SparsityError(
                f"dualrev.{what} differentiates real arguments, got dtype {_dtype_of(x)}; "
                "for a holomorphic function of complex inputs use the dense transform with "
                "holomorphic=True, or pass the real and imaginary parts as one real array")
        return x

    def _state(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[_Prepared, Any]:
        x = self._check_args(args, kwargs)
        key = _point_key(args, kwargs, self.argnums, self._given is not None)
        st = self._cache.pop(key, None)
        if st is None or st.redetect:  # (a pattern taken at a point: the branch may differ)
            found = None if self._given is not None else self._detect(args, kwargs)
            if st is None or found is None or not _same_pattern(found, st):
                st = (self._shared(found, x) if found is not None else None) or \
                    self._prepare(args, kwargs, x, warn=st is None, found=found)
        self._cache[key] = st  # the most recent last; the oldest goes beyond CACHE_SIZE
        while len(self._cache) > CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        self._last = st
        return st, x

    def _shared(self, found: Sparsity, x: Any) -> _Prepared | None:
        """A preparation for ``found`` that shares the colouring of a kept one with the
        same pattern (another key: other constants that give the same pattern), or None."""
        for st in reversed(self._cache.values()):
            forward = st.mode != "reverse"  # (reverse seeds: the output's shape, float64)
            if (_same_pattern(found, st) and st.out_shape == (found.out_shape or st.out_shape)
                    and (not forward or (st.seeds.dtype == _basis_dtype(x)
                                         and st.seeds.shape[1:] == np.shape(x)))):
                if found.structural != st.sparsity.structural:
                    continue  # (the warning and re-detection follow the notes)
                new = _Prepared(found, st.mode, st.colours, st.seeds, st.out_shape,
                                st.out_kind, st.redetect)
                new.gather = st.gather
                return new
        return None

    def _with(self, args: tuple[Any, ...], kwargs: dict[str, Any],
              box: list[Any] | None = None) -> Callable[[Any], Any]:
        """``f`` as a function of the differentiated argument alone; with ``has_aux``
        the aux of the latest run goes into ``box[0]``."""
        f, i, has_aux = self.f, self.argnums, self.has_aux

        def g(v: Any) -> Any:
            out = f(*_replace(args, i, v), **kwargs)
            if not has_aux:
                return out
            out, aux = _split_aux(out, True)
            if box is not None:
                box[0] = aux
            return out

        return g

    def _detect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sparsity:
        raise NotImplementedError

    def _prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any], x: Any, warn: bool,
                 found: Sparsity | None = None) -> _Prepared:
        raise NotImplementedError

    def _formatted(self, M: sp.spmatrix) -> Any:
        return M.asformat(self.format)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({getattr(self.f, '__name__', self.f)!r}, "
                f"argnums={self.argnums}, format={self.format!r}, mode={self.mode!r}, "
                f"n_colours={self.n_colours}, passes={self.passes})")


class SparseJacobianFunction(_SparseDerivative):
    """``f``'s Jacobian as a ``scipy.sparse`` matrix, by colouring: what
    ``dualrev.sparse.jacobian(f, ...)`` returns. Call it with ``f``'s arguments.

    The Jacobian of ``f(*args)`` in ``args[argnums]`` has shape ``(f(*args).size,
    args[argnums].size)``: output and input flattened in C order (as SciPy's sparse
    Jacobians; for a vector input and output exactly ``dr.jacobian``'s layout; entry
    ``(i, j)`` is the derivative of ``out.ravel()[i]`` in ``x.ravel()[j]``).

    The first call with a given key (the differentiated argument's shape and dtype, the
    other arguments' values) detects the structural pattern (``jacobian_sparsity``) and
    colours it; later calls with that key reuse both and make one batched pass: forward
    mode pushes one tangent per column colour (``J @ S``), reverse mode pulls one
    cotangent per row colour (``W.T @ J``). The other arguments are in the key because
    constants shape the pattern (indices, masks, a constant matrix's non-zeros); constants
    ``f`` reads from its closure are taken as fixed. A pattern that holds only at the
    point (``sparsity.structural`` False) is detected again at every call, after a
    ``NonStructuralSparsityWarning`` at the first.

    Args:
        f: the function; see ``dualrev.sparse.jacobian``.
        argnums: the argument to differentiate (one int).
        sparsity: None (detect), a ``Sparsity``, or an array / sparse matrix.
        format: ``"csr"``, ``"csc"`` or ``"coo"``.
        mode: ``"auto"``, ``"forward"`` or ``"reverse"``.
        order: the vertex ordering of the colouring.
        has_aux: ``f`` returns ``(output, aux)``.
    Attributes:
        sparsity: the latest preparation's ``Sparsity`` (None before the first).
        colours: its colour per column (forward) or per row (reverse), int64.
        n_colours: the number of seeds one evaluation pushes.
        mode: the direction of the latest preparation, ``"forward"`` or ``"reverse"``
            (the requested mode before the first).
        passes: the batched evaluation passes made so far.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.concatenate([np.sin(x), np.sum(x ** 2)[None]])
        >>> J = dr.sparse.jacobian(f).prepare(np.zeros(50))  # detect and colour only
        >>> J.mode, J.n_colours, J.passes  # a dense last row: reverse needs 2 colours
        ('reverse', 2, 0)
        >>> J(np.zeros(50)).shape, J.passes
        ((51, 50), 1)
    """

    _what = "sparse.jacobian"

    def __init__(self, f: Callable[..., Any], argnums: int = 0, *, sparsity: Any = None,
                 format: str = "csr", mode: str = "auto", order: str = "best",
                 has_aux: bool = False) -> None:
        if mode not in MODES:
            raise SparsityError(f"dualrev.sparse.jacobian: mode must be one of {MODES}, "
                                f"got {mode!r}")
        self.requested_mode = mode
        super().__init__(f, argnums, sparsity, format, order, has_aux)

    @property
    def mode(self) -> str:
        """The direction of the latest preparation (the requested mode before it)."""
        return self.requested_mode if self._last is None else self._last.mode

    def _detect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sparsity:
        f, has_aux = self.f, self.has_aux

        def plain(*a: Any) -> Any:
            out = f(*a, **kwargs)
            return _split_aux(out, True)[0] if has_aux else out

        found = dependencies(plain, args, self.argnums)
        if found.out_tree.kind != "leaf":
            raise SparsityError(
                f"dualrev.sparse.jacobian: f must return one array, got {found.out_tree}; "
                "concatenate the outputs' ravels into one array")
        sparsity = Sparsity(found)
        sparsity.out_kind = np.result_type(concrete(found.value)).kind
        return sparsity

    def _prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any], x: Any, warn: bool,
                 found: Sparsity | None = None) -> _Prepared:
        n = int(np.size(x))
        if self._given is None:
            sparsity = self._detect(args, kwargs) if found is None else found
            out_shape, kind = sparsity.out_shape, sparsity.out_kind
            redetect = not sparsity.structural
            if redetect and warn:
                warnings.warn(NonStructuralSparsityWarning(self._what, sparsity.notes),
                              stacklevel=4)
        else:  # one plain run: the output's shape and dtype, to check the pattern
            out = np.asarray(concrete(self._with(args, kwargs)(x)))
            out_shape, kind = out.shape, out.dtype.kind
            pattern = _user_pattern(self._given, (out.size, n), self._what, False)
            sparsity = (self._given if isinstance(self._given, Sparsity)
                        else Sparsity.given(pattern, out_shape, np.shape(x)))
            redetect = False
        P = sparsity.pattern
        mode = self.requested_mode
        cols = rows = None
        if kind == "c" and mode == "reverse":
            raise SparsityError(
                "dualrev.sparse.jacobian: mode='reverse' needs a real-valued output (reverse "
                "mode pairs cotangents as Re(ct * t), which sees only the real part); use "
                "mode='forward' (or 'auto') for a complex output")
        if mode == "auto" and kind != "c":
            mode, cols, rows = self._cheaper(P)
        elif mode == "auto":
            mode = "forward"
        if mode == "forward" and cols is None:
            cols = colour_columns(P, self.order)
        elif mode == "reverse" and rows is None:
            rows = colour_rows(P, self.order)
        m = P.shape[0]
        if mode == "forward":
            colours = cols
            seeds = _seeds(colours, n, np.shape(x), _basis_dtype(x), not P.nnz)
        else:
            colours = rows
            seeds = _seeds(colours, m, out_shape, np.float64, not P.nnz)
        st = _Prepared(sparsity, mode, colours, seeds, tuple(out_shape), kind, redetect)
        if seeds.shape[0]:  # (an empty pattern needs no pass and no recovery)
            c = seeds.shape[0]
            st.gather = (
                _Gather(recover_columns, P, colours, c, m, np.transpose, self.format,
                        lambda R: colours[R.indices] * m + _row_of(R))
                if mode == "forward" else
                _Gather(recover_rows, P, colours, c, n, _same, self.format,
                        lambda R: colours[_row_of(R)] * n + R.indices))
        return st

    def _cheaper(self, P: sp.csr_matrix) -> tuple[str, Any, Any]:
        """``mode="auto"``: the direction with fewer colours (ties forward), and its
        colouring. Rows are coloured only when the columns need more colours than the
        rows' lower bound (a column's entry count); a direction whose intersection graph
        is too large to build (a dense row or column) leaves the other."""
        try:
            cols = colour_columns(P, self.order)
        except GraphTooLargeError:
            return "reverse", None, colour_rows(P, self.order)
        nc = int(cols.max()) + 1 if cols.size else 0
        if nc <= (int(np.diff(P.tocsc().indptr).max()) if P.nnz else 0):
            return "forward", cols, None
        try:
            rows = colour_rows(P, self.order)
        except GraphTooLargeError:
            return "forward", cols, None
        nr = int(rows.max()) + 1 if rows.size else 0
        return ("reverse", None, rows) if nr < nc else ("forward", cols, None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        st, x = self._state(args, kwargs)
        P = st.pattern
        m, n = P.shape
        c = st.seeds.shape[0]
        box: list[Any] = [None]
        g = self._with(args, kwargs, box)
        if c == 0:  # nothing may be non-zero: no pass needed
            out = np.asarray(concrete(g(x)))
            dtype = np.result_type(out.dtype if out.dtype.kind in "fc" else np.float64,
                                   _basis_dtype(x))
            J = sp.csr_matrix((m, n), dtype=dtype)
        elif st.mode == "forward":
            _, T = _jvp_batched(g, x, st.seeds, self._what)
            B = np.reshape(np.asarray(T), (c, -1))
            _check_rows(B.shape[1], m, self._what)
            J = st.gather(B)  # type: ignore[misc]
        else:
            _, C = _vjp_batched(g, x, st.seeds, self._what)
            J = st.gather(np.reshape(np.asarray(C), (c, n)))  # type: ignore[misc]
        self.passes += c > 0
        J = self._formatted(J)
        return (J, box[0]) if self.has_aux else J


def _replace(args: tuple[Any, ...], i: int, v: Any) -> list[Any]:
    new = list(args)
    new[i] = v
    return new


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _row_of(R: sp.csr_matrix) -> np.ndarray:
    """The row of each stored entry of ``R``, in its order."""
    return np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))


def _check_rows(got: int, m: int, what: str) -> None:
    if got != m:
        raise SparsityError(f"dualrev.{what}: f returned {got} elements here, but the "
                            f"pattern has {m} rows; the output's size must not change "
                            "between calls with the same input shape")


class SparseHessianFunction(_SparseDerivative):
    """Scalar ``f``'s Hessian as a ``scipy.sparse`` matrix, by a symmetric (star)
    colouring: what ``dualrev.sparse.hessian(f, ...)`` returns. Call it with ``f``'s
    arguments.

    The Hessian in ``x = args[argnums]`` has shape ``(x.size, x.size)`` (``x`` flattened
    in C order; for a vector ``x`` exactly ``dr.hessian``'s layout). The first call with a
    given key detects the pattern (``hessian_sparsity``) and star-colours it; each call
    then makes one batched pass of Hessian-vector products (forward over reverse, one
    tangent per colour) and recovers every entry directly. Keys, reuse and the
    re-detection of patterns taken at a point are as ``SparseJacobianFunction``'s.

    Args:
        f: a real scalar-valued function; see ``dualrev.sparse.hessian``.
        argnums: the argument to differentiate (one int).
        sparsity: None (detect), a ``Sparsity``, or an (n, n) array / sparse matrix.
        format: ``"csr"``, ``"csc"`` or ``"coo"``.
        order: the vertex ordering of the colouring.
    Attributes:
        sparsity, colours, n_colours, passes: as ``SparseJacobianFunction``'s.
        mode: always ``"forward-over-reverse"``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> H = dr.sparse.hessian(lambda x: np.sum(x[1:] * x[:-1] ** 2))
        >>> print(H(np.array([1.0, 2.0, 3.0])).toarray())
        [[4. 2. 0.]
         [2. 6. 4.]
         [0. 4. 0.]]
        >>> H.n_colours, H.passes  # a star colouring: the middle column, then the ends
        (2, 1)
    """

    _what = "sparse.hessian"
    mode = "forward-over-reverse"

    def __init__(self, f: Callable[..., Any], argnums: int = 0, *, sparsity: Any = None,
                 format: str = "csr", order: str = "best") -> None:
        super().__init__(f, argnums, sparsity, format, order, False)

    def _detect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sparsity:
        f = functools.partial(self.f, **kwargs) if kwargs else self.f
        return hessian_sparsity(f, *args, argnums=self.argnums)

    def _prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any], x: Any, warn: bool,
                 found: Sparsity | None = None) -> _Prepared:
        n = int(np.size(x))
        if self._given is None:
            sparsity = self._detect(args, kwargs) if found is None else found
            redetect = not sparsity.structural
            if redetect and warn:
                warnings.warn(NonStructuralSparsityWarning(self._what, sparsity.notes),
                              stacklevel=4)
        else:
            pattern = _user_pattern(self._given, (n, n), self._what, True)
            sparsity = Sparsity.given(pattern, np.shape(x), np.shape(x))
            if isinstance(self._given, Sparsity):
                sparsity.notes, sparsity.structural = (list(self._given.notes),
                                                       self._given.structural)
            redetect = False
        colours = colour_symmetric(sparsity.pattern, self.order)
        seeds = _seeds(colours, n, np.shape(x), _basis_dtype(x), not sparsity.pattern.nnz)
        st = _Prepared(sparsity, self.mode, colours, seeds, np.shape(x), "f", redetect)
        if seeds.shape[0]:
            st.gather = _Gather(recover_symmetric, sparsity.pattern, colours,
                                seeds.shape[0], n, np.transpose, self.format)
        return st

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        st, x = self._state(args, kwargs)
        n = st.pattern.shape[0]
        c = st.seeds.shape[0]
        gradient = grad(self.f, self.argnums)

        def g(v: Any) -> Any:
            return gradient(*_replace(args, self.argnums, v), **kwargs)

        if c == 0:
            gradient(*args, **kwargs)  # f is checked (a real scalar) as when c > 0
            return self._formatted(sp.csr_matrix((n, n), dtype=_basis_dtype(x)))
        _, T = _jvp_batched(g, x, st.seeds, self._what)
        H = st.gather(np.reshape(np.asarray(T), (c, n)))  # type: ignore[misc]
        self.passes += 1
        return H


def jacobian(f: Callable[..., Any], argnums: int = 0, *, sparsity: Any = None,
             format: str = "csr", mode: str = "auto", order: str = "best",
             has_aux: bool = False) -> SparseJacobianFunction:
    """``f``'s Jacobian in argument ``argnums`` as a ``scipy.sparse`` matrix, computed
    from its structural sparsity pattern and a colouring in one batched pass.

    Use it beside ``dr.jacobian`` when most entries are structurally zero (stencils,
    discretised PDEs, trajectories, sparse least squares): the cost is one pass of
    ``n_colours`` (co)tangents, whatever the size, and the pattern and colouring are
    computed once per input shape and dtype (``.prepare(*args)`` does it ahead).

    Args:
        f: a function of real arrays returning one real (or, forward mode, complex) array.
        argnums: the argument to differentiate (one int; a tuple is refused: concatenate
            the arguments into one array).
        sparsity: the pattern: None (detected structurally at the first call), a
            ``Sparsity``, or an ``(out.size, in.size)`` array or sparse matrix of the
            entries that may be non-zero (checked for its shape; entries outside it are
            taken as zero, so it must cover every non-zero).
        format: ``"csr"``, ``"csc"`` or ``"coo"``.
        mode: ``"forward"`` (column colouring, a batched JVP), ``"reverse"`` (row
            colouring, a batched VJP; real outputs), or ``"auto"``: the one with fewer
            colours, ties to forward.
        order: the vertex ordering of the greedy colouring (see ``colour_columns``).
        has_aux: ``f`` returns ``(output, aux)``; the call returns ``(J, aux)``.
    Returns:
        A ``SparseJacobianFunction``: called with ``f``'s arguments (keywords are passed
        to ``f``, not differentiated) it returns the Jacobian of shape ``(out.size,
        in.size)``, flattened in C order, in ``x``'s precision (float32 stays float32;
        integers are differentiated as float64), as ``dr.jacobian`` gives it.
    Raises:
        SparsityError: an unknown ``format``/``mode``/``order``, a tuple ``argnums``, a
            pattern of the wrong shape, a complex or pytree argument.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> J = dr.sparse.jacobian(lambda x: x[1:] * x[:-1])
        >>> print(J(np.arange(1.0, 5.0)).toarray())
        [[2. 1. 0. 0.]
         [0. 3. 2. 0.]
         [0. 0. 4. 3.]]
        >>> J.mode, J.n_colours, J.passes
        ('forward', 2, 1)
    """
    return SparseJacobianFunction(f, argnums, sparsity=sparsity, format=format, mode=mode,
                                  order=order, has_aux=has_aux)


def hessian(f: Callable[..., Any], argnums: int = 0, *, sparsity: Any = None,
            format: str = "csr", order: str = "best") -> SparseHessianFunction:
    """Scalar ``f``'s Hessian in argument ``argnums`` as a ``scipy.sparse`` matrix of
    shape ``(n, n)``, ``n = args[argnums].size``: one batched pass of Hessian-vector
    products (forward over reverse), one per colour of a symmetric (star) colouring of its
    structural pattern, every entry recovered directly.

    A chained Rosenbrock function needs 3 Hessian-vector products at any ``n``. The
    pattern and colouring are computed once per input shape and dtype.

    Args:
        f: a real scalar-valued function of real arrays.
        argnums: the argument to differentiate (one int).
        sparsity: the pattern: None (``hessian_sparsity`` at the first call), a
            ``Sparsity``, or an (n, n) array or sparse matrix (symmetrised: ``P | P.T``).
        format: ``"csr"``, ``"csc"`` or ``"coo"``.
        order: the vertex ordering of the colouring.
    Returns:
        A ``SparseHessianFunction`` with ``f``'s signature returning the Hessian.
    Raises:
        SparsityError: as ``jacobian``; ``DualrevError`` for a non-scalar ``f``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.sum(x[1:] * x[:-1]) + np.sum(x ** 3)
        >>> H = dr.sparse.hessian(f)
        >>> print(H(np.ones(3)).toarray())
        [[6. 1. 0.]
         [1. 6. 1.]
         [0. 1. 6.]]
        >>> H.n_colours  # a star colouring: the middle column, then the ends
        2
    """
    return SparseHessianFunction(f, argnums, sparsity=sparsity, format=format, order=order)


def detect_sparsity(f: Callable[..., Any], x: Any, *, block: int | None = None,
                    seed: int = 0) -> sp.csr_matrix:
    """The nonzero pattern of ``f``'s Jacobian, found by evaluating it in column blocks
    (vectorised forward passes) at a random point near ``x``.

    An entry that is zero only by coincidence at that point (probability zero for
    generic smooth functions) would be missed; pass the pattern yourself where the
    structure is known.

    Args:
        f: the function, of one array, returning an array.
        x: the point near which to look (any shape; it is read as ``x.size`` columns).
        block: the number of columns per forward pass; default: as many as keep a pass
            under about 4·10^6 Jacobian entries.
        seed: the seed of the random displacement of ``x``.
    Returns:
        A boolean ``scipy.sparse.csr_matrix`` of shape ``(m, n)``: ``m`` the number of
        elements of ``f(x)``, ``n`` that of ``x`` (flattened, C order).
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import detect_sparsity
        >>> f = lambda x: np.concatenate([2.0 * x[:1], x[1:] * x[:-1]])
        >>> print(detect_sparsity(f, np.ones(4)).toarray().astype(int))
        [[1 0 0 0]
         [1 1 0 0]
         [0 1 1 0]
         [0 0 1 1]]
    """
    x = np.asarray(_as_input(x), dtype=float)
    n = x.size
    rng = np.random.default_rng(seed)
    point = x + rng.uniform(0.05, 0.15, size=x.shape) * (1 + np.abs(x))
    m = np.size(f(point))
    if block is None:
        block = max(1, min(n, 4_000_000 // max(m, n, 1)))
    rows, cols = [], []
    eye = np.eye(block)
    for start in range(0, n, block):
        k = min(block, n - start)
        tangents = np.zeros((k, n))
        tangents[:, start:start + k] = eye[:k, :k]
        _, t = jvp_batched(f, point, tangents.reshape((k,) + x.shape))
        t = np.reshape(np.asarray(t), (k, m))
        c, r = np.nonzero(t)
        rows.append(r)
        cols.append(c + start)
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    return sp.csr_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(m, n))


class SparseJacobian:
    """``J(x)`` as a ``scipy.sparse.csr_matrix``, computed with one vectorised forward
    pass of ``n_colours`` tangents. ``pattern`` is an (m, n) array or sparse matrix of the
    structural nonzeros, or "auto" to detect it (structurally) at the first call.

    ``J(x, *args)`` differentiates ``f(x, *args)`` in ``x``; the colouring
    (``colour_columns``) is computed at the first call and reused. ``J.colours``,
    ``J.n_colours`` and ``J.passes`` (forward passes made for Jacobians, detection not
    counted) show the work done; ``J.pattern`` the pattern used.

    Args:
        f: the function ``f(x, *args)``, of one array ``x``, returning an array.
        pattern: the structural nonzeros, an (m, n) array or sparse matrix (``m`` output
            elements, ``n`` elements of ``x``), or ``"auto"`` (``detect_sparsity`` at the
            first call, structurally: ``jacobian_sparsity``). Another string raises
            ``ValueError``.
    Example:
        >>> import numpy as np
        >>> from dualrev.optimize import SparseJacobian
        >>> J = SparseJacobian(lambda x: np.concatenate([2.0 * x[:1], x[1:] * x[:-1]]))
        >>> print(J(np.arange(1.0, 5.0)).toarray())
        [[2. 0. 0. 0.]
         [2. 1. 0. 0.]
         [0. 3. 2. 0.]
         [0. 0. 4. 3.]]
        >>> J.n_colours, J.passes
        (2, 1)
    """

    def __init__(self, f: Callable[..., Any], pattern: Any = "auto") -> None:
        self.f = f
        self.pattern = None if isinstance(pattern, str) else sp.csr_matrix(pattern, dtype=bool)
        if isinstance(pattern, str) and pattern != "auto":
            raise ValueError("pattern must be an array, a sparse matrix or 'auto'")
        self.colours: np.ndarray | None = None
        self.passes = 0  # vectorised forward passes made for Jacobians (not detection)

    @property
    def n_colours(self) -> int:
        return 0 if self.colours is None else int(self.colours.max()) + 1

    def _prepare(self, x: np.ndarray) -> None:
        if self.pattern is None:
            self.pattern = jacobian_sparsity(self.f, x).pattern
        self.colours = colour_columns(self.pattern)
        coo = self.pattern.tocoo()
        self._rows, self._cols = coo.row, coo.col
        n = self.pattern.shape[1]
        seeds = np.zeros((self.n_colours, n))
        seeds[self.colours, np.arange(n)] = 1.0
        self._seeds = seeds

    def __call__(self, x: Any, *args: Any) -> sp.csr_matrix:
        x = np.asarray(_as_input(x), dtype=float)
        if self.colours is None:
            self._prepare(x)
        g = (lambda v: self.f(v, *args)) if args else self.f
        _, t = jvp_batched(g, x, self._seeds.reshape((self.n_colours,) + x.shape))
        self.passes += 1
        compressed = np.reshape(np.asarray(t), (self.n_colours, -1))  # (colours, m)
        values = compressed[self.colours[self._cols], self._rows]
        return sp.csr_matrix((values, (self._rows, self._cols)), shape=self.pattern.shape)

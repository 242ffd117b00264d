"""Hypothesis strategies and a ready property for users' own derivative tests.

Requires ``hypothesis`` (dualrev's ``test`` extra); importing this module without it
raises ImportError.

The strategies follow hypothesis's own conventions: ``arrays(dtype, shape, *,
elements=None, fill=None, unique=False)`` in the order of
``hypothesis.extra.numpy.arrays``, bounds named as ``st.floats`` names them
(``min_value``, ``max_value``, ``exclude_min``, ``exclude_max``) and, for complex
dtypes, as ``st.complex_numbers`` does (``min_magnitude``, ``max_magnitude``). Their
defaults suit derivative tests: finite values, no subnormals, magnitudes up to 3.

    from hypothesis import given
    from dualrev.testing.strategies import arrays, assert_derivatives_consistent, domain

    @given(arrays(np.float64, (3,), min_value=0.1, max_value=5.0))
    def test_my_function(x):
        assert_derivatives_consistent(my_function, x)

    @given(domain("positive"))             # log, sqrt: away from 0 by a margin
    def test_my_log(x):
        assert_derivatives_consistent(my_log, x)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import DTypeLike

from ..errors import CheckOptionError
from ..transforms import jacfwd, jacrev, jvp, vjp
from ..tree import tree_flatten, tree_unflatten
from . import _single_precision, check_grads

__all__ = ["DOMAINS", "arrays", "assert_derivatives_consistent", "domain", "pytrees",
           "same_shape_arrays"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The bound of the default elements' magnitude: large enough to leave the neighbourhood
#: of 0, small enough that exp, powers and products stay far from overflow and their
#: derivatives stay comparable with finite differences.
_BOUND = 3.0

#: The default shapes: scalars (shape ``()``) up to 3 dimensions of 1 to 4 elements.
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)

#: The named domains of ``domain``: (min_value, max_value, exclude_min, exclude_max).
DOMAINS: dict[str, tuple[float, float, bool, bool]] = {
    "real": (-_BOUND, _BOUND, False, False),      # sin, exp, tanh, polynomials
    "positive": (0.0, _BOUND, True, False),       # log, sqrt, reciprocal, x ** a
    "negative": (-_BOUND, 0.0, False, True),
    "unit": (-1.0, 1.0, True, True),              # arcsin, arccos, arctanh
    "above_one": (1.0, 1.0 + _BOUND, True, False),  # arccosh
}


def _show(value: Any) -> str:
    """``value`` as the user would write it (``np.float64``, not ``<class ...>``)."""
    if isinstance(value, type) and issubclass(value, np.generic):
        return f"np.{value.__name__}"
    if isinstance(value, np.dtype):
        return f"np.{value.name}"
    return repr(tuple(value) if isinstance(value, list) else value)


def _old_spelling(where: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The new spelling of a call in the strategies' pre-2026-12 style (a shape first,
    ``low=``/``high=``, ``max_dims=``/``max_side=``), or None for a call in the new style."""
    renamed = {"low": "min_value", "high": "max_value"}
    gone = [k for k in ("low", "high", "max_dims", "max_side") if k in kwargs]
    lead = 1 if where == "same_shape_arrays" else 0  # same_shape_arrays' n comes first
    first = args[lead] if len(args) > lead else None
    shape_first = isinstance(first, (tuple, list)) or (
        isinstance(first, (int, np.integer)) and not isinstance(first, bool))
    if not gone and not shape_first:
        return None
    if shape_first:  # the old (shape, ...) order: the dtype goes in front of the shape
        positional = [*args[:lead], np.float64, *args[lead:]]
    else:
        positional = list(args)
    parts = [_show(a) for a in positional]
    parts += [f"{renamed.get(k, k)}={_show(v)}" for k, v in kwargs.items()
              if k not in ("max_dims", "max_side")]
    if "max_dims" in kwargs or "max_side" in kwargs:
        parts.append(f"shape=hnp.array_shapes(max_dims={kwargs.get('max_dims', 3)!r}, "
                     f"max_side={kwargs.get('max_side', 4)!r})")
    return (f"dualrev.testing.strategies.{where} takes hypothesis's order and names: "
            f"{where}({'n, ' if lead else ''}dtype, shape, *, min_value=, max_value=, ...) "
            "like hypothesis.extra.numpy.arrays and st.floats (a shape first and low=/high= "
            f"were the old spelling); write {where}({', '.join(parts)})")


def _refuse_old_spelling(where: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A call in the old style fails with a TypeError (a CheckOptionError) that names the
    new spelling, instead of Python's bare "unexpected keyword argument" or a shape
    silently taken for a dtype."""
    def wrap(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            message = _old_spelling(where, args, kwargs)
            if message is not None:
                raise CheckOptionError(message)
            return fn(*args, **kwargs)
        return checked
    return wrap


def _dtype(dtype: Any) -> np.dtype[Any]:
    """A float32/float64/complex64/complex128 dtype, or a CheckOptionError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "fc" or dt.itemsize not in ((4, 8) if dt.kind == "f"
                                                                  else (8, 16)):
        raise CheckOptionError(
            f"dualrev.testing.strategies: dtype {dtype!r} has no derivatives to check; give "
            "np.float32, np.float64, np.complex64 or np.complex128 (or a strategy drawing "
            "them, e.g. st.sampled_from([np.float32, np.float64])).")
    return dt


def _inside_float32(value: float, up: bool) -> float:
    """``value`` as a float32 number, rounded towards the inside of the interval
    (hypothesis refuses bounds that a float of width 32 cannot hold)."""
    v = np.float32(value)
    if up and float(v) < value:
        v = np.nextafter(v, np.float32(np.inf))
    elif not up and float(v) > value:
        v = np.nextafter(v, np.float32(-np.inf))
    return float(v)


def _elements(dt: np.dtype[Any], min_value: float | None, max_value: float | None,
              exclude_min: bool, exclude_max: bool, min_magnitude: float | None,
              max_magnitude: float | None) -> st.SearchStrategy[Any]:
    """The default elements of ``dt`` within the given bounds."""
    if dt.kind == "c":
        if min_value is not None or max_value is not None or exclude_min or exclude_max:
            raise CheckOptionError(
                f"dualrev.testing.strategies.arrays: {dt} elements are bounded in modulus, "
                "as st.complex_numbers bounds them: give min_magnitude=/max_magnitude= "
                "instead of min_value=/max_value=/exclude_min=/exclude_max=.")
        lo = 0.0 if min_magnitude is None else float(min_magnitude)
        hi = _BOUND if max_magnitude is None else float(max_magnitude)
        if not (0 <= lo <= hi < math.inf):
            raise CheckOptionError(
                f"dualrev.testing.strategies.arrays: need 0 <= min_magnitude <= max_magnitude "
                f"< inf, got min_magnitude={lo!r}, max_magnitude={hi!r}.")
        return st.complex_numbers(min_magnitude=lo, max_magnitude=hi, allow_nan=False,
                                  allow_infinity=False, allow_subnormal=False,
                                  width=8 * dt.itemsize)
    if min_magnitude is not None or max_magnitude is not None:
        raise CheckOptionError(
            f"dualrev.testing.strategies.arrays: {dt} elements are bounded by "
            "min_value=/max_value= (as st.floats bounds them); min_magnitude=/"
            "max_magnitude= are for complex dtypes.")
    lo = -_BOUND if min_value is None else float(min_value)
    hi = _BOUND if max_value is None else float(max_value)
    if not (-math.inf < lo <= hi < math.inf):
        raise CheckOptionError(
            f"dualrev.testing.strategies.arrays: need finite min_value <= max_value, got "
            f"min_value={lo!r}, max_value={hi!r} (derivative tests draw finite values).")
    if dt.itemsize == 4:
        lo32, hi32 = _inside_float32(lo, True), _inside_float32(hi, False)
        # a bound rounded inwards already excludes the original one
        exclude_min, exclude_max = exclude_min and lo32 == lo, exclude_max and hi32 == hi
        lo, hi = lo32, hi32
    return st.floats(lo, hi, exclude_min=exclude_min, exclude_max=exclude_max,
                     allow_nan=False, allow_infinity=False, allow_subnormal=False,
                     width=8 * dt.itemsize)


@_refuse_old_spelling("arrays")
def arrays(dtype: DTypeLike | st.SearchStrategy[Any] = "float64",
           shape: int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None, *,
           elements: st.SearchStrategy[Any] | None = None,
           fill: st.SearchStrategy[Any] | None = None, unique: bool = False,
           min_value: float | None = None, max_value: float | None = None,
           exclude_min: bool = False, exclude_max: bool = False,
           min_magnitude: float | None = None,
           max_magnitude: float | None = None) -> st.SearchStrategy[np.ndarray]:
    """Arrays for derivative tests, in ``hypothesis.extra.numpy.arrays``' order and names.

    The defaults suit derivative tests: finite elements (no NaN, no infinity), no
    subnormals (their derivatives lose all precision), and magnitudes up to 3, so that
    exp, powers and products stay far from overflow and finite differences stay accurate.
    Real elements are ``st.floats(min_value, max_value, exclude_min=, exclude_max=)``;
    complex ones ``st.complex_numbers(min_magnitude=, max_magnitude=)``, bounded in
    modulus (derivatives of complex functions follow JAX's convention). float32 bounds are
    rounded inwards to float32 numbers. The old spelling ``arrays((3,), low=, high=)``
    raises a ``CheckOptionError`` (a TypeError) naming this one.

    Args:
        dtype: ``np.float32``, ``np.float64`` (the default), ``np.complex64`` or
            ``np.complex128``, or a strategy drawing them.
        shape: a tuple, an int, or a strategy of shapes (``hnp.array_shapes(...)``); None:
            scalars (shape ``()``) up to 3 dimensions of 1 to 4 elements.
        elements: a strategy for the elements, instead of the bounds below.
        fill: as in hypothesis: the strategy of the background value of large arrays.
        unique: as in hypothesis: all elements distinct.
        min_value: the real elements' lower bound (None: ``-3.0``).
        max_value: the real elements' upper bound (None: ``3.0``).
        exclude_min: leave ``min_value`` itself out (an open bound).
        exclude_max: leave ``max_value`` itself out.
        min_magnitude: the complex elements' least modulus (None: 0).
        max_magnitude: the complex elements' largest modulus (None: ``3.0``).
    Returns:
        A strategy of NumPy arrays of that dtype and shape.
    Example:
        >>> import numpy as np
        >>> from hypothesis import given, settings
        >>> from dualrev.testing import check_grads
        >>> from dualrev.testing.strategies import arrays
        >>> @settings(max_examples=5, deadline=None)
        ... @given(arrays(np.float64, (3,), min_value=0.1, max_value=5.0))
        ... def test_log(x):
        ...     check_grads(np.log, (x,), 2)
        >>> test_log()
        >>> arrays((3,), low=0.1, high=5.0)
        Traceback (most recent call last):
        ...
        dualrev.errors.CheckOptionError: dualrev.testing.strategies.arrays takes ...
    """
    if shape is None:
        shape = _SHAPES
    bounds = dict(min_value=min_value, max_value=max_value, exclude_min=exclude_min,
                  exclude_max=exclude_max, min_magnitude=min_magnitude,
                  max_magnitude=max_magnitude)
    if isinstance(dtype, st.SearchStrategy):
        drawn: st.SearchStrategy[Any] = dtype
        return drawn.flatmap(lambda d: arrays(d, shape, elements=elements, fill=fill,
                                              unique=unique, **bounds))
    dt = _dtype(dtype)
    if elements is None:
        elements = _elements(dt, min_value, max_value, exclude_min, exclude_max,
                             min_magnitude, max_magnitude)
    elif any(v is not None and v is not False for v in bounds.values()):
        raise CheckOptionError(
            "dualrev.testing.strategies.arrays: give elements= or the bounds (min_value=, "
            "max_value=, exclude_min=, exclude_max=, min_magnitude=, max_magnitude=), "
            "not both.")
    return hnp.arrays(dt, shape, elements=elements, fill=fill, unique=unique)


@_refuse_old_spelling("same_shape_arrays")
def same_shape_arrays(n: int, dtype: DTypeLike | st.SearchStrategy[Any] = "float64",
                      shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
                      *, min_value: float | None = None, max_value: float | None = None,
                      exclude_min: bool = False, exclude_max: bool = False,
                      min_magnitude: float | None = None, max_magnitude: float | None = None,
                      ) -> st.SearchStrategy[tuple[np.ndarray, ...]]:
    """``n`` arrays of one drawn shape (the arguments of a binary or n-ary elementwise
    function), each as ``arrays(dtype, that_shape, ...)`` draws them.

    Args:
        n: how many arrays.
        dtype: as for ``arrays`` (one dtype for all ``n``).
        shape: a strategy of shapes (or one shape); None: as for ``arrays``.
        min_value: as for ``arrays``.
        max_value: as for ``arrays``.
        exclude_min: as for ``arrays``.
        exclude_max: as for ``arrays``.
        min_magnitude: as for ``arrays``.
        max_magnitude: as for ``arrays``.
    Returns:
        A strategy of ``n``-tuples of arrays of equal shapes.
    Example:
        >>> import numpy as np
        >>> from hypothesis import given, settings
        >>> from dualrev.testing import check_grads
        >>> from dualrev.testing.strategies import same_shape_arrays
        >>> @settings(max_examples=5, deadline=None)
        ... @given(same_shape_arrays(2, np.float64, min_value=0.5, max_value=2.0))
        ... def test_power(xy):
        ...     check_grads(np.power, xy, 1)
        >>> test_power()
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise CheckOptionError(
            f"dualrev.testing.strategies.same_shape_arrays: n={n!r}; give how many arrays "
            "(at least 1) first: same_shape_arrays(2, np.float64, ...).")
    shapes = _SHAPES if shape is None else shape
    if not isinstance(shapes, st.SearchStrategy):
        shapes = st.just(tuple(shapes))
    bounds = dict(min_value=min_value, max_value=max_value, exclude_min=exclude_min,
                  exclude_max=exclude_max, min_magnitude=min_magnitude,
                  max_magnitude=max_magnitude)
    if not isinstance(dtype, st.SearchStrategy):
        _dtype(dtype)  # refused here, at the call, not at the first draw
    dtypes = dtype if isinstance(dtype, st.SearchStrategy) else st.just(dtype)
    return st.tuples(dtypes, shapes).flatmap(
        lambda ds: st.tuples(*[arrays(ds[0], ds[1], **bounds) for _ in range(int(n))]))


def domain(interval: str | tuple[float, float], dtype: DTypeLike = "float64",
           shape: int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
           *, margin: float = 0.1) -> st.SearchStrategy[np.ndarray]:
    """Arrays inside a function's domain, at least ``margin`` away from its open ends.

    The named domains (``DOMAINS``): ``"real"`` [-3, 3] (sin, exp, tanh),
    ``"positive"`` (0, 3] (log, sqrt, reciprocal, ``x ** a``), ``"negative"`` [-3, 0),
    ``"unit"`` (-1, 1) (arcsin, arccos, arctanh), ``"above_one"`` (1, 4] (arccosh); a
    tuple ``(a, b)`` is the open interval. Why the margin: near an open end the
    derivative grows without bound (1/x for log) and a finite difference's step crosses
    the end; 0.1 keeps ``check_grads``' finite differences inside. ``margin=0`` draws from
    the whole open interval (``exclude_min``/``exclude_max`` in ``arrays``).

    Args:
        interval: a name of ``DOMAINS`` or an open interval ``(a, b)``.
        dtype: ``np.float32`` or ``np.float64`` (the default).
        shape: as for ``arrays``.
        margin: the least distance from an open end (closed ends are reached).
    Returns:
        A strategy of real arrays.
    Example:
        >>> import numpy as np
        >>> from hypothesis import given, settings
        >>> from dualrev.testing import check_grads
        >>> from dualrev.testing.strategies import domain
        >>> @settings(max_examples=5, deadline=None)
        ... @given(domain("unit"))
        ... def test_arcsin(x):
        ...     assert np.all(np.abs(x) <= 0.9)
        ...     check_grads(np.arcsin, (x,), 2)
        >>> test_arcsin()
    """
    if isinstance(interval, str):
        if interval not in DOMAINS:
            raise CheckOptionError(
                f"dualrev.testing.strategies.domain: unknown domain {interval!r}; the named "
                f"ones are {', '.join(map(repr, DOMAINS))}, or give an open interval (a, b).")
        lo, hi, open_lo, open_hi = DOMAINS[interval]
    else:
        try:
            lo, hi = (float(b) for b in interval)
        except (TypeError, ValueError):
            raise CheckOptionError(
                f"dualrev.testing.strategies.domain: {interval!r} is neither a name of "
                f"DOMAINS ({', '.join(map(repr, DOMAINS))}) nor an interval (a, b).") from None
        open_lo = open_hi = True
    if np.dtype(_dtype(dtype)).kind == "c":
        raise CheckOptionError(
            "dualrev.testing.strategies.domain: domains are real intervals; for complex "
            "arrays use arrays(np.complex128, shape, max_magnitude=...).")
    if not (0 <= margin < math.inf):
        raise CheckOptionError(
            f"dualrev.testing.strategies.domain: margin={margin!r}; give a distance >= 0.")
    a, b = lo + (margin if open_lo else 0.0), hi - (margin if open_hi else 0.0)
    if not a <= b:
        raise CheckOptionError(
            f"dualrev.testing.strategies.domain: the margin {margin!r} leaves nothing of "
            f"({lo!r}, {hi!r}); give a smaller margin.")
    return arrays(dtype, shape, min_value=a, max_value=b,
                  exclude_min=open_lo and margin == 0, exclude_max=open_hi and margin == 0)


def pytrees(leaves: st.SearchStrategy[Any] | None = None, *,
            max_leaves: int = 4) -> st.SearchStrategy[Any]:
    """Pytrees of arrays: tuples, lists and dicts (string keys) nested around ``leaves``.

    Args:
        leaves: the leaves' strategy (None: ``arrays()``).
        max_leaves: the most leaves in one tree.
    Returns:
        A strategy of pytrees (a bare leaf included).
    Example:
        >>> import numpy as np
        >>> from hypothesis import given, settings
        >>> import dualrev as dr
        >>> from dualrev.testing import check_grads
        >>> from dualrev.testing.strategies import pytrees
        >>> def energy(tree):
        ...     return sum(np.sum(np.sin(leaf) ** 2) for leaf in dr.tree_flatten(tree)[0])
        >>> @settings(max_examples=5, deadline=None)
        ... @given(pytrees())
        ... def test_energy(tree):
        ...     check_grads(energy, (tree,), 1)
        >>> test_energy()
    """
    base = arrays() if leaves is None else leaves
    keys = st.sampled_from("abcdef")
    return st.recursive(base, lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.lists(children, min_size=1, max_size=3).map(tuple),
        st.dictionaries(keys, children, min_size=1, max_size=3)), max_leaves=max_leaves)


def _flat(tree: Any) -> np.ndarray:
    leaves, _ = tree_flatten(tree)
    arrays_ = [np.ravel(np.asarray(v)) for v in leaves]
    dtype = np.result_type(float, *arrays_)
    return np.concatenate([a.astype(dtype) for a in arrays_])


def _random_tree(tree: Any, rng: np.random.Generator) -> Any:
    """A random direction of ``tree``'s structure, shapes and (complex or real) kind."""
    leaves, td = tree_flatten(tree)
    out = []
    for leaf in leaves:
        v = rng.standard_normal(np.shape(leaf))
        if np.iscomplexobj(leaf):
            v = v + 1j * rng.standard_normal(np.shape(leaf))
        out.append(v if np.ndim(leaf) else v[()])
    return tree_unflatten(td, out)


def assert_derivatives_consistent(f: Callable[..., Any], *args: Any, seed: int = 0,
                                  rtol: float | None = None, atol: float | None = None,
                                  finite_differences: bool = True) -> None:
    """The properties every correct derivative has, checked at ``args``:

    - the JVP is linear in the tangent: J(a u + b v) = a Ju + b Jv;
    - forward and reverse mode agree: ``Re(u . (J v))`` from the JVP equals
      ``Re((J^T u) . v)`` from the VJP (JAX's pairing, no conjugation);
    - jacfwd equals jacrev (for a single real array argument);
    - and, with ``finite_differences``, both match SciPy's finite differences
      (``check_grads(f, args, 1)``).

    Args:
        f: the function, of the positional arguments ``args`` (pytrees allowed).
        *args: the point.
        seed: the seed of the random directions (``np.random.default_rng(seed)``).
        rtol: the relative tolerance of every comparison (None: ``1e-7`` for the
            identities between dualrev's own derivatives, ``check_grads``' default of the
            arguments' precision for the finite differences; ``2e-3`` for all in
            single precision).
        atol: the absolute tolerance (None: ``1e-9``, and as for ``rtol``).
        finite_differences: also compare with finite differences (False: only the
            identities above, which a consistently wrong rule passes).
    Returns:
        None; a failed property raises ``AssertionError`` saying which.
    Example:
        >>> import numpy as np
        >>> from dualrev.testing.strategies import assert_derivatives_consistent
        >>> assert_derivatives_consistent(lambda x, y: np.sin(x) * y, np.ones(3), 2.0)
    """
    rng = np.random.default_rng(seed)
    single = _single_precision([args])
    id_rtol = rtol if rtol is not None else (2e-3 if single else 1e-7)
    id_atol = atol if atol is not None else (2e-3 if single else 1e-9)
    u_in, v_in = _random_tree(args, rng), _random_tree(args, rng)
    a, b = rng.standard_normal(2)
    _, ju = jvp(f, args, u_in)
    _, jv = jvp(f, args, v_in)
    w_leaves = [a * p + b * q for p, q in zip(tree_flatten(u_in)[0], tree_flatten(v_in)[0],
                                              strict=True)]
    w_in = tree_unflatten(tree_flatten(args)[1], w_leaves)
    _, jw = jvp(f, args, w_in)
    np.testing.assert_allclose(_flat(jw), a * _flat(ju) + b * _flat(jv), rtol=id_rtol,
                               atol=id_atol, err_msg="the JVP is not linear in the tangent")
    out, pullback = vjp(f, *args)
    u_out = _random_tree(out, rng)
    lhs = float(np.real(np.sum(_flat(u_out) * _flat(jv))))
    rhs = float(np.real(np.sum(_flat(pullback(u_out)) * _flat(v_in))))
    np.testing.assert_allclose(lhs, rhs, rtol=id_rtol, atol=id_atol * max(1, _flat(jv).size),
                               err_msg="forward and reverse mode disagree: u.(Jv) != (J^T u).v")
    leaves = tree_flatten(args)[0]
    if len(args) == 1 and len(leaves) == 1 and not np.iscomplexobj(leaves[0]):
        np.testing.assert_allclose(_flat(jacfwd(f)(*args)), _flat(jacrev(f)(*args)), rtol=id_rtol,
                                   atol=id_atol, err_msg="jacfwd and jacrev disagree")
    if finite_differences:
        check_grads(f, args, 1, ("fwd", "rev"), atol, rtol, seed=seed)


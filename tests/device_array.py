"""A host-guard test double: a NEP 18 array that lives "on a device" and refuses to be
copied to the host, as CuPy's arrays do.

``DeviceArray`` wraps an ndarray. NumPy's functions and ufuncs dispatch to it
(``__array_function__``, ``__array_ufunc__``): it unwraps its operands, calls NumPy and
wraps the results again, so values stay ``DeviceArray``. Everything that would copy it
to the host (``__array__``, ``.tolist()``, iteration, ``float()``, ``int()``,
``bool()`` of more than one element) raises ``HostCopyError`` and counts the attempt in
``HOST_COPIES``; one element read as a Python number is allowed, as CuPy allows it (a
synchronisation, not a copy of the data), and counted in ``SCALAR_READS``. Mixing
it with a NumPy array of one element or more raises ``TypeError``, as CuPy refuses
``cupy_array + numpy_array``: a seed or zero made with ``np.zeros`` instead of
``np.zeros_like`` is caught. NumPy scalars and Python numbers mix freely (CuPy takes
them too).

Only the tests use it; ``DeviceArray.data`` (the wrapped ndarray) is what a test
compares, the way a CuPy test calls ``.get()`` once at the end.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

#: the host copies attempted, each as a short description (tests clear and read it)
HOST_COPIES: list[str] = []
#: the one-element reads (``bool()``, ``float()`` of a size-1 array: CuPy allows them)
SCALAR_READS: list[str] = []


class HostCopyError(TypeError):
    """A DeviceArray was about to be copied to the host."""


def _host(what: str) -> HostCopyError:
    HOST_COPIES.append(what)
    return HostCopyError(f"DeviceArray: implicit host copy by {what} (use .data explicitly)")


def _unwrap(x: Any) -> Any:
    if type(x) is DeviceArray:
        return x.data
    if isinstance(x, np.ndarray) and x.ndim:
        raise TypeError(f"DeviceArray: cannot mix with a host numpy.ndarray of shape "
                        f"{x.shape} (move it to the device first)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x: Any) -> Any:
    if type(x) is np.ndarray:
        return DeviceArray(x)
    if isinstance(x, np.generic) and x.dtype.kind in "biufc":
        # a 0-d result stays on the device (CuPy's reductions give 0-d cupy arrays)
        return DeviceArray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


class DeviceArray:
    """An ndarray behind NumPy's dispatch protocols that refuses host copies."""

    __slots__ = ("data",)
    __array_priority__ = 100

    def __init__(self, data: Any) -> None:
        if isinstance(data, DeviceArray):
            data = data.data
        self.data = np.array(data) if not isinstance(data, np.ndarray) else data

    # ---------------------------------------------------------------- the protocols
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "at":  # a, indices (host or device), b: in place, as CuPy's ufunc.at
            a, idx, *b = inputs
            ufunc.at(a.data, _unwrap_index(idx), *[_unwrap(v) for v in b])
            return None
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(o.data if type(o) is DeviceArray else _unwrap(o) for o in out)
        for x in inputs:
            if not isinstance(x, (DeviceArray, np.ndarray, np.generic, numbers.Number)):
                return NotImplemented  # a traced value (or another library's array) handles it
        args = [_unwrap(x) for x in inputs]
        res = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(res)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        for t in types:
            if not issubclass(t, (DeviceArray, np.ndarray)):
                return NotImplemented
        if kwargs.get("like") is not None:
            kwargs = dict(kwargs, like=None)
            del kwargs["like"]
        res = func(*_unwrap(args), **_unwrap(kwargs))
        return _wrap(res)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _host("__array__ (np.asarray)")

    # ---------------------------------------------------------------- the array face
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def T(self) -> DeviceArray:
        return DeviceArray(self.data.T)

    @property
    def real(self) -> DeviceArray:
        return DeviceArray(self.data.real)

    @property
    def imag(self) -> DeviceArray:
        return DeviceArray(self.data.imag)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, i: Any) -> DeviceArray:
        return DeviceArray(np.asarray(self.data[_unwrap_index(i)]))

    def __setitem__(self, i: Any, v: Any) -> None:
        self.data[_unwrap_index(i)] = _unwrap(v)

    def astype(self, dtype: Any, copy: bool = True) -> DeviceArray:
        return DeviceArray(self.data.astype(dtype, copy=copy))

    def copy(self) -> DeviceArray:
        return DeviceArray(self.data.copy())

    def reshape(self, *shape: Any) -> DeviceArray:
        return DeviceArray(self.data.reshape(*shape))

    def transpose(self, *axes: Any) -> DeviceArray:
        return DeviceArray(self.data.transpose(*axes))

    def swapaxes(self, a: int, b: int) -> DeviceArray:
        return DeviceArray(self.data.swapaxes(a, b))

    def sum(self, *args: Any, **kwargs: Any) -> Any:
        return np.sum(self, *args, **kwargs)

    def conj(self) -> Any:
        return np.conjugate(self)

    # ---------------------------------------------------------------- host copies refused
    # One element may be read as a Python number, as CuPy allows (a synchronisation that
    # moves one number, counted in SCALAR_READS); a whole array may not.
    def _scalar(self, what: str) -> Any:
        if self.data.size != 1:
            raise _host(what)
        SCALAR_READS.append(what)
        return self.data.reshape(()).item()

    def __float__(self) -> float:
        return float(self._scalar("float()"))

    def __int__(self) -> int:
        return int(self._scalar("int()"))

    def __complex__(self) -> complex:
        return complex(self._scalar("complex()"))

    def __bool__(self) -> bool:
        return bool(self._scalar("bool()"))

    def __index__(self) -> int:
        raise _host("__index__")

    def tolist(self) -> Any:
        raise _host(".tolist()")

    def item(self, *args: Any) -> Any:
        if args:
            raise _host(".item(i)")
        return self._scalar(".item()")

    def __iter__(self) -> Any:
        raise _host("iteration")

    # ---------------------------------------------------------------- operators
    def __neg__(self) -> Any:
        return np.negative(self)

    def __pos__(self) -> Any:
        return np.positive(self)

    def __abs__(self) -> Any:
        return np.absolute(self)

    def __invert__(self) -> Any:
        return np.invert(self)


def _binary(ufunc: np.ufunc, name: str) -> None:
    def fwd(self: DeviceArray, other: Any) -> Any:
        return ufunc(self, other)

    def rev(self: DeviceArray, other: Any) -> Any:
        return ufunc(other, self)

    def inplace(self: DeviceArray, other: Any) -> Any:
        return ufunc(self, other, out=(self,))

    setattr(DeviceArray, f"__{name}__", fwd)
    setattr(DeviceArray, f"__r{name}__", rev)
    setattr(DeviceArray, f"__i{name}__", inplace)


for _u, _n in [(np.add, "add"), (np.subtract, "sub"), (np.multiply, "mul"),
               (np.true_divide, "truediv"), (np.power, "pow"), (np.matmul, "matmul"),
               (np.floor_divide, "floordiv"), (np.remainder, "mod")]:
    _binary(_u, _n)
for _u, _n in [(np.less, "lt"), (np.less_equal, "le"), (np.greater, "gt"),
               (np.greater_equal, "ge"), (np.equal, "eq"), (np.not_equal, "ne")]:
    setattr(DeviceArray, f"__{_n}__", (lambda u: lambda self, o: u(self, o))(_u))
DeviceArray.__hash__ = None  # type: ignore[assignment]


def _unwrap_index(i: Any) -> Any:
    if type(i) is DeviceArray:
        return i.data
    if isinstance(i, tuple):
        return tuple(_unwrap_index(v) for v in i)
    return i


def device(x: Any) -> DeviceArray:
    """``x`` (an ndarray or number, of its own dtype) moved "to the device"."""
    return DeviceArray(np.array(x))


def host(x: Any) -> Any:
    """The ndarray under a DeviceArray (or under each leaf of a tuple/list/dict)."""
    if type(x) is DeviceArray:
        return x.data
    if isinstance(x, (tuple, list)):
        return type(x)(host(v) for v in x)
    if isinstance(x, dict):
        return {k: host(v) for k, v in x.items()}
    return x

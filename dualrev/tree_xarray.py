"""xarray's DataArray and Dataset as pytree nodes: the data are the leaves (what is
differentiated), the dims, coordinates, name and attributes the static auxiliary data.

xarray is imported only inside ``nodes()``, which tree.py calls once the user's program
has imported xarray itself: ``import dualrev`` never imports it. The rules of a labelled
Jacobian (the blocks get both sides' dims and coordinates) live here too; tree.py calls
them through the handler objects ``nodes()`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from .errors import DualrevError


def _shape(v: Any) -> tuple[int, ...]:
    s = getattr(v, "shape", None)
    return tuple(s) if s is not None else np.shape(v)


def _fresh(name: Hashable, taken: set[Hashable]) -> Hashable:
    """``name`` with ``_in`` appended (as often as needed) to miss ``taken``."""
    new = name
    while new in taken:
        new = f"{new}_in"
    return new


def _unnamed(k: int, taken: set[Hashable]) -> str:
    # xarray's own name for an unnamed axis k (xr.DataArray(np.zeros((2, 3))): dim_0, dim_1)
    return str(_fresh(f"dim_{k}", taken))


class _Aux:
    """Static data of a DataArray or Dataset: compared with ``identical`` (names,
    values, attributes of the coordinates, and the object's own attributes)."""

    __slots__ = ("dims", "shapes", "name", "coords", "names", "attrs", "encoding")

    def __init__(self, dims: tuple[tuple[Hashable, ...], ...], shapes: tuple[tuple[int, ...], ...],
                 name: Any, coords: Any, names: tuple[Hashable, ...],
                 attrs: tuple[dict[Any, Any], ...], encoding: tuple[dict[Any, Any], ...]) -> None:
        # one entry of dims/shapes/attrs/encoding per leaf (data variables by sorted name);
        # coords: a coordinate-only Dataset carrying the object's own attributes
        self.dims, self.shapes, self.name, self.coords = dims, shapes, name, coords
        self.names, self.attrs, self.encoding = names, attrs, encoding

    def __eq__(self, other: object) -> bool:
        return (type(other) is _Aux and self.dims == other.dims and self.shapes == other.shapes
                and _same(self.name, other.name) and self.names == other.names
                and all(_same_attrs(a, b) for a, b in zip(self.attrs, other.attrs, strict=True))
                and self.coords.identical(other.coords))

    def __hash__(self) -> int:
        return hash((self.dims, self.shapes, tuple(self.coords.variables)))


def _same(a: Any, b: Any) -> bool:
    return a is b or bool(a == b)


def _same_attrs(a: dict[Any, Any], b: dict[Any, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if v is w:
            continue
        if isinstance(v, np.ndarray) or isinstance(w, np.ndarray):
            if not np.array_equal(v, w):
                return False
        elif not v == w:
            return False
    return True


def _sorted_names(names: Any) -> tuple[Hashable, ...]:
    try:
        return tuple(sorted(names))
    except TypeError:  # names of several types: a fixed order all the same
        return tuple(sorted(names, key=repr))


def _check_shape(aux: _Aux, i: int, value: Any, what: str) -> None:
    if _shape(value) != aux.shapes[i]:
        raise DualrevError(
            f"dualrev: an xarray {what} with dims {aux.dims[i]} of shape {aux.shapes[i]} "
            f"cannot be rebuilt around a value of shape {_shape(value)}. Under vmap each "
            "mapped value has one element's shape, which xarray cannot label: map over the "
            "underlying arrays (pass da.data, rebuild the DataArray outside vmap), or let "
            "xarray broadcast over a dimension instead of vmap")


class _Label:
    """The dims and coordinates an output leaf lends its Jacobian blocks."""

    __slots__ = ("dims", "coords", "xr")

    def __init__(self, xr: Any, dims: tuple[Hashable, ...], coords: Any) -> None:
        self.xr, self.dims = xr, dims
        # only the coordinates along these dims (a Dataset's may run along others)
        keep = [n for n, v in coords.variables.items() if set(v.dims) <= set(dims)]
        self.coords = coords[keep].drop_attrs(deep=False)

    def names(self) -> set[Hashable]:
        return set(self.dims) | set(self.coords.variables)

    def wrap(self, block: Any) -> Any:
        """A block of a plain input leaf: the output's dims, then unnamed ones (a 0-d
        output's block stays as it is: the gradient, an array as grad gives)."""
        if not self.dims:
            return block
        taken = self.names()
        nd = len(_shape(block))
        dims = list(self.dims)
        for k in range(len(dims), nd):
            dims.append(_unnamed(k, taken))
            taken.add(dims[-1])
        return self.xr.DataArray(block, dims=tuple(dims), coords=self.coords.coords)


def _block_dims(aux: _Aux, i: int, block: Any, label: _Label | None,
                rename: dict[Hashable, Hashable]) -> tuple[Hashable, ...]:
    lead = len(_shape(block)) - len(aux.dims[i])
    if label is None:
        taken = set(aux.coords.variables) | set(aux.dims[i]) | set(rename.values())
        lead_dims = tuple(_unnamed(k, taken) for k in range(lead))
    else:
        lead_dims = label.dims
    if len(lead_dims) != lead:
        raise DualrevError(f"dualrev: a Jacobian block of shape {_shape(block)} does not "
                           f"fit the output's dims {lead_dims} and the input's {aux.dims[i]}")
    return lead_dims + tuple(rename.get(d, d) for d in aux.dims[i])


def _renamed(aux: _Aux, label: _Label | None) -> dict[Hashable, Hashable]:
    """The input's names that the output's labels use already, and their new names."""
    if label is None:
        return {}
    taken = label.names()
    own = set(aux.coords.variables) | {d for ds in aux.dims for d in ds}
    rename = {}
    for n in own:
        if n in taken and n not in _shared_scalars(aux, label):
            rename[n] = _fresh(n, taken | own | set(rename.values()))
    return rename


def _shared_scalars(aux: _Aux, label: _Label | None) -> set[Hashable]:
    """0-d coordinates identical on both sides (a loss keeps its input's scalar
    coordinates): one label, kept once."""
    if label is None:
        return set()
    mine, theirs = aux.coords.variables, label.coords.variables
    return {n for n, v in mine.items()
            if v.ndim == 0 and n in theirs and theirs[n].identical(v)}


def _block_coords(xr: Any, aux: _Aux, label: _Label | None,
                  rename: dict[Hashable, Hashable]) -> Any:
    own = aux.coords.drop_attrs(deep=False).rename(rename) if rename else \
        aux.coords.drop_attrs(deep=False)
    if label is None:
        return own.coords
    own = own.drop_vars(list(_shared_scalars(aux, label)))
    return xr.merge([label.coords, own], combine_attrs="drop").coords


class _DataArrayRules:
    def __init__(self, xr: Any) -> None:
        self.xr = xr

    def flatten(self, da: Any) -> tuple[list[Any], _Aux]:
        coords = da.coords.to_dataset()
        coords.attrs = dict(da.attrs)
        return [da.data], _Aux((da.dims,), (da.shape,), da.name, coords, (), (),
                               (dict(da.encoding),))

    def unflatten(self, aux: _Aux, children: list[Any]) -> Any:
        (data,) = children
        _check_shape(aux, 0, data, "DataArray")
        out = self.xr.DataArray(data, coords=aux.coords.coords, dims=aux.dims[0],
                                name=aux.name, attrs=dict(aux.coords.attrs))
        if aux.encoding[0]:
            out.encoding = dict(aux.encoding[0])
        return out

    def labels(self, aux: _Aux) -> list[_Label]:
        return [_Label(self.xr, aux.dims[0], aux.coords)]

    def block(self, aux: _Aux, blocks: list[Any], label: _Label | None) -> Any:
        (b,) = blocks
        rename = _renamed(aux, label)
        dims = _block_dims(aux, 0, b, label, rename)
        return self.xr.DataArray(b, dims=dims, coords=_block_coords(self.xr, aux, label, rename))

    def outer(self, aux: _Aux, children: list[Any]) -> Any:
        return children[0]  # the blocks carry its labels


class _DatasetRules:
    def __init__(self, xr: Any) -> None:
        self.xr = xr

    def flatten(self, ds: Any) -> tuple[list[Any], _Aux]:
        names = _sorted_names(ds.data_vars)
        vs = [ds.variables[n] for n in names]
        coords = ds.coords.to_dataset()
        coords.attrs = dict(ds.attrs)
        return [v.data for v in vs], _Aux(
            tuple(v.dims for v in vs), tuple(v.shape for v in vs), tuple(ds.data_vars), coords,
            names, tuple(dict(v.attrs) for v in vs), tuple(dict(v.encoding) for v in vs))

    def unflatten(self, aux: _Aux, children: list[Any]) -> Any:
        xr = self.xr
        at = {n: i for i, n in enumerate(aux.names)}
        for i, c in enumerate(children):
            _check_shape(aux, i, c, f"Dataset's variable {aux.names[i]!r}")
        data = {n: xr.Variable(aux.dims[at[n]], children[at[n]], attrs=dict(aux.attrs[at[n]]),
                               encoding=dict(aux.encoding[at[n]]))
                for n in aux.name}  # in the Dataset's own order
        return xr.Dataset(data, coords=aux.coords.coords, attrs=dict(aux.coords.attrs))

    def labels(self, aux: _Aux) -> list[_Label]:
        return [_Label(self.xr, d, aux.coords) for d in aux.dims]

    def block(self, aux: _Aux, blocks: list[Any], label: _Label | None) -> Any:
        xr = self.xr
        rename = _renamed(aux, label)
        data = {n: xr.Variable(_block_dims(aux, i, b, label, rename), b)
                for i, (n, b) in enumerate(zip(aux.names, blocks, strict=True))}
        return xr.Dataset(data, coords=_block_coords(xr, aux, label, rename))

    def outer(self, aux: _Aux, children: list[Any]) -> Any:
        # a Dataset cannot hold the blocks' trees: a dict by variable, as for a dict output
        return dict(zip(aux.names, children, strict=True))


def nodes() -> list[tuple[type, Callable[..., Any], Callable[..., Any], Any]]:
    """``(type, flatten, unflatten, rules)`` for DataArray and Dataset (imports xarray)."""
    import xarray as xr

    da, ds = _DataArrayRules(xr), _DatasetRules(xr)
    return [(xr.DataArray, da.flatten, da.unflatten, da),
            (xr.Dataset, ds.flatten, ds.unflatten, ds)]

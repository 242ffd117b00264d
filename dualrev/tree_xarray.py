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
    """Static data of a DataArray or Dataset: a template, the object with each data array
    replaced by a broadcast zero of its shape (no memory, and the caller's arrays are not
    kept alive by a structure), compared with ``identical`` (names, coordinates, their
    values and attributes, the object's attributes)."""

    __slots__ = ("dims", "shapes", "names", "template")

    def __init__(self, dims: tuple[tuple[Hashable, ...], ...], shapes: tuple[tuple[int, ...], ...],
                 names: tuple[Hashable, ...], template: Any) -> None:
        # one entry of dims/shapes per leaf (a Dataset's variables by sorted name)
        self.dims, self.shapes, self.names, self.template = dims, shapes, names, template

    @property
    def coords(self) -> Any:
        """The coordinates, as a coordinate-only Dataset."""
        return self.template.coords.to_dataset()

    def __eq__(self, other: object) -> bool:
        return (type(other) is _Aux and self.dims == other.dims and self.shapes == other.shapes
                and self.names == other.names and type(self.template) is type(other.template)
                and self.template.identical(other.template))

    def __hash__(self) -> int:
        return hash((self.dims, self.shapes, tuple(self.template.coords)))


def _hollow(v: Any) -> Any:
    """A stand-in of ``v``'s shape and dtype that holds no memory."""
    return np.broadcast_to(np.zeros((), dtype=getattr(v, "dtype", float)), _shape(v))


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
    own = aux.coords.drop_attrs(deep=False)
    # (a dim without a coordinate is not in the coordinates' Dataset: nothing to rename)
    rename = {k: v for k, v in rename.items() if k in own.variables or k in own.dims}
    if rename:
        own = own.rename(rename)
    if label is None:
        return own.coords
    own = own.drop_vars(list(_shared_scalars(aux, label)))
    return xr.merge([label.coords, own], combine_attrs="drop").coords


class _DataArrayRules:
    def __init__(self, xr: Any) -> None:
        self.xr = xr

    def flatten(self, da: Any) -> tuple[list[Any], _Aux]:
        data = da.data
        return [data], _Aux((da.dims,), (da.shape,), (), da.copy(deep=False, data=_hollow(data)))

    def unflatten(self, aux: _Aux, children: list[Any]) -> Any:
        (data,) = children
        _check_shape(aux, 0, data, "DataArray")
        # (a shallow copy of the template: coordinates shared, attrs and encoding copied;
        # four times faster than the constructor, which validates the coordinates again)
        return aux.template.copy(deep=False, data=data)

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
        data = [v.data for v in vs]
        template = ds.copy(deep=False, data={n: _hollow(d) for n, d in zip(names, data,
                                                                             strict=True)})
        return data, _Aux(tuple(v.dims for v in vs), tuple(v.shape for v in vs), names,
                          template)

    def unflatten(self, aux: _Aux, children: list[Any]) -> Any:
        for i, c in enumerate(children):
            _check_shape(aux, i, c, f"Dataset's variable {aux.names[i]!r}")
        return aux.template.copy(deep=False, data=dict(zip(aux.names, children, strict=True)))

    def labels(self, aux: _Aux) -> list[_Label]:
        coords = aux.coords
        return [_Label(self.xr, d, coords) for d in aux.dims]

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

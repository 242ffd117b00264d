"""xarray's DataArray and Dataset as pytrees through the transforms: the data
differentiated, dims, coordinates, names and attributes kept; derivatives checked against
the same computation on NumPy arrays, closed forms and finite differences."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dualrev as dr
from dualrev.errors import DualrevError, TracerConversionError
from dualrev.testing import check_grads
from tests.extras import need

pytestmark = pytest.mark.extras

_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def xr():
    return need("xarray")


def _field(xr, seed=0):
    """A (space, time) field with dimension, non-dimension and scalar coordinates."""
    rng = np.random.default_rng(seed)
    return xr.DataArray(
        rng.normal(size=(3, 4)), dims=("space", "time"), name="temp",
        coords={"space": [10.0, 20.0, 30.0], "time": np.arange(4),
                "lat": ("space", [-5.0, 0.0, 5.0]), "run": 7},
        attrs={"units": "K", "levels": np.arange(2)})


def _weights(xr, seed=1):
    rng = np.random.default_rng(seed)
    return xr.DataArray(rng.uniform(0.5, 1.5, size=4), dims=("time",),
                        coords={"time": np.arange(4)})


def _same_labels(xr, a, b):
    """a and b identical except for the data."""
    xr.testing.assert_identical(a.copy(data=np.zeros(a.shape)), b.copy(data=np.zeros(b.shape)))


# ------------------------------------------------------------------ flatten / unflatten
def test_round_trip_is_identical(xr):
    da = _field(xr)
    da.encoding = {"dtype": "float32"}
    leaves, td = dr.tree_flatten(da)
    assert len(leaves) == 1 and leaves[0] is da.data and repr(td) == "DataArray(*)"
    back = dr.tree_unflatten(td, leaves)
    xr.testing.assert_identical(back, da)
    assert back.encoding == {"dtype": "float32"}
    ds = xr.Dataset({"z": da, "a": da.sum("space") * 2, "m": ("time", np.ones(4), {"u": 1})},
                    attrs={"title": "t"})
    leaves, td = dr.tree_flatten(ds)
    np.testing.assert_array_equal(leaves[0], ds["a"].data)  # sorted names, as a dict
    np.testing.assert_array_equal(leaves[2], ds["z"].data)
    back = dr.tree_unflatten(td, leaves)
    xr.testing.assert_identical(back, ds)
    assert list(back.data_vars) == ["z", "a", "m"]  # the Dataset's own order
    nested = {"p": da, "q": (ds, 1.0)}
    leaves, td = dr.tree_flatten(nested)
    assert td.num_leaves == 5
    got = dr.tree_unflatten(td, leaves)
    xr.testing.assert_identical(got["q"][0], ds)


def test_structure_is_decided_by_labels(xr):
    da = _field(xr)
    td = dr.tree_flatten(da)[1]
    assert td == dr.tree_flatten(da * 2)[1] and hash(td) == hash(dr.tree_flatten(da * 2)[1])
    assert td != dr.tree_flatten(da.assign_coords(time=np.arange(4) + 1))[1]
    assert td != dr.tree_flatten(da.assign_attrs(units="C"))[1]
    assert td != dr.tree_flatten(da.rename("other"))[1]
    assert td != dr.tree_flatten(da.T)[1]
    with pytest.raises(DualrevError, match="under vmap|cannot be rebuilt"):
        dr.tree_unflatten(td, [np.ones(3)])


# ------------------------------------------------------------------ grad of xarray code
def _loss_xr(xr, w, other):
    def loss(t):
        weighted = (t * w).sum("time")                # broadcast by name
        anom = t - t.mean(dim="space")                # a reduction, broadcast back
        pos = t.where(t > 0, 0.0)                     # a mask
        aligned = (t + other) ** 2                    # alignment: the overlap of time
        return ((weighted ** 2).sum() + (anom ** 3).mean() + pos.sum() * 0.5
                + aligned.sum() + np.sin(xr.dot(t, w, dim="time")).sum())
    return loss


def _loss_np(w, o):
    # the same on arrays: t (3, 4), w (4,), o covering time 1..3 only
    def loss(t):
        weighted = np.sum(t * w, axis=1)
        anom = t - np.mean(t, axis=0)
        pos = np.where(t > 0, t, 0.0)
        aligned = (t[:, 1:] + o) ** 2
        return (np.sum(weighted ** 2) + np.mean(anom ** 3) + np.sum(pos) * 0.5
                + np.sum(aligned) + np.sum(np.sin(t @ w)))
    return loss


def test_grad_of_xarray_code_keeps_the_labels(xr):
    T, w = _field(xr), _weights(xr)
    other = xr.DataArray(np.array([0.3, -0.2, 0.1]), dims=("time",), coords={"time": [1, 2, 3]})
    loss = _loss_xr(xr, w, other)
    ref = _loss_np(w.data, other.data)
    v, g = dr.value_and_grad(loss)(T)
    assert float(v) == pytest.approx(ref(T.data), rel=1e-13)
    assert isinstance(g, xr.DataArray)
    _same_labels(xr, g, T)                            # coords, name, attrs
    np.testing.assert_allclose(g.data, dr.grad(ref)(T.data), rtol=1e-12)
    g2 = dr.grad(loss)(T)
    np.testing.assert_array_equal(g2.data, g.data)
    # forward mode gives the same (jacfwd of a scalar: the gradient, labelled)
    gf = dr.jacfwd(loss)(T)
    np.testing.assert_allclose(gf.data, g.data, rtol=1e-12)
    assert gf.dims == T.dims
    xr.testing.assert_identical(gf.coords.to_dataset(), T.coords.to_dataset())
    check_grads(lambda d: loss(xr.DataArray(d, dims=T.dims, coords=T.coords)), (T.data,),
                order=2)


_OPS = {
    "rolling": lambda t: t.rolling(time=2).mean().sum(),
    "coarsen": lambda t: (t.coarsen(time=2).mean() ** 2).sum(),
    "groupby": lambda t: (t.groupby("grp").mean() ** 2).sum(),
    "cumsum": lambda t: (t.cumsum("time") ** 2).sum(),
    "diff": lambda t: (t.diff("time") ** 2).sum(),
    "integrate": lambda t: (t.integrate("time") ** 2).sum(),
    "std": lambda t: t.std("time").sum(),
    "max": lambda t: t.max("time").sum(),
    "shift": lambda t: (t.shift(time=1) ** 2).sum(),
    "roll": lambda t: (t.roll(time=1) * t).sum(),
    "concat": lambda t, xr: (xr.concat([t, t * 2], dim="k") ** 3).sum(),
    "stack": lambda t: (t.stack(z=("space", "time")) ** 2).sum(),
    "sel": lambda t: (t.isel(time=slice(1, 3)) ** 2).sum() + t.sel(space=20.0).sum(),
    "fillna": lambda t: t.where(t > 0).fillna(0.0).sum(),
    "clip": lambda t: (t.clip(-0.5, 0.5) ** 2).sum(),
    "weighted": lambda t, xr: t.weighted(
        xr.DataArray([1.0, 2.0, 3.0], dims="space")).mean("space").sum(),
    "apply_ufunc": lambda t, xr: xr.apply_ufunc(np.sin, t).sum(),
    "values": lambda t: np.sum(t.values ** 2),
}


@pytest.mark.parametrize("name", sorted(_OPS))
def test_xarray_operations_forward_reverse_and_finite_differences(xr, name):
    rng = np.random.default_rng(sorted(_OPS).index(name))
    T = xr.DataArray(rng.normal(size=(3, 6)), dims=("space", "time"),
                     coords={"space": [10.0, 20.0, 30.0], "time": np.arange(6.0),
                             "grp": ("time", [0, 0, 1, 1, 2, 2])})
    op = _OPS[name]
    f = (lambda t: op(t, xr)) if op.__code__.co_argcount == 2 else op
    g = dr.grad(f)(T)
    _same_labels(xr, g, T)
    gf = dr.jacfwd(f)(T)
    np.testing.assert_allclose(gf.data, g.data, rtol=1e-12, atol=1e-14)
    d = T.copy(data=rng.normal(size=T.shape))
    eps = 1e-6
    fd = (float(f(T + eps * d)) - float(f(T - eps * d))) / (2 * eps)
    assert float((g * d).sum()) == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_jvp_and_vjp_take_labelled_tangents(xr):
    T, w = _field(xr), _weights(xr)

    def f(t):
        return np.exp(t * w).mean("space")

    tan = T.copy(data=np.random.default_rng(3).normal(size=(3, 4)))
    out, t_out = dr.jvp(f, (T,), (tan,))
    assert isinstance(t_out, xr.DataArray) and t_out.dims == ("time",)
    closed = (np.exp(T.data * w.data) * w.data * tan.data).mean(axis=0)
    np.testing.assert_allclose(t_out.data, closed, rtol=1e-13)
    out, pull = dr.vjp(f, T)
    xr.testing.assert_identical(out, f(T))
    ct = out.copy(data=np.arange(4.0))
    (g,) = pull(ct)
    _same_labels(xr, g, T)
    np.testing.assert_allclose(g.data, np.exp(T.data * w.data) * w.data * np.arange(4.0) / 3,
                               rtol=1e-13)
    with pytest.raises(DualrevError, match="structure"):
        pull(ct.assign_coords(time=ct.time + 1))  # a cotangent with other labels


def test_numpy_parameters_with_dataarray_data(xr):
    # the parameters are arrays, the data labelled: every spelling defers to xarray
    T, w = _field(xr), _weights(xr)
    p = np.array([0.5, -1.0, 2.0, 0.25])
    spellings = [lambda p: ((p * T) ** 2).sum(), lambda p: ((T * p) ** 2).sum(),
                 lambda p: (np.multiply(p, T) ** 2).sum(), lambda p: ((p + T - w) ** 2).sum()
                 - (T ** 2).sum() - ((w - T) ** 2).sum() + (((p * T) ** 2).sum()),
                 lambda p: (np.square(T / (1.0 / p))).sum()]
    closed = 2 * p * np.sum(T.data ** 2, axis=0)
    for f in spellings[:3] + spellings[4:]:
        for tr in (dr.grad, dr.jacfwd, dr.jacrev):
            g = tr(f)(p)
            assert type(g) is np.ndarray, (tr, type(g))
            np.testing.assert_allclose(g, closed, rtol=1e-13)
    g = dr.grad(spellings[3])(p)
    ref = dr.grad(lambda p: np.sum((p + T.data - w.data) ** 2) - np.sum((w.data - T.data) ** 2)
                  + np.sum((p * T.data) ** 2))(p)
    np.testing.assert_allclose(g, ref, rtol=1e-13)


# ------------------------------------------------------------------ Jacobians
def test_jacobian_dataarray_to_dataarray_is_labelled(xr):
    T = _field(xr)

    def f(t):  # (space, time) -> (space,)
        return (np.sin(t) * t.time).sum("time")

    ref = dr.jacobian(lambda a: np.sum(np.sin(a) * np.arange(4), axis=1))(T.data)
    Js = [jac(f)(T) for jac in (dr.jacfwd, dr.jacrev, dr.jacobian)]
    for J in Js:
        # the output's dims, then the input's; a name both use gets _in on the input side
        assert J.dims == ("space", "space_in", "time")
        np.testing.assert_allclose(J.data, ref, rtol=1e-14)
        np.testing.assert_array_equal(J.space, T.space)
        np.testing.assert_array_equal(J.space_in, T.space)
        np.testing.assert_array_equal(J.lat_in, T.lat)
        assert J.lat.dims == ("space",) and J.lat_in.dims == ("space_in",)
        assert J.name is None and J.attrs == {}
    xr.testing.assert_identical(Js[0], Js[1])
    xr.testing.assert_identical(Js[0], Js[2])
    # a plain output: unnamed leading dims as xarray names them; a plain input likewise
    Jp = dr.jacrev(lambda t: np.ravel(t.data)[:5])(T)
    assert Jp.dims == ("dim_0", "space", "time") and Jp.shape == (5, 3, 4)
    Jq = dr.jacfwd(lambda a: xr.DataArray(a[:3] * 2, dims=("x",), coords={"x": [1, 2, 3]}))(
        np.ones(6))
    assert Jq.dims == ("x", "dim_1")
    np.testing.assert_array_equal(Jq.data, 2 * np.eye(3, 6))
    # dims without coordinates (renamed all the same), on both sides
    bare = xr.DataArray(np.array([0.5, 1.0, 2.0]), dims=("x",))
    for jac in (dr.jacfwd, dr.jacrev, dr.jacobian):
        Jb = jac(lambda t: np.sqrt(t) * t.sum())(bare)
        assert Jb.dims == ("x", "x_in") and not Jb.coords
        s = bare.data
        closed = np.diag(0.5 / np.sqrt(s) * s.sum()) + np.sqrt(s)[:, None]
        np.testing.assert_allclose(Jb.data, closed, rtol=1e-14)


def test_jacobians_across_dataarray_and_dataset_and_the_forward_choice(xr):
    rng = np.random.default_rng(11)
    a = xr.DataArray(rng.normal(size=2), dims=("x",), coords={"x": [0.5, 1.5]})
    grid = np.linspace(0.0, 1.0, 5)

    def spread(v):  # DataArray (x: 2) -> Dataset {"u": (y: 5), "s": ()}: outputs > inputs
        y = xr.DataArray(grid, dims=("y",), coords={"y": grid})
        return xr.Dataset({"u": np.tanh(v * y).sum("x"), "s": (v ** 2).sum()})

    def spread_np(v):
        return {"s": np.sum(v ** 2), "u": np.sum(np.tanh(v[:, None] * grid), axis=0)}

    ref = dr.jacfwd(spread_np)(a.data)
    for jac in (dr.jacobian, dr.jacfwd, dr.jacrev):   # jacobian: the forward choice here
        J = jac(spread)(a)
        assert sorted(J) == ["s", "u"]                # an output Dataset: a dict by variable
        assert J["u"].dims == ("y", "x") and J["s"].dims == ("x",)
        np.testing.assert_allclose(J["u"].data, ref["u"], rtol=1e-13)
        np.testing.assert_allclose(J["s"].data, ref["s"], rtol=1e-13)
        np.testing.assert_array_equal(J["u"].y, grid)
        np.testing.assert_array_equal(J["u"].x, a.x)
    # Dataset -> DataArray, two arguments (argnums a tuple)
    ds = xr.Dataset({"p": a, "q": ("z", rng.normal(size=3))})

    def mix(d, v):
        return d.p * d.q.sum() + v

    J = dr.jacrev(mix, argnums=(0, 1))(ds, a)
    assert isinstance(J, tuple) and isinstance(J[0], xr.Dataset)
    assert J[0].p.dims == ("x", "x_in") and J[0].q.dims == ("x", "z") and J[1].dims == ("x", "x_in")
    np.testing.assert_allclose(J[0].p.data, np.eye(2) * ds.q.data.sum(), rtol=1e-14)
    np.testing.assert_allclose(J[0].q.data, np.outer(a.data, np.ones(3)), rtol=1e-14)
    np.testing.assert_array_equal(J[1].data, np.eye(2))


def test_hessian_of_a_dataarray_and_jacrev_of_a_scalar(xr):
    T = _field(xr)

    def f(t):
        return (np.exp(t * 0.3) * t.lat).sum() + (t.sum("time") ** 2).sum()

    def f_np(t):
        return np.sum(np.exp(t * 0.3) * T.lat.data[:, None]) + np.sum(np.sum(t, axis=1) ** 2)

    H = dr.hessian(f)(T)
    assert H.dims == ("space", "time", "space_in", "time_in") and H.shape == (3, 4, 3, 4)
    np.testing.assert_allclose(H.data, dr.hessian(f_np)(T.data), rtol=1e-13)
    assert int(H.run) == 7 and "run_in" not in H.coords  # one scalar coordinate, kept once
    Jr = dr.jacrev(f)(T)  # a scalar output: the gradient, labelled, without name or attrs
    g = dr.grad(f)(T)
    np.testing.assert_array_equal(Jr.data, g.data)
    xr.testing.assert_identical(Jr, g.rename(None).drop_attrs())


def test_dataset_of_parameters_grad_value_and_grad_hessian(xr):
    rng = np.random.default_rng(5)
    params = xr.Dataset(
        {"w": (("feature",), rng.normal(size=3)), "b": ((), 0.3)},
        coords={"feature": ["a", "b", "c"]}, attrs={"model": "linear"})
    X = xr.DataArray(rng.normal(size=(6, 3)), dims=("obs", "feature"),
                     coords={"feature": ["a", "b", "c"]})
    y = xr.DataArray(rng.normal(size=6), dims=("obs",))

    def loss(p):
        pred = xr.dot(X, p.w, dim="feature") + p.b
        return ((pred - y) ** 2).mean() + 0.1 * (p.w ** 4).sum()

    def loss_np(d):
        r = X.data @ d["w"] + d["b"] - y.data
        return np.mean(r ** 2) + 0.1 * np.sum(d["w"] ** 4)

    d0 = {"w": params.w.data, "b": params.b.data}
    v, g = dr.value_and_grad(loss)(params)
    assert float(v) == pytest.approx(loss_np(d0), rel=1e-13)
    assert isinstance(g, xr.Dataset) and g.attrs == {"model": "linear"}
    np.testing.assert_array_equal(g.feature, params.feature)
    gref = dr.grad(loss_np)(d0)
    np.testing.assert_allclose(g.w.data, gref["w"], rtol=1e-13)
    assert float(g.b) == pytest.approx(gref["b"], rel=1e-13)
    H = dr.hessian(loss)(params)
    Href = dr.hessian(loss_np)(d0)
    # a Dataset output: a dict by variable (as for a dict), each a Dataset of blocks
    assert sorted(H) == ["b", "w"] and isinstance(H["w"], xr.Dataset)
    assert H["w"].w.dims == ("feature", "feature_in") and H["w"].b.dims == ("feature",)
    assert H["b"].w.dims == ("feature",) and H["b"].b.dims == ()
    for i in "wb":
        for j in "wb":
            np.testing.assert_allclose(H[i][j].data, Href[i][j], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(H["w"].feature_in, ["a", "b", "c"])
    hv = dr.hvp(loss)(params, params.copy(data={"w": np.ones(3), "b": 0.0}))
    np.testing.assert_allclose(hv.w.data, Href["w"]["w"] @ np.ones(3), rtol=1e-12)


# ------------------------------------------------------------------ what refuses, replay
def test_vmap_over_a_dataarray_refuses_with_the_rewrite(xr):
    T = _field(xr)
    with pytest.raises(DualrevError, match="vmap"):
        dr.vmap(lambda t: t.sum())(T)
    # the rewrite: map over the data, labels as constants inside
    per_space = dr.vmap(lambda row: (xr.DataArray(row, dims=("time",)) ** 2).sum().data)(T.data)
    np.testing.assert_allclose(per_space, (T.data ** 2).sum(axis=1), rtol=1e-14)


def test_float_of_a_traced_dataarray_and_a_vector_output_are_refused(xr):
    with pytest.raises(TracerConversionError):
        dr.grad(lambda t: float(t.sum()) * 2.0)(_field(xr))
    with pytest.raises(DualrevError, match=r"scalar output, got shape \(3, 4\)"):
        dr.grad(lambda t: t * 2)(_field(xr))


def test_replay_keys_recordings_by_labels(xr):
    T = _field(xr)
    f = dr.replay(dr.grad(lambda t: (t ** 3).sum()))
    for k in range(3):
        g = f(T * (k + 1))
        np.testing.assert_allclose(g.data, 3 * (T.data * (k + 1)) ** 2, rtol=1e-14)
        _same_labels(xr, g, T)
    assert f.stats.records == 1 and f.stats.replays == 2
    g = f(T.assign_coords(time=np.arange(4) + 10))
    np.testing.assert_array_equal(g.time, np.arange(4) + 10)
    assert f.stats.records == 2


def test_xarray_imported_after_dualrev():
    need("xarray")
    code = ("import numpy as np, dualrev as dr, sys\n"
            "assert 'xarray' not in sys.modules\n"
            "dr.grad(lambda x: np.sum(x ** 2))(np.ones(2))\n"
            "import xarray as xr\n"
            "da = xr.DataArray(np.arange(3.0), dims=('x',), coords={'x': [1, 2, 3]})\n"
            "g = dr.grad(lambda d: (d * 2 * d).sum())(da)\n"
            "assert isinstance(g, xr.DataArray) and list(g.x.values) == [1, 2, 3]\n"
            "assert list(g.values) == [0.0, 4.0, 8.0]\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_ROOT))


def test_a_dask_backed_dataarray_keeps_a_lazy_gradient(xr):
    da = need("dask.array")
    data = np.arange(12.0).reshape(3, 4)
    T = xr.DataArray(da.from_array(data, chunks=(3, 2)), dims=("s", "t"),
                     coords={"t": np.arange(4)})
    g = dr.grad(lambda t: (t ** 2 * t.t).sum())(T)
    assert isinstance(g.data, da.Array) and g.chunks == ((3,), (2, 2))
    np.testing.assert_allclose(g.data.compute(), 2 * data * np.arange(4), rtol=1e-14)
    np.testing.assert_array_equal(g.t, T.t)


def _random_dataarray(xr, rng, dims, with_coords):
    sizes = {"a": 2, "b": 3, "c": 2}
    shape = tuple(sizes[d] for d in dims)
    coords = {}
    for d in dims:
        if with_coords[d]:
            coords[d] = np.arange(sizes[d]) * 10 + rng.integers(0, 5)
    if dims and rng.random() < 0.5:
        coords["aux_" + dims[0]] = (dims[0], rng.normal(size=sizes[dims[0]]))
    if rng.random() < 0.5:
        coords["scal"] = 1.5
    return xr.DataArray(rng.normal(size=shape), dims=dims, coords=coords)


def test_labelled_jacobians_of_random_labellings(xr):
    # 24 random (input dims, output dims, coordinates) configurations: every Jacobian's
    # data is the array Jacobian, its dims the output's then the input's (renamed where
    # they clash), jacfwd, jacrev and jacobian identical
    rng = np.random.default_rng(2026)
    all_dims = [(), ("a",), ("b",), ("a", "b"), ("b", "c")]
    for _ in range(24):
        din = all_dims[rng.integers(1, len(all_dims))]
        dout = all_dims[rng.integers(0, len(all_dims))]
        x = _random_dataarray(xr, rng, din, {d: rng.random() < 0.6 for d in "abc"})
        tmpl = _random_dataarray(xr, rng, dout, {d: rng.random() < 0.6 for d in "abc"})
        m = rng.normal(size=(tmpl.size, x.size))

        def f_np(v, m=m, shape=tmpl.shape):
            return np.reshape(m @ np.tanh(np.ravel(v)), shape)

        def f(t, tmpl=tmpl, f_np=f_np):
            return tmpl.copy(data=f_np(t.data))

        ref = dr.jacfwd(f_np)(x.data)
        Js = [jac(f)(x) for jac in (dr.jacfwd, dr.jacrev, dr.jacobian)]
        for J in Js[1:]:
            xr.testing.assert_identical(J, Js[0])
        J = Js[0]
        if not dout:
            assert J.dims == din  # a 0-d output: the gradient's dims
        else:
            renamed = tuple(d + "_in" if d in dout or d in tmpl.coords else d for d in din)
            assert J.dims == dout + renamed, (din, dout, J.dims)
        np.testing.assert_allclose(J.data, ref, rtol=1e-13, atol=1e-15)
        for d in dout:
            if d in tmpl.coords:
                np.testing.assert_array_equal(J[d].values, tmpl[d].values)
        for d, r in zip(din, J.dims[len(dout):], strict=True):
            if d in x.coords:
                np.testing.assert_array_equal(J[r].values, x[d].values)


@pytest.fixture
def xarray_not_yet_deferred_to(xr, monkeypatch):
    """The traced values' deferral to xarray as before any transform ran in this process
    (in a full test session an earlier test has switched it on)."""
    from dualrev import tracer

    labelled = (xr.DataArray, xr.Dataset, xr.Variable)
    monkeypatch.setattr(tracer, "_XARRAY_PENDING", True)
    monkeypatch.setattr(tracer, "_DEFER_UFUNC", tracer._DEFER_UFUNC - frozenset(labelled))
    monkeypatch.setattr(tracer, "_DEFER_MATMUL",
                        tuple(t for t in tracer._DEFER_MATMUL if t not in labelled))


def test_replay_of_plain_numpy_code_with_dataarray_constants(xr, xarray_not_yet_deferred_to):
    # recording without a transform around it: the staged values defer to xarray too
    w = xr.DataArray(np.array([1.0, 2.0, 3.0]), dims=("x",))
    f = dr.replay(lambda p: ((p * w) ** 2).sum().data)
    p = np.array([0.5, -1.0, 2.0])
    for k in range(3):
        assert float(f(p * (k + 1))) == pytest.approx(np.sum((p * (k + 1) * w.data) ** 2),
                                                      rel=1e-14)
    assert f.stats.records == 1


def test_minimize_over_a_dataset_of_parameters(xr):
    import dualrev.optimize as dro

    rng = np.random.default_rng(4)
    feature = ["x", "y", "z"]
    X = xr.DataArray(rng.normal(size=(20, 3)), dims=("obs", "feature"),
                     coords={"feature": feature})
    y = xr.dot(X, xr.DataArray([1.0, -2.0, 0.5], dims="feature", coords={"feature": feature}),
               dim="feature") + 0.3
    params = xr.Dataset({"w": ("feature", np.zeros(3)), "b": 0.0}, coords={"feature": feature},
                        attrs={"model": "linear"})

    def mse(p):
        return ((xr.dot(X, p.w, dim="feature") + p.b - y) ** 2).mean()

    res = dro.minimize(mse, params, method="BFGS", options={"gtol": 1e-10})
    assert isinstance(res.x, xr.Dataset) and res.x.attrs == {"model": "linear"}
    np.testing.assert_allclose(res.x.w.data, [1.0, -2.0, 0.5], atol=1e-7)
    assert float(res.x.b) == pytest.approx(0.3, abs=1e-7)
    np.testing.assert_array_equal(res.x.feature, feature)


def test_custom_rules_take_dataarrays(xr):
    T = _field(xr)

    @dr.custom_vjp
    def f(t):
        return (t ** 2).sum()

    f.defvjp(lambda t: (f(t), t), lambda t, ct: (20 * t * ct,))  # 10x the true rule
    g = dr.grad(f)(T)
    _same_labels(xr, g, T)
    np.testing.assert_allclose(g.data, 20 * T.data, rtol=1e-15)

    @dr.custom_jvp
    def h(t):
        return np.sin(t)

    @h.defjvp
    def _(primals, tangents):
        return h(primals[0]), 3 * tangents[0]

    _, tan = dr.jvp(h, (T,), (T * 0 + 1,))
    np.testing.assert_array_equal(tan.data, np.full((3, 4), 3.0))
    np.testing.assert_array_equal(dr.grad(lambda t: h(t).sum())(T).data, np.full((3, 4), 3.0))

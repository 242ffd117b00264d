"""examples/dask_logistic_regression.py: logistic regression over rows on a
dask.distributed LocalCluster, fitted with dualrev's gradient and Hessian-vector products
and with hand-written ones; the example checks its own fits, and its checks fail where
the two disagree. No worker process outlives a run."""

import runpy
import time
from pathlib import Path

import numpy as np
import pytest

from tests.extras import need

pytestmark = pytest.mark.extras

PATH = Path(__file__).parent.parent / "examples" / "dask_logistic_regression.py"


@pytest.fixture(scope="module")
def example():
    need("dask.array")
    need("distributed")
    return runpy.run_path(str(PATH), run_name="dask_example")


def _children_gone(timeout: float = 20.0) -> list:
    """This process's live child processes once the cluster's are gone (waiting up to
    ``timeout``), less multiprocessing's resource tracker: one per interpreter, started
    with the first spawned process and living as long as the interpreter, by design."""
    import psutil  # (a dependency of distributed)

    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in psutil.Process().children(recursive=True) if p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE
                 and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_example_on_two_worker_processes(example, capsys):
    """The command line at 10^5 rows: both Newton-CG fits converge to the same
    coefficients, within 5 standard errors of the true ones; the gradients agree; the
    cluster's processes are gone afterwards."""
    before = _children_gone(0.0)
    out = example["_cli"](["--rows", "4e4", "--chunks", "2e4"])
    text = capsys.readouterr().out
    assert "checks: same gradients, same Hessian-vector products" in text, text
    assert ("checks: converged, same coefficients, one dask.compute per call, within 5 "
            "standard errors") in text, text
    assert out["computes_per_value_and_grad"] == out["computes_per_hvp"] == 1
    for name in ("dualrev", "handwritten"):
        res = out[name]["result"]
        assert res.success and res.nit >= 3 and res.nhev >= res.nit
        assert f"{name:12s} rows 4e+04" in text
    assert out["coef_difference"] < 1e-6 and out["grad_difference"] < 1e-10
    assert out["hvp_difference"] < 1e-10
    # the maximum-likelihood estimate solves X^T (sigmoid(X w) - y) = 0: recompute it
    # on this process with NumPy from the same seeded chunks
    import dask

    X, y = dask.compute(*example["make_data"](40_000, 20_000, 5, 0), scheduler="sync")
    s = 1.0 / (1.0 + np.exp(-(X @ out["w"])))
    assert np.max(np.abs(X.T @ (s - y))) / 40_000 < 1e-6  # (Newton-CG stops on its step)
    z = (out["w"] - out["w_true"]) / out["se"]
    assert np.all(np.abs(z) < 5) and np.all(out["se"] > 0) and np.all(out["se"] < 0.03)
    assert not set(_children_gone()) - set(before), "worker processes left behind"


def test_example_check_fails_on_a_wrong_hvp(example, monkeypatch):
    """A hand-written HVP without its (1 - s) factor would still lead Newton-CG to the
    right coefficients (the gradient is right): the example compares the derivatives at a
    random point before fitting, and raises (threads, no processes: fast)."""
    right = example["handwritten_problem"]

    def wrong(X, y):
        vg, _ = right(X, y)
        n = X.shape[0]

        def hvp(w, v):
            s = 1.0 / (1.0 + np.exp(-(X @ w)))
            return X.T @ (s * (X @ v)) / n

        return vg, hvp

    main = example["main"]
    monkeypatch.setitem(main.__globals__, "handwritten_problem", wrong)
    with pytest.raises(AssertionError, match="check failed: same Hessian-vector products$"):
        main(rows=20_000, chunks=10_000, processes=False)


def test_handwritten_derivatives_match_dualrev_in_memory(example):
    """The hand-written gradient and HVP equal dualrev's on NumPy data too (the loss's
    closed forms), so the comparison on Dask compares two right answers."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 4))
    y = (rng.random(200) < 0.5).astype(float)
    w, v = rng.standard_normal(4), rng.standard_normal(4)
    ours, hand = example["dualrev_problem"](X, y), example["handwritten_problem"](X, y)
    (vo, go), ho = ours[0](w), ours[1](w, v)
    (vh, gh), hh = hand[0](w), hand[1](w, v)
    assert np.isclose(vo, vh, rtol=1e-14) and np.allclose(go, gh, rtol=1e-13)
    assert np.allclose(ho, hh, rtol=1e-12)
    h = 1e-6  # and the gradient against central differences of the value
    fd = [(ours[0](w + h * e)[0] - ours[0](w - h * e)[0]) / (2 * h) for e in np.eye(4)]
    assert np.allclose(fd, go, rtol=1e-6, atol=1e-9)


def test_computes_per_value_and_grad_and_per_hvp(example):
    """A value-and-gradient, and an HVP, are each one computation: the caller's (the
    transform computes nothing while it runs; before issue 25's dask part, its non-finite
    check computed the result once more: 2 passes for value_and_grad, 3 for hvp). The
    results are the closed forms."""
    import dask

    X, y = example["make_data"](10_000, 2_500, 5, 0)
    vg, hvp = example["dualrev_problem"](*dask.persist(X, y, scheduler="sync"))
    counter = example["CountingScheduler"](dask.get)
    w = np.full(5, 0.1)
    with dask.config.set(scheduler=counter):
        value, grad = dask.compute(*vg(w))
        assert counter.count == 1
        start = counter.count
        (hv,) = dask.compute(hvp(w, w))
        assert counter.count - start == 1
    Xn, yn = dask.compute(X, y, scheduler="sync")
    s = 1.0 / (1.0 + np.exp(-(Xn @ w)))
    assert np.allclose(grad, Xn.T @ (s - yn) / 10_000, rtol=1e-12)
    assert np.allclose(hv, Xn.T @ (s * (1 - s) * (Xn @ w)) / 10_000, rtol=1e-12)


def _large_arrays(graph, size: int) -> list:
    """The NumPy arrays of at least ``size`` elements embedded in a Dask graph's tasks."""
    found = []

    def walk(o, depth=0):
        if isinstance(o, np.ndarray):
            if o.size >= size:
                found.append(o.shape)
        elif depth < 8 and isinstance(o, (tuple, list)):
            for x in o:
                walk(x, depth + 1)
        elif depth < 8 and hasattr(o, "args"):  # a Task (and its keyword arguments)
            for x in (*o.args, *getattr(o, "kwargs", {}).values()):
                walk(x, depth + 1)
        elif depth < 8 and hasattr(o, "value"):  # a DataNode
            walk(o.value, depth + 1)

    for task in dict(graph).values():
        walk(task)
    return found


def test_hvp_graph_holds_no_array_of_all_rows(example):
    """Memory bounded by the chunk: neither the gradient's nor the HVP's graph embeds an
    array as long as the data (the data themselves are generated inside the graph). Found
    by benchmarks/dask_glm.py before the duck part of issue 25 was merged: the HVP's graph
    carried the mean's cotangent, 1/n per row, as one NumPy array of all n rows (763 MiB
    sent with every HVP at 10^8 rows)."""
    import dask

    rows = 40_000
    vg, hvp = example["dualrev_problem"](*example["make_data"](rows, 10_000, 5, 0))
    w = np.full(5, 0.1)
    graph_of = lambda *xs: dask.base.collections_to_expr(list(xs)).__dask_graph__()  # noqa: E731
    assert _large_arrays(graph_of(*vg(w)), rows) == []
    assert _large_arrays(graph_of(hvp(w, w)), rows) == []

"""benchmarks/compare.py reads saved tables and reports median ratios;
benchmarks/sparse_derivatives.py and benchmarks/dask_glm.py (marked extras) run in their
smoke modes."""

import importlib.util
from pathlib import Path

import pytest

from tests.extras import need

ROOT = Path(__file__).parent.parent
spec = importlib.util.spec_from_file_location("compare", ROOT / "benchmarks" / "compare.py")
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)

TABLE = """| workload | library | seconds | ratio to NumPy f(x) |
|---|---|---|---|
| 1. grad rosen n=10 | numpy f(x) | 4.0e-06 | 1.0x |
| 1. grad rosen n=10 | dualrev grad | 6.0e-05 | {r}x |
"""


def test_compare_takes_medians_of_the_ratios(tmp_path):
    paths = {}
    for name, r in [("b1", 10.0), ("b2", 12.0), ("b3", 11.0), ("a1", 13.2), ("a2", 9.0)]:
        p = tmp_path / f"{name}.md"
        p.write_text(TABLE.format(r=r))
        paths[name] = str(p)
    lines = compare.compare([paths["b1"], paths["b2"], paths["b3"]], [paths["a1"], paths["a2"]])
    row = next(line for line in lines if "dualrev grad" in line)
    # medians 11.0 before, 11.1 after: 1.01
    assert "11.0x [10.0-12.0]" in row and "11.1x [9.0-13.2]" in row and row.endswith("| 1.01 |")


def test_sparse_benchmark_smoke(tmp_path):
    """benchmarks/sparse_derivatives.py --smoke: every sparse Jacobian/Hessian equals the
    hand-written one and the dense transform (the script raises otherwise); the colours are the
    patterns' chromatic numbers or close; the table is written."""
    spec = importlib.util.spec_from_file_location("sparse_bench",
                                                  ROOT / "benchmarks" / "sparse_derivatives.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "sparse.md"
    rows = bench.main(["--smoke", "--no-casadi", "--save", str(out)])
    by = {r["problem"]: r for r in rows}
    assert set(by) == {"broyden", "bratu2d", "rosenbrock hessian"}
    assert by["broyden"]["colours"] == 3 and by["broyden"]["nnz"] == 3 * 1000 - 2
    assert by["bratu2d"]["colours"] == 5 and by["bratu2d"]["nnz"] == 5 * 1024 - 4 * 32
    assert by["rosenbrock hessian"]["colours"] == 3  # a star colouring: 3 at any n
    assert all("dense J" in r for r in rows)  # the dense transforms ran and agreed
    text = out.read_text()
    assert "| broyden | 1000 | 2998 |" in text and "old numeric detector" in text


@pytest.mark.extras
def test_dask_glm_benchmark_smoke(tmp_path):
    """benchmarks/dask_glm.py --smoke on a LocalCluster of two worker processes: dualrev's
    gradient and HVP equal the hand-written ones (the script raises otherwise), every row
    is timed and the table written with the library versions and the BLAS setting."""
    need("dask.array")
    need("distributed")
    spec = importlib.util.spec_from_file_location("dask_glm_bench",
                                                  ROOT / "benchmarks" / "dask_glm.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "dask.md"
    rows = bench.main(["--smoke", "--save", str(out)])
    assert [r["workload"] for r in rows] == [
        "value_and_grad", "hvp", "value_and_grad in memory (NumPy, 1 thread)"]
    for r in rows:
        assert r["rows"] == 10**4 and r["dualrev s"] > 0 and r["hand s"] > 0
        assert r["dualrev rows/s"] == pytest.approx(10**4 / r["dualrev s"])
        assert r["worker peak MB"] > r["data MB"] > 0.4  # 10^4 x 6 float64
    assert rows[0]["chunk rows"] == 5000 and rows[0]["computes"] == rows[1]["computes"] == 1
    text = out.read_text()
    assert "BLAS threads 1 here, 1 in the workers" in text and "LocalCluster 2 worker" in text
    assert "| value_and_grad | 10000 | 5000 |" in text and "| hvp | 10000 | 5000 |" in text


def test_checkpoint_benchmark_smoke(tmp_path):
    """benchmarks/checkpoint.py --smoke: each schedule's gradient equals the plain tape's,
    revolve and segments peak below it, and the table is written."""
    spec = importlib.util.spec_from_file_location("checkpoint_bench",
                                                  ROOT / "benchmarks" / "checkpoint.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "checkpoint.md"
    rows = bench.main(["--smoke", "--repeat", "1", "--save", str(out)])
    assert all(r["diff"] < 1e-13 for r in rows)
    by = {(r["n"], r["schedule"]): r for r in rows}
    assert by[100, "revolve"]["peak"] < by[100, "store_all"]["peak"] / 5
    assert by[100, "segments"]["peak"] < by[100, "store_all"]["peak"] / 3
    assert by[100, "store_all"]["calls"] == 100 and by[100, "segments"]["calls"] == 200
    assert "| 100 | revolve |" in out.read_text()

"""What the bridges (dualrev.to_torch, dualrev.to_jax) cost per gradient, against
dualrev called directly, in microseconds.

    python benchmarks/bridges_overhead.py [--repeat 7] [--save PATH]

For ``f(x) = sum(sin(x)**2 * exp(-x))`` at n = 100 and n = 10^5 (float64): dualrev's
``value_and_grad`` and ``vjp`` + pullback called directly; PyTorch: forward and
``backward()`` of ``to_torch(f)``; JAX: ``jax.jit(jax.value_and_grad(to_jax(f)))``. The
rows are timed in turns (each repeat times every row once), the minimum over repeats is
kept, and the ratio is to ``value_and_grad``. A second table times per-example
``value_and_grad`` over a batch of 256 under ``jax.jit(jax.vmap(...))`` with each
``vmap_method`` of ``to_jax``. BLAS threads are pinned to one.
"""

from __future__ import annotations

import argparse
import os
import timeit

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import dualrev as dr  # noqa: E402


def f(x):
    return np.sum(np.sin(x) ** 2 * np.exp(-x))


def rows(n: int) -> dict[str, object]:
    """The timed callables at size ``n`` (each checked against dualrev first)."""
    import jax
    import torch

    jax.config.update("jax_enable_x64", True)
    x = np.random.default_rng(0).normal(size=n)
    ref = dr.grad(f)(x)
    xt = torch.tensor(x, requires_grad=True)
    ft = dr.to_torch(f)
    vg = jax.jit(jax.value_and_grad(dr.to_jax(f)))
    xj = jax.numpy.asarray(x)

    def torch_row():
        xt.grad = None
        ft(xt).backward()
        return xt.grad

    def jax_row():
        return vg(xj)[1].block_until_ready()

    assert np.allclose(torch_row().numpy(), ref, rtol=1e-12)
    assert np.allclose(np.asarray(jax_row()), ref, rtol=1e-12)
    return {
        "dualrev value_and_grad": lambda: dr.value_and_grad(f)(x),
        "dualrev vjp + pullback": lambda: dr.vjp(f, x)[1](1.0),
        "to_torch: forward + backward": torch_row,
        "to_jax: jit(value_and_grad)": jax_row,
    }


def vmap_methods(repeat: int) -> dict[str, float]:
    """Seconds for per-example value_and_grad over 256 examples, per vmap_method."""
    import jax

    def g(x, y):
        return np.tanh(np.sin(x) * y[:3]).sum() + np.sum(y ** 2)

    xs = jax.numpy.asarray(np.random.default_rng(1).normal(size=(256, 3)))
    y = jax.numpy.ones(4)
    out, ref = {}, None
    for m in ("expand_dims", "broadcast_all", "sequential"):
        fn = jax.jit(jax.vmap(jax.value_and_grad(dr.to_jax(g, vmap_method=m)), (0, None)))
        res = np.asarray(fn(xs, y)[1])
        ref = res if ref is None else ref
        assert np.allclose(res, ref, rtol=1e-13)
        out[m] = min(timeit.repeat(lambda fn=fn: jax.block_until_ready(fn(xs, y)), number=3,
                                   repeat=repeat)) / 3
    return out


def main(argv: list[str] | None = None) -> list[tuple[int, str, float, float]]:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--save")
    args = p.parse_args(argv)
    out = []
    for n, number in ((100, 200), (100_000, 10)):
        fns = rows(n)
        best = {k: float("inf") for k in fns}
        for _ in range(args.repeat):
            for k, fn in fns.items():
                best[k] = min(best[k], timeit.timeit(fn, number=number) / number)
        base = best["dualrev value_and_grad"]
        out += [(n, k, t * 1e6, t / base) for k, t in best.items()]
    lines = ["| n | row | microseconds | ratio to value_and_grad |", "|---|---|---|---|"]
    lines += [f"| {n} | {k} | {us:.0f} | {r:.2f} |" for n, k, us, r in out]
    lines += ["", "| jax.vmap over 256 examples, vmap_method | milliseconds |", "|---|---|"]
    lines += [f"| {m} | {t * 1e3:.2f} |" for m, t in vmap_methods(args.repeat).items()]
    print("\n".join(lines))
    if args.save:
        with open(args.save, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    main()

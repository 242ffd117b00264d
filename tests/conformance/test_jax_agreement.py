"""dualrev against JAX (x64) on every harness case whose function JAX also has: the same
JVP along a random direction and the same VJP of a random cotangent (for complex values
both use the Re(ct * t) pairing), or a clear dualrev refusal."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

import dualrev as dr
from dualrev.errors import DualrevError

from .checks import CHECKS, Prepared, assert_close, flat
from .conftest import RECORD, strict_here
from .known_failures import KNOWN_FAILURES
from .specs import CASES

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = importlib.import_module("jax.numpy")

pytestmark = pytest.mark.jax

PREFIXES = {"np.linalg.": "jax.numpy.linalg", "np.fft.": "jax.numpy.fft", "np.": "jax.numpy",
            "sp.": "jax.scipy.special", "sla.": "jax.scipy.linalg",
            "st.": "jax.scipy.stats"}


def counterpart(name: str) -> Any:
    """JAX's function of the same name, or None."""
    for prefix, module in PREFIXES.items():
        if name.startswith(prefix):
            obj: Any = importlib.import_module(module)
            for part in name[len(prefix):].split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    return None
            return obj
    return None


def _eligible(case) -> bool:
    # the case must call the entry itself (not a gauge-fixing wrapper)
    return (case.kind == "diff" and case.dtype != "float32" and case.fn is case.entry
            and counterpart(case.name) is not None)


STRICT = strict_here()

#: cases where JAX's derivative is the one that is off: dualrev's must match finite
#: differences there, and JAX must still disagree (else the entry is stale)
JAX_DISAGREES = {
    "jax::sp.logsumexp[b=<array>,return_sign]-complex128-mat":
        "JAX holds the sign (the phase, for complex a) constant; its derivative is "
        "exp(i angle) * i * d(angle), which finite differences confirm",
    **{k: "JAX gives unique's values a zero derivative; dualrev's are those of the selected "
          "elements, as np.sort's, which finite differences confirm" for k in (
        "jax::np.unique-float64-vec",
        "jax::np.unique-complex128-vec",
        "jax::np.unique[return_index]-float64-vec",
        "jax::np.unique[return_index]-complex128-vec",
        "jax::np.unique[return_inverse,return_counts]-float64-vec",
        "jax::np.unique[return_inverse,return_counts]-complex128-vec",
        "jax::np.unique[axis=0]-float64-vec",
        "jax::np.unique[axis=0]-complex128-vec",
        "jax::np.unique[equal_nan=False]-float64-vec",
        "jax::np.unique[equal_nan=False]-complex128-vec",
        "jax::np.unique-float64-mat",
        "jax::np.unique[return_index]-float64-mat",
        "jax::np.unique[return_inverse,return_counts]-float64-mat",
        "jax::np.unique[axis=0]-float64-mat",
        "jax::np.unique[equal_nan=False]-float64-mat",
        "jax::np.unique[sorted=False]-float64-vec",
    )},
    **{k: "JAX's spence derivative is nan for x > 1 and 0 at x = 1; dualrev's is "
          "log(x)/(1 - x) (-1 at x = 1), which finite differences confirm" for k in (
        "jax::sp.spence-float64-mat", "jax::sp.spence-float64-0d", "jax::sp.spence-float64-vec",
    )},
}


def _params() -> list:
    out = []
    for case in CASES:
        if not _eligible(case):
            continue
        key = f"jax::{case.id}".replace(" ", "_")
        marks = []
        if key in KNOWN_FAILURES and not RECORD:
            marks.append(pytest.mark.xfail(strict=STRICT, reason=KNOWN_FAILURES[key]))
        out.append(pytest.param(case, id=key, marks=marks))
    return out


def _jax_g(case, p: Prepared):
    jf = counterpart(case.name)

    def g(*leaves: Any) -> tuple[Any, ...]:
        args, kwargs = p.rebuild(*leaves)
        out = flat(jax.tree_util.tree_leaves(jf(*args, **kwargs)))
        return tuple(out[i] for i in p.diff)

    return g


def _directions(case, p: Prepared) -> list[np.ndarray]:
    # JAX's cholesky/eigh/multivariate_normal symmetrize a matrix tangent, NumPy reads one
    # triangle: the two agree on symmetric (Hermitian) directions, so use only those there
    vs = p.random_like(p.leaves)
    for i, t in enumerate(case.templates()):
        if t.dom in ("spd", "sym"):
            vs[i] = (vs[i] + np.conj(np.swapaxes(vs[i], -1, -2))) / 2
    return vs


@pytest.mark.parametrize("case", _params())
def test_jax_agreement(case, request):
    """Same JVP along a random direction, and the same <vjp(u), v> (so only the directions
    both define are compared), or a clear dualrev refusal."""
    key = request.node.callspec.id
    if key in JAX_DISAGREES:
        CHECKS["jvp"](case)  # dualrev against finite differences
        CHECKS["vjp"](case)
        with pytest.raises(AssertionError, match="vs JAX"):
            _compare(case)
        return
    _compare(case)


def _compare(case) -> None:
    p = Prepared(case)
    if not p.diff:
        pytest.skip("no floating output")
    g = _jax_g(case, p)
    vs = _directions(case, p)
    try:
        jout, jt = jax.jvp(g, tuple(jnp.asarray(x) for x in p.leaves),
                           tuple(jnp.asarray(v) for v in vs))
        us = p.random_like([np.asarray(o) for o in jout])
        _, jpb = jax.vjp(g, *(jnp.asarray(x) for x in p.leaves))
        jct = [np.asarray(c) for c in jpb(tuple(jnp.asarray(u) for u in us))]
    except Exception as e:  # JAX lacks this variant (keyword, shape, dtype)
        pytest.skip(f"JAX: {type(e).__name__}: {str(e)[:120]}")
    if len(jout) != len(p.diff):
        pytest.skip("JAX returns a different output structure")
    for k, (a, b) in enumerate(zip(jout, (p.plain[i] for i in p.diff), strict=True)):
        if np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=1e-9, atol=1e-9,
                                                          equal_nan=True):
            pytest.skip(f"JAX's value of output {k} differs from NumPy's (another convention)")
    try:
        _, ts = dr.jvp(p.g, p.leaves, vs)
        _, pb = dr.vjp(p.g, *p.leaves)
        cts = pb(tuple(us))
    except DualrevError as e:
        pytest.skip(f"dualrev refuses: {type(e).__name__}: {str(e)[:120]}")
    finite = [np.isfinite(p.plain[i]) for i in p.diff]
    if not any(np.any(f) for f in finite):
        pytest.skip("the function's value is nan or inf here: no derivative to compare")
    for k, (t, w, f) in enumerate(zip(ts, jt, finite, strict=True)):
        w = np.asarray(w)
        if np.any(np.isnan(w[f]) & ~np.isnan(np.asarray(t)[f])):
            # JAX's rule gives nan where the derivative exists (e.g. std of one element,
            # a constant): dualrev's finite value must then match finite differences
            CHECKS["jvp"](case)
            pytest.skip("JAX gives nan where dualrev's derivative is finite and matches "
                        "finite differences")
        assert_close(np.asarray(t)[f], w[f], 1e-8, f"tangent {k} vs JAX")
    if not all(np.all(f) for f in finite):
        pytest.skip("tangents compared where the value is finite; the pullback mixes in "
                    "the nan entries")
    for k, (c, w, v) in enumerate(zip(cts, jct, vs, strict=True)):
        got, want = np.sum(np.real(c * v)), np.sum(np.real(w * v))
        assert_close(got, want, 1e-8, f"<cotangent {k}, v> vs JAX")

"""JAX (x64) as a reference for dualrev's derivatives; tests using it are marked
``@pytest.mark.jax`` and skipped where jax is not installed."""

import numpy as np
import pytest


def jax_modules():
    """``(jax, jax.numpy)`` with 64-bit floats, or skip the calling test."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def jax_grad(f, *args, argnums=0):
    """JAX's gradient of ``f`` (written with jax.numpy) as NumPy arrays."""
    jax, _ = jax_modules()
    g = jax.grad(f, argnums=argnums)(*args)
    return jax.tree_util.tree_map(np.asarray, g)

# ruff: noqa: E501  (generated)
"""Placeholder until the first recording with JAX."""

RECORDED_WITH = {'numpy': '2.4', 'scipy': '1.17', 'jax': '0.10'}

JAX_OUTCOMES: dict[str, str] = {
}

"""Optional libraries in tests: ``need("dask")`` imports one, or skips the test saying
which extra installs it. Where ``DUALREV_REQUIRE_EXTRAS`` names the library (the nox
session ``extras`` names all it installs), a missing one fails instead: there a skip
would hide a broken install."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: the pip extra that installs each library
EXTRA_OF = {"dask": "dask", "dask.array": "dask", "distributed": "dask",
            "xarray": "xarray", "torch": "torch", "jax": "jax", "cupy": "cupy"}


def required() -> set[str]:
    """The libraries this run must have (``DUALREV_REQUIRE_EXTRAS``, comma-separated)."""
    names = os.environ.get("DUALREV_REQUIRE_EXTRAS", "")
    return {n.strip() for n in names.split(",") if n.strip()}


def need(name: str) -> ModuleType:
    """``import name``, or skip with the extra that installs it (fail where required)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if name.split(".")[0] in required():
            raise AssertionError(f"{name} is required in this run "
                                 f"(DUALREV_REQUIRE_EXTRAS) but does not import: {e}") from e
        extra = EXTRA_OF.get(name, name.split(".")[0])
        # (allow_module_level: need() is called at the top of a test module too)
        pytest.skip(f"{name} is not installed (pip install 'dualrev[{extra}]')",
                    allow_module_level=True)

"""tests/extras.py: a missing optional library skips, or fails where it is required."""

import pytest

from tests.extras import need


def test_missing_library_skips_naming_its_extra(monkeypatch):
    monkeypatch.delenv("DUALREV_REQUIRE_EXTRAS", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"dualrev\[nope_lib\]"):
        need("nope_lib")


def test_missing_required_library_fails(monkeypatch):
    monkeypatch.setenv("DUALREV_REQUIRE_EXTRAS", "dask, nope_lib")
    with pytest.raises(AssertionError, match="required in this run"):
        need("nope_lib")


def test_present_library_imports(monkeypatch):
    monkeypatch.setenv("DUALREV_REQUIRE_EXTRAS", "numpy")
    assert need("numpy").__name__ == "numpy"


def test_missing_library_skips_a_whole_module(monkeypatch):
    # need() is called at the top of test modules (tests/test_cupy.py): its skip must be
    # allowed there, or collection errors instead of skipping
    monkeypatch.delenv("DUALREV_REQUIRE_EXTRAS", raising=False)
    with pytest.raises(pytest.skip.Exception) as caught:
        need("nope_lib")
    assert caught.value.allow_module_level

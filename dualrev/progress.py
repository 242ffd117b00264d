"""How far a long ``dualrev.optimize`` run is: the ``progress=`` keyword's records and
displays.

A solver run with ``progress=`` on is watched by a ``Tracker`` that ``dualrev.optimize``
puts between SciPy and the functions it hands SciPy (the objective, its gradient, Hessian,
Jacobian) and, where SciPy reports iterations, into its ``callback``. It counts the
evaluations, keeps the value and the gradient's norm at the last point evaluated, and
sends a ``ProgressRecord`` per iteration (per evaluation where SciPy reports none) and a
final one to the sink: a callable of the user's, or a ``ProgressDisplay`` (``progress=True``):
one line on stderr rewritten in place on a terminal, plain lines now and then in a log,
one display updated in place in a Jupyter notebook.

Nothing here changes what SciPy computes: the wrappers return what they are given, and
the callback returns what the user's callback returns (``None`` without one).
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import inspect
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np
import scipy.optimize as so

from .errors import ProgressError

__all__ = ["ProgressDisplay", "ProgressRecord"]


@dataclasses.dataclass(frozen=True)
class ProgressRecord:
    """One report of a ``dualrev.optimize`` run with ``progress=`` a callable (or a
    ``ProgressDisplay``): where the solver is, what it has spent.

    Counts during the run are the evaluations dualrev made (SciPy's own counters where
    its callback reports them: ``trust-constr``); the final record has SciPy's ``nit``,
    ``nfev``, ``njev`` and ``nhev`` where the result reports them, so it agrees with
    ``res`` (SciPy counts some evaluations differently: trust-exact's ``njev`` leaves
    out the gradients that came with a value, 'lm' the Jacobian taken at ``x0``).

    Its fields (dualrev builds the records; these are also the constructor's arguments):

    Args:
        solver: the solver and its method, as ``"minimize(bfgs)"`` or
            ``"least_squares(trf)"``.
        event: ``"iteration"`` (SciPy finished an iteration: its callback ran),
            ``"evaluation"`` (a solver that reports no iterations evaluated the function:
            ``least_squares``, ``curve_fit``, ``root``, ``fsolve``, ``minimize_scalar``)
            or ``"done"`` (the run ended; sent once, last).
        iteration: iterations finished so far (SciPy's ``nit`` in the final record where
            the result has one); None for per-evaluation records.
        fun: the value at ``x``: the objective for ``minimize`` and
            ``minimize_scalar``; the cost ``0.5 * sum(rho(r**2))`` (SciPy's ``res.cost``,
            robust loss and ``f_scale`` included) for ``least_squares`` and
            ``curve_fit`` (its weighted residuals); the residual's 2-norm ``|F(x)|`` for
            ``root`` and ``fsolve``. None where no evaluation was made at ``x``.
        grad_norm: the first-order measure the method tests, at ``x``: the gradient's
            max-norm for ``minimize`` (2-norm for the trust-region methods ``trust-ncg``,
            ``trust-krylov``, ``trust-exact``, ``dogleg``; the projected gradient
            ``clip(x - g, lb, ub) - x``, L-BFGS-B's measure, with bounds; SciPy's
            ``optimality`` for ``trust-constr``); SciPy's ``optimality`` for
            ``least_squares`` (the max-norm of ``J^T rho' r``, scaled as 'trf' scales it
            at bounds); None for ``root``, ``fsolve``, ``minimize_scalar`` and where the
            gradient at ``x`` was not evaluated.
        nfev: evaluations of the function so far.
        njev: evaluations of the gradient (``minimize``) or Jacobian so far; a
            value-and-gradient pass counts in both.
        nhev: evaluations of the Hessian or Hessian-vector products so far.
        elapsed: seconds since the run started.
        x: the current point, in the structure of the user's ``x0`` (a copy).
        success: the result's ``success`` in the final record; None before.
        message: the result's ``message`` in the final record; None before.

    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> trace = []
        >>> res = optimize.minimize(lambda x: np.sum((x - 1.0) ** 4), np.zeros(2),
        ...                         method="newton-cg", progress=trace.append)
        >>> [r.event for r in trace][-2:], len(trace) == res.nit + 1
        (['iteration', 'done'], True)
        >>> trace[-1].iteration == res.nit, trace[-1].nfev == res.nfev, trace[-1].success
        (True, True, True)
    """

    solver: str
    event: str
    iteration: int | None
    fun: float | None
    grad_norm: float | None
    nfev: int
    njev: int
    nhev: int
    elapsed: float
    x: Any
    success: bool | None = None
    message: str | None = None


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def format_record(record: ProgressRecord, busy: str | None = None) -> str:
    """The one-line text of ``record`` that ``ProgressDisplay`` shows (``busy``: the
    evaluation under way, shown as ``evaluating <busy>...``)."""
    fun_label, grad_label = _LABELS.get(record.solver.split("(", 1)[0], ("f", "|g|"))
    # what a narrow terminal cuts comes last: the counts
    parts = [record.solver]
    if record.event == "done":
        parts.append("done")
    parts.append(f"{record.elapsed:.1f} s")
    if record.iteration is not None:
        parts.append(f"iteration {record.iteration}")
    parts.append(f"{fun_label} {_fmt(record.fun)}")
    if grad_label:
        parts.append(f"{grad_label} "
                     + ("-" if record.grad_norm is None else f"{record.grad_norm:.3g}"))
    counts = f"nfev {record.nfev}"
    if record.njev:
        counts += f" njev {record.njev}"
    if record.nhev:
        counts += f" nhev {record.nhev}"
    parts.append(counts)
    return "  ".join(parts) + _suffix(record, busy)


def _suffix(record: ProgressRecord, busy: str | None) -> str:
    if busy is not None:
        return f"  evaluating {busy}..."
    if record.event == "done" and record.message:
        message = " ".join(record.message.split())  # SciPy's may span lines
        return f"  ({'success' if record.success else 'failed'}: {message})"
    return ""


_LABELS = {"minimize": ("f", "|g|"), "minimize_scalar": ("f", ""),
           "least_squares": ("cost", "optimality"), "curve_fit": ("cost", "optimality"),
           "root": ("|F|", ""), "fsolve": ("|F|", "")}


def _ipython_display() -> Callable[..., Any] | None:
    """IPython's ``display`` where a Jupyter kernel runs this process; None otherwise.
    IPython is not imported unless it already is (a terminal never pays for it)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    try:
        display = importlib.import_module("IPython.display").display
    except (ImportError, AttributeError):
        return None
    return display if callable(display) else None


class _Line:
    """What a notebook's display shows: the line as HTML, or as text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return f"<pre style='margin: 0'>{html.escape(self.text)}</pre>"

    def __repr__(self) -> str:
        return self.text


class ProgressDisplay:
    """The display of ``progress=True``: where a solver is, as it runs.

    On a terminal (``file.isatty()``) one line, rewritten in place with ``\\r`` at most
    ``1 / interval`` times a second (and at the end); in a log (not a terminal: CI, a
    file) a plain line every ``log_interval`` seconds, the first and the last; in a
    Jupyter notebook (a running IPython kernel) one display, updated in place. Before an
    evaluation (the value and gradient, a Hessian, a Jacobian, the residuals) it shows
    ``evaluating Hessian...`` on a terminal or notebook when that evaluation is the
    first of its kind or the previous one of its kind took ``slow`` seconds or more (in a
    log: ``log_interval`` seconds or more), so a run busy for seconds in one evaluation
    shows what it is doing.

    Pass an instance as ``progress=`` to choose the stream or the cadence.

    Args:
        file: the stream written to; None: ``sys.stderr`` when the run starts.
        interval: the shortest time between two redraws of the live line, in seconds.
        log_interval: the shortest time between two lines in a log, in seconds.
        slow: an evaluation at least this long is announced before the next one of its
            kind (terminal and notebook).
        notebook: True/False forces the notebook display on or off; None: on when a
            running IPython kernel is found (without importing IPython) and no ``file``
            was given.
        clock: the clock the cadence reads (seconds; ``time.monotonic``).
    Example:
        >>> import io
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> from dualrev.progress import ProgressDisplay
        >>> log = io.StringIO()
        >>> res = optimize.minimize(lambda x: np.sum((x - 1.0) ** 2), np.zeros(3),
        ...                         progress=ProgressDisplay(log, notebook=False))
        >>> lines = log.getvalue().splitlines()  # a log: the first and the last line
        >>> len(lines), lines[0].startswith("minimize(bfgs)  "), "  iteration 1  " in lines[0]
        (2, True, True)
        >>> print(lines[-1].split("  ")[:2], lines[-1].split("  (")[1])
        ['minimize(bfgs)', 'done'] success: Optimization terminated successfully.)
    """

    def __init__(self, file: TextIO | None = None, *, interval: float = 0.1,
                 log_interval: float = 2.0, slow: float = 0.25,
                 notebook: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.file = file
        self.interval = interval
        self.log_interval = log_interval
        self.slow = slow
        self.notebook = notebook
        self.clock = clock
        self.mode = "log"
        self._stream: TextIO | None = None
        self._handle: Any = None
        self._display: Callable[..., Any] | None = None
        self._last_draw = -np.inf
        self._width = 0
        self._durations: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def start(self, solver: str) -> None:
        """Choose where to draw (notebook, terminal or log) for a run of ``solver``."""
        self._stream = self.file if self.file is not None else sys.stderr
        # a stream chosen by the caller is written to, even in a notebook
        look = self.notebook or (self.notebook is None and self.file is None)
        self._display = _ipython_display() if look else None
        if self.notebook and self._display is None:
            raise ProgressError("ProgressDisplay(notebook=True) found no running IPython "
                                "kernel: leave notebook=None to detect it")
        if self._display is not None:
            self.mode = "notebook"
        else:
            isatty = getattr(self._stream, "isatty", None)
            self.mode = "terminal" if callable(isatty) and isatty() else "log"
        self._handle = None
        self._last_draw = -np.inf
        self._width = 0
        self._durations.clear()
        self._started.clear()

    def due(self, final: bool = False) -> bool:
        """Whether a record now would be drawn (so that one is only built then)."""
        if final:
            return True
        gap = self.log_interval if self.mode == "log" else self.interval
        return self.clock() - self._last_draw >= gap

    def show(self, make: Callable[[], ProgressRecord], final: bool = False) -> None:
        """Draw the record ``make()`` if it is due (always when ``final``)."""
        if self.due(final):
            self._draw(make(), None, final)

    def busy(self, kind: str, make: Callable[[], ProgressRecord]) -> None:
        """An evaluation of ``kind`` (``"value and gradient"``, ``"Hessian"``,
        ``"Jacobian"``, ...) starts: announced if it is the first of its kind or the
        last one was slow."""
        now = self.clock()
        self._started[kind] = now
        last = self._durations.get(kind)
        if self.mode == "log":
            announce = last is not None and last >= self.log_interval
        else:
            # (not merely when a redraw is due: quick evaluations would make the line
            # flicker between "evaluating..." and the iterations)
            announce = last is None or last >= self.slow
        if announce:
            self._draw(make(), kind, False)

    def idle(self, kind: str) -> None:
        """The evaluation of ``kind`` announced by ``busy`` ended."""
        start = self._started.pop(kind, None)
        if start is not None:
            self._durations[kind] = self.clock() - start

    def close(self) -> None:
        """End a terminal's live line (a run that raised leaves it unfinished)."""
        if self.mode == "terminal" and self._width and self._stream is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0

    def _draw(self, record: ProgressRecord, busy: str | None, final: bool) -> None:
        self._last_draw = self.clock()
        text = format_record(record, busy)
        if self.mode == "notebook":
            assert self._display is not None
            if self._handle is None:
                self._handle = self._display(_Line(text), display_id=True)
            else:
                self._handle.update(_Line(text))
            return
        stream = self._stream
        assert stream is not None
        if self.mode == "terminal":
            # a line longer than the terminal wraps, and \r then rewrites only its end:
            # the numbers are cut, not what the solver is doing
            width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
            if len(text) > width:
                tail = _suffix(record, busy)[: width // 2]
                head = text[: len(text) - len(_suffix(record, busy))]
                text = head[: width - len(tail) - 3] + "..." + tail
            pad = " " * max(0, self._width - len(text))
            self._width = len(text)
            stream.write("\r" + text + pad + ("\n" if final else ""))
            if final:
                self._width = 0
        else:
            stream.write(text + "\n")
        stream.flush()


def _norm_inf(g: Any) -> float:
    g = np.asarray(g, dtype=float)
    return float(np.max(np.abs(g))) if g.size else 0.0


def _copy(x: Any) -> np.ndarray:
    return np.array(x, dtype=float, copy=True)


class Tracker:
    """Counts a solver's evaluations and reports its progress to ``sink``.

    Args:
        solver: the name shown (``"minimize(bfgs)"``).
        sink: a ``ProgressDisplay`` or a callable receiving ``ProgressRecord``s.
        unravel: the flat vector to the user's structure.
        per_evaluation: the kind of evaluation (``"fun"`` or ``"jac"``) after which a
            record is sent; None: per iteration (from the solver's callback).
    """

    def __init__(self, solver: str, sink: Any, unravel: Callable[[Any], Any], *,
                 per_evaluation: str | None = None) -> None:
        self.solver = solver
        self.display = sink if isinstance(sink, ProgressDisplay) else None
        self.sink = sink
        self.unravel = unravel
        self.per_evaluation = per_evaluation
        self.nfev = self.njev = self.nhev = 0
        self.iteration = 0
        # the last few points evaluated, [bytes of x, x, fun, grad_norm] each, newest
        # last (SciPy's callback may name a point evaluated before a rejected trial
        # step); grad_norm may be a function of x, computed only for a record
        self._points: list[list[Any]] = []
        self._t0 = time.perf_counter()
        if self.display is not None:
            self.display.start(solver)

    # -------------------------------------------------------------- the state at x
    def _at(self, x: Any, search: bool = True) -> list[Any]:
        """The entry of ``x`` among the points evaluated (``search``: among all, else
        the newest only), made the newest; a new point gets an entry with neither value
        nor gradient. Points are compared by their bytes: a few hundred nanoseconds,
        where ``np.array_equal`` costs microseconds on every evaluation."""
        x = np.asarray(x, dtype=float)
        key = x.tobytes()
        points = self._points
        last = len(points) - 1
        for i in range(last, -1 if search else max(last - 1, -1), -1):
            entry = points[i]
            if entry[0] == key:
                if i != last:
                    points.append(points.pop(i))
                return entry
        entry = [key, np.array(x), None, None]
        points.append(entry)
        if len(points) > 4:
            del points[0]
        return entry

    def evaluated(self, kind: str, x: Any, fun: Any = None, gnorm: Any = None) -> None:
        """An evaluation of ``kind`` (``"fun"``, ``"jac"``, ``"fun+jac"``, ``"hess"``)
        at ``x`` ended, giving the record's ``fun`` and/or ``grad_norm`` there
        (``gnorm``: a number, or a function of ``x`` computing it when a record needs
        it)."""
        entry = self._at(x, search=False)
        if "fun" in kind:
            self.nfev += 1
        if "jac" in kind:
            self.njev += 1
        if kind == "hess":
            self.nhev += 1
        if fun is not None:
            entry[2] = fun
        if gnorm is not None:
            entry[3] = gnorm
        if self.per_evaluation is not None and self.per_evaluation in kind:
            self._send("evaluation", None)

    def busy(self, kind: str) -> None:
        if self.display is not None:
            self.display.busy(kind, lambda: self._record("evaluation", None, known=True))

    def idle(self, kind: str) -> None:
        if self.display is not None:
            self.display.idle(kind)

    def timed(self, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, an evaluation of ``kind``, between ``busy`` and ``idle``."""
        self.busy(kind)
        try:
            return fn(*args)
        finally:
            self.idle(kind)

    def _record(self, event: str, iteration: int | None, known: bool = False,
                **final: Any) -> ProgressRecord:
        """The record at the newest point (``known``: the newest with a value, for a
        line shown while the solver evaluates at a point not yet known)."""
        x = fun = gnorm = None
        if self._points:
            entry = self._points[-1]
            if known:
                entry = next((e for e in reversed(self._points) if e[2] is not None), entry)
            _, x, fun, gnorm = entry
            if callable(gnorm):
                gnorm = entry[3] = gnorm(x)
            x = self.unravel(_copy(x))
        fields = {"fun": None if fun is None else float(fun),
                  "grad_norm": None if gnorm is None else float(gnorm), "nfev": self.nfev,
                  "njev": self.njev, "nhev": self.nhev}
        fields.update(final)
        return ProgressRecord(self.solver, event, iteration, elapsed=time.perf_counter()
                              - self._t0, x=x, **fields)

    def _send(self, event: str, iteration: int | None, **final: Any) -> None:
        make = lambda: self._record(event, iteration, **final)  # noqa: E731
        if self.display is not None:
            self.display.show(make, final=event == "done")
        else:
            self.sink(make())

    # -------------------------------------------------------------- iterations
    def iterated(self, x: Any, fun: Any = None, gnorm: float | None = None,
                 counts: dict[str, int] | None = None, nit: int | None = None) -> None:
        """SciPy finished an iteration at ``x``."""
        self.iteration = self.iteration + 1 if nit is None else int(nit)
        entry = self._at(x)
        if fun is not None:
            entry[2] = fun
        if gnorm is not None:
            entry[3] = gnorm
        if counts:
            self.nfev, self.njev, self.nhev = (int(counts.get(k) or 0)
                                               for k in ("nfev", "njev", "nhev"))
        self._send("iteration", self.iteration)

    def callback(self, user: Any, method: str) -> Callable[..., Any]:
        """The callback handed to SciPy: it reports the iteration, then runs the user's
        callback (if any) with the arguments SciPy gives it, returning what it returns.

        SciPy picks the calling convention from the callback's signature (one parameter
        named ``intermediate_result``: the ``OptimizeResult``; otherwise ``xk``, and
        ``(xk, state)`` for trust-constr): this one has the same convention as the
        user's, so the user's receives what SciPy would give it."""
        trust_constr = method == "trust-constr"

        def tick(first: Any, rest: tuple[Any, ...]) -> None:
            state = first if isinstance(first, so.OptimizeResult) else (
                rest[0] if trust_constr and rest and isinstance(rest[0], so.OptimizeResult)
                else None)
            x = state.x if state is not None and "x" in state else first
            fun = state.get("fun") if state is not None else None
            if trust_constr and state is not None:
                self.iterated(x, fun, state.get("optimality"),
                              {k: state.get(k) for k in ("nfev", "njev", "nhev")},
                              state.get("nit"))
            else:
                self.iterated(x, fun)

        if user is not None and not _takes_intermediate_result(user):
            def legacy(*args: Any, **kwargs: Any) -> Any:
                tick(args[0] if args else kwargs.get("xk"), args[1:])
                return user(*args, **kwargs)

            return legacy

        def progress_callback(intermediate_result: Any) -> Any:
            tick(intermediate_result, ())
            return None if user is None else user(intermediate_result=intermediate_result)

        return progress_callback

    def finished(self, *, iteration: int | None = None, fun: Any = None,
                 nfev: Any = None, njev: Any = None, nhev: Any = None,
                 gnorm: float | None = None, success: Any = None,
                 message: Any = None, x: Any = None) -> None:
        """The run ended: the final record at ``x``, with the result's counters where
        given, and its ``fun`` and ``gnorm`` where no evaluation at ``x`` gave them."""
        if x is not None:
            entry = self._at(x)
            if entry[2] is None and fun is not None:
                entry[2] = fun
            if entry[3] is None and gnorm is not None:
                entry[3] = gnorm
        final: dict[str, Any] = {}
        for key, value in (("nfev", nfev), ("njev", njev), ("nhev", nhev)):
            if value is not None:
                final[key] = int(value)
        final["success"] = None if success is None else bool(success)
        final["message"] = None if message is None else str(message)
        it = iteration if iteration is not None else (
            self.iteration if self.per_evaluation is None else None)
        self._send("done", None if it is None else int(it), **final)

    def aborted(self) -> None:
        """The run raised: end the display's live line."""
        if self.display is not None:
            self.display.close()


def _takes_intermediate_result(callback: Callable[..., Any]) -> bool:
    try:
        return set(inspect.signature(callback).parameters) == {"intermediate_result"}
    except (TypeError, ValueError):
        return False


def sink_of(progress: Any, where: str) -> Any:
    """The sink ``progress=`` asks for: None (off), a ``ProgressDisplay`` or a
    callable; anything else raises ``ProgressError``."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return ProgressDisplay()
    if isinstance(progress, ProgressDisplay) or callable(progress):
        return progress
    raise ProgressError(f"dualrev.optimize.{where}: progress={progress!r} is not "
                        "understood: pass True (a live line on stderr, or a display in a "
                        "notebook), a ProgressDisplay, a callable receiving "
                        "dualrev.progress.ProgressRecord, or False")

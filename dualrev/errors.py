"""Exceptions raised when something cannot be differentiated.

Each one says what went wrong and what to do instead: dualrev never answers an
unsupported operation with a silently wrong or silently zero derivative.
"""

from __future__ import annotations

from typing import Any


class DualrevError(TypeError):
    """Base class of dualrev's errors (a ``TypeError``, as NumPy raises for bad types).

    Every refusal of dualrev is one: ``NoDerivativeRule``, ``TracerConversionError``,
    ``InPlaceError``, ``EscapedTracerError``, ``BatchedValueError``, ``ClosureError``, and
    the transforms' own checks of their arguments (a non-scalar output for ``grad``,
    tangents of the wrong shape, a wrong ``in_axes``), each saying what to do instead.
    ``except DualrevError`` catches them all.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> dr.grad(lambda x: 2 * x)(np.ones(2))
        Traceback (most recent call last):
        ...
        dualrev.errors.DualrevError: dualrev.grad needs a function with a scalar output, ...
    """


class NoDerivativeRule(DualrevError):
    """A NumPy/SciPy function without a derivative rule was called on a traced value.

    The message names the function and the ways out: rewrite with supported functions
    (listed in docs/catalogue.md), give your function a rule (``custom_jvp``,
    ``custom_vjp``), teach dualrev the function (``Primitive`` with ``register_function`` /
    ``register_ufunc``), or drop the derivative on purpose (``stop_gradient``).

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> dr.grad(lambda x: np.sum(np.insert(x, 1, 0.0)))(np.ones(2))
        Traceback (most recent call last):
        ...
        dualrev.errors.NoDerivativeRule: dualrev has no derivative rule for numpy.insert, ...
    """

    def __init__(self, name: str, detail: str = "") -> None:
        msg = (
            f"dualrev has no derivative rule for {name}, which was called on a traced "
            f"value.{(' ' + detail) if detail else ''} Rewrite the computation with "
            "supported functions, or add a rule: wrap your code in a function decorated "
            "with @dualrev.custom_jvp or @dualrev.custom_vjp, or build a dualrev.Primitive "
            "and register it with dualrev.register_function / register_ufunc (see "
            "docs/extending.md). To drop the derivative on purpose, pass "
            "dualrev.stop_gradient(x) instead of x."
        )
        super().__init__(msg)


class TracerConversionError(DualrevError):
    """A traced value was coerced to a plain float or ndarray, which would drop its derivative.

    Raised by ``float(x)``, ``int(x)``, ``x.item()``, ``math.exp(x)``, ``np.asarray(x)``,
    ``np.array([a, b])`` of traced values, writing a traced value into a NumPy buffer
    (``out[i] = x``) and a plain array's method called with a traced argument
    (``a.dot(x)``). Where dualrev finds the construct on the user's line the message names it
    and its rewrite (``np.stack([...])``, ``np.exp``, ``a @ x``); comparisons (``x > 0``)
    and ``if`` on them are fine.

    Example:
        >>> import dualrev as dr
        >>> dr.grad(lambda x: float(x) ** 2)(3.0)
        Traceback (most recent call last):
        ...
        dualrev.errors.TracerConversionError: dualrev: ...
    """

    def __init__(self, what: str, detail: str | None = None) -> None:
        # detail: the construct on the user's line and its rewrite, where it was found
        # (dualrev.diagnose); else the usual causes, listed
        if detail is not None:
            super().__init__(detail + ". A traced value converted to a plain number or "
                             "NumPy array would silently drop its derivative, so dualrev "
                             f"refuses the conversion ({what}).")
            return
        msg = (
            f"dualrev: {what} was called on a traced value; converting it to a plain "
            "number or NumPy array would silently drop its derivative. Common causes: "
            "float(x) or math.exp(x)-style calls (use np.exp), x.item(), "
            "np.asarray(x)/np.array([...]) or np.max([a, b]) on traced values (stack them "
            "first: np.max(np.stack([a, b]))), writing "
            "a traced value into a NumPy array (out[i] = x), or a method of a plain "
            "array called with a traced argument (a.dot(x): write np.dot(a, x) or a @ x). "
            "Keep values traced: build "
            "arrays with np.stack/np.concatenate/np.where instead of filling a buffer, and "
            "use dualrev.stop_gradient(x) where you really want a constant. Comparisons "
            "(x > 0) and `if` on them are fine."
        )
        super().__init__(msg)


class InPlaceError(DualrevError):
    """An in-place write dualrev cannot record (``out=`` into a plain array,
    ``np.add.at``, a write through a reshape/transpose view, ...) was attempted on an
    array that carries a derivative.

    Writes into traced arrays (``x[idx] = v``, ``x += y``, ``x.fill(v)``, ``x.sort()``)
    are recorded; the rest get the functional form: ``x = x + y`` for ``out=``,
    ``dualrev.at(x)[idx].add(v)`` for ``np.add.at``, or ``np.where``,
    ``np.concatenate``, ``np.stack``.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def f(x):
        ...     v = x.reshape(2, 1)
        ...     v[0] = 1.0  # through a reshape view
        ...     return np.sum(x)
        >>> dr.grad(f)(np.ones(2))
        Traceback (most recent call last):
        ...
        dualrev.errors.InPlaceError: dualrev: a write into x.reshape(...) (a view of x, ...
    """

    def __init__(self, what: str, rewrite: str | None = None, *,
                 detail: str | None = None) -> None:
        if detail is not None:  # the user's statement and array, named (dualrev.diagnose)
            DualrevError.__init__(self, detail)
            return
        msg = (
            f"dualrev: {what} would write in place into an array that carries a "
            "derivative, which dualrev cannot record. (It records x[idx] = v, x += y and "
            "the other augmented assignments, x.fill(v) and x.sort() on traced arrays.) "
            + (rewrite[0].upper() + rewrite[1:] + "." if rewrite else
               "Use the functional form: x = x + y instead of an out= argument; for "
               "np.add.at write dualrev.at(x)[idx].add(v) (dualrev.at(x)[idx].set(v) for "
               "x[idx] = v), or build the new array with np.where(mask, v, x), "
               "np.concatenate or np.stack.")
        )
        super().__init__(msg)


class StaleViewError(InPlaceError):
    """A view of a traced array (``u[1:]``, ``u.T``) taken before the array was written
    in place was used after the write: NumPy's view would show the write, dualrev's
    traced value cannot, so it refuses rather than give a different value.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def f(x):
        ...     tail = x[1:]
        ...     x[1] = 0.0
        ...     return np.sum(tail)
        >>> dr.grad(f)(np.ones(3))
        Traceback (most recent call last):
        ...
        dualrev.errors.StaleViewError: dualrev: a view x[1:] taken before x[1] was written...
    """

    def __init__(self, what: str) -> None:
        msg = (
            f"dualrev: {what}, and was used after the write. A NumPy view would show "
            "the write; dualrev's traced view holds the values from before it, so it "
            "refuses rather than give a different value. Take the slice (or reshape, "
            "transpose, ...) again after the write, or take a copy (v = x[1:].copy()) "
            "before it if the old values are what you want."
        )
        DualrevError.__init__(self, msg)


#: what takes traced writes, and how to make such a buffer (PlainBufferError, diagnose)
BUFFER_ADVICE = (
    "While a transform runs, floating-point buffers made in your code by np.zeros, "
    "np.ones, np.empty, np.full, np.*_like and np.copy, and copies (u0.copy(), "
    "u0.astype(float)) of the arrays passed to the transform or read by the transformed "
    "function from its closure or globals, take traced writes; this buffer is not one "
    "(made before the transform started, through a name bound before it such as `from "
    "numpy import zeros`, with an integer or boolean dtype, by arithmetic or np.array "
    "on a plain array (u0 + 0, np.array(u0), np.asarray(u0)), or inside a library). "
    "Make it in the function: out = np.zeros(n) (or np.zeros_like(x), np.full(n, v)), "
    "or out = u0.copy() for a copy of an array the function was given; or collect the "
    "values in a list and np.stack them.")


class PlainBufferError(TracerConversionError):
    """A traced value was written into a plain NumPy array (``out[i] = x``) that dualrev
    does not trace, which can hold plain numbers only. While a transform runs, the
    floating-point buffers made in the function by ``np.zeros``, ``np.ones``,
    ``np.empty``, ``np.full``, the ``np.*_like`` functions and ``np.copy``, and the
    copies (``u0.copy()``) of the arrays passed to the transform or read from the
    function's closure or globals, take traced writes; a buffer made before the
    transform started, by a name bound before it (``from numpy import zeros``), of an
    integer or boolean dtype, or by a library does not. Make the buffer inside the
    function (``np.zeros(n)``, ``np.zeros_like(x)``) or collect the values and
    ``np.stack`` them.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from numpy import zeros  # bound before the transform: NumPy's own
        >>> def f(x):
        ...     out = zeros(2)
        ...     out[0] = x[1]
        ...     return np.sum(out)
        >>> dr.grad(f)(np.ones(2))
        Traceback (most recent call last):
        ...
        dualrev.errors.PlainBufferError: dualrev: `out[0] = x[1]` writes a traced value ...
        >>> def g(x):
        ...     out = np.zeros(2)  # made in the function: the write is recorded
        ...     out[0] = x[1]
        ...     return np.sum(out)
        >>> print(dr.grad(g)(np.ones(2)))
        [0. 1.]
    """

    def __init__(self, what: str, detail: str | None = None) -> None:
        if detail is not None:  # the statement and buffer, named (dualrev.diagnose)
            TracerConversionError.__init__(self, what, detail)
            return
        msg = (
            f"dualrev: {what} writes a traced value into a plain NumPy array, which can "
            "only hold plain numbers (the derivative would be lost). " + BUFFER_ADVICE
        )
        DualrevError.__init__(self, msg)


class EscapedTracerError(DualrevError):
    """A traced value was used after the transform that traced it had returned.

    It escaped the function being differentiated (stored in a list, a global, an object or
    a closure, or made by a generator resumed later); no derivative can flow through it any
    more. Return what you need (or pass it out with ``has_aux=True``), and store plain
    values (``dualrev.strip(x)``, ``dualrev.stop_gradient(x)``) where they must outlive
    the call.

    Example:
        >>> import dualrev as dr
        >>> kept = []
        >>> def f(x):
        ...     kept.append(x)
        ...     return x ** 2
        >>> _ = dr.grad(f)(3.0)
        >>> kept[0] + 1.0
        Traceback (most recent call last):
        ...
        dualrev.errors.EscapedTracerError: dualrev: a value traced by grad was used (in add) ...
    """

    def __init__(self, transform: str, operation: str) -> None:
        msg = (
            f"dualrev: a value traced by {transform} was used (in {operation}) after that "
            "transform returned. It escaped the function being differentiated: stored in a "
            "list, a global, an object or a closure, or produced by a generator that was "
            "resumed later, and it belongs to a derivative computation that has ended, so "
            "no derivative can flow through it any more. Keep traced values inside the "
            "function, return what you need as its output (or as auxiliary data with "
            "has_aux=True), and store plain values where they must outlive the call: "
            "dualrev.strip(x) or dualrev.stop_gradient(x)."
        )
        super().__init__(msg)


class BatchedValueError(DualrevError):
    """A batched value (under ``vmap``, or a batch of tangents) was used where a plain
    value is needed: a branch condition, an index, a mask, float()."""

    def __init__(self, what: str = "") -> None:
        msg = (
            f"dualrev.vmap: {what or 'a batched value'} was used where dualrev needs one "
            "plain value (a branch condition of `if`/`while`, an index, a mask, a shape, "
            "float()/int()), but under vmap it holds a different value per batch element. "
            "Write the choice with np.where(cond, a, b) instead of `if`, keep indices and "
            "shapes out of the mapped arguments (pass them with in_axes=None), or loop over "
            "the batch in Python."
        )
        super().__init__(msg)


class ForeignArrayError(DualrevError):
    """A value of another array library (a Dask or CuPy array, any NEP 18 array) reached
    an operation that would copy it to the host (or compute a lazy Dask value) without
    being asked to: dualrev refuses instead of converting silently. The message names
    the operation and the rewrite.

    Refused today: SciPy functions whose rule (or SciPy's own code under it) converts
    its arguments with ``np.asarray`` (``scipy.linalg.expm``, ``solve_triangular``,
    ``cho_solve``, ``lu_solve``); index arrays computed from such values (``np.sort``,
    masks ``x[x > 0]``); writes of such values into a NumPy buffer. See docs/gpu.md and
    docs/dask.md.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> class OnDevice(np.lib.mixins.NDArrayOperatorsMixin):  # a NEP 18 array
        ...     def __init__(self, a): self.a, self.shape, self.dtype = a, a.shape, a.dtype
        ...     def __array_ufunc__(self, uf, method, *xs, **kw):
        ...         return OnDevice(uf(*[x.a if isinstance(x, OnDevice) else x for x in xs]))
        ...     def __array_function__(self, func, types, args, kwargs): return NotImplemented
        >>> w = OnDevice(np.array([1.0, 2.0]))
        >>> dr.grad(lambda w: np.sum(w[w > 1.5]))(w)
        Traceback (most recent call last):
        ...
        dualrev.errors.ForeignArrayError: dualrev: an index array made from values ...
    """

    def __init__(self, value: Any, what: str, rewrite: str) -> None:
        name = f"{type(value).__module__}.{type(value).__name__}"
        super().__init__(
            f"dualrev: {what} would copy a {name} (shape {tuple(value.shape)}) to the host "
            f"(or compute it, for a lazy Dask array), which dualrev does not do silently. "
            f"{rewrite}")
        self.value_type = name


class SolverNotConvergedError(DualrevError):
    """A SciPy solver's solution was to be differentiated (by the implicit function
    theorem) but the solver did not converge: it reported failure, or the optimality
    condition F(x*, theta) = 0 does not hold closely enough at the point it returned
    (the Newton step from there is not small). The derivative of a point that is not the
    solution is not the solution's derivative; tighten the solver's tolerance or allow it
    more iterations, or start it closer to the solution.

    Example:
        >>> import numpy as np
        >>> import scipy.optimize as so
        >>> import dualrev as dr
        >>> f = lambda t: so.minimize(lambda x: np.sum((x - t) ** 4), np.zeros(2),
        ...                           options={"maxiter": 1}).x
        >>> dr.jacfwd(f)(2.0)
        Traceback (most recent call last):
        ...
        dualrev.errors.SolverNotConvergedError: dualrev: scipy.optimize.minimize: the ...
    """

    def __init__(self, solver: str, why: str) -> None:
        super().__init__(
            f"dualrev: {solver}: the solution is differentiated by the implicit function "
            f"theorem, which needs a converged solution, and this one is not: {why}. "
            "Tighten the solver's tolerance (tol=, gtol=, xtol=, ftol=) or raise its "
            "iteration limit (maxiter=, max_nfev=), or start it closer to the solution; "
            "to use the unconverged point as a constant, call the solver on "
            "dualrev.stop_gradient values.")


class SingularSolutionError(DualrevError):
    """A SciPy solver's solution was to be differentiated (by the implicit function
    theorem) but the Jacobian of its optimality condition with respect to the unknowns
    (the Hessian, for a minimum) is singular or ill-conditioned there: the solution is
    not isolated (a flat valley of minima, a double root), and its derivative with
    respect to the parameters does not exist or is not determined.

    Example:
        >>> import numpy as np
        >>> import scipy.optimize as so
        >>> import dualrev as dr
        >>> f = lambda t: so.minimize(lambda x: (x[0] + x[1] - t) ** 2, np.zeros(2)).x
        >>> dr.jacrev(f)(2.0)
        Traceback (most recent call last):
        ...
        dualrev.errors.SingularSolutionError: dualrev: scipy.optimize.minimize: the ...
    """

    def __init__(self, solver: str, cond: float) -> None:
        super().__init__(
            f"dualrev: {solver}: the solution is differentiated by the implicit function "
            f"theorem, dx*/dtheta = -(dF/dx)^-1 dF/dtheta, but dF/dx (the Hessian, for a "
            f"minimum) is singular or ill-conditioned at the solution (condition number "
            f"{cond:.3g}): the solution is not an isolated one (a valley of equal minima, "
            "a double root, parameters the data do not determine), so its derivative is "
            "not defined. Fix the redundant parameters (or add a regulariser) so that the "
            "solution is unique.")


class SparseOptionError(DualrevError, ValueError):
    """A sparse-derivative keyword of ``dualrev.optimize`` (``hess="sparse"``,
    ``hess_sparsity=``, a constraint's ``jac="sparse"``/``hess="sparse"``,
    ``least_squares``'s ``sparsity=``/``jac_sparsity=``) that cannot be honoured with the
    method or the other arguments given: the solver would drop it, densify it or compute
    a wrong product. Also a ``ValueError``, as SciPy raises for bad options.

    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> optimize.minimize(lambda x: np.sum(x ** 4), np.ones(3), method="bfgs",
        ...                   hess="sparse")
        Traceback (most recent call last):
        ...
        dualrev.errors.SparseOptionError: dualrev.optimize.minimize(method='bfgs', ...
    """

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"dualrev.optimize.{where}: {why}")


class ProgressError(DualrevError, ValueError):
    """A ``progress=`` value ``dualrev.optimize`` cannot use: it takes ``False``/``None``,
    ``True``, a ``dualrev.progress.ProgressDisplay`` or a callable receiving
    ``ProgressRecord``s. Also a ``ValueError``, as SciPy raises for bad options.

    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> optimize.minimize(lambda x: np.sum(x ** 2), np.ones(2), progress="yes")
        Traceback (most recent call last):
        ...
        dualrev.errors.ProgressError: dualrev.optimize.minimize: progress='yes' is not ...
    """


class ClosureError(DualrevError):
    """A callback handed to a SciPy routine (an integrand, a right-hand side, an event, an
    objective) uses a value being differentiated that dualrev cannot pass to it as an
    argument: a global, or a place ``dualrev.closure.lift`` does not reach. The message
    names the callback and the rewrite (take the value as a parameter, pass it through
    ``args=``).

    Example:
        >>> import dualrev as dr
        >>> from scipy.integrate import quad
        >>> K = 1.0
        >>> def area(k):
        ...     global K
        ...     K = k
        ...     return quad(lambda x: K * x, 0.0, 1.0)[0]
        >>> dr.grad(area)(2.0)
        Traceback (most recent call last):
        ...
        dualrev.errors.ClosureError: dualrev: the callback `area.<locals>.<lambda>` reads ...
    """


class CustomRuleError(DualrevError):
    """A ``custom_jvp`` or ``custom_vjp`` rule returned something that does not fit the
    function it describes (a cotangent or tangent of the wrong shape, count, structure or
    kind), or a ``custom_vjp`` whose backward rule is not linear in its cotangent met
    forward mode. The message names the function, the rule, the argument or output, and
    what was expected against what came back.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> @dr.custom_vjp
        ... def f(x):
        ...     return 2 * x
        >>> f.defvjp(lambda x: (f(x), None), lambda res, g: (np.ones(5),))
        >>> dr.grad(lambda x: np.sum(f(x)))(np.ones(3))
        Traceback (most recent call last):
        ...
        dualrev.errors.CustomRuleError: dualrev: the bwd rule of custom_vjp(f) returned ...
    """


class ProgramNotPortable(DualrevError):
    """A recorded program cannot be saved portably (``dualrev.save_program``): one of its
    operations is a primitive without a portable identity (a ``custom_jvp`` or
    ``custom_vjp`` of a user function, a ``Primitive`` created without ``key=``), or a
    parameter, constant or guard holds a value the format cannot describe without pickle
    (a function, an object). The message names the operation, where it sits in the
    program, and the way out.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from dualrev.program import Op, Program
        >>> scale = dr.Primitive("scale", lambda x, by: x * by(2.0))   # (no key=)
        >>> prog = Program(2, [0], {}, [Op(scale, (0,), {"by": abs}, 1)], [1])
        >>> dr.save_program(prog, "scaled.npz")
        Traceback (most recent call last):
        ...
        dualrev.errors.ProgramNotPortable: dualrev.save_program: step 0 (scale) ...
    """

    def __init__(self, what: str, rewrite: str) -> None:
        super().__init__(f"dualrev.save_program: {what}. {rewrite}")


class ProgramFormatError(DualrevError):
    """``dualrev.load_program`` refused a file: not a saved dualrev program, a format
    version this dualrev does not read, a primitive key this process does not know (its
    module not imported, or a newer dualrev's), a malformed entry, or an array that
    would need pickle to load. Nothing of the file runs before it is validated.

    Example:
        >>> import io
        >>> import dualrev as dr
        >>> dr.load_program(io.BytesIO(b"not a program"))
        Traceback (most recent call last):
        ...
        dualrev.errors.ProgramFormatError: dualrev.load_program: ...: not a NumPy .npz file ...
    """

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"dualrev.load_program: {path}: {what}")


class ProgramCallError(DualrevError):
    """A program was called with arguments it was not recorded for (another pytree
    structure, shape, dtype or static argument), or a value met one of its guards with
    another outcome (another branch of an ``if``). A loaded program has no function to
    record again from: call ``dr.replay`` on the function for such inputs (or record
    and save a program for them).

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = dr.replay(dr.grad(lambda x: np.sum(x ** 3)))
        >>> _ = f(np.ones(3))
        >>> program = f.programs[0]
        >>> print(program(np.array([1.0, 2.0, 3.0])))
        [ 3. 12. 27.]
        >>> program(np.ones(4))
        Traceback (most recent call last):
        ...
        dualrev.errors.ProgramCallError: dualrev: argument leaf 0 has shape (4,) ...
    """


class NotSavedError(RuntimeError):
    """A VJP rule used a value its primitive's ``saves`` declaration does not keep on the
    tape. This is a bug in the primitive (its declaration), not in the user's code, so it
    is not a ``DualrevError``: those are refusals, which test harnesses may skip."""

    def __init__(self, prim: str, what: str) -> None:
        msg = (
            f"dualrev: a VJP rule of {prim} used {what}, which the primitive's saves= "
            f"declaration does not keep on the tape. Add {what} to the declaration (or "
            "drop saves= to keep everything); see dualrev.Primitive."
        )
        super().__init__(msg)


def derivative_advice(prim: str | None, cause: str | None, mode: str) -> str:
    """Why the derivative of ``prim`` is not finite and what to write instead, by
    ``cause`` (see ``NonFiniteDerivativeWarning``; ``mode``: "reverse" or "forward"):
    the text the warning and ``NonFiniteError`` share."""
    guard = (f"np.where(m, {prim or 'f'}(np.where(m, x, safe_x)), 0.0), the "
             "\"double where\"")
    if cause == "overflow":
        advice = (f"The value of {prim} is itself inf or nan there (an overflow, a nan "
                  "input or an argument outside its domain): compute it in a stable form "
                  "(np.logaddexp, scipy.special.log1p/expm1/logsumexp/xlogy) or keep its "
                  "input inside the domain.")
    elif cause == "zero":
        advice = (f"A zero {'cotangent' if mode == 'reverse' else 'tangent'} met an "
                  f"infinite partial derivative of {prim} (0 * inf = nan) and no "
                  "selection masks it (the zero comes from a factor), so the derivative "
                  "is not determined there. If that branch is meant to be unused, "
                  f"select it away before the singular call too: {guard}.")
    elif cause == "lazy":
        advice = ("Call the transform on a computed slice of the data (NumPy arrays) to "
                  f"locate it, and guard a branch meant to be unused: {guard}.")
    else:
        advice = (f"The derivative of {prim or 'an operation'} does not exist there "
                  "(sqrt, log, abs, norm or a power at 0, arcsin at 1, ...): move the "
                  f"point off the singularity, or guard the input: {guard}.")
    return advice


class NonFiniteDerivativeWarning(UserWarning):
    """A derivative came out nan or inf although dualrev looked again.

    The transforms check each result once for non-finite values; only then do they run
    ``f`` again on a tape that notes each operation's source line and play it back with
    *strong zeros*: a (co)tangent element that no selection lets through (``np.where``,
    ``tril``/``triu``, indexing, a mask) is exactly zero, so ``0 * inf`` there gives 0 in
    both modes. What is still non-finite after that is a derivative that does not exist
    or overflows (``sqrt``, ``abs``, ``norm`` at 0, ``0 * inf`` from a zero factor, an
    overflowing ``exp``), and this warning names the operation where it first became
    non-finite, the user's line that called it and the rewrite. It is a warning, not an
    error, because an infinite derivative can be the right answer (``sqrt`` at 0 from the
    right) and optimizers handle it; ``warnings.simplefilter("error",
    dr.NonFiniteDerivativeWarning)`` makes it one. Its attributes ``prim``, ``where``
    (the user's ``file:line``), ``cause`` (``"zero"``: 0 * inf from a zero factor,
    ``"overflow"``, ``"singular"``; ``"lazy"``: found when a Dask result was computed,
    after the transform returned) and ``mode`` say the same for programs.

    Example:
        >>> import warnings
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.sum(np.tril(np.sqrt((x[:, None] - x[None, :]) ** 2), -1))
        >>> print(dr.grad(f)(np.array([1.0, 2.0, 3.0])))  # the masked diagonal: no nan
        [-2.  0.  2.]
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     g = dr.grad(lambda x: np.sum(np.sqrt(x) * np.sqrt(x)))(np.array([0.0, 1.0]))
        >>> print(g)
        [nan  1.]
        >>> w = [s.message for s in seen if s.category is dr.NonFiniteDerivativeWarning][0]
        >>> print(w.prim, w.cause)
        sqrt zero
    """

    def __init__(self, what: str, prim: str | None, where: str | None, cause: str | None,
                 mode: str) -> None:
        if cause == "lazy":
            at = ("it was found when the lazy (Dask) result was computed, after the "
                  "transform had returned, so dualrev could neither locate the operation nor "
                  "look again with strong zeros (a masked branch's 0 * inf stays nan)")
        elif prim is None:
            at = ("dualrev could not locate the operation (the function gave other values "
                  "when run again, or a custom_vjp function sits in a forward pass)")
        else:
            at = f"it first became non-finite in the {mode} rule of {prim}"
            at += f", called at {where}" if where else ""
        advice = derivative_advice(prim, cause, mode)
        if mode == "foreign":
            # (the careful replay builds its masks and probes in NumPy)
            at = ("the result is another library's array (CuPy, ...), and dualrev locates "
                  "the operation by a careful replay on NumPy arrays only: differentiate "
                  "the same function on a NumPy sample of the data to find it")
        super().__init__(f"dualrev.{what}: the derivative contains nan or inf; {at}. {advice}")
        self.what, self.prim, self.where, self.cause, self.mode = (
            what, prim, where, cause, mode)


class ReplayError(DualrevError):
    """``dualrev.replay`` met something it cannot record soundly (a traced value of an
    outer transform, nested replays, a value that escaped a recorded call).

    The message names the construct and the rewrite. Inside another transform
    (``dr.grad(dr.replay(g))``) a replayed function runs dynamically instead: that is
    no error.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> kept = []
        >>> def f(x, y):
        ...     kept.append(y)          # a staged value kept beyond its call
        ...     return np.sum(x * y)
        >>> g = dr.replay(dr.grad(f))
        >>> _ = g(np.ones(2), np.ones(2))
        >>> np.sin(kept[0])
        Traceback (most recent call last):
        ...
        dualrev.errors.ReplayError: dualrev.replay: a value staged by a finished ...
    """

    def __init__(self, what: str, rewrite: str = "") -> None:
        super().__init__(f"dualrev.replay: {what}" + (f"; {rewrite}" if rewrite else ""))


class ReplayWarning(UserWarning):
    """A replayed function records again and again (its guards keep failing, or what it
    reads keeps changing), or its recording froze a random draw.

    After ``max_records`` recordings of one signature the function runs dynamically for
    that signature (correct, without replay's speed); ``replay_fn.stats`` says which
    guard failed where.

    Example:
        >>> import warnings
        >>> import numpy as np
        >>> import dualrev as dr
        >>> g = dr.replay(dr.grad(lambda x: np.sum(x * np.random.rand(2))))
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     _ = g(np.ones(2))
        >>> print(seen[0].category.__name__)
        ReplayWarning
    """


class SparsityError(DualrevError, ValueError):
    """``dualrev.sparse.jacobian``/``hessian`` were given something they cannot use: a
    pattern whose shape does not match the function's, an unknown ``format``/``mode``/
    ``order``, a tuple ``argnums``, a pytree or complex argument, or traced arguments
    (a ``scipy.sparse`` result cannot carry derivatives). Also a ``ValueError``, as
    SciPy raises for bad argument values. The message names the rewrite.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> dr.sparse.jacobian(np.sin, sparsity=np.eye(3))(np.ones(4))
        Traceback (most recent call last):
        ...
        dualrev.errors.SparsityError: dualrev.sparse.jacobian: the sparsity pattern ...
    """


class NonStructuralSparsityWarning(UserWarning):
    """A detected sparsity pattern holds only at the given point: ``f`` took a decision
    on a traced value (``if x[0] > 0``, ``np.argmax(x)`` used as an index), so another
    input may take another branch with other non-zeros.

    ``dualrev.sparse.jacobian``/``hessian`` warn once, when they prepare, naming the
    lines (``notes``), and then detect the pattern again at every call (one cheap pass,
    recolouring only when the pattern changed), so each result is right at its own
    point. Pass ``sparsity=`` (a pattern that covers every input you use) to skip the
    detection; ``warnings.simplefilter("ignore", NonStructuralSparsityWarning)`` to
    silence it.

    Example:
        >>> import warnings
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: x * 2.0 if x[0] > 0 else x[::-1] * 3.0
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     J = dr.sparse.jacobian(f)
        ...     print(J(np.array([1.0, 2.0])).toarray())
        [[2. 0.]
         [0. 2.]]
        >>> print(seen[0].category.__name__)
        NonStructuralSparsityWarning
        >>> print(J(np.array([-1.0, 2.0])).toarray())  # detected again: the other branch
        [[0. 3.]
         [3. 0.]]
    """

    def __init__(self, what: str, notes: list[str]) -> None:
        listed = "; ".join(notes[:5]) + (f"; and {len(notes) - 5} more" if len(notes) > 5
                                         else "")
        super().__init__(
            f"dualrev.{what}: the sparsity pattern holds only at the given point ({listed}). "
            "It is detected again at every call (a pattern pass per call; the colouring is "
            "reused while the pattern stays the same). Pass sparsity= with a pattern that "
            "covers every input you use to skip that, or rewrite the decision with "
            "np.where so that the pattern is structural.")
        self.what, self.notes = what, list(notes)


class CheckpointError(DualrevError, ValueError):
    """``dualrev.checkpoint`` or ``dualrev.checkpoint_loop`` was called with something it
    cannot serve: an unknown schedule or a keyword of another schedule, a count below 1,
    a loop state that is not float arrays, a step that changes the state's structure or
    shapes, or a function reading a traced value that is neither an argument nor in its
    closure. The message names the function and the rewrite.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> dr.checkpoint_loop(lambda x: 2 * x, np.ones(2), 10, schedule="binomial")
        Traceback (most recent call last):
        ...
        dualrev.errors.CheckpointError: dualrev: checkpoint_loop(<lambda>): unknown schedule ...
    """


class CheckOptionError(DualrevError, ValueError):
    """``dualrev.testing.check_grads`` or one of ``dualrev.testing.strategies`` was called
    with an option it cannot honour: an unknown mode (``"forward"`` for ``"fwd"``), an
    order below 1, a non-positive ``eps``, a dtype without derivatives (integers, bool),
    bounds that do not fit the dtype, or the strategies' old ``(shape, low=, high=)``
    spelling. The message names the call and the spelling to use instead.

    Example:
        >>> import numpy as np
        >>> from dualrev.testing import check_grads
        >>> check_grads(np.sin, (np.ones(2),), 1, modes=("forward",))
        Traceback (most recent call last):
        ...
        dualrev.errors.CheckOptionError: dualrev.testing.check_grads: unknown mode 'forward' ...
    """


class NonLinearError(DualrevError):
    """``dualrev.linear_transpose`` was given a function that is not linear in its inputs.

    The message names the operation (and the user's line where it was called) that uses
    an input non-linearly: a product of two values that both depend on the inputs, a
    non-linear function of one (``np.sin(x)``, ``x ** 2``), a division by one, a
    comparison or rounding of one (``np.where(x > 0, x, 0)``), or a Python decision on
    one. As in JAX, an added constant is allowed (the transpose is that of the linear
    part). For a non-linear function, the transpose of its derivative at a point is
    ``dualrev.vjp(f, x)[1]``.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> dr.linear_transpose(np.sin, np.ones(2))
        Traceback (most recent call last):
        ...
        dualrev.errors.NonLinearError: dualrev.linear_transpose: the function is not linear ...
    """

    def __init__(self, what: str, where: str | None = None) -> None:
        at = f" (at {where})" if where else ""
        super().__init__(
            f"dualrev.linear_transpose: the function is not linear in its inputs: {what}"
            f"{at}. linear_transpose transposes linear maps only (sums, scaling by "
            "constants, products with constant matrices, indexing, reshapes, FFTs, "
            "writes into buffers); for the transpose of a non-linear function's derivative "
            "at a point use dualrev.vjp(f, x)[1], or dualrev.linearize(f, x) for its JVP")


class NonFiniteError(DualrevError, FloatingPointError):
    """The NaN debugging mode (``dualrev.debug_nans``) met the first operation that made
    a nan or an inf (not one it was given and passed on).

    A ``FloatingPointError`` as well (``except FloatingPointError`` works, as with JAX's
    ``jax_debug_nans``). The message names the operation, the user's line and its source,
    the first elements (``log at x[3] = -0.5``), whether its forward value was finite
    there, why (outside the domain, a pole, an overflow, an infinite derivative, 0 * inf,
    an input that was already nan) and what to write instead.

    Attributes:
        prim: the primitive's name (``"log"``), or None where the operation could not be
            located.
        where: the user's ``file:line`` that called it, or None.
        source: the text of that line, or None.
        pass_: ``"forward"`` (the values), ``"tangent"`` (forward-mode derivatives) or
            ``"backward"`` (reverse-mode cotangents).
        forward_finite: whether the operation's value was finite at those elements (for
            ``"forward"``: False).
        cause: ``"input"`` (an input was already inf or nan there: the value made of
            it, or the derivative's forward value), ``"domain"``, ``"pole"``,
            ``"overflow"``, ``"infinite"`` (a non-elementwise operation's inf: a singular
            matrix, a log of 0), ``"singular"`` (the derivative does not exist there),
            ``"zero"`` (0 * inf) or None.
        elements: the first few indices (tuples) where the value is not finite (under
            ``vmap`` the first index is the batch element).
        values: per element, the inputs' values there (``{"x": -0.5}``).
        what: the transform that ran (``"grad"``), where known.

    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> with dr.debug_nans():
        ...     try:
        ...         dr.grad(lambda x: np.sum(np.log(x)))(np.array([1.0, -0.5]))
        ...     except dr.NonFiniteError as e:
        ...         print(e.prim, e.pass_, e.elements, e.cause)
        log forward [(1,)] domain
    """

    def __init__(self, message: str, *, prim: str | None = None, where: str | None = None,
                 source: str | None = None, pass_: str = "forward",
                 forward_finite: bool = False, cause: str | None = None,
                 elements: list[tuple[int, ...]] | None = None,
                 values: list[dict[str, Any]] | None = None, what: str | None = None) -> None:
        super().__init__(message)
        self.prim = prim
        self.where = where
        self.source = source
        self.pass_ = pass_
        self.forward_finite = forward_finite
        self.cause = cause
        self.elements = elements if elements is not None else []
        self.values = values if values is not None else []
        self.what = what

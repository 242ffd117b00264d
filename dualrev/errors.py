"""Exceptions raised when something cannot be differentiated.

Each one says what went wrong and what to do instead: dualrev never answers an
unsupported operation with a silently wrong or silently zero derivative.
"""

from __future__ import annotations


class DualrevError(TypeError):
    """Base class of dualrev's errors (a ``TypeError``, as NumPy raises for bad types)."""


class NoDerivativeRule(DualrevError):
    """A NumPy/SciPy function without a derivative rule was called on a traced value."""

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
    """A traced value was coerced to a plain float or ndarray, which would drop its derivative."""

    def __init__(self, what: str) -> None:
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
    """An in-place write dualrev cannot record (``out=``, ``np.add.at``, a write through
    a reshape/transpose view, ...) was attempted on an array that carries a derivative."""

    def __init__(self, what: str, rewrite: str | None = None) -> None:
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
    traced value cannot."""

    def __init__(self, what: str) -> None:
        msg = (
            f"dualrev: {what}, and was used after the write. A NumPy view would show "
            "the write; dualrev's traced view holds the values from before it, so it "
            "refuses rather than give a different value. Take the slice (or reshape, "
            "transpose, ...) again after the write, or take a copy (v = x[1:].copy()) "
            "before it if the old values are what you want."
        )
        DualrevError.__init__(self, msg)


class PlainBufferError(TracerConversionError):
    """A traced value was written into a plain NumPy array (``out[i] = x``)."""

    def __init__(self, what: str) -> None:
        msg = (
            f"dualrev: {what} writes a traced value into a plain NumPy array, which can "
            "only hold plain numbers (the derivative would be lost). Make the buffer "
            "traced so the write is recorded: out = np.zeros_like(x) (or "
            "np.zeros_like(x, shape=(n, ...)), np.empty_like, np.full_like) with x a "
            "traced value, such as the argument being differentiated; or collect the "
            "values in a list and build the array at the end with np.stack(values)."
        )
        DualrevError.__init__(self, msg)


class EscapedTracerError(DualrevError):
    """A traced value was used after the transform that traced it had returned."""

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

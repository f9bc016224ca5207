"""The exercises' checks: the stub's fallback, the comparison, and a failure a learner reads in one glance.

Every notebook ends with an exercise: a stub the learner fills in, then one check cell that runs
:func:`exercise_or_solution` (the learner's function, or ``notebooks/solutions/<file>`` while the stub is
unchanged) and :func:`check_exercise` (compare with the library, say what is wrong). The check cell opens with
its own ``from saliency_lib import tutorial`` and ``tutorial.require(...)`` (:func:`require`): run first after a
kernel restart, it says which cells to run before it instead of ending in a bare ``NameError``. ``tutorial``
hands these names on, so the notebooks call them ``tutorial.check_exercise`` and so on.

A failed check raises :class:`ExerciseFailed`, an ``AssertionError`` that IPython shows as its message alone:
no traceback through this module, the useful line first and once.
"""

from __future__ import annotations

import runpy
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from ..io import paths

__all__ = ["SOLUTIONS", "ExerciseFailed", "learner_error", "exercise_or_solution", "check_exercise", "require"]

SOLUTIONS = paths.NOTEBOOK_DIR / "solutions"
# Frames in these folders are not the learner's: an error's line is the innermost frame outside them.
_NOT_YOURS = (str(Path(__file__).resolve().parents[1]), str(Path(torch.__file__).resolve().parent))


class ExerciseFailed(AssertionError):
    """A check that failed, shown by IPython and Jupyter as its message alone (no traceback).

    ``_render_traceback_`` is IPython's hook for an exception that draws itself: the learner reads
    ``ExerciseFailed: my_oise, 60 steps, seed 1: ...`` and nothing of the library's frames. Outside IPython it is
    an ordinary ``AssertionError`` (pytest and plain Python show the usual traceback).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def learner_error(name: str, error: BaseException, message: str = "") -> ExerciseFailed:
    """The one-line failure for an exception raised in a learner's function ``name``.

    ``"my_oise raised NameError: name 'grd' is not defined (line 7 of your code: mask = upsample(grd, size))"``:
    the exception, then the innermost line outside the library and torch (the learner's cell), so a learner sees
    where, without a traceback through our frames. ``message`` replaces the exception's own text (a known cause).
    """
    what = message or f"raised {type(error).__name__}: {error}"
    yours = [frame for frame in traceback.extract_tb(error.__traceback__) if not frame.filename.startswith(_NOT_YOURS)]
    where = ""
    if yours:
        frame = yours[-1]
        where = f" (line {frame.lineno} of your code: {frame.line})" if frame.line else f" (line {frame.lineno})"
    return ExerciseFailed(f"{name} {what}{where}")


# (function name, solution file) when the last exercise_or_solution call replaced a learner's untouched stub by our
# solution; None when it returned the learner's own function. check_exercise reads it to praise only the learner.
_STUB_IN_PLACE: tuple[str, str] | None = None


def exercise_or_solution(function: Callable, solution: str, *probe_args, **probe_kwargs) -> Callable:
    """The learner's ``function``, or the one of the same name in ``notebooks/solutions/<solution>``.

    The stub of every exercise returns ``None``; while it still does on ``function(*probe_args, **probe_kwargs)``
    the solution is used instead, so the notebook runs from top to bottom. ``%load solutions/<solution>`` in a
    notebook cell shows the solution. Until the next call, :func:`check_exercise` then says that it checked our
    solution, not the learner's code. A function that raises on the probe is the learner's own: it is returned,
    and the check's call reports the error. The probe leaves torch's global random state as it was.
    """
    global _STUB_IN_PLACE
    state = torch.get_rng_state()  # the probe is ours: it leaves torch's global random state as it was
    try:
        probe = function(*probe_args, **probe_kwargs)
    except Exception:  # not the stub (it returns None): the check's own call reports the error
        probe = NotImplemented
    finally:
        torch.set_rng_state(state)
    if probe is not None:
        _STUB_IN_PLACE = None
        return function
    _STUB_IN_PLACE = (function.__name__, solution)
    print(f"{function.__name__} is not written yet (it returns None): checking solutions/{solution} instead.")
    return runpy.run_path(str(SOLUTIONS / solution))[function.__name__]


def _close(got: torch.Tensor, want: torch.Tensor, atol: float, rtol: float) -> torch.Tensor:
    """Where ``got`` is within ``atol + rtol * |want|`` of ``want`` (boolean, their shape)."""
    return (got - want).abs() <= atol + rtol * want.abs()


def check_exercise(
    name: str,
    actual,
    expected=None,
    *,
    atol: float = 1e-6,
    rtol: float = 0.0,
    at_least: float | None = None,
    hint: str = "",
    known_mistakes: Mapping[str, object] | Callable[[], Mapping[str, object]] | None = None,
) -> None:
    """Check an exercise's result; print a one-line pass, or raise :class:`ExerciseFailed` saying what is wrong.

    Args:
        name: what is checked, e.g. ``"my_upsample, s=8, 28 x 28"`` (starts every message).
        actual: the learner's result: a tensor, an array or a number.
        expected: the library's result, compared element-wise with ``|actual - expected| <= atol + rtol *
            |expected|`` after checking the shape; ``None`` to skip.
        atol, rtol: the tolerances of that comparison.
        at_least: a lower bound for a single number (``actual >= at_least``); ``None`` to skip.
        hint: one line added to a failure message that names no known mistake (what to look at first).
        known_mistakes: the results of known wrong answers, keyed by the message that names the mistake (or a
            function returning them, called only when ``actual`` differs from ``expected``). When ``actual``
            equals one of them within the same tolerances, the failure says that message instead of the count of
            differing values.

    Raises:
        ExerciseFailed: the result is ``None``, has the wrong shape, is not finite, differs from ``expected`` or
            lies below ``at_least``; the message starts with ``name``.
    """

    def fail(message: str):
        raise ExerciseFailed(f"{name}: {message}" + (f"\nHint: {hint}" if hint else ""))

    if actual is None:
        fail("the function returned None (delete the `return None` line of the stub and return your result)")
    if expected is not None:
        got = torch.as_tensor(actual).detach().cpu().double()
        want = torch.as_tensor(expected).detach().cpu().double()
        if got.shape != want.shape:
            fail(f"shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        if not torch.isfinite(got).all():
            fail(f"{int((~torch.isfinite(got)).sum())} values are NaN or infinite")
        wrong = ~_close(got, want, atol, rtol)
        if wrong.any():
            differ = f"{int(wrong.sum())} of {got.numel()} values differ"
            mistakes = known_mistakes() if callable(known_mistakes) else (known_mistakes or {})
            for message, result in mistakes.items():
                result = torch.as_tensor(result).detach().cpu().double()
                if result.shape == got.shape and bool(_close(got, result, atol, rtol).all()):
                    raise ExerciseFailed(f"{name}: {differ}. {message}")
            error = (got - want).abs()
            where = tuple(int(i) for i in torch.unravel_index(error.argmax(), got.shape)) if got.dim() else ()
            at = f" at index {where}" if where else ""
            fail(
                f"{differ}; the largest difference is {float(error.max()):.3g}{at} (yours {float(got[where]):.6g}, "
                f"expected {float(want[where]):.6g}; tolerance atol={atol:g}, rtol={rtol:g})"
            )
    if at_least is not None:
        value = float(torch.as_tensor(actual).detach().cpu().double())
        if not value >= at_least:
            fail(f"{value:.4g}, expected at least {at_least:g}")
    if _STUB_IN_PLACE is None:
        print(f"Correct: {name}")
    else:
        function, solution = _STUB_IN_PLACE
        print(
            f"Not yours yet: {function} is still the stub (it returns None), so this checked our "
            f"solutions/{solution}, which gives the right result for {name}. Write your {function} above and run "
            "this cell again."
        )


def require(*names: str, scope: dict, run: str) -> None:
    """Stop a cell that is run before the cells it builds on, saying which cells to run first.

    Every exercise's check cell starts with it: after a kernel restart a learner may run that cell first, and
    without it the cell would end in a bare ``NameError`` about a variable of some earlier section::

        tutorial.require("my_upsample", "init_grid", scope=globals(),
                         run="section 1 (Setup) and the exercise cell above")

    Args:
        names: the names the cell uses that earlier cells define.
        scope: where to look for them: the notebook's ``globals()``.
        run: the cells that define them, as a learner finds them (section numbers and titles).

    Raises:
        NameError: when one of ``names`` is not defined in ``scope``; the message names the missing ones and
            ``run``.
    """
    missing = [name for name in names if name not in scope]
    if missing:
        listed = ", ".join(missing)
        raise NameError(
            f"{listed} {'is' if len(missing) == 1 else 'are'} not defined yet: this cell needs {run}. "
            "Run those cells first (JupyterLab: Run > Run All Above Selected Cell), then this cell "
            "again."
        )

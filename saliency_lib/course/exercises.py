"""The exercises' checks: the stub's fallback, the comparison, and a failure a learner reads in one glance.

Every notebook ends with an exercise: a stub the learner fills in, then one check cell that runs
:func:`exercise_or_solution` (the learner's function, or ``solutions/<file>`` while the stub is unchanged) and
:func:`check_exercise` (compare with the library, say what is wrong). The check cell opens with its own ``from
saliency_lib import tutorial`` and ``tutorial.require(...)`` (:func:`require`): run first after a kernel restart,
it says which cells to run before it instead of ending in a bare ``NameError``. ``tutorial`` hands these names
on, so the notebooks call them ``tutorial.check_exercise`` and so on.

What a learner reads, in every notebook: one line per cause, the message first, no traceback through the library.

- A failed check raises :class:`ExerciseFailed` (an ``AssertionError``), a cell run too early
  :class:`CellsNotRun` (a ``NameError``); IPython shows either as its message alone.
- An error raised in the learner's function becomes one :class:`ExerciseFailed` line naming the learner's line
  (:func:`learner_error`; :func:`exercise_or_solution` wraps the function so that every call does it), and a
  known cause of the error (``known_errors``) is named instead of the exception's text.
- A result that equals a known wrong answer (``known_mistakes``) is named, whatever its shape.
- An untouched stub is said once per check cell, however many cases the cell checks.
"""

from __future__ import annotations

import functools
import re
import runpy
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from ..io import paths

__all__ = [
    "SOLUTIONS",
    "SOLUTION_FOLDERS",
    "ExerciseFailed",
    "CellsNotRun",
    "learner_error",
    "learner_call",
    "exercise_or_solution",
    "check_exercise",
    "require",
]

SOLUTIONS = paths.NOTEBOOK_DIR / "solutions"
#: The folders, beside a notebook, where a copy of the notebooks keeps the solutions: ``solutions/`` (the repository,
#: ``make lab``'s ``work/``) or ``.solutions/`` (the learner edition, out of view). The first one found is used.
SOLUTION_FOLDERS = ("solutions", ".solutions")
# Frames in these folders are not the learner's (the library, torch, installed packages, Python's own modules):
# an error's line is the innermost frame outside them.
_NOT_YOURS = tuple(
    dict.fromkeys(
        str(Path(folder).resolve())
        for folder in (
            Path(__file__).resolve().parents[1],
            Path(torch.__file__).resolve().parent,
            *(sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib", "platstdlib")),
        )
    )
)


class _ShownAlone:
    """An exception that IPython and Jupyter show as its message alone, in one glance (no traceback).

    ``_render_traceback_`` is IPython's hook for an exception that draws itself: the learner reads
    ``ExerciseFailed: my_oise, 60 steps, seed 1: ...`` and nothing of the library's frames. Outside IPython it is
    an ordinary exception (pytest and plain Python show the usual traceback).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class ExerciseFailed(_ShownAlone, AssertionError):
    """A check that failed, or an error in the learner's function: one line, shown without a traceback."""


class CellsNotRun(_ShownAlone, NameError):
    """A check cell run before the cells it builds on (:func:`require`), shown without a traceback."""


def learner_error(name: str, error: BaseException, message: str = "") -> ExerciseFailed:
    """The one-line failure for an exception raised in a learner's function ``name``.

    ``"my_oise raised NameError: name 'grd' is not defined (line 7 of your code: mask = upsample(grd, size))"``:
    the exception, then the innermost line outside the library and torch (the learner's cell), so a learner sees
    where, without a traceback through our frames. ``message`` replaces the exception's own text (a known cause).
    """
    what = message or f"raised {type(error).__name__}: {error}"
    yours = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not str(Path(frame.filename).resolve()).startswith(_NOT_YOURS)
    ]
    where = ""
    if yours:
        frame = yours[-1]
        where = f" (line {frame.lineno} of your code: {frame.line})" if frame.line else f" (line {frame.lineno})"
    failed = ExerciseFailed(f"{name} {what}{where}")
    failed.error = error  # the learner's exception, for a caller that knows its cause (learner_call)
    return failed


def _known_cause(error: BaseException, known_errors: Mapping[str, str] | None) -> str:
    """The message of the first ``known_errors`` pattern found in ``"ErrorType: text"``, or ``""``."""
    text = f"{type(error).__name__}: {error}"
    return next((message for pattern, message in (known_errors or {}).items() if re.search(pattern, text)), "")


def learner_call(
    function: Callable, *args, name: str | None = None, known_errors: Mapping[str, str] | None = None, **kwargs
):
    """``function(*args, **kwargs)``, where an exception becomes one :class:`ExerciseFailed` line.

    Args:
        function: the learner's function.
        name: how the message names it (default: ``function.__name__``).
        known_errors: a regular expression searched in ``"ErrorType: message"`` -> what the failure says instead
            of the exception's text (a known cause: ``"stopped: p and uniform do not broadcast ..."``).

    Raises:
        ExerciseFailed: ``"my_f raised RuntimeError: ... (line 3 of your code: ...)"``, or the known cause.
    """
    name = name or getattr(function, "__name__", "your function")
    try:
        return function(*args, **kwargs)
    except ExerciseFailed as failed:  # already one line (the function was wrapped): named here if the cause is known
        error = getattr(failed, "error", None)
        if error is None or not _known_cause(error, known_errors):
            raise
        raise learner_error(name, error, _known_cause(error, known_errors)) from None
    except Exception as error:
        raise learner_error(name, error, _known_cause(error, known_errors)) from None


def _solution_file(solution: str) -> tuple[Path, str]:
    """The solution file and how ``%load`` names it from the kernel's folder (the notebook's, in Jupyter).

    A copy of the notebooks carries its solutions beside them (:data:`SOLUTION_FOLDERS`): the learner edition in
    ``.solutions/``, where ``solutions/`` does not exist; elsewhere the repository's ``notebooks/solutions/``.
    """
    for folder in SOLUTION_FOLDERS:
        beside = Path(folder) / solution
        if beside.is_file():
            return beside.resolve(), beside.as_posix()
    return SOLUTIONS / solution, str(SOLUTIONS / solution)


class _Stub:
    """The learner's untouched stub that :func:`exercise_or_solution` last replaced by our solution."""

    def __init__(self, function: str, load: str):
        self.function, self.load, self.said = function, load, False


# Set when the last exercise_or_solution call replaced a learner's untouched stub by our solution; None when it
# returned the learner's own function. check_exercise reads it to praise only the learner, and to say it once.
_STUB_IN_PLACE: _Stub | None = None


def exercise_or_solution(
    function: Callable, solution: str, *probe_args, known_errors: Mapping[str, str] | None = None, **probe_kwargs
) -> Callable:
    """The learner's ``function``, or the one of the same name in the solution file ``solution``.

    The stub of every exercise returns ``None``; while it still does on ``function(*probe_args, **probe_kwargs)``
    the solution is used instead, so the notebook runs from top to bottom. ``%load solutions/<solution>`` in a
    notebook cell shows the solution (``.solutions/`` in the learner edition: the file is looked for beside the
    notebook first, :data:`SOLUTION_FOLDERS`). Until the next call, :func:`check_exercise` then says, once, that it
    checked our solution, not the learner's code. A function that raises on the probe is the learner's own. The
    probe leaves torch's global random state as it was.

    Returns:
        The function to check, wrapped so that an error raised in it is one line (:func:`learner_call`, with
        ``known_errors``); ``__wrapped__`` is the function itself.
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
        chosen = function
    else:
        path, load = _solution_file(solution)
        _STUB_IN_PLACE = _Stub(function.__name__, load)
        chosen = runpy.run_path(str(path))[function.__name__]

    @functools.wraps(chosen)
    def checked(*args, **kwargs):
        return learner_call(chosen, *args, name=function.__name__, known_errors=known_errors, **kwargs)

    return checked


def _close(got: torch.Tensor, want: torch.Tensor, atol: float, rtol: float) -> torch.Tensor:
    """Where ``got`` is within ``atol + rtol * |want|`` of ``want`` (boolean, their shape)."""
    return (got - want).abs() <= atol + rtol * want.abs()


#: Known wrong answers: ``{message: result}``, or ``(message, result)`` pairs when one mistake has several forms.
Mistakes = Mapping[str, object] | Iterable[tuple[str, object]]


def check_exercise(
    name: str,
    actual,
    expected=None,
    *,
    atol: float = 1e-6,
    rtol: float = 0.0,
    at_least: float | None = None,
    hint: str = "",
    known_mistakes: Mistakes | Callable[[], Mistakes] | None = None,
) -> None:
    """Check an exercise's result; print a one-line pass, or raise :class:`ExerciseFailed` saying what is wrong.

    Args:
        name: what is checked, e.g. ``"my_upsample, s=8, 28 x 28"`` (starts every message).
        actual: the learner's result: a tensor, an array or a number.
        expected: the library's result, compared element-wise with ``|actual - expected| <= atol + rtol *
            |expected|`` after checking the shape; ``None`` to skip.
        atol, rtol: the tolerances of that comparison.
        at_least: a lower bound for a single number (``actual >= at_least``); ``None`` to skip.
        hint: added to a failure message that names no known mistake: where to look first, a pointer, not the
            answer (the answer stays behind ``%load``).
        known_mistakes: the results of known wrong answers, keyed by the message that names the mistake, or
            ``(message, result)`` pairs (or a function returning them, called only when ``actual`` is not right).
            When ``actual`` equals one of them within the same tolerances (its shape included), the failure says
            that message instead of the count of differing values.

    Raises:
        ExerciseFailed: the result is ``None``, has the wrong shape, is not finite, differs from ``expected`` or
            lies below ``at_least``; the message starts with ``name``.
    """

    def fail(message: str):
        raise ExerciseFailed(f"{name}: {message}" + (f" Hint: {hint}" if hint else ""))

    def named(got: torch.Tensor, what: str) -> None:  # fail with the known mistake that gives ``got``, if one does
        mistakes = known_mistakes() if callable(known_mistakes) else (known_mistakes or {})
        pairs = mistakes.items() if isinstance(mistakes, Mapping) else mistakes
        for message, result in pairs:
            result = torch.as_tensor(result).detach().cpu().double()
            if result.shape != got.shape:
                continue
            if bool((_close(got, result, atol, rtol) | (got.isnan() & result.isnan())).all()):
                raise ExerciseFailed(f"{name}: {what}. {message}")

    if actual is None:
        fail("the function returned None (delete the `return None` line of the stub and return your result)")
    if expected is not None:
        got = torch.as_tensor(actual).detach().cpu().double()
        want = torch.as_tensor(expected).detach().cpu().double()
        if got.shape != want.shape:
            shape = f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            named(got, shape)
            fail(shape)
        if not torch.isfinite(got).all():
            finite = f"{int((~torch.isfinite(got)).sum())} values are NaN or infinite"
            named(got, finite)
            fail(finite)
        wrong = ~_close(got, want, atol, rtol)
        if wrong.any():
            differ = f"{int(wrong.sum())} of {got.numel()} values differ"
            named(got, differ)
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
    elif not _STUB_IN_PLACE.said:  # once per check cell: its other cases passed with our solution too
        _STUB_IN_PLACE.said = True
        function, load = _STUB_IN_PLACE.function, _STUB_IN_PLACE.load
        print(
            f"Not yours yet: {function} is still the stub (it returns None), so this cell checked our solution "
            f"instead (`%load {load}` shows it), and it passes. Write your {function} above and run this cell again."
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
        CellsNotRun: a ``NameError``, when one of ``names`` is not defined in ``scope``; the message names the
            missing ones and ``run``, and IPython shows it without a traceback.
    """
    missing = [name for name in names if name not in scope]
    if missing:
        listed = ", ".join(missing)
        raise CellsNotRun(
            f"{listed} {'is' if len(missing) == 1 else 'are'} not defined yet: this cell needs {run}. "
            "Run those cells first (JupyterLab: Run > Run All Above Selected Cell), then this cell "
            "again."
        )

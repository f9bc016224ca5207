"""What every notebook shares: the setup cell, and the exercise at its end.

Every notebook's first code cell is ``cfg = tutorial.setup(seed=0)`` (fast mode, seed, device, paths, versions).
``SALIENCY_FAST=1`` (set by ``make test``) shrinks loops so nbval runs each notebook in seconds to a minute,
while the notebook's assert cells still check real results.

Every notebook ends with an exercise: a stub the learner fills in, then one check cell that runs
``tutorial.exercise_or_solution`` (the learner's function, or ``notebooks/solutions/<file>`` while the stub is
unchanged) and ``tutorial.check_exercise`` (compare with the library, say what is wrong).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import runpy
from typing import Callable

import torch

__all__ = ["fast_mode", "Setup", "setup", "REPO_ROOT", "SOLUTIONS", "exercise_or_solution", "check_exercise"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO_ROOT / "notebooks" / "solutions"


def fast_mode() -> bool:
    """True when ``SALIENCY_FAST`` is set to 1/true/yes (tests and CI)."""
    return os.environ.get("SALIENCY_FAST", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Setup:
    """What a notebook needs to know about where it runs."""

    fast: bool
    seed: int
    device: torch.device
    repo: Path
    data: Path
    results: Path

    def steps(self, full: int, fast: int) -> int:
        """``fast`` under test, ``full`` otherwise (e.g. ``cfg.steps(5000, 300)``)."""
        return fast if self.fast else full


def setup(seed: int = 0, threads: int | None = None, quiet: bool = False) -> Setup:
    """Seed torch, pick the device (CUDA when present, else CPU), cap threads, print versions.

    Args:
        seed: seed of torch's global generator (notebook-level code; the library takes ``seed=`` itself).
        threads: CPU threads for torch (default: leave as set by ``OMP_NUM_THREADS``/torch).
        quiet: print nothing.
    """
    from . import __version__
    from .assets import DATA_DIR

    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = Setup(fast=fast_mode(), seed=seed, device=device, repo=REPO_ROOT, data=DATA_DIR,
                   results=REPO_ROOT / "benchmarks" / "results")
    if not quiet:
        print(f"saliency_lib {__version__} | torch {torch.__version__} | Python {platform.python_version()} | "
              f"device {device} | {torch.get_num_threads()} threads | fast mode {'ON' if config.fast else 'off'}")
    return config


def exercise_or_solution(function: Callable, solution: str, *probe_args, **probe_kwargs) -> Callable:
    """The learner's ``function``, or the one of the same name in ``notebooks/solutions/<solution>``.

    The stub of every exercise returns ``None``; while it still does on ``function(*probe_args, **probe_kwargs)``
    the solution is used instead, so the notebook runs from top to bottom. ``%load solutions/<solution>`` in a
    notebook cell shows the solution.
    """
    if function(*probe_args, **probe_kwargs) is not None:
        return function
    print(f"{function.__name__} is not written yet (it returns None): checking solutions/{solution} instead.")
    return runpy.run_path(str(SOLUTIONS / solution))[function.__name__]


def check_exercise(name: str, actual, expected=None, *, atol: float = 1e-6, rtol: float = 0.0,
                   at_least: float | None = None, hint: str = "") -> None:
    """Check an exercise's result; print a one-line pass, or raise ``AssertionError`` saying what is wrong.

    Args:
        name: what is checked, e.g. ``"my_upsample, s=8, 28 x 28"`` (starts every message).
        actual: the learner's result: a tensor, an array or a number.
        expected: the library's result, compared element-wise with ``|actual - expected| <= atol + rtol *
            |expected|`` after checking the shape; ``None`` to skip.
        atol, rtol: the tolerances of that comparison.
        at_least: a lower bound for a single number (``actual >= at_least``); ``None`` to skip.
        hint: one line added to a failure message (what to look at first).
    """
    def fail(message: str):
        raise AssertionError(f"{name}: {message}" + (f"\nHint: {hint}" if hint else ""))

    if actual is None:
        fail("the function returned None (delete the `return None` line of the stub and return your result)")
    if expected is not None:
        got = torch.as_tensor(actual).detach().cpu().double()
        want = torch.as_tensor(expected).detach().cpu().double()
        if got.shape != want.shape:
            fail(f"shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        if not torch.isfinite(got).all():
            fail(f"{int((~torch.isfinite(got)).sum())} values are NaN or infinite")
        error = (got - want).abs()
        wrong = error > atol + rtol * want.abs()
        if wrong.any():
            where = tuple(int(i) for i in torch.unravel_index(error.argmax(), got.shape)) if got.dim() else ()
            at = f" at index {where}" if where else ""
            fail(f"{int(wrong.sum())} of {got.numel()} values differ; the largest difference is "
                 f"{float(error.max()):.3g}{at} (yours {float(got[where]):.6g}, expected {float(want[where]):.6g}; "
                 f"tolerance atol={atol:g}, rtol={rtol:g})")
    if at_least is not None:
        value = float(torch.as_tensor(actual).detach().cpu().double())
        if not value >= at_least:
            fail(f"{value:.4g}, expected at least {at_least:g}")
    print(f"Correct: {name}")

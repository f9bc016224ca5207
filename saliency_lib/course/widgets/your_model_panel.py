"""Notebook 06's panel: your image, your model, OISE, RISE and baselines side by side (:func:`your_model_panel`).

Pick a shipped photograph or upload a file (checked and decoded only by :mod:`saliency_lib.io.uploads`), pick a model
(EfficientNet-Lite0 offline, ResNet50 / VGG16 when their weights can be downloaded, or a model you add with
:meth:`YourModelPanel.add_model`), tick the methods, set the budget (model calls per image for OISE, RISE and
LIME), press Run. Every method gets a progress bar, Stop, and its time; Save writes the figure (PNG) and the maps
(``.npz``) next to the notebook and gives a link to each.

What the panel needs from a model (the recipe of notebook 06): a callable mapping ``(B, C, H, W)`` images in
[0, 1] to logits ``(B, n_classes)``; optionally ``.spec`` (:class:`saliency_lib.io.models.InputSpec`: the input
size the upload is resized to, and the masked-pixel reference, the dataset mean), ``.class_names``, ``.name``
and ``.gradcam_layer`` (Grad-CAM). Without ``.spec`` the image is RGB at ``default_size`` and masked pixels are 0.

Tests drive it without a browser: set ``.value``, call ``.run(block=True)`` / ``.stop()`` / ``.save()``, read
``maps``, ``seconds``, ``calls``, ``outcome``, ``error``.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path

import ipywidgets
import numpy as np
import torch
from torch import nn

from ...evaluation import baselines
from ...io import models, uploads
from ...method.core import class_probabilities
from ...method.oise_method import OISEStep, oise
from ...method.rise_method import rise
from .view import BackgroundRun, FigureView, StoppableModel, class_name, release_memory
from .your_model_output import (
    METHOD_LABELS,
    draw_maps,
    map_scale,
    results_table,
    saved_links,
    write_figure_and_maps,
)

__all__ = ["YourModelPanel", "your_model_panel", "MODEL_CHOICES", "METHOD_LABELS", "map_scale", "draw_maps"]

#: The models offered by name: dropdown label -> name for :func:`saliency_lib.io.models.load`.
MODEL_CHOICES = {
    "EfficientNet-Lite0 (ImageNet, offline)": "efficientnet-lite0",
    "ResNet50 (ImageNet, the paper's; downloads once)": "resnet50",
    "VGG16 (ImageNet, the paper's; downloads once)": "vgg16",
}
# Methods that only call the model (the fast runtime can serve them); the others differentiate through it.
_BLACK_BOX = ("oise", "rise", "occlusion", "lime")


class YourModelPanel(BackgroundRun, ipywidgets.VBox):
    """Notebook 06: your image and your model, explained by OISE, RISE and baselines side by side.

    Controls: ``image_choice`` (shipped photographs, then "uploaded: <name>"), ``upload`` (``FileUpload``),
    ``model_choice``, ``methods`` (``SelectMultiple`` of :data:`METHOD_LABELS` keys), ``budget`` (model calls per
    image for OISE, RISE and LIME), ``seed``, ``run_button``, ``stop_button``, ``save_button``.

    ``run()`` explains the current image in a background thread (``block=True``: in the caller's thread), one
    method after another, all for the class the model gives the clean image. ``stop()`` stops the running
    method after its current model call (OISE and RISE keep their partial map) and skips the rest.

    Results: ``image`` ``(1, C, H, W)``, ``model`` (the chosen model, ``None`` when unavailable), ``target``,
    ``maps`` (method -> ``(H, W)``), ``seconds``, ``calls`` (model calls per image), ``outcome`` (method ->
    "done", "stopped", "skipped" or "error: ..."), ``error`` (an exception that ended a run), ``saved`` (the
    paths of the last save), ``status_text`` (the status line as plain text), ``message`` (the last problem
    shown to the learner, e.g. a refused upload).
    """

    def __init__(
        self,
        photographs: dict | None = None,
        model_choices: dict | None = None,
        *,
        methods=("oise", "rise", "gradcam"),
        budget: int = 500,
        seed: int = 0,
        runtime: str = "auto",
        out_dir: str | Path = ".",
        default_size: int = 224,
        loader=None,
        dpi: int = 72,
        extra_models: dict | None = None,
    ):
        if photographs is None:
            from ...io.data import photographs as load_photographs

            images, names = load_photographs()
            photographs = dict(zip(names, images))
        self.photographs = dict(photographs)
        self.model_choices = dict(MODEL_CHOICES if model_choices is None else model_choices)
        self.runtime = runtime
        self.out_dir = Path(out_dir)
        self.default_size = default_size
        self.loader = loader if loader is not None else models.load
        self.dpi = dpi
        self._loaded: dict = {}  # label -> model (a name loaded once)
        self._fast: dict = {}  # label -> the model in the fast runtime (the methods of _BLACK_BOX)
        self._unavailable: dict = {}  # label -> why
        self.model = None
        self.source: tuple[str, bytes] | None = None
        self.uploaded: tuple[str, bytes] | None = None
        self.image = None
        self.target = None
        self.maps: dict = {}
        self.seconds: dict = {}
        self.calls: dict = {}
        self.outcome: dict = {}
        self.error = None
        self.saved: tuple[Path, Path] | None = None
        self.message = ""
        self.status_text = ""
        self.runs = 0
        self._stop, self._thread = threading.Event(), None

        wide = {"description_width": "70px"}
        self.image_choice = ipywidgets.Dropdown(
            options=list(self.photographs), description="image", style=wide, layout=ipywidgets.Layout(width="300px")
        )
        kinds = ",".join(f".{e}" for e in ("png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"))
        self.upload = ipywidgets.FileUpload(accept=kinds, multiple=False, description="Upload image")
        self.model_choice = ipywidgets.Dropdown(
            options=list(self.model_choices), description="model", style=wide, layout=ipywidgets.Layout(width="430px")
        )
        self.model_choice.add_class("saliency-model")
        self.model_info = ipywidgets.HTML("")
        self.methods = ipywidgets.SelectMultiple(
            options=[(label, key) for key, label in METHOD_LABELS.items()],
            value=tuple(methods),
            rows=len(METHOD_LABELS),
            description="methods",
            style=wide,
            layout=ipywidgets.Layout(width="300px"),
        )
        self.budget = ipywidgets.BoundedIntText(
            value=budget,
            min=1,
            max=100_000,
            step=100,
            description="budget",
            style=wide,
            layout=ipywidgets.Layout(width="190px"),
            tooltip="model calls per image for OISE, RISE and LIME",
        )
        self.seed = ipywidgets.BoundedIntText(
            value=seed, min=0, max=2**31 - 1, description="seed", style=wide, layout=ipywidgets.Layout(width="190px")
        )
        self.run_button = ipywidgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = ipywidgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.save_button = ipywidgets.Button(description="Save PNG + maps", icon="download", disabled=True)
        self.run_button.add_class("saliency-run")
        self.stop_button.add_class("saliency-stop")
        self.save_button.add_class("saliency-save")
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1, description="", style={"bar_color": "#2ca02c"})
        self.status = ipywidgets.HTML("Choose an image and a model, then press Run.")
        self.status.add_class("saliency-status")
        self.table = ipywidgets.HTML("")
        self.saved_links = ipywidgets.HTML("")
        self.view = FigureView((12.5, 3.4), dpi)

        self.upload.observe(lambda change: self._on_upload(), names="value")
        self.image_choice.observe(lambda change: self._on_image(), names="value")
        self.model_choice.observe(lambda change: self._on_model(), names="value")
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.save_button.on_click(lambda _: self.save())

        note = ipywidgets.HTML(
            "<small>budget = model calls per image for OISE, RISE and LIME; the others state theirs.</small>"
        )
        left = ipywidgets.VBox(
            [
                ipywidgets.HBox([self.image_choice, self.upload]),
                self.model_choice,
                self.model_info,
                ipywidgets.HBox([self.budget, self.seed]),
                note,
            ]
        )
        controls = ipywidgets.HBox([left, self.methods])
        buttons = ipywidgets.HBox([self.run_button, self.stop_button, self.save_button, self.progress])
        super().__init__([controls, buttons, self.status, self.table, self.view.widget, self.saved_links])
        for label, model in (extra_models or {}).items():
            self.add_model(label, model, select=False)
        self._on_model()

    # -- choosing --------------------------------------------------------------------------------------------
    def add_model(self, label: str, model, select: bool = True) -> None:
        """Offer ``model`` (your own: see the module docstring for what it needs) as ``label`` in the dropdown."""
        if not callable(model):
            raise TypeError(f"model: expected a callable (B, C, H, W) -> logits, got {type(model).__name__}")
        self.model_choices[label] = model
        self._loaded[label] = model
        self._fast.pop(label, None)
        self._unavailable.pop(label, None)
        if label not in self.model_choice.options:
            self.model_choice.options = [*self.model_choice.options, label]
        if select:
            self.model_choice.value = label  # the observer loads it

    def _say(self, text: str, problem: bool = False) -> None:
        self.status_text = text
        if problem:
            self.message = text
        colour = "#b00020" if problem else "inherit"
        self.status.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    def _on_model(self) -> None:
        label = self.model_choice.value
        self.model = None
        if label in self._unavailable:
            why = self._unavailable[label]
        else:
            choice = self.model_choices[label]
            try:
                if label not in self._loaded:
                    self._say(f"loading {label} ...")
                    self._loaded[label] = self.loader(choice) if isinstance(choice, str) else choice
                self.model = self._loaded[label]
                why = None
            except models.ModelUnavailableError as error:
                why = str(error)
                self._unavailable[label] = why
        if self.model is None:
            self.model_info.value = f"<b style='color:#b00020'>unavailable:</b> {html.escape(why)}"
            self._say(f"{label} is unavailable; choose another model.", problem=True)
            self.run_button.disabled = True
            self.image = None
            return
        spec = getattr(self.model, "spec", None)
        shape = (
            f"{spec.channels} x {spec.size[0]} x {spec.size[1]}, normalised with mean "
            f"({', '.join(f'{value:.3f}' for value in spec.mean)})"  # 0.498, not 0.4980392156862745
            if spec is not None
            else f"no .spec: RGB at {self.default_size} px, masked pixels 0"
        )
        names = getattr(self.model, "class_names", None)
        classes = f"{len(names)} classes" if names is not None else "no class names"
        self.model_info.value = f"<small>input {html.escape(shape)}; {classes}</small>"
        self.run_button.disabled = self.running
        self._prepare_image()

    def _on_upload(self) -> None:
        try:
            files = uploads.upload_contents(self.upload.value)
        except ValueError as error:
            self._say(str(error), problem=True)
            return
        if not files:
            return
        name, content = files[-1]
        self.upload_bytes(content, name)

    def upload_bytes(self, content: bytes, name: str = "upload") -> bool:
        """Use the bytes of an image file (what the upload box does); False, with the reason shown, if refused."""
        try:
            uploads.check_image(content)
        except ValueError as error:
            self._say(f"{name}: {error}", problem=True)
            return False
        self.uploaded = (name, bytes(content))
        label = f"uploaded: {name}"
        options = [o for o in self.image_choice.options if not str(o).startswith("uploaded: ")]
        self.image_choice.options = [*options, label]
        if self.image_choice.value == label:
            self._on_image()
        else:
            self.image_choice.value = label  # the observer decodes it
        return self.image is not None

    def _on_image(self) -> None:
        choice = self.image_choice.value
        if choice is None:
            return
        if str(choice).startswith("uploaded: ") and self.uploaded is not None:
            self.source = self.uploaded
        else:
            self.source = (str(choice), uploads.png_bytes(self.photographs[choice]))
        self._prepare_image()

    def _input_spec(self):
        spec = getattr(self.model, "spec", None)
        if spec is not None:
            return spec
        return models.InputSpec(
            channels=3, size=(self.default_size, self.default_size), mean=(0.0,) * 3, std=(1.0,) * 3
        )

    def _prepare_image(self) -> None:
        if self.source is None:
            self.source = (str(self.image_choice.value), uploads.png_bytes(self.photographs[self.image_choice.value]))
        if self.model is None:
            return
        name, content = self.source
        try:
            self.image = uploads.image_tensor(content, self._input_spec())
        except ValueError as error:
            self.image = None
            self._say(f"{name}: {error}", problem=True)
            return
        finally:
            release_memory()  # the decoded photo (192 MB at 48 megapixels) goes back to the system, not to a free list
        self.maps, self.seconds, self.calls, self.outcome = {}, {}, {}, {}
        self.save_button.disabled = True
        self.message = ""
        self._say(f"image {name}: {tuple(self.image.shape[1:])} for {self.model_choice.value}. Press Run.")
        with self.view.lock:
            draw_maps(self.view.figure, self.image[0], {}, title=f"{name}")
            self.view.update()

    def clear(self) -> None:
        """Forget the maps shown (e.g. a quick check's): the image alone again, no results table, ready for Run."""
        self._prepare_image()
        self._show_table()

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, block: bool = False) -> None:
        """Explain the current image with the ticked methods (ignored while a run is going or nothing to run)."""
        if self.running or self.model is None or self.image is None:
            if self.model is None or self.image is None:
                self._say("nothing to run: choose an available model and a readable image first.", problem=True)
            return
        self._stop.clear()
        self.error = None
        self.saved, self.saved_links.value = None, ""  # the last run's files describe other maps
        self.runs += 1
        self.progress.value, self.progress.bar_style = 0, ""
        self.run_button.disabled, self.stop_button.disabled, self.save_button.disabled = True, False, True
        args = (tuple(self.methods.value), int(self.budget.value), int(self.seed.value))
        # Stop (BackgroundRun.stop) ends the running method after its current model call and skips the rest.
        self.start_work(self._work, args, block=block, name="your-model-run")

    def _black_box(self):
        """The model the black-box methods (:data:`_BLACK_BOX`) call: the fast runtime for a model with ``.spec``
        when asked for, else itself."""
        label = self.model_choice.value
        if (
            self.runtime == "torch"
            or not isinstance(self.model, nn.Module)
            or getattr(self.model, "spec", None) is None
        ):
            return self.model
        if label not in self._fast:
            from ...io.runtime import fast_model

            self._say(f"preparing {label} for ONNX Runtime (once per model) ...")
            model = self.model
            if getattr(model, "name", None) is None:
                model.name = "your-model"
            self._fast[label] = fast_model(model, runtime=self.runtime)
        return self._fast[label]

    def _progress(self, done: int) -> None:
        self.progress.value = min(done, self.progress.max)

    def _work(self, methods: tuple, budget: int, seed: int) -> None:
        self.maps, self.seconds, self.calls, self.outcome = {}, {}, {}, {}
        image, label = self.image, self.model_choice.value
        summary = ""
        try:
            with torch.no_grad():
                probabilities = class_probabilities(self.model, image)[0]
            self.target = int(probabilities.argmax())
            target_name = class_name(self.model, self.target)
            model_name = getattr(self.model, "name", label)
            head = f"{model_name} on {self.source[0]}:\n{target_name} ({float(probabilities[self.target]):.0%})"
            for index, method in enumerate(methods):
                if self._stop.is_set():
                    self.outcome[method] = "skipped"
                    continue
                self._say(
                    f"run {self.runs}: {METHOD_LABELS.get(method, method)} ({index + 1} of {len(methods)}) "
                    f"for {target_name} ..."
                )
                self._run_method(method, image, budget, seed)
                release_memory()  # each method's peak starts from what the run holds, not from the last one's
                self._show_table()
            done = [m for m in methods if m in self.maps]
            notes = {
                m: f"{self.calls[m]} calls, {self.seconds[m]:.1f} s"
                + (" (stopped)" if self.outcome[m] == "stopped" else "")
                for m in done
            }
            with self.view.lock:
                draw_maps(self.view.figure, image[0], {m: self.maps[m] for m in done}, title=head, notes=notes)
                self.view.update()
            stopped = any(v in ("stopped", "skipped") for v in self.outcome.values())
            summary = f"run {self.runs}: {'stopped' if stopped else 'done'}: {' '.join(head.split())}; " + ", ".join(
                f"{METHOD_LABELS.get(m, m)} {self.seconds[m]:.1f} s" for m in done
            )
            self.save_button.disabled = not done
            self.progress.bar_style = "warning" if stopped else "success"
        except Exception as error:  # shown in the panel; the thread must not die silently
            self.error = error
            summary = f"run {self.runs}: error: {type(error).__name__}: {error}"
            self.progress.bar_style = "danger"
        finally:
            self._show_table()
            self.run_button.disabled, self.stop_button.disabled = False, True
            self._say(summary, problem=summary.startswith(f"run {self.runs}: error"))  # last: "done" = ready

    def _run_method(self, method: str, image: torch.Tensor, budget: int, seed: int) -> None:
        self.progress.value, self.progress.bar_style = 0, ""
        self.progress.max = budget if method in ("oise", "rise", "lime") else 1
        start = time.perf_counter()
        try:
            if method == "oise":

                def watch(state: OISEStep) -> None:
                    if state.step % max(1, state.n_steps // 50) == 0 or state.step == state.n_steps:
                        self.progress.value = state.step
                    if self._stop.is_set():
                        raise KeyboardInterrupt  # oise catches it and returns the partial map

                result = oise(self._black_box(), image, self.target, n_steps=budget, seed=seed, callback=watch)
                calls = result.model_calls
            else:
                inner = self._black_box() if method in _BLACK_BOX else self.model
                wrapped = StoppableModel(inner, self._stop, self._progress)
                if method == "rise":
                    result = rise(wrapped, image, self.target, n_masks=budget, seed=seed)
                else:
                    # The library's batch sizes (8 photographs a call, 2 with gradients) keep Binder's 2 GB: ONNX
                    # Runtime keeps its memory arena at the largest batch it has seen.
                    options = {"lime": {"n_samples": max(2, budget), "seed": seed}}.get(method, {})
                    result = baselines.attribute(method, wrapped, image, self.target, **options)
                calls = wrapped.calls
        except KeyboardInterrupt:  # a method without a partial result (the baselines)
            self.seconds[method] = time.perf_counter() - start
            self.outcome[method] = "stopped"
            return
        except Exception as error:  # one method failing (e.g. Grad-CAM without a layer) does not end the run
            self.seconds[method] = time.perf_counter() - start
            self.outcome[method] = f"error: {type(error).__name__}: {error}"
            return
        self.seconds[method] = time.perf_counter() - start
        self.maps[method] = result.maps[0].cpu()
        self.calls[method] = calls
        self.outcome[method] = "stopped" if result.partial else "done"
        self.progress.value = self.progress.max

    def _show_table(self) -> None:
        self.table.value = results_table(self.outcome, self.calls, self.seconds)

    # -- saving ----------------------------------------------------------------------------------------------
    def save(self, directory: str | Path | None = None, embed_limit: int = 4_000_000) -> tuple[Path, Path]:
        """Write the figure (PNG) and the maps (``.npz``) to ``directory`` (default: ``out_dir``).

        The ``.npz`` holds ``image`` ``(C, H, W)``, one ``(H, W)`` array per method (``map_<method>``), and
        ``methods``, ``seconds``, ``model_calls``, ``outcomes`` (each method's "done" or "stopped": a stopped map is
        partial), ``stopped`` (True when the run was stopped), ``target``, ``target_name``, ``model``,
        ``image_name``, ``budget``, ``seed``. Links to both appear under the figure (download links while the files
        are smaller than ``embed_limit`` bytes together, so they work in Voila and on Binder too); a new run clears
        them. Returns the two paths.
        """
        if not self.maps:
            raise RuntimeError("nothing to save yet: press Run first")
        directory = Path(directory) if directory is not None else self.out_dir
        model = str(getattr(self.model, "name", self.model_choice.value))
        methods = list(self.maps)
        with self.view.lock:
            self.saved = write_figure_and_maps(
                directory,
                (model, self.source[0]),
                self.view.figure,
                max(self.dpi, 110),
                image=self.image[0].numpy().astype(np.float32),
                **{f"map_{m}": self.maps[m].numpy().astype(np.float32) for m in methods},
                methods=np.array(methods),
                seconds=np.array([self.seconds[m] for m in methods]),
                model_calls=np.array([self.calls[m] for m in methods]),
                outcomes=np.array([self.outcome.get(m, "done") for m in methods]),
                stopped=np.array(any(v in ("stopped", "skipped") for v in self.outcome.values())),
                target=np.array(self.target),
                target_name=np.array(class_name(self.model, self.target)),
                model=np.array(model),
                image_name=np.array(self.source[0]),
                budget=np.array(int(self.budget.value)),
                seed=np.array(int(self.seed.value)),
            )
        self.saved_links.value = saved_links(directory, self.saved, embed_limit)
        return self.saved


def your_model_panel(photographs: dict | None = None, **options) -> YourModelPanel:
    """Notebook 06's panel: image (shipped or uploaded), model, methods, budget, seed, Run / Stop / Save.

    ``photographs``: name -> ``(3, H, W)`` in [0, 1] (default: :func:`saliency_lib.io.data.photographs`).
    Options: ``model_choices`` (label -> model name or model; default :data:`MODEL_CHOICES`), ``extra_models``
    (label -> your model, added after them), ``methods`` (ticked at the start), ``budget`` (500), ``seed`` (0),
    ``runtime`` (``"auto"``: OISE and RISE in ONNX Runtime when the model allows; ``"torch"``), ``out_dir``
    (where Save writes, default the working directory), ``default_size`` (224, for a model without ``.spec``),
    ``loader`` (name -> model, default :func:`saliency_lib.io.models.load`), ``dpi``.
    """
    return YourModelPanel(photographs, **options)

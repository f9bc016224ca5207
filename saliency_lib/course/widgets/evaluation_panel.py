"""Notebook 04's panel: pick an image and methods, explain, and watch the deletion/insertion curves being drawn as
pixels go; the factory is :func:`evaluation_panel`.
"""

from __future__ import annotations

import time

import ipywidgets
import torch

from ... import plots
from ...evaluation import baselines, metrics
from ...method import core, masks
from ...method.checks import check_images
from .view import FigureView

__all__ = ["EvaluationPanel", "evaluation_panel"]


class EvaluationPanel(ipywidgets.VBox):
    """Notebook 04: maps of several methods side by side, and their deletion/insertion curves step by step.

    Controls: ``image`` (index), ``methods`` (names of :data:`saliency_lib.evaluation.baselines.METHODS`), ``mode``
    (``"deletion"``/``"insertion"``), ``step`` (how many steps of pixels have gone), ``shown`` (whose perturbed
    image is drawn), ``run`` (button: explain and score). Results after a run: ``maps`` (method -> ``(H, W)``),
    ``curves`` (mode -> method -> ``(T,)``), ``auc`` (mode -> method -> float), ``fraction`` ``(T,)``,
    ``perturbed`` (the image drawn at ``step``), ``view`` (the figure).
    """

    def __init__(
        self,
        model,
        images,
        targets=None,
        *,
        names=None,
        methods=("oise", "rise", "gradcam"),
        options: dict | None = None,
        pixels_per_step: int | None = None,
        boxes=None,
        dpi: int = 72,
    ):
        images, _ = check_images(images, model)
        super().__init__()
        self.model, self.images, self.boxes = model, images, boxes
        self.targets = targets
        self.options = {
            "oise": {"n_steps": 500},
            "rise": {"n_masks": 500},
            "lime": {"n_samples": 100},
            **(options or {}),
        }
        height, width = images.shape[-2:]
        self.pixels_per_step = pixels_per_step or width
        n_curve_steps = -(-height * width // self.pixels_per_step)
        labels = names if names is not None else [f"image {i}" for i in range(len(images))]
        self.image = ipywidgets.Dropdown(
            options=[(str(n), i) for i, n in enumerate(labels)], value=0, description="image"
        )
        unknown = [m for m in methods if m not in baselines.METHODS]
        if unknown:
            raise ValueError(f"methods: unknown {unknown}; choose from {sorted(baselines.METHODS)}")
        self.methods = ipywidgets.SelectMultiple(
            options=list(baselines.METHODS),
            value=tuple(methods),
            description="methods",
            rows=min(8, len(baselines.METHODS)),
        )
        self.mode = ipywidgets.ToggleButtons(options=["deletion", "insertion"], value="deletion", description="curve")
        self.step = ipywidgets.IntSlider(
            value=n_curve_steps, min=0, max=n_curve_steps, description="steps gone", continuous_update=False
        )
        self.shown = ipywidgets.Dropdown(
            options=list(methods), value=methods[0] if methods else None, description="show"
        )
        self.run = ipywidgets.Button(description="Explain and score", button_style="primary", icon="play")
        self.status = ipywidgets.HTML("Pick an image and methods, then press <b>Explain and score</b>.")
        self.view = FigureView(figsize=(10.5, 5.2), dpi=dpi)
        self.maps: dict = {}
        self.curves: dict = {"deletion": {}, "insertion": {}}
        self.auc: dict = {"deletion": {}, "insertion": {}}
        self.fraction = None
        self.perturbed = None
        self._quiet = False  # set while compute() updates controls, so they do not each trigger a redraw
        self.run.on_click(lambda _: self.compute())
        for control in (self.mode, self.step, self.shown):
            control.observe(lambda _: self.redraw(), names="value")
        self.image.observe(lambda _: self._stale(), names="value")
        self.methods.observe(lambda _: self._stale(), names="value")
        self.children = [
            ipywidgets.HBox([self.image, self.methods, ipywidgets.VBox([self.mode, self.step, self.shown, self.run])]),
            self.status,
            self.view.widget,
        ]

    def _stale(self) -> None:
        self._quiet = True
        try:
            self.shown.options = list(self.methods.value)
        finally:
            self._quiet = False
        self.status.value = "Settings changed: press <b>Explain and score</b>."

    def _target(self):
        if self.targets is None:
            return None
        return [int(torch.as_tensor(self.targets).reshape(-1)[self.image.value])]

    def compute(self) -> None:
        """Explain the chosen image with every chosen method, then compute both curves (one batched call each)."""
        index = self.image.value
        image = self.images[index : index + 1]
        chosen = list(self.methods.value)
        if not chosen:
            self.status.value = "Choose at least one method."
            return
        self.maps, self.curves, self.auc = {}, {"deletion": {}, "insertion": {}}, {"deletion": {}, "insertion": {}}
        began = time.perf_counter()
        for name in chosen:
            self.status.value = f"Explaining with {name}..."
            result = baselines.attribute(name, self.model, image, self._target(), **self.options.get(name, {}))
            self.maps[name] = result.maps[0].cpu()
        stacked = torch.stack([self.maps[name] for name in chosen])
        repeated = image.expand(len(chosen), -1, -1, -1)
        target = self._target()
        targets = None if target is None else target * len(chosen)
        for mode in ("deletion", "insertion"):
            result = metrics.causal_curves(
                self.model, repeated, stacked, mode, targets, pixels_per_step=self.pixels_per_step
            )
            for row, name in enumerate(chosen):
                self.curves[mode][name] = result.curve[row].cpu()
                self.auc[mode][name] = float(result.auc[row])
            self.fraction = result.fraction
        self._quiet = True
        try:
            self.shown.options = chosen
            self.shown.value = chosen[0]
        finally:
            self._quiet = False
        self.status.value = (
            f"Done in {time.perf_counter() - began:.1f} s. Deletion AUC (lower is better): "
            + ", ".join(f"{k} {v:.3f}" for k, v in self.auc["deletion"].items())
            + ". Insertion AUC (higher is better): "
            + ", ".join(f"{k} {v:.3f}" for k, v in self.auc["insertion"].items())
            + "."
        )
        self.redraw()

    def _perturbed(self, name: str) -> torch.Tensor:
        """The chosen image after ``step`` steps of the current curve for method ``name``."""
        image = self.images[self.image.value : self.image.value + 1]
        height, width = image.shape[-2:]
        ranks = metrics.pixel_ranks(self.maps[name].unsqueeze(0))[0].view(height, width)
        changed = ranks < min(self.step.value * self.pixels_per_step, height * width)
        if self.mode.value == "deletion":
            filler = core.resolve_reference("mean", self.model, image)
            return masks.apply_mask(image, (~changed).float().unsqueeze(0), filler)[0]
        start = masks.blur(image)
        return masks.apply_mask(image, changed.float().unsqueeze(0), start)[0]

    def redraw(self) -> None:
        if not self.maps or self._quiet:
            return
        figure = self.view.figure
        figure.clear()
        figure.set_layout_engine("constrained")
        names = list(self.maps)
        grid = figure.add_gridspec(2, max(len(names) + 1, 3))
        index = self.image.value
        image = self.images[index]
        top = figure.add_subplot(grid[0, 0])
        plots.show_image(top, image, "image", axis_labels=False)
        if self.boxes is not None:
            plots.draw_box(top, self.boxes[index])
        drawn = None
        for col, name in enumerate(names, start=1):
            ax = figure.add_subplot(grid[0, col])
            plots.show_image(ax, image, axis_labels=False)
            drawn = ax.imshow(plots.scaled_map(self.maps[name]), cmap="jet", vmin=0, vmax=1, alpha=0.5)
            if self.boxes is not None:
                plots.draw_box(ax, self.boxes[index])
            ax.set_title(
                f"{name}\ndel {self.auc['deletion'][name]:.2f} / ins {self.auc['insertion'][name]:.2f}", fontsize=8
            )
        figure.colorbar(drawn, ax=figure.axes[1:], fraction=0.03, label="saliency (scaled)")
        shown = self.shown.value if self.shown.value in self.maps else names[0]
        self.perturbed = self._perturbed(shown)
        left = figure.add_subplot(grid[1, 0])
        plots.show_image(left, self.perturbed, f"{shown}: {self.step.value} steps", axis_labels=False)
        right = figure.add_subplot(grid[1, 1:])
        plots.plot_curves(right, self.fraction, self.curves[self.mode.value], self.mode.value, upto=self.step.value)
        self.view.render()


def evaluation_panel(model, images, targets=None, **options) -> EvaluationPanel:
    """Notebook 04's panel (see :class:`EvaluationPanel`); ``options`` go to its constructor."""
    return EvaluationPanel(model, images, targets, **options)

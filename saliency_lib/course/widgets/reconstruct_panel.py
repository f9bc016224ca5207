"""Notebook 05's panel: pick an image, the share of its salient region to regenerate and the number of variations,
press Run; the panel finds the salient region (OISE or RISE, cached per image), searches the DCGAN's latent space
(progress bar) and shows the variations with the classifier's class on each. Run works in the background; Stop
ends the search early and shows the variations found so far. The factory is :func:`reconstruct_panel`.
"""

from __future__ import annotations

import threading

import ipywidgets
import torch

from ... import plots
from ...generative import reconstruct
from ...method.checks import check_images
from ...method.oise_method import oise
from ...method.rise_method import rise
from .view import BackgroundRun, FigureView, StoppableModel, class_name

__all__ = ["ReconstructPanel", "reconstruct_panel"]


class ReconstructPanel(BackgroundRun, ipywidgets.VBox):
    """Notebook 05: acceptable variations of one image, on demand.

    Controls: ``image`` (index), ``source`` (``"oise"`` / ``"rise"``), ``fraction`` (share of the salient region
    regenerated, 0.5-0.9), ``n_variations`` (latent codes), ``n_iterations`` (optimiser steps of the latent search,
    :func:`~saliency_lib.generative.reconstruct.inpaint`'s ``n_iterations``); ``run_button``, ``stop_button``.
    Results after a run: ``region`` bool ``(H, W)``, ``result``
    (:class:`~saliency_lib.generative.reconstruct.InpaintResult`
    for the one image; ``result.partial`` after Stop), ``predicted`` int ``(K,)``, ``original_class``,
    ``agreement`` (share of variations keeping the class), ``runs``, ``error`` (the last run's exception, or
    None); ``maps`` caches the saliency map per ``(image, source)`` (a map stopped part-way is not cached).

    The Run button works in a background thread (the notebook stays live); ``run(block=True)`` runs in the
    caller's thread (scripts, tests); ``stop()`` (the Stop button) ends the run at its next step, ``wait()``
    waits for it.
    """

    def __init__(
        self,
        model,
        generator,
        discriminator,
        images,
        names=None,
        *,
        fraction: float = 0.5,
        n_variations: int = 16,
        n_iterations: int = 40,
        saliency_calls: int = 1000,
        region_share: float = 0.3,
        n_candidates: int = 1024,
        seed: int = 0,
        dpi: int = 72,
    ):
        images, _ = check_images(images, model)
        self.model, self.generator, self.discriminator = model, generator, discriminator
        self.images = images.detach().cpu()
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        if len(self.names) != len(images):
            raise ValueError(f"names must have one entry per image ({len(images)}), got {len(self.names)}")
        self.saliency_calls, self.region_share = saliency_calls, region_share
        self.n_candidates, self.seed = n_candidates, seed
        self.maps: dict = {}
        self.region = self.result = self.predicted = None
        self.original_class, self.agreement, self.runs, self.error = None, None, 0, None
        self._stop, self._thread = threading.Event(), None

        style = {"description_width": "90px"}
        self.image = ipywidgets.Dropdown(
            options=[(name, i) for i, name in enumerate(self.names)], value=0, description="image", style=style
        )
        self.source = ipywidgets.Dropdown(
            options=[("OISE (the paper's map)", "oise"), ("RISE", "rise")],
            value="oise",
            description="salient map",
            style=style,
        )
        self.fraction = ipywidgets.FloatSlider(
            value=fraction, min=0.1, max=1.0, step=0.1, readout_format=".0%", description="regenerate", style=style
        )
        self.n_variations = ipywidgets.IntSlider(
            value=n_variations, min=1, max=64, description="variations", style=style
        )
        self.n_iterations = ipywidgets.IntSlider(
            value=n_iterations, min=0, max=500, step=10, description="search steps", style=style
        )
        self.run_button = ipywidgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = ipywidgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.stop_button.add_class("saliency-stop")
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1, description="search")
        self.status = ipywidgets.HTML("Press Run.")
        self.view = FigureView((11.0, 3.4), dpi)
        self.run_button.on_click(lambda _button: self.run())
        self.stop_button.on_click(lambda _button: self.stop())
        buttons = ipywidgets.HBox([self.run_button, self.stop_button])
        controls = ipywidgets.HBox(
            [
                ipywidgets.VBox([self.image, self.source, self.fraction]),
                ipywidgets.VBox([self.n_variations, self.n_iterations, buttons]),
            ]
        )
        super().__init__([controls, ipywidgets.HBox([self.progress, self.status]), self.view.widget])

    def saliency(self, index: int, source: str) -> torch.Tensor | None:
        """The ``(H, W)`` map of image ``index`` by ``source`` (computed once, then cached); None when Stop ended
        its computation (nothing cached)."""
        key = (index, source)
        if key not in self.maps:
            image = self.images[index : index + 1]
            self.status.value = f"computing the {source.upper()} map ({self.saliency_calls} model calls)..."
            model = StoppableModel(self.model, self._stop)  # Stop ends oise/rise at their next model call
            try:
                if source == "oise":
                    found = oise(model, image, n_steps=self.saliency_calls, n_chains=8, seed=self.seed)
                else:
                    found = rise(model, image, n_masks=self.saliency_calls, seed=self.seed)
            except KeyboardInterrupt:  # stopped at the first call (the clean image), before the loop
                return None
            if found.partial:
                return None
            self.maps[key] = found.maps[0]
        return self.maps[key]

    def _check_stop(self, *_state) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # oise, rise and inpaint catch it and return what they have

    def run(self, block: bool = False) -> None:
        """Find the region, search the latent space, classify the variations and redraw (ignored while a run
        is running). ``block=False``: in a background thread (the Run button)."""
        if self.running:
            return
        self._stop.clear()
        self.error = None
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.bar_style = ""
        self.start_work(self._work, (self.image.value, self.source.value), block=block, name="reconstruct-run")

    def _work(self, index: int, source: str) -> None:
        try:
            image = self.images[index : index + 1]
            share = self.region_share * self.fraction.value
            saliency = self.saliency(index, source)
            if saliency is None:
                self.progress.bar_style = "warning"
                self.status.value = (
                    f"stopped while computing the {source.upper()} map: nothing to show; press Run to start again."
                )
                return
            self.region = reconstruct.salient_region(saliency, share)[0]
            codes, steps = self.n_variations.value, self.n_iterations.value
            self.progress.max, self.progress.value = max(1, steps), 0
            self.status.value = f"searching {codes} latent codes for {steps} steps..."

            def on_step(step, total, loss):
                self.progress.value = step
                self._check_stop()

            self.result = reconstruct.inpaint(
                self.generator,
                self.discriminator,
                image,
                self.region[None],
                n_codes=codes,
                n_iterations=steps,
                n_candidates=max(self.n_candidates, codes),
                seed=self.seed,
                callback=on_step,
            )
            self.original_class = int(reconstruct.predictions(self.model, image)[0])
            self.predicted = reconstruct.predictions(self.model, self.result.reconstructions[0])
            self.agreement = float((self.predicted == self.original_class).float().mean())
            stopped = self.result.partial
            self.progress.bar_style = "warning" if stopped else "success"
            if not stopped:
                self.progress.value = self.progress.max
            self.runs += 1
            searched = f"stopped after {self.result.steps_done} of {steps} search steps: " if stopped else ""
            self.status.value = (
                f"{searched}<b>{self.agreement:.0%}</b> of {codes} variations keep the class "
                f"'{class_name(self.model, self.original_class)}' "
                f"({int(self.region.sum())} pixels regenerated; final loss "
                f"{self.result.loss.mean():.2f}, start {self.result.initial_loss.mean():.2f})."
            )
            self._draw(image[0])
        except Exception as error:  # shown in the panel; a background thread must not die silently
            self.error = error
            self.progress.bar_style = "danger"
            self.status.value = f"error: {type(error).__name__}: {error}"
            if threading.current_thread() is threading.main_thread():
                raise
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _draw(self, image) -> None:
        figure = self.view.figure
        figure.clear()
        variations = self.result.reconstructions[0]
        n_cols = min(9, len(variations) + 1)
        n_rows = -(-(len(variations) + 1) // n_cols)
        figure.set_size_inches(1.25 * n_cols, 1.45 * n_rows)
        axes = figure.subplots(n_rows, n_cols, squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        plots.show_image(axes[0, 0], image, axis_labels=False)
        axes[0, 0].contour(self.region.float().numpy(), levels=[0.5], colors="red", linewidths=0.8)
        axes[0, 0].set_title(f"original\n{class_name(self.model, self.original_class)}", fontsize=8)
        for k, (variation, cls) in enumerate(zip(variations, self.predicted.tolist()), start=1):
            ax = axes.flat[k]
            plots.show_image(ax, variation, axis_labels=False)
            ax.set_title(
                f"#{k}\n{class_name(self.model, cls)}",
                fontsize=8,
                color="#2ca02c" if cls == self.original_class else "#d62728",
            )
        self.view.render()


def reconstruct_panel(model, generator, discriminator, images, names=None, **options) -> ReconstructPanel:
    """Notebook 05's panel (see :class:`ReconstructPanel`): image, salient map, fraction, variations, Run."""
    return ReconstructPanel(model, generator, discriminator, images, names, **options)

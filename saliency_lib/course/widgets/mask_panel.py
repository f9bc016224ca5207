"""Notebook 01's panel: one random mask, built step by step (grid, bilinear upsampling, shifted crop), and what
the model makes of it.

A VBox subclass made by a factory, :func:`mask_panel`. The panel counts its recomputations in ``panel.counts``,
so tests can check that a control recomputes only what depends on it.
"""

from __future__ import annotations

from collections import Counter

import ipywidgets
import torch
from matplotlib.patches import Rectangle

from ... import plots
from ...method import core, masks
from ...method.checks import check_images
from .view import FigureView, class_name, set_cell_lines, set_image

__all__ = ["MaskPanel", "mask_panel"]


class MaskPanel(ipywidgets.VBox):
    """Notebook 01: one random mask, built step by step, and what the model makes of it.

    Controls: ``image`` (index), ``grid_size``, ``p_init``, ``seed`` (the grid's random draw), ``shift_y`` /
    ``shift_x`` (the crop offset, in ``[0, cell)``). Results: ``grid`` ``(s, s)``, ``big_mask`` (the bilinear
    upsampling to ``(s+1)*cell``), ``mask`` ``(H, W)`` (the crop), ``masked`` ``(C, H, W)``, ``probability``
    (target class, masked image), ``clean_probability``, ``target``. ``counts`` counts each recomputation:
    the grid only when grid size, p_init or seed change; the mask when the grid or shift change; the masked image
    and the model call when the mask or image change.
    """

    def __init__(
        self,
        model,
        images,
        names=None,
        *,
        grid_size: int = 8,
        p_init: float = 0.3,
        seed: int = 0,
        target: int | None = None,
        reference="mean",
        dpi: int = 72,
    ):
        images, _ = check_images(images, model)
        self.model = model
        self.images = images.detach().cpu()
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        if len(self.names) != len(images):
            raise ValueError(f"names must have one entry per image ({len(images)}), got {len(self.names)}")
        self.fixed_target = target
        self.reference = core.resolve_reference(reference, model, self.images[:1])
        if isinstance(self.reference, torch.Tensor) and self.reference.dim() == 4:
            raise ValueError("reference: the panel takes 'mean', a number or a (C, 1, 1) tensor, not images")
        self.size = tuple(self.images.shape[-2:])
        self.counts = Counter()
        self._clean = {}  # image index -> clean class probabilities (n_classes,)
        self._keys = {}
        self._holding = False

        style = {"description_width": "70px"}
        self.image = ipywidgets.Dropdown(
            options=[(name, i) for i, name in enumerate(self.names)], value=0, description="image", style=style
        )
        self.grid_size = ipywidgets.IntSlider(
            value=grid_size, min=2, max=min(16, min(self.size)), description="grid size", style=style
        )
        self.p_init = ipywidgets.FloatSlider(
            value=p_init, min=0.0, max=1.0, step=0.05, description="p_init", style=style
        )
        self.seed = ipywidgets.IntSlider(value=seed, min=0, max=99, description="seed", style=style)
        cell = masks.cell_size(self.size, grid_size)
        self.shift_y = ipywidgets.IntSlider(value=0, min=0, max=cell[0] - 1, description="shift dy", style=style)
        self.shift_x = ipywidgets.IntSlider(value=0, min=0, max=cell[1] - 1, description="shift dx", style=style)
        self.readout = ipywidgets.HTML()
        self.view = FigureView((14.5, 3.1), dpi)
        self._build_figure()

        for control in (self.image, self.grid_size, self.p_init, self.seed, self.shift_y, self.shift_x):
            control.observe(self._on_change, names="value")
        controls = ipywidgets.HBox(
            [
                ipywidgets.VBox([self.image, self.grid_size, self.p_init]),
                ipywidgets.VBox([self.seed, self.shift_y, self.shift_x]),
            ]
        )
        super().__init__([controls, self.view.widget, self.readout])
        self.refresh()

    # -- computation, one stage at a time ---------------------------------------------------------------------
    def _stage(self, name: str, key) -> bool:
        if self._keys.get(name) == key:
            return False
        self._keys[name] = key
        self.counts[name] += 1
        return True

    def _clean_probabilities(self, index: int) -> torch.Tensor:
        if index not in self._clean:
            self._clean[index] = core.class_probabilities(self.model, self.images[index : index + 1])[0]
            self.counts["model_calls"] += 1
        return self._clean[index]

    def refresh(self) -> set:
        """Recompute the stages whose inputs changed, redraw them, render once. Returns the changed stages."""
        grid_key = (self.grid_size.value, round(self.p_init.value, 6), self.seed.value)
        changed = set()
        if self._stage("grid", grid_key):
            generator = core.seeded_generator(self.seed.value)
            self.grid = masks.init_grid(1, self.grid_size.value, float(self.p_init.value), generator=generator)[0]
            changed.add("grid")
        mask_key = (grid_key, self.shift_y.value, self.shift_x.value)
        if self._stage("mask", mask_key):
            size = self.grid_size.value
            cell = masks.cell_size(self.size, size)
            # The whole (s+1)*cell resize that masks.upsample crops from, to show where the window falls.
            rows = masks.interpolation_matrix(size, (size + 1) * cell[0])
            cols = masks.interpolation_matrix(size, (size + 1) * cell[1])
            self.big_mask = rows @ self.grid @ cols.T
            shifts = torch.tensor([[self.shift_y.value, self.shift_x.value]])
            self.mask = masks.upsample(self.grid[None], self.size, shifts=shifts)[0]
            changed.add("mask")
        index = self.image.value
        if self._stage("masked", (mask_key, index)):
            self.masked = masks.apply_mask(self.images[index : index + 1], self.mask[None], self.reference)[0]
            clean = self._clean_probabilities(index)
            self.target = int(clean.argmax()) if self.fixed_target is None else int(self.fixed_target)
            self.probabilities = core.class_probabilities(self.model, self.masked[None])[0]
            self.counts["model_calls"] += 1
            self.probability = float(self.probabilities[self.target])
            self.clean_probability = float(clean[self.target])
            changed.add("masked")
        if changed:
            self._draw(changed)
            self.view.update()
            self.counts["renders"] += 1
        return changed

    def _on_change(self, change) -> None:
        if self._holding:
            return
        if change["owner"] is self.grid_size:
            # A new grid size changes the cell, hence the shift range: update both sliders before recomputing.
            cell = masks.cell_size(self.size, self.grid_size.value)
            self._holding = True
            try:
                for slider, limit in ((self.shift_y, cell[0]), (self.shift_x, cell[1])):
                    slider.value = min(slider.value, limit - 1)
                    slider.max = limit - 1
            finally:
                self._holding = False
        self.refresh()

    # -- drawing ----------------------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        axes = self.view.figure.subplots(1, 5, width_ratios=[1, 1.15, 1, 1, 1.3])
        self.axes = axes
        size = self.grid_size.value
        self._grid_art = plots.show_grid(axes[0], torch.zeros(size, size), "1. random grid")
        self._big_art = plots.show_map(
            axes[1], torch.zeros(2, 2), "2. bilinear upsampling", cmap="gray", label="mask value"
        )
        self._window = Rectangle((0, 0), 1, 1, fill=False, edgecolor="tab:orange", linewidth=2, label="crop window")
        axes[1].add_patch(self._window)
        axes[1].legend(loc="lower left", fontsize=7, framealpha=0.8)
        self._mask_art = plots.show_map(
            axes[2], torch.zeros(self.size), "3. shifted crop = mask", cmap="gray", label="mask value"
        )
        self._masked_art = plots.show_image(axes[3], self.images[0], "4. what the model sees")

    def _draw(self, changed: set) -> None:
        axes = self.axes
        if "grid" in changed:
            size = self.grid_size.value
            set_image(self._grid_art, self.grid)
            set_cell_lines(axes[0], size)
            on = int(self.grid.sum())
            axes[0].set_title(f"1. random grid: {on}/{size * size} on")
        if "mask" in changed:
            set_image(self._big_art, self.big_mask)
            self._window.set_xy((self.shift_x.value - 0.5, self.shift_y.value - 0.5))
            self._window.set_width(self.size[1])
            self._window.set_height(self.size[0])
            axes[1].set_title(
                f"2. upsampled to {self.big_mask.shape[0]} px, crop at ({self.shift_y.value}, {self.shift_x.value})",
                fontsize=9,
            )
            set_image(self._mask_art, self.mask)
            axes[2].set_title(f"3. mask (mean {float(self.mask.mean()):.2f})")
        if "masked" in changed:
            set_image(self._masked_art, self.masked.clamp(0, 1))
            self._draw_probabilities(axes[4])
            name = class_name(self.model, self.target)
            self.readout.value = (
                f"<b>{self.names[self.image.value]}</b>: target class <b>{name}</b> &mdash; probability "
                f"{self.clean_probability:.3f} on the clean image, <b>{self.probability:.3f}</b> on the masked "
                f"image. {int(self.grid.sum())} of {self.grid.numel()} cells on; {float(self.mask.mean()):.0%} "
                f"of the image kept on average."
            )

    def _draw_probabilities(self, ax) -> None:
        ax.clear()
        probs = self.probabilities
        top = probs.topk(min(5, len(probs))).indices.tolist()
        if self.target not in top:
            top[-1] = self.target
        names = [class_name(self.model, k)[:16] for k in top]
        colours = ["tab:red" if k == self.target else "tab:gray" for k in top]
        ax.barh(range(len(top)), [float(probs[k]) for k in top], color=colours)
        ax.axvline(self.clean_probability, color="tab:red", linestyle="--", linewidth=1, label="target, clean image")
        ax.set_yticks(range(len(top)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("class probability (masked image)")
        ax.set_title(f"5. p(target) = {self.probability:.2f}")
        ax.legend(loc="lower right", fontsize=7)


def mask_panel(model, images, names=None, **options) -> MaskPanel:
    """Notebook 01's panel: grid size, p_init, seed, shift and image controls over grid, mask, masked image and
    the class probabilities. ``images`` ``(N, C, H, W)`` in [0, 1]; ``names`` one label per image. Options:
    ``grid_size`` (8), ``p_init`` (0.3), ``seed`` (0), ``target`` (None: top-1 of each clean image),
    ``reference`` ("mean", the paper's; or a pixel value), ``dpi``."""
    return MaskPanel(model, images, names, **options)

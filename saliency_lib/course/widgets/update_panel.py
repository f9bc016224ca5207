"""Notebook 02's panel: the pixel-weighting update, one step per click (Step / 10 steps / Reset).

Each step is the library's own pieces in the loop's order (:func:`~saliency_lib.method.masks.apply_mask`, one model
call, :func:`~saliency_lib.method.masks.update_grid`, :func:`~saliency_lib.method.masks.upsample`); the factory is
:func:`update_panel`.
"""

from __future__ import annotations

from collections import Counter

import ipywidgets
import numpy as np
import torch

from ... import plots
from ...method import core, masks
from ...method.checks import check_images
from .view import FigureView, class_name, set_cell_lines, set_image

__all__ = ["UpdatePanel", "update_panel"]


class UpdatePanel(ipywidgets.VBox):
    """Notebook 02: the pixel-weighting update, one step per click.

    Buttons: ``step_button`` (one step), ``ten_button`` (ten steps), ``reset_button``. Controls: ``seed``,
    ``p_init``, ``grid_size`` (each restarts the chain) and ``step_size`` (lr; used from the next step on).
    State: ``grid`` ``(s, s)`` (the grid to be evaluated next), ``mask`` ``(H, W)``, ``p_previous``,
    ``step``; ``history``: one dict per step (``step, p, delta_p, kept, dropped, turned_on, stayed_off,
    rescaled, on_scale, off_scale``; ``rescaled``: the cells with D > 0, turned on or kept from below 1);
    ``last``: the evaluated grid, mask, masked image and the new grid of the last step;
    ``saliency_sum`` ``(H, W)``. Each step is the library's own pieces in the loop's order
    (:func:`~saliency_lib.method.masks.apply_mask`, one model call, :func:`~saliency_lib.method.masks.update_grid`,
    :func:`~saliency_lib.method.masks.upsample`) drawing from ``generator``; ``oise`` runs the same rule but draws its
    random numbers in blocks, so the same seed gives a different (equally valid) chain.
    """

    def __init__(
        self,
        model,
        image,
        target: int | None = None,
        *,
        grid_size: int = 8,
        p_init: float = 0.3,
        step_size: float = 0.02,
        seed: int = 0,
        reference="mean",
        dpi: int = 72,
    ):
        images, _ = check_images(image, model)
        if len(images) != 1:
            raise ValueError(f"image must be one image (C, H, W) or (1, C, H, W), got a batch of {len(images)}")
        self.model = model
        self.image_tensor = images.detach().cpu()
        self.size = tuple(images.shape[-2:])
        self.reference = core.resolve_reference(reference, model, self.image_tensor)
        clean = core.class_probabilities(model, self.image_tensor)[0]
        self.target = int(clean.argmax()) if target is None else int(target)
        self.clean_probability = float(clean[self.target])
        self.counts = Counter({"model_calls": 1})

        style = {"description_width": "70px"}
        self.step_button = ipywidgets.Button(
            description="Step",
            button_style="primary",
            icon="step-forward",
            tooltip="evaluate the mask, apply the update rule once",
        )
        self.ten_button = ipywidgets.Button(description="10 steps", icon="fast-forward")
        self.reset_button = ipywidgets.Button(description="Reset", icon="undo")
        self.seed = ipywidgets.IntSlider(value=seed, min=0, max=99, description="seed", style=style)
        self.p_init = ipywidgets.FloatSlider(
            value=p_init, min=0.05, max=0.95, step=0.05, description="p_init", style=style
        )
        self.grid_size = ipywidgets.IntSlider(
            value=grid_size, min=2, max=min(16, min(self.size)), description="grid size", style=style
        )
        self.step_size = ipywidgets.FloatSlider(
            value=step_size, min=0.0, max=0.5, step=0.01, description="lr", style=style, readout_format=".2f"
        )
        self.readout = ipywidgets.HTML()
        self.view = FigureView((13, 6.4), dpi)
        self._build_figure()

        self.step_button.on_click(lambda _: self.advance(1))
        self.ten_button.on_click(lambda _: self.advance(10))
        self.reset_button.on_click(lambda _: self.reset())
        for control in (self.seed, self.p_init, self.grid_size):
            control.observe(lambda _: self.reset(), names="value")
        buttons = ipywidgets.HBox([self.step_button, self.ten_button, self.reset_button])
        controls = ipywidgets.HBox(
            [ipywidgets.VBox([self.seed, self.p_init]), ipywidgets.VBox([self.grid_size, self.step_size])]
        )
        super().__init__([buttons, controls, self.view.widget, self.readout])
        self.reset()

    def reset(self) -> None:
        """Start a new chain from ``seed``."""
        self.generator = core.seeded_generator(self.seed.value)
        self.grid = masks.init_grid(1, self.grid_size.value, float(self.p_init.value), generator=self.generator)
        self.mask = masks.upsample(self.grid, self.size, generator=self.generator)
        self.p_previous = torch.zeros(1)
        self.step = 0
        self.history = []
        self.last = None
        self.saliency_sum = torch.zeros(self.size)
        self.counts["resets"] += 1
        self._draw()

    def advance(self, n: int = 1) -> None:
        """Run ``n`` update steps (one model call each), then redraw once."""
        for _ in range(int(n)):
            masked = masks.apply_mask(self.image_tensor, self.mask, self.reference)
            p = core.class_probabilities(self.model, masked)[:, self.target]
            self.counts["model_calls"] += 1
            delta_p = p - self.p_previous
            lr = float(self.step_size.value)
            new_grid = masks.update_grid(self.grid, p, delta_p, step_size=lr, generator=self.generator)
            changes = masks.cell_changes(self.grid, new_grid)
            new_mask = masks.upsample(new_grid, self.size, generator=self.generator)
            self.saliency_sum += new_mask[0]
            self.step += 1
            rate = lr * abs(float(delta_p))
            self.history.append(
                {
                    "step": self.step,
                    "p": float(p),
                    "delta_p": float(delta_p),
                    "kept": int(changes.kept.sum()),
                    "dropped": int(changes.dropped.sum()),
                    "turned_on": int(changes.turned_on.sum()),
                    "stayed_off": int(changes.stayed_off.sum()),
                    # D > 0: on after the redraw, below 1 before (turned on, or kept after an earlier rescaling).
                    "rescaled": int(((new_grid > 0) & (self.grid < 1)).sum()),
                    "on_scale": 1 - rate,
                    "off_scale": 1 + rate,
                }
            )
            self.last = {"grid": self.grid[0], "mask": self.mask[0], "masked": masked[0], "new_grid": new_grid[0]}
            self.grid, self.mask, self.p_previous = new_grid, new_mask, p
        self._draw()

    @property
    def saliency(self) -> torch.Tensor:
        """The running map ``(H, W)``: :func:`saliency_lib.method.masks.postprocess` of the sum so far."""
        return masks.postprocess(self.saliency_sum[None])[0]

    def _build_figure(self) -> None:
        axes = self.view.figure.subplots(2, 4)
        self.axes = axes
        size = self.grid_size.value
        zeros = torch.zeros(size, size)
        self._masked_art = plots.show_image(axes[0, 0], self.image_tensor[0], "masked image")
        self._old_art = plots.show_grid(axes[0, 1], zeros, "grid evaluated")
        self._fate_art = plots.show_cell_changes(axes[0, 2], zeros, zeros, "what the update did")
        self._new_art = plots.show_grid(axes[0, 3], zeros, "new grid (values)")
        self._rule_marker = plots.plot_update_rule(axes[1, 0], 0.0)[0]
        (self._p_line,) = axes[1, 1].plot([], [], marker=".", label="p")
        (self._dp_line,) = axes[1, 1].plot([], [], marker=".", label="Δp")
        axes[1, 1].axhline(0, color="gray", linewidth=0.5)
        axes[1, 1].set_xlabel("step")
        axes[1, 1].set_ylabel("probability / change")
        axes[1, 1].set_title("p and Δp so far")
        axes[1, 1].legend(fontsize=8, loc="lower left")
        self._kept_dots = axes[1, 2].scatter(
            [], [], s=12, label="share of on cells kept", color=plots.CHANGE_COLOURS["kept"]
        )
        self._on_dots = axes[1, 2].scatter(
            [], [], s=12, label="share of off cells turned on", color=plots.CHANGE_COLOURS["turned on"]
        )
        axes[1, 2].plot([0, 1], [0, 1], color=plots.CHANGE_COLOURS["kept"], linewidth=0.6, linestyle=":")
        axes[1, 2].plot([0, 1], [1, 0], color=plots.CHANGE_COLOURS["turned on"], linewidth=0.6, linestyle=":")
        axes[1, 2].set_xlim(0, 1)
        axes[1, 2].set_ylim(-0.02, 1.02)
        axes[1, 2].set_xlabel("p")
        axes[1, 2].set_ylabel("share of cells")
        axes[1, 2].set_title("observed, one dot per step")
        axes[1, 2].legend(fontsize=7, loc="upper center")
        self._saliency_art = plots.overlay(
            axes[1, 3], self.image_tensor[0], torch.zeros(self.size), title="saliency so far"
        )

    def _draw(self) -> None:
        axes = self.axes
        name = class_name(self.model, self.target)
        size = self.grid_size.value
        for text in list(axes[0, 3].texts):
            text.remove()
        if self.last is None:
            masked = masks.apply_mask(self.image_tensor, self.mask, self.reference)[0]
            old = new = self.grid[0]
            set_image(self._masked_art, masked.clamp(0, 1))
            axes[0, 0].set_title("next masked image (step 0)")
            record = None
            self.readout.value = (
                f"Target class <b>{name}</b> (p = {self.clean_probability:.3f} on the clean "
                f"image). Step 0: nothing evaluated yet &mdash; press Step."
            )
        else:
            last, record = self.last, self.history[-1]
            old, new = last["grid"], last["new_grid"]
            set_image(self._masked_art, last["masked"].clamp(0, 1))
            axes[0, 0].set_title(f"step {record['step']}: p = {record['p']:.3f}")
            self.readout.value = (
                f"<b>Step {record['step']}</b> &mdash; target <b>{name}</b>: p = <b>{record['p']:.3f}</b>, "
                f"Δp = {record['delta_p']:+.3f}. On cells kept {record['kept']}, dropped {record['dropped']}; "
                f"off cells turned on {record['turned_on']}, stayed off {record['stayed_off']}. "
                f"Rescaling: the {record['rescaled']} cells whose value went up (D &gt; 0: the "
                f"{record['turned_on']} turned on and the {record['rescaled'] - record['turned_on']} kept cells "
                f"that were below 1) &times; (1 &minus; lr&middot;|Δp|) = {record['on_scale']:.4f}; dropped cells "
                f"&times; (1 + lr&middot;|Δp|) = {record['off_scale']:.4f} (they are 0, so stay 0)."
            )
        for art, ax, grid in ((self._old_art, axes[0, 1], old), (self._new_art, axes[0, 3], new)):
            set_image(art, grid)
            set_cell_lines(ax, size)
        fates = plots.cell_fates(old, new)
        set_image(self._fate_art, fates)
        set_cell_lines(axes[0, 2], size)
        for text, (k, label) in zip(axes[0, 2].get_legend().get_texts(), enumerate(plots.CHANGE_COLOURS)):
            text.set_text(f"{label} ({int((fates == k).sum())})")
        if record is not None:
            # Write the value into each cell that is neither 0 nor 1 (the rescaled ones).
            values = plots.as_array(new)
            for row, col in zip(*np.nonzero((values > 0) & (values < 1))):
                axes[0, 3].text(col, row, plots.cell_value_text(values[row, col]), ha="center", va="center", fontsize=6)
        axes[0, 3].set_title(f"new grid after step {self.step}" if record else "new grid (values)")
        self._rule_marker.set_xdata([record["p"]] * 2 if record else [0.0, 0.0])
        self.axes[1, 0].get_legend().get_texts()[-1].set_text(
            f"this step: p = {record['p']:.2f}" if record else "this step: p = ?"
        )
        self._rule_marker.set_visible(record is not None)
        steps = [h["step"] for h in self.history]
        self._p_line.set_data(steps, [h["p"] for h in self.history])
        self._dp_line.set_data(steps, [h["delta_p"] for h in self.history])
        axes[1, 1].set_xlim(0.5, max(2, self.step) + 0.5)
        low = min([0.0] + [h["delta_p"] for h in self.history])
        axes[1, 1].set_ylim(low - 0.05, 1.05)
        ps = np.array([h["p"] for h in self.history]).reshape(-1)
        kept = np.array([h["kept"] / max(1, h["kept"] + h["dropped"]) for h in self.history])
        on = np.array([h["turned_on"] / max(1, h["turned_on"] + h["stayed_off"]) for h in self.history])
        self._kept_dots.set_offsets(np.c_[ps, kept] if len(ps) else np.empty((0, 2)))
        self._on_dots.set_offsets(np.c_[ps, on] if len(ps) else np.empty((0, 2)))
        self._saliency_art.set_data(plots.as_array(self.saliency))
        axes[1, 3].set_title(f"saliency after {self.step} steps")
        self.view.update()
        self.counts["renders"] += 1


def update_panel(model, image, target: int | None = None, **options) -> UpdatePanel:
    """Notebook 02's panel: Step / 10 steps / Reset over one image ``(C, H, W)``. Options: ``grid_size`` (8),
    ``p_init`` (0.3), ``step_size`` (0.02), ``seed`` (0), ``reference`` ("mean", "blur", a number), ``dpi``."""
    return UpdatePanel(model, image, target, **options)

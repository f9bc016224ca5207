"""Widget panels for the notebooks, as factories that return the widget (no global state).

Tests drive them without a browser: set ``.value`` on the controls, call ``.click()`` on buttons, then read what
the panel computed (each panel exposes its controls and results as attributes). Widgets import the library,
never the other way round.

Sections (one per notebook; edit only your own, with targeted edits):
"""

from __future__ import annotations

import ipywidgets as widgets  # noqa: F401

__all__: list[str] = []

# ---- notebooks 01-03: mask initialization, pixel weighting, optimization loop --------------------------------
# Three panels, each a VBox subclass made by a factory: mask_panel (01), update_panel (02), loop_panel (03).
# Figures are drawn on a matplotlib Figure without pyplot and shown as PNG in an ipywidgets.Image, so they update
# in place and tests can read the bytes. Each panel counts its recomputations in ``panel.counts``, so tests can
# check that a control recomputes only what depends on it.

import io as _io
import threading as _threading
import time as _time
from collections import Counter as _Counter

import torch as _torch

from . import masks as _masks
from . import plots as _plots
from ._validate import check_images as _check_images
from ._validate import class_probabilities as _class_probabilities
from ._validate import resolve_reference as _resolve_reference
from .oise import OISEStep as _OISEStep
from .oise import Recorder as _Recorder
from .oise import oise as _oise

__all__ += ["FigureView", "MaskPanel", "UpdatePanel", "LoopPanel", "mask_panel", "update_panel", "loop_panel"]


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, where a front end can show the figure."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class FigureView:
    """A matplotlib ``Figure`` (no pyplot, no global state) shown as a PNG in an ``ipywidgets.Image``.

    Panels change the figure's artists, then call ``update()``. In a Jupyter kernel that renders the PNG at once
    (the image updates in place); elsewhere (tests, scripts) rendering waits until ``png`` is read, since nobody
    can see it. ``renders`` counts the PNGs made.
    """

    def __init__(self, figsize: tuple[float, float], dpi: int = 72, eager: bool | None = None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(self.figure)
        self.dpi = dpi
        self.eager = _in_kernel() if eager is None else eager
        self.widget = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.widget.add_class("saliency-figure")
        self.renders = 0
        self.dirty = True
        self._png = b""
        self._lock = _threading.RLock()

    def update(self) -> None:
        """The figure changed: render now when someone may be looking, else on the next read of ``png``."""
        self.dirty = True
        if self.eager:
            self.render()

    @property
    def png(self) -> bytes:
        """The current figure as PNG bytes (rendered first if it changed)."""
        if self.dirty:
            self.render()
        return self._png

    def render(self) -> bytes:
        with self._lock:
            buffer = _io.BytesIO()
            self.figure.savefig(buffer, format="png", dpi=self.dpi)
            if self.renders == 0:
                # Lay out once: later frames only change data and titles, and the layout pass costs as much as
                # drawing.
                self.figure.set_layout_engine("none")
            self._png = buffer.getvalue()
            self.widget.value = self._png
            self.renders += 1
            self.dirty = False
            return self._png


def _set_image(artist, array) -> None:
    """Replace an ``AxesImage``'s data, resizing its extent and axes limits when the shape changed."""
    array = _plots.as_array(array)
    height, width = array.shape[:2]
    artist.set_data(array)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    if tuple(artist.get_extent()) != extent:
        artist.set_extent(extent)
        artist.axes.set_xlim(extent[0], extent[1])
        artist.axes.set_ylim(extent[2], extent[3])


def _set_cell_lines(ax, size: int) -> None:
    colour = "white" if any(c.get_gid() == "cell-lines" and tuple(c.get_colors()[0][:3]) == (1.0, 1.0, 1.0)
                            for c in ax.collections) else "tab:orange"
    _plots.draw_cell_lines(ax, size, colour)


def _class_name(model, index: int) -> str:
    names = getattr(model, "class_names", None)
    return names[index] if names is not None and index < len(names) else f"class {index}"


class MaskPanel(widgets.VBox):
    """Notebook 01: one random mask, built step by step, and what the model makes of it.

    Controls: ``image`` (index), ``grid_size``, ``p_init``, ``seed`` (the grid's random draw), ``shift_y`` /
    ``shift_x`` (the crop offset, in ``[0, cell)``). Results: ``grid`` ``(s, s)``, ``big_mask`` (the bilinear
    upsampling to ``(s+1)*cell``), ``mask`` ``(H, W)`` (the crop), ``masked`` ``(C, H, W)``, ``probability``
    (target class, masked image), ``clean_probability``, ``target``. ``counts`` counts each recomputation:
    the grid only when grid size, p_init or seed change; the mask when the grid or shift change; the masked image
    and the model call when the mask or image change.
    """

    def __init__(self, model, images, names=None, *, grid_size: int = 8, p_init: float = 0.3, seed: int = 0,
                 target: int | None = None, reference="mean", dpi: int = 72):
        images, _ = _check_images(images, model)
        self.model = model
        self.images = images.detach().cpu()
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        if len(self.names) != len(images):
            raise ValueError(f"names must have one entry per image ({len(images)}), got {len(self.names)}")
        self.fixed_target = target
        self.reference = _resolve_reference(reference, model, self.images[:1])
        if isinstance(self.reference, _torch.Tensor) and self.reference.dim() == 4:
            raise ValueError("reference: the panel takes 'mean', a number or a (C, 1, 1) tensor, not images")
        self.size = tuple(self.images.shape[-2:])
        self.counts = _Counter()
        self._clean = {}  # image index -> clean class probabilities (n_classes,)
        self._keys = {}
        self._holding = False

        style = {"description_width": "70px"}
        self.image = widgets.Dropdown(options=[(name, i) for i, name in enumerate(self.names)], value=0,
                                      description="image", style=style)
        self.grid_size = widgets.IntSlider(value=grid_size, min=2, max=min(16, min(self.size)),
                                           description="grid size", style=style)
        self.p_init = widgets.FloatSlider(value=p_init, min=0.0, max=1.0, step=0.05, description="p_init",
                                          style=style)
        self.seed = widgets.IntSlider(value=seed, min=0, max=99, description="seed", style=style)
        cell = _masks.cell_size(self.size, grid_size)
        self.shift_y = widgets.IntSlider(value=0, min=0, max=cell[0] - 1, description="shift dy", style=style)
        self.shift_x = widgets.IntSlider(value=0, min=0, max=cell[1] - 1, description="shift dx", style=style)
        self.readout = widgets.HTML()
        self.view = FigureView((14.5, 3.1), dpi)
        self._build_figure()

        for control in (self.image, self.grid_size, self.p_init, self.seed, self.shift_y, self.shift_x):
            control.observe(self._on_change, names="value")
        controls = widgets.HBox([widgets.VBox([self.image, self.grid_size, self.p_init]),
                                 widgets.VBox([self.seed, self.shift_y, self.shift_x])])
        super().__init__([controls, self.view.widget, self.readout])
        self.refresh()

    # -- computation, one stage at a time ---------------------------------------------------------------------
    def _stage(self, name: str, key) -> bool:
        if self._keys.get(name) == key:
            return False
        self._keys[name] = key
        self.counts[name] += 1
        return True

    def _clean_probabilities(self, index: int) -> _torch.Tensor:
        if index not in self._clean:
            self._clean[index] = _class_probabilities(self.model, self.images[index:index + 1])[0]
            self.counts["model_calls"] += 1
        return self._clean[index]

    def refresh(self) -> set:
        """Recompute the stages whose inputs changed, redraw them, render once. Returns the changed stages."""
        grid_key = (self.grid_size.value, round(self.p_init.value, 6), self.seed.value)
        changed = set()
        if self._stage("grid", grid_key):
            generator = _torch.Generator().manual_seed(self.seed.value)
            self.grid = _masks.init_grid(1, self.grid_size.value, float(self.p_init.value), generator=generator)[0]
            changed.add("grid")
        mask_key = (grid_key, self.shift_y.value, self.shift_x.value)
        if self._stage("mask", mask_key):
            size = self.grid_size.value
            cell = _masks.cell_size(self.size, size)
            # The whole (s+1)*cell resize that masks.upsample crops from, to show where the window falls.
            rows = _masks.interpolation_matrix(size, (size + 1) * cell[0])
            cols = _masks.interpolation_matrix(size, (size + 1) * cell[1])
            self.big_mask = rows @ self.grid @ cols.T
            shifts = _torch.tensor([[self.shift_y.value, self.shift_x.value]])
            self.mask = _masks.upsample(self.grid[None], self.size, shifts=shifts)[0]
            changed.add("mask")
        index = self.image.value
        if self._stage("masked", (mask_key, index)):
            self.masked = _masks.apply_mask(self.images[index:index + 1], self.mask[None], self.reference)[0]
            clean = self._clean_probabilities(index)
            self.target = int(clean.argmax()) if self.fixed_target is None else int(self.fixed_target)
            self.probabilities = _class_probabilities(self.model, self.masked[None])[0]
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
            cell = _masks.cell_size(self.size, self.grid_size.value)
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
        self._grid_art = _plots.show_grid(axes[0], _torch.zeros(size, size), "1. random grid")
        self._big_art = _plots.show_map(axes[1], _torch.zeros(2, 2), "2. bilinear upsampling", cmap="gray",
                                        label="mask value")
        from matplotlib.patches import Rectangle

        self._window = Rectangle((0, 0), 1, 1, fill=False, edgecolor="tab:orange", linewidth=2,
                                 label="crop window")
        axes[1].add_patch(self._window)
        axes[1].legend(loc="lower left", fontsize=7, framealpha=0.8)
        self._mask_art = _plots.show_map(axes[2], _torch.zeros(self.size), "3. shifted crop = mask", cmap="gray",
                                         label="mask value")
        self._masked_art = _plots.show_image(axes[3], self.images[0], "4. what the model sees")

    def _draw(self, changed: set) -> None:
        axes = self.axes
        if "grid" in changed:
            size = self.grid_size.value
            _set_image(self._grid_art, self.grid)
            _set_cell_lines(axes[0], size)
            on = int(self.grid.sum())
            axes[0].set_title(f"1. random grid: {on}/{size * size} on")
        if "mask" in changed:
            _set_image(self._big_art, self.big_mask)
            self._window.set_xy((self.shift_x.value - 0.5, self.shift_y.value - 0.5))
            self._window.set_width(self.size[1])
            self._window.set_height(self.size[0])
            axes[1].set_title(f"2. upsampled to {self.big_mask.shape[0]} px, crop at ({self.shift_y.value}, "
                              f"{self.shift_x.value})", fontsize=9)
            _set_image(self._mask_art, self.mask)
            axes[2].set_title(f"3. mask (mean {float(self.mask.mean()):.2f})")
        if "masked" in changed:
            _set_image(self._masked_art, self.masked.clamp(0, 1))
            self._draw_probabilities(axes[4])
            name = _class_name(self.model, self.target)
            self.readout.value = (
                f"<b>{self.names[self.image.value]}</b>: target class <b>{name}</b> &mdash; probability "
                f"{self.clean_probability:.3f} on the clean image, <b>{self.probability:.3f}</b> on the masked "
                f"image. {int(self.grid.sum())} of {self.grid.numel()} cells on; {float(self.mask.mean()):.0%} "
                f"of the image kept on average.")

    def _draw_probabilities(self, ax) -> None:
        ax.clear()
        probs = self.probabilities
        top = probs.topk(min(5, len(probs))).indices.tolist()
        if self.target not in top:
            top[-1] = self.target
        names = [_class_name(self.model, k)[:16] for k in top]
        colours = ["tab:red" if k == self.target else "tab:gray" for k in top]
        ax.barh(range(len(top)), [float(probs[k]) for k in top], color=colours)
        ax.axvline(self.clean_probability, color="tab:red", linestyle="--", linewidth=1,
                   label="target, clean image")
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


class UpdatePanel(widgets.VBox):
    """Notebook 02: the pixel-weighting update, one step per click.

    Buttons: ``step_button`` (one step), ``ten_button`` (ten steps), ``reset_button``. Controls: ``seed``,
    ``p_init``, ``grid_size`` (each restarts the chain) and ``step_size`` (lr; used from the next step on).
    State: ``grid`` ``(s, s)`` (the grid to be evaluated next), ``mask`` ``(H, W)``, ``p_previous``,
    ``step``; ``history``: one dict per step (``step, p, delta_p, kept, dropped, turned_on, stayed_off,
    on_scale, off_scale``); ``last``: the evaluated grid, mask, masked image and the new grid of the last step;
    ``saliency_sum`` ``(H, W)``. Each step is the library's own pieces in the loop's order
    (:func:`~saliency_lib.masks.apply_mask`, one model call, :func:`~saliency_lib.masks.update_grid`,
    :func:`~saliency_lib.masks.upsample`) drawing from ``generator``; ``oise`` runs the same rule but draws its
    random numbers in blocks, so the same seed gives a different (equally valid) chain.
    """

    def __init__(self, model, image, target: int | None = None, *, grid_size: int = 8, p_init: float = 0.3,
                 step_size: float = 0.02, seed: int = 0, reference="mean", dpi: int = 72):
        images, _ = _check_images(image, model)
        if len(images) != 1:
            raise ValueError(f"image must be one image (C, H, W) or (1, C, H, W), got a batch of {len(images)}")
        self.model = model
        self.image_tensor = images.detach().cpu()
        self.size = tuple(images.shape[-2:])
        self.reference = _resolve_reference(reference, model, self.image_tensor)
        clean = _class_probabilities(model, self.image_tensor)[0]
        self.target = int(clean.argmax()) if target is None else int(target)
        self.clean_probability = float(clean[self.target])
        self.counts = _Counter({"model_calls": 1})

        style = {"description_width": "70px"}
        self.step_button = widgets.Button(description="Step", button_style="primary", icon="step-forward",
                                          tooltip="evaluate the mask, apply the update rule once")
        self.ten_button = widgets.Button(description="10 steps", icon="fast-forward")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.seed = widgets.IntSlider(value=seed, min=0, max=99, description="seed", style=style)
        self.p_init = widgets.FloatSlider(value=p_init, min=0.05, max=0.95, step=0.05, description="p_init",
                                          style=style)
        self.grid_size = widgets.IntSlider(value=grid_size, min=2, max=min(16, min(self.size)),
                                           description="grid size", style=style)
        self.step_size = widgets.FloatSlider(value=step_size, min=0.0, max=0.5, step=0.01, description="lr",
                                             style=style, readout_format=".2f")
        self.readout = widgets.HTML()
        self.view = FigureView((13, 6.4), dpi)
        self._build_figure()

        self.step_button.on_click(lambda _: self.advance(1))
        self.ten_button.on_click(lambda _: self.advance(10))
        self.reset_button.on_click(lambda _: self.reset())
        for control in (self.seed, self.p_init, self.grid_size):
            control.observe(lambda _: self.reset(), names="value")
        buttons = widgets.HBox([self.step_button, self.ten_button, self.reset_button])
        controls = widgets.HBox([widgets.VBox([self.seed, self.p_init]), widgets.VBox([self.grid_size,
                                                                                      self.step_size])])
        super().__init__([buttons, controls, self.view.widget, self.readout])
        self.reset()

    def reset(self) -> None:
        """Start a new chain from ``seed``."""
        self.generator = _torch.Generator().manual_seed(self.seed.value)
        self.grid = _masks.init_grid(1, self.grid_size.value, float(self.p_init.value), generator=self.generator)
        self.mask = _masks.upsample(self.grid, self.size, generator=self.generator)
        self.p_previous = _torch.zeros(1)
        self.step = 0
        self.history = []
        self.last = None
        self.saliency_sum = _torch.zeros(self.size)
        self.counts["resets"] += 1
        self._draw()

    def advance(self, n: int = 1) -> None:
        """Run ``n`` update steps (one model call each), then redraw once."""
        for _ in range(int(n)):
            masked = _masks.apply_mask(self.image_tensor, self.mask, self.reference)
            p = _class_probabilities(self.model, masked)[:, self.target]
            self.counts["model_calls"] += 1
            delta_p = p - self.p_previous
            lr = float(self.step_size.value)
            new_grid = _masks.update_grid(self.grid, p, delta_p, step_size=lr, generator=self.generator)
            changes = _masks.cell_changes(self.grid, new_grid)
            new_mask = _masks.upsample(new_grid, self.size, generator=self.generator)
            self.saliency_sum += new_mask[0]
            self.step += 1
            rate = lr * abs(float(delta_p))
            self.history.append({
                "step": self.step, "p": float(p), "delta_p": float(delta_p),
                "kept": int(changes.kept.sum()), "dropped": int(changes.dropped.sum()),
                "turned_on": int(changes.turned_on.sum()), "stayed_off": int(changes.stayed_off.sum()),
                "on_scale": 1 - rate, "off_scale": 1 + rate,
            })
            self.last = {"grid": self.grid[0], "mask": self.mask[0], "masked": masked[0], "new_grid": new_grid[0]}
            self.grid, self.mask, self.p_previous = new_grid, new_mask, p
        self._draw()

    @property
    def saliency(self) -> _torch.Tensor:
        """The running map ``(H, W)``: :func:`saliency_lib.masks.postprocess` of the sum so far."""
        return _masks.postprocess(self.saliency_sum[None])[0]

    def _build_figure(self) -> None:
        axes = self.view.figure.subplots(2, 4)
        self.axes = axes
        size = self.grid_size.value
        zeros = _torch.zeros(size, size)
        self._masked_art = _plots.show_image(axes[0, 0], self.image_tensor[0], "masked image")
        self._old_art = _plots.show_grid(axes[0, 1], zeros, "grid evaluated")
        self._fate_art = _plots.show_cell_changes(axes[0, 2], zeros, zeros, "what the update did")
        self._new_art = _plots.show_grid(axes[0, 3], zeros, "new grid (values)")
        self._rule_marker = _plots.plot_update_rule(axes[1, 0], 0.0)[0]
        (self._p_line,) = axes[1, 1].plot([], [], marker=".", label="p")
        (self._dp_line,) = axes[1, 1].plot([], [], marker=".", label="Δp")
        axes[1, 1].axhline(0, color="gray", linewidth=0.5)
        axes[1, 1].set_xlabel("step")
        axes[1, 1].set_ylabel("probability / change")
        axes[1, 1].set_title("p and Δp so far")
        axes[1, 1].legend(fontsize=8, loc="lower left")
        self._kept_dots = axes[1, 2].scatter([], [], s=12, label="share of on cells kept",
                                             color=_plots.CHANGE_COLOURS["kept"])
        self._on_dots = axes[1, 2].scatter([], [], s=12, label="share of off cells turned on",
                                           color=_plots.CHANGE_COLOURS["turned on"])
        axes[1, 2].plot([0, 1], [0, 1], color=_plots.CHANGE_COLOURS["kept"], linewidth=0.6, linestyle=":")
        axes[1, 2].plot([0, 1], [1, 0], color=_plots.CHANGE_COLOURS["turned on"], linewidth=0.6, linestyle=":")
        axes[1, 2].set_xlim(0, 1)
        axes[1, 2].set_ylim(-0.02, 1.02)
        axes[1, 2].set_xlabel("p")
        axes[1, 2].set_ylabel("share of cells")
        axes[1, 2].set_title("observed, one dot per step")
        axes[1, 2].legend(fontsize=7, loc="upper center")
        self._saliency_art = _plots.overlay(axes[1, 3], self.image_tensor[0], _torch.zeros(self.size),
                                            title="saliency so far")

    def _draw(self) -> None:
        import numpy as np

        axes = self.axes
        name = _class_name(self.model, self.target)
        size = self.grid_size.value
        for text in list(axes[0, 3].texts):
            text.remove()
        if self.last is None:
            masked = _masks.apply_mask(self.image_tensor, self.mask, self.reference)[0]
            old = new = self.grid[0]
            _set_image(self._masked_art, masked.clamp(0, 1))
            axes[0, 0].set_title("next masked image (step 0)")
            record = None
            self.readout.value = (f"Target class <b>{name}</b> (p = {self.clean_probability:.3f} on the clean "
                                  f"image). Step 0: nothing evaluated yet &mdash; press Step.")
        else:
            last, record = self.last, self.history[-1]
            old, new = last["grid"], last["new_grid"]
            _set_image(self._masked_art, last["masked"].clamp(0, 1))
            axes[0, 0].set_title(f"step {record['step']}: p = {record['p']:.3f}")
            self.readout.value = (
                f"<b>Step {record['step']}</b> &mdash; target <b>{name}</b>: p = <b>{record['p']:.3f}</b>, "
                f"Δp = {record['delta_p']:+.3f}. On cells kept {record['kept']}, dropped {record['dropped']}; "
                f"off cells turned on {record['turned_on']}, stayed off {record['stayed_off']}. "
                f"Rescaling: cells whose value went up (D &gt; 0: those turned on) &times; (1 &minus; "
                f"lr&middot;|Δp|) = {record['on_scale']:.4f}; dropped cells &times; (1 + lr&middot;|Δp|) = "
                f"{record['off_scale']:.4f} (they are 0, so stay 0).")
        for art, ax, grid in ((self._old_art, axes[0, 1], old), (self._new_art, axes[0, 3], new)):
            _set_image(art, grid)
            _set_cell_lines(ax, size)
        fates = _plots.cell_fates(old, new)
        _set_image(self._fate_art, fates)
        _set_cell_lines(axes[0, 2], size)
        for text, (k, label) in zip(axes[0, 2].get_legend().get_texts(), enumerate(_plots.CHANGE_COLOURS)):
            text.set_text(f"{label} ({int((fates == k).sum())})")
        if record is not None:
            # Write the value into each cell that is neither 0 nor 1 (the rescaled ones).
            values = _plots.as_array(new)
            for row, col in zip(*np.nonzero((values > 0) & (values < 1))):
                axes[0, 3].text(col, row, f"{values[row, col]:.3f}"[1:], ha="center", va="center", fontsize=6)
        axes[0, 3].set_title(f"new grid after step {self.step}" if record else "new grid (values)")
        self._rule_marker.set_xdata([record["p"]] * 2 if record else [0.0, 0.0])
        self.axes[1, 0].get_legend().get_texts()[-1].set_text(f"this step: p = {record['p']:.2f}" if record
                                                              else "this step: p = ?")
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
        self._saliency_art.set_data(_plots.as_array(self.saliency))
        axes[1, 3].set_title(f"saliency after {self.step} steps")
        self.view.update()
        self.counts["renders"] += 1


def update_panel(model, image, target: int | None = None, **options) -> UpdatePanel:
    """Notebook 02's panel: Step / 10 steps / Reset over one image ``(C, H, W)``. Options: ``grid_size`` (8),
    ``p_init`` (0.3), ``step_size`` (0.02), ``seed`` (0), ``reference`` ("mean", "blur", a number), ``dpi``."""
    return UpdatePanel(model, image, target, **options)


class LoopPanel(widgets.VBox):
    """Notebook 03: the whole OISE loop with Run / Stop, a progress bar and a slider that scrubs the recorded steps.

    ``run()`` starts :func:`saliency_lib.oise` in a background thread (``block=True``: in the caller's thread), so
    the notebook's other controls stay live; the progress bar and the figure update every few steps. ``stop()``
    (the Stop button) sets a flag that the oise callback checks: it raises ``KeyboardInterrupt``, and oise returns
    the partial map (``result.partial``). Moving ``scrub`` only redraws (no model call).

    Results: ``result`` ``(H, W)`` (the last run's map), ``frames`` (a :class:`~saliency_lib.oise.Recorder`),
    ``p_trace`` (mean p over chains at every step), ``error`` (an exception raised by the run, else None).
    """

    def __init__(self, model, image, target: int | None = None, *, n_steps: int = 5000, n_chains: int = 1,
                 seed: int = 0, max_frames: int = 60, grid_size: int = 8, live_seconds: float = 1.5, dpi: int = 72,
                 **oise_options):
        images, _ = _check_images(image, model)
        if len(images) != 1:
            raise ValueError(f"image must be one image (C, H, W) or (1, C, H, W), got a batch of {len(images)}")
        self.model = model
        self.image_tensor = images.detach()
        self.target = target
        self.grid_size_value = grid_size
        self.max_frames = max_frames
        self.live_seconds = live_seconds
        self._last_live = 0.0
        self.oise_options = oise_options
        self.counts = _Counter()
        self.result = None
        self.error = None
        self.frames = _Recorder()
        self.p_trace: list[float] = []
        self._stop = _threading.Event()
        self._thread = None

        style = {"description_width": "60px"}
        self.n_steps = widgets.BoundedIntText(value=n_steps, min=1, max=100_000, step=100, description="n_steps",
                                              style=style, layout=widgets.Layout(width="170px"))
        self.n_chains = widgets.Dropdown(options=[1, 2, 4, 8, 16], value=n_chains, description="chains",
                                         style=style, layout=widgets.Layout(width="140px"))
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=style,
                                           layout=widgets.Layout(width="150px"))
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.run_button.add_class("saliency-run")
        self.stop_button.add_class("saliency-stop")
        self.progress = widgets.IntProgress(value=0, min=0, max=n_steps, description="steps",
                                            style={"description_width": "40px", "bar_color": "#2ca02c"})
        self.status = widgets.Label("Press Run.")
        self.status.add_class("saliency-status")
        self.scrub = widgets.IntSlider(value=0, min=0, max=0, description="frame", disabled=True,
                                       continuous_update=False, style=style, layout=widgets.Layout(width="420px"))
        self.scrub.add_class("saliency-scrub")
        self.scrub_label = widgets.Label("")
        self.view = FigureView((12.5, 3.3), dpi)
        self.view.widget._view_count = 0  # the front end counts its views of the figure (see _callback)
        self._build_figure()

        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.scrub.observe(lambda change: self.show_frame(change["new"]), names="value")
        top = widgets.HBox([self.n_steps, self.n_chains, self.seed, self.run_button, self.stop_button])
        middle = widgets.HBox([self.progress, self.status])
        bottom = widgets.HBox([self.scrub, self.scrub_label])
        super().__init__([top, middle, bottom, self.view.widget])
        self._draw_empty()

    # -- running ----------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, block: bool = False) -> None:
        """Start a run with the current controls (ignored while one is running)."""
        if self.running:
            return
        n_steps, n_chains = int(self.n_steps.value), int(self.n_chains.value)
        steps_per_chain = -(-n_steps // n_chains)
        self._stop.clear()
        self.error = None
        self.frames = _Recorder(every=max(1, -(-steps_per_chain // self.max_frames)))
        self.p_trace = []
        self.progress.max, self.progress.value = steps_per_chain, 0
        self.progress.bar_style = ""
        self.run_button.disabled, self.stop_button.disabled, self.scrub.disabled = True, False, True
        self.status.value = (f"run {self.counts['runs'] + 1}: running {steps_per_chain} steps x {n_chains} "
                             f"chain(s)...")
        self.counts["runs"] += 1
        self._last_live = _time.monotonic()
        if block:
            self._work(n_steps, n_chains, int(self.seed.value))
        else:
            self._thread = _threading.Thread(target=self._work, args=(n_steps, n_chains, int(self.seed.value)),
                                             daemon=True, name="oise-run")
            self._thread.start()

    def stop(self) -> None:
        """Ask the running loop to stop after its current step (the map so far is kept)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run finishes; True when no run is left running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _callback(self, state: _OISEStep) -> None:
        self.frames(state)
        self.p_trace.append(float(state.p.mean()))
        every_live = max(1, state.n_steps // 50)
        if state.step % every_live == 0 or state.step == state.n_steps:
            self.progress.value = state.step
        if self._stop.is_set():
            if self.frames.steps and self.frames.steps[-1] != state.step:
                # Keep the step we stopped at as the last frame (a Recorder that records every step copies it).
                single = _Recorder(every=1)
                single(state)
                for name in ("steps", "grids", "masks", "p", "delta_p", "saliency"):
                    getattr(self.frames, name).append(getattr(single, name)[0])
            raise KeyboardInterrupt  # oise catches it and returns the partial map
        now = _time.monotonic()
        # Live frames only while a front end shows the panel (the widget's view count): a run executed headless
        # (nbconvert, nbval) skips them; the final frame is always drawn.
        watched = bool(self.view.widget._view_count)
        if watched and now - self._last_live >= self.live_seconds and state.step != state.n_steps \
                and self.frames.steps:
            self._draw_frame(len(self.frames) - 1)  # a live frame about once per live_seconds
            self._last_live = _time.monotonic()

    def _work(self, n_steps: int, n_chains: int, seed: int) -> None:
        message = ""
        try:
            result = _oise(self.model, self.image_tensor, self.target, n_steps=n_steps, n_chains=n_chains,
                           seed=seed, grid_size=self.grid_size_value, callback=self._callback,
                           **self.oise_options)
            self.result = result[0]
            self.result_info = {"partial": result.partial, "steps_done": result.steps_done,
                                "model_calls": result.model_calls, "target": int(result.target[0])}
            self.counts["model_calls"] += int(result.model_calls) + 1  # + the clean image
            self.progress.value = result.steps_done
            self.progress.bar_style = "warning" if result.partial else "success"
            if len(self.frames):
                self.scrub.max = len(self.frames) - 1
                if self.scrub.value == self.scrub.max:
                    self.show_frame(self.scrub.max)
                else:
                    self.scrub.value = self.scrub.max  # the observer draws it
            name = _class_name(self.model, int(result.target[0]))
            verb = "stopped after" if result.partial else "done:"
            message = (f"run {self.counts['runs']}: {verb} {result.steps_done} steps x {n_chains} chain(s) = "
                       f"{result.model_calls} model calls; target {name}")
        except Exception as error:  # shown in the panel; the thread must not die silently
            self.error = error
            message = f"error: {type(error).__name__}: {error}"
            self.progress.bar_style = "danger"
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
            self.scrub.disabled = len(self.frames) == 0
            self.status.value = message  # last, so "done" means the panel is ready

    # -- drawing ----------------------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        axes = self.view.figure.subplots(1, 3, width_ratios=[1, 1, 1.3])
        self.axes = axes
        size = tuple(self.image_tensor.shape[-2:])
        self._mask_art = _plots.show_map(axes[0], _torch.zeros(size), "mask at this step", cmap="gray",
                                         label="mask value")
        self._saliency_art = _plots.overlay(axes[1], self.image_tensor[0], _torch.zeros(size),
                                            title="running saliency")
        (self._p_line,) = axes[2].plot([], [], color="tab:blue", linewidth=0.8, label="p (mean over chains)")
        self._step_marker = axes[2].axvline(0, color="tab:red", linestyle="--", label="this frame")
        axes[2].set_xlabel("step (per chain)")
        axes[2].set_ylabel("target probability p")
        axes[2].set_ylim(0, 1.02)
        axes[2].set_title("p along the chain")
        axes[2].legend(loc="lower right", fontsize=8)

    def _draw_empty(self) -> None:
        self.view.update()
        self.counts["renders"] += 1

    def _draw_frame(self, index: int) -> None:
        with self.view._lock:
            step = self.frames.steps[index]
            self._mask_art.set_data(_plots.as_array(self.frames.masks[index][0, 0]))
            saliency = self.frames.saliency[index][0]
            self._saliency_art.set_data(_plots.as_array(saliency))
            self.axes[0].set_title(f"mask at step {step} (chain 1)")
            self.axes[1].set_title(f"running saliency, step {step}")
            trace = self.p_trace
            self._p_line.set_data(range(1, len(trace) + 1), trace)
            self.axes[2].set_xlim(0, max(2, self.progress.max))
            self._step_marker.set_xdata([step, step])
            self.view.update()
        self.counts["renders"] += 1
        p_now = float(self.frames.p[index].mean())
        self.scrub_label.value = f"step {step} of {self.progress.max}, p = {p_now:.3f}"

    def show_frame(self, index: int) -> None:
        """Draw recorded frame ``index`` (mask of chain 1 and the running saliency at that step)."""
        if 0 <= index < len(self.frames):
            self._draw_frame(index)


def loop_panel(model, image, target: int | None = None, **options) -> LoopPanel:
    """Notebook 03's panel: n_steps, chains, seed, Run / Stop, progress, and a scrub slider over the recorded
    steps. ``image`` ``(C, H, W)``. Options: ``n_steps`` (5000), ``n_chains`` (1), ``seed`` (0), ``max_frames``
    (60 recorded frames), ``grid_size`` (8), ``live_seconds`` (1.5: seconds between live frames during a run),
    ``dpi``, and any other :func:`saliency_lib.oise` keyword."""
    return LoopPanel(model, image, target, **options)

# ---- notebook 04: evaluation ----------------------------------------------------------------------------------
# Pick an image and methods, explain, and watch the deletion/insertion curves being drawn as pixels go.

from . import baselines as _baselines  # noqa: E402
from . import metrics as _metrics  # noqa: E402

__all__ += ["EvaluationPanel", "evaluation_panel"]


class EvaluationPanel(widgets.VBox):
    """Notebook 04: maps of several methods side by side, and their deletion/insertion curves step by step.

    Controls: ``image`` (index), ``methods`` (names of :data:`saliency_lib.baselines.METHODS`), ``mode``
    (``"deletion"``/``"insertion"``), ``step`` (how many steps of pixels have gone), ``shown`` (whose perturbed
    image is drawn), ``run`` (button: explain and score). Results after a run: ``maps`` (method -> ``(H, W)``),
    ``curves`` (mode -> method -> ``(T,)``), ``auc`` (mode -> method -> float), ``fraction`` ``(T,)``,
    ``perturbed`` (the image drawn at ``step``), ``view`` (the figure).
    """

    def __init__(self, model, images, targets=None, *, names=None, methods=("oise", "rise", "gradcam"),
                 options: dict | None = None, pixels_per_step: int | None = None, boxes=None, dpi: int = 72):
        images, _ = _check_images(images, model)
        super().__init__()
        self.model, self.images, self.boxes = model, images, boxes
        self.targets = targets
        self.options = {"oise": {"n_steps": 500}, "rise": {"n_masks": 500}, "lime": {"n_samples": 100},
                        **(options or {})}
        height, width = images.shape[-2:]
        self.pixels_per_step = pixels_per_step or width
        n_steps = -(-height * width // self.pixels_per_step)
        labels = names if names is not None else [f"image {i}" for i in range(len(images))]
        self.image = widgets.Dropdown(options=[(str(n), i) for i, n in enumerate(labels)], value=0,
                                      description="image")
        unknown = [m for m in methods if m not in _baselines.METHODS]
        if unknown:
            raise ValueError(f"methods: unknown {unknown}; choose from {sorted(_baselines.METHODS)}")
        self.methods = widgets.SelectMultiple(options=list(_baselines.METHODS), value=tuple(methods),
                                              description="methods", rows=min(8, len(_baselines.METHODS)))
        self.mode = widgets.ToggleButtons(options=["deletion", "insertion"], value="deletion", description="curve")
        self.step = widgets.IntSlider(value=n_steps, min=0, max=n_steps, description="steps gone",
                                      continuous_update=False)
        self.shown = widgets.Dropdown(options=list(methods), value=methods[0] if methods else None,
                                      description="show")
        self.run = widgets.Button(description="Explain and score", button_style="primary", icon="play")
        self.status = widgets.HTML("Pick an image and methods, then press <b>Explain and score</b>.")
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
        self.children = [widgets.HBox([self.image, self.methods, widgets.VBox([self.mode, self.step, self.shown,
                                                                              self.run])]),
                         self.status, self.view.widget]

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
        return [int(_torch.as_tensor(self.targets).reshape(-1)[self.image.value])]

    def compute(self) -> None:
        """Explain the chosen image with every chosen method, then compute both curves (one batched call each)."""
        index = self.image.value
        image = self.images[index:index + 1]
        chosen = list(self.methods.value)
        if not chosen:
            self.status.value = "Choose at least one method."
            return
        self.maps, self.curves, self.auc = {}, {"deletion": {}, "insertion": {}}, {"deletion": {}, "insertion": {}}
        began = _time.perf_counter()
        for name in chosen:
            self.status.value = f"Explaining with {name}..."
            maps = _baselines.explain(name, self.model, image, self._target(), **self.options.get(name, {}))
            self.maps[name] = maps[0].detach().cpu()
        stacked = _torch.stack([self.maps[name] for name in chosen])
        repeated = image.expand(len(chosen), -1, -1, -1)
        target = self._target()
        targets = None if target is None else target * len(chosen)
        for mode in ("deletion", "insertion"):
            result = _metrics.causal_curves(self.model, repeated, stacked, mode, targets,
                                            pixels_per_step=self.pixels_per_step)
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
        self.status.value = (f"Done in {_time.perf_counter() - began:.1f} s. Deletion AUC (lower is better): "
                             + ", ".join(f"{k} {v:.3f}" for k, v in self.auc["deletion"].items())
                             + ". Insertion AUC (higher is better): "
                             + ", ".join(f"{k} {v:.3f}" for k, v in self.auc["insertion"].items()) + ".")
        self.redraw()

    def _perturbed(self, name: str) -> _torch.Tensor:
        """The chosen image after ``step`` steps of the current curve for method ``name``."""
        image = self.images[self.image.value:self.image.value + 1]
        height, width = image.shape[-2:]
        ranks = _metrics._order(self.maps[name].unsqueeze(0))[0].view(height, width)
        changed = ranks < min(self.step.value * self.pixels_per_step, height * width)
        if self.mode.value == "deletion":
            filler = _resolve_reference("mean", self.model, image)
            return _masks.apply_mask(image, (~changed).float().unsqueeze(0), filler)[0]
        start = _masks.blur(image)
        return _masks.apply_mask(image, changed.float().unsqueeze(0), start)[0]

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
        _plots.show_image(top, image, "image", axis_labels=False)
        if self.boxes is not None:
            _plots.draw_box(top, self.boxes[index])
        drawn = None
        for col, name in enumerate(names, start=1):
            ax = figure.add_subplot(grid[0, col])
            _plots.show_image(ax, image, axis_labels=False)
            drawn = ax.imshow(_plots.scaled_map(self.maps[name]), cmap="jet", vmin=0, vmax=1, alpha=0.5)
            if self.boxes is not None:
                _plots.draw_box(ax, self.boxes[index])
            ax.set_title(f"{name}\ndel {self.auc['deletion'][name]:.2f} / ins {self.auc['insertion'][name]:.2f}",
                         fontsize=8)
        figure.colorbar(drawn, ax=figure.axes[1:], fraction=0.03, label="saliency (scaled)")
        shown = self.shown.value if self.shown.value in self.maps else names[0]
        self.perturbed = self._perturbed(shown)
        left = figure.add_subplot(grid[1, 0])
        _plots.show_image(left, self.perturbed, f"{shown}: {self.step.value} steps", axis_labels=False)
        right = figure.add_subplot(grid[1, 1:])
        _plots.plot_curves(right, self.fraction, self.curves[self.mode.value], self.mode.value, upto=self.step.value)
        self.view.render()


def evaluation_panel(model, images, targets=None, **options) -> EvaluationPanel:
    """Notebook 04's panel (see :class:`EvaluationPanel`); ``options`` go to its constructor."""
    return EvaluationPanel(model, images, targets, **options)


# ---- notebook 05: reconstruction -------------------------------------------------------------------------------
# One panel: pick an image, the share of its salient region to regenerate and the number of variations, press
# Run; the panel finds the salient region (OISE or RISE, cached per image), searches the DCGAN's latent space
# (progress bar) and shows the variations with the classifier's class on each.

from . import reconstruct as _reconstruct  # noqa: E402

__all__ += ["ReconstructPanel", "reconstruct_panel"]


class ReconstructPanel(widgets.VBox):
    """Notebook 05: acceptable variations of one image, on demand.

    Controls: ``image`` (index), ``source`` (``"oise"`` / ``"rise"``), ``fraction`` (share of the salient region
    regenerated, 0.5-0.9), ``n_variations`` (latent codes), ``n_steps`` (search steps); ``run_button``.
    Results after a run: ``region`` bool ``(H, W)``, ``result`` (:class:`~saliency_lib.reconstruct.InpaintResult`
    for the one image), ``predicted`` int ``(K,)``, ``original_class``, ``agreement`` (share of variations keeping
    the class), ``runs``; ``maps`` caches the saliency map per ``(image, source)``.
    """

    def __init__(self, model, generator, discriminator, images, names=None, *, fraction: float = 0.5,
                 n_variations: int = 16, n_steps: int = 40, saliency_calls: int = 1000,
                 region_share: float = 0.3, n_candidates: int = 1024, seed: int = 0, dpi: int = 72):
        images, _ = _check_images(images, model)
        self.model, self.generator, self.discriminator = model, generator, discriminator
        self.images = images.detach().cpu()
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        if len(self.names) != len(images):
            raise ValueError(f"names must have one entry per image ({len(images)}), got {len(self.names)}")
        self.saliency_calls, self.region_share = saliency_calls, region_share
        self.n_candidates, self.seed = n_candidates, seed
        self.maps: dict = {}
        self.region = self.result = self.predicted = None
        self.original_class, self.agreement, self.runs = None, None, 0

        style = {"description_width": "90px"}
        self.image = widgets.Dropdown(options=[(name, i) for i, name in enumerate(self.names)], value=0,
                                      description="image", style=style)
        self.source = widgets.Dropdown(options=[("OISE (the paper's map)", "oise"), ("RISE", "rise")],
                                       value="oise", description="salient map", style=style)
        self.fraction = widgets.FloatSlider(value=fraction, min=0.1, max=1.0, step=0.1, readout_format=".0%",
                                            description="regenerate", style=style)
        self.n_variations = widgets.IntSlider(value=n_variations, min=1, max=64, description="variations",
                                              style=style)
        self.n_steps = widgets.IntSlider(value=n_steps, min=0, max=500, step=10, description="search steps",
                                         style=style)
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="search")
        self.status = widgets.HTML("Press Run.")
        self.view = FigureView((11.0, 3.4), dpi)
        self.run_button.on_click(lambda _button: self.run())
        controls = widgets.HBox([widgets.VBox([self.image, self.source, self.fraction]),
                                 widgets.VBox([self.n_variations, self.n_steps, self.run_button])])
        super().__init__([controls, widgets.HBox([self.progress, self.status]), self.view.widget])

    def saliency(self, index: int, source: str) -> _torch.Tensor:
        """The ``(H, W)`` map of image ``index`` by ``source`` (computed once, then cached)."""
        key = (index, source)
        if key not in self.maps:
            from .rise import rise as _rise

            image = self.images[index:index + 1]
            self.status.value = f"computing the {source.upper()} map ({self.saliency_calls} model calls)..."
            if source == "oise":
                found = _oise(self.model, image, n_steps=self.saliency_calls, n_chains=8, seed=self.seed)
            else:
                found = _rise(self.model, image, n_masks=self.saliency_calls, seed=self.seed)
            self.maps[key] = found[0]
        return self.maps[key]

    def run(self) -> None:
        """Find the region, search the latent space, classify the variations and redraw."""
        self.run_button.disabled = True
        try:
            index, source = self.image.value, self.source.value
            image = self.images[index:index + 1]
            share = self.region_share * self.fraction.value
            self.region = _reconstruct.salient_region(self.saliency(index, source), share)[0]
            codes, steps = self.n_variations.value, self.n_steps.value
            self.progress.max, self.progress.value, self.progress.bar_style = max(1, steps), 0, ""
            self.status.value = f"searching {codes} latent codes for {steps} steps..."

            def on_step(step, total, loss):
                self.progress.value = step

            self.result = _reconstruct.inpaint(
                self.generator, self.discriminator, image, self.region[None], n_codes=codes, n_steps=steps,
                n_candidates=max(self.n_candidates, codes), seed=self.seed, callback=on_step)
            self.original_class = int(_reconstruct.predictions(self.model, image)[0])
            self.predicted = _reconstruct.predictions(self.model, self.result.reconstructions[0])
            self.agreement = float((self.predicted == self.original_class).float().mean())
            self.progress.value, self.progress.bar_style = self.progress.max, "success"
            self.runs += 1
            self.status.value = (f"<b>{self.agreement:.0%}</b> of {codes} variations keep the class "
                                 f"'{_class_name(self.model, self.original_class)}' "
                                 f"({int(self.region.sum())} pixels regenerated; final loss "
                                 f"{self.result.loss.mean():.2f}, start {self.result.initial_loss.mean():.2f}).")
            self._draw(image[0])
        except Exception as error:
            self.progress.bar_style = "danger"
            self.status.value = f"error: {error}"
            raise
        finally:
            self.run_button.disabled = False

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
        _plots.show_image(axes[0, 0], image, axis_labels=False)
        axes[0, 0].contour(self.region.float().numpy(), levels=[0.5], colors="red", linewidths=0.8)
        axes[0, 0].set_title(f"original\n{_class_name(self.model, self.original_class)}", fontsize=8)
        for k, (variation, cls) in enumerate(zip(variations, self.predicted.tolist()), start=1):
            ax = axes.flat[k]
            _plots.show_image(ax, variation, axis_labels=False)
            ax.set_title(f"#{k}\n{_class_name(self.model, cls)}", fontsize=8,
                         color="#2ca02c" if cls == self.original_class else "#d62728")
        self.view.render()


def reconstruct_panel(model, generator, discriminator, images, names=None, **options) -> ReconstructPanel:
    """Notebook 05's panel (see :class:`ReconstructPanel`): image, salient map, fraction, variations, Run."""
    return ReconstructPanel(model, generator, discriminator, images, names, **options)

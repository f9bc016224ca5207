"""Notebook 03's panel: the whole OISE loop with Run / Stop, a progress bar and a slider that scrubs the recorded
steps; the factory is :func:`loop_panel`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import ipywidgets
import torch

from ... import plots
from ...method.checks import check_images
from ...method.oise_method import OISEStep, Recorder, oise
from .view import BackgroundRun, FigureView, class_name

__all__ = ["LoopPanel", "loop_panel"]


class LoopPanel(BackgroundRun, ipywidgets.VBox):
    """Notebook 03: the whole OISE loop with Run / Stop, a progress bar and a slider that scrubs the recorded steps.

    ``run()`` starts :func:`saliency_lib.oise` in a background thread (``block=True``: in the caller's thread), so
    the notebook's other controls stay live; the progress bar and the figure update every few steps. ``stop()``
    (the Stop button) sets a flag that the oise callback checks: it raises ``KeyboardInterrupt``, and oise returns
    the partial map (``result.partial``). Moving ``scrub`` only redraws (no model call).

    Results: ``result`` ``(H, W)`` (the last run's map), ``frames`` (a :class:`~saliency_lib.Recorder`),
    ``p_trace`` (mean p over chains at every step), ``error`` (an exception raised by the run, else None).
    """

    def __init__(
        self,
        model,
        image,
        target: int | None = None,
        *,
        n_steps: int = 5000,
        n_chains: int = 1,
        seed: int = 0,
        max_frames: int = 60,
        grid_size: int = 8,
        live_seconds: float = 1.5,
        dpi: int = 72,
        **oise_options,
    ):
        images, _ = check_images(image, model)
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
        self.counts = Counter()
        self.result = None
        self.error = None
        self.frames = Recorder()
        self.p_trace: list[float] = []
        self._stop = threading.Event()
        self._thread = None

        style = {"description_width": "60px"}
        self.n_steps = ipywidgets.BoundedIntText(
            value=n_steps,
            min=1,
            max=100_000,
            step=100,
            description="n_steps",
            style=style,
            layout=ipywidgets.Layout(width="170px"),
        )
        self.n_chains = ipywidgets.Dropdown(
            options=[1, 2, 4, 8, 16],
            value=n_chains,
            description="chains",
            style=style,
            layout=ipywidgets.Layout(width="140px"),
        )
        self.seed = ipywidgets.BoundedIntText(
            value=seed, min=0, max=2**31 - 1, description="seed", style=style, layout=ipywidgets.Layout(width="150px")
        )
        self.run_button = ipywidgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = ipywidgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.run_button.add_class("saliency-run")
        self.stop_button.add_class("saliency-stop")
        self.progress = ipywidgets.IntProgress(
            value=0,
            min=0,
            max=n_steps,
            description="steps",
            style={"description_width": "40px", "bar_color": "#2ca02c"},
        )
        self.status = ipywidgets.Label("Press Run.")
        self.status.add_class("saliency-status")
        self.scrub = ipywidgets.IntSlider(
            value=0,
            min=0,
            max=0,
            description="frame",
            disabled=True,
            continuous_update=False,
            style=style,
            layout=ipywidgets.Layout(width="420px"),
        )
        self.scrub.add_class("saliency-scrub")
        self.scrub_label = ipywidgets.Label("")
        self.view = FigureView((12.5, 3.3), dpi, count_views=True)  # live frames only while watched
        self._build_figure()

        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.scrub.observe(lambda change: self.show_frame(change["new"]), names="value")
        top = ipywidgets.HBox([self.n_steps, self.n_chains, self.seed, self.run_button, self.stop_button])
        middle = ipywidgets.HBox([self.progress, self.status])
        bottom = ipywidgets.HBox([self.scrub, self.scrub_label])
        super().__init__([top, middle, bottom, self.view.widget])
        self._draw_empty()

    # -- running ----------------------------------------------------------------------------------------------
    def run(self, block: bool = False) -> None:
        """Start a run with the current controls (ignored while one is running)."""
        if self.running:
            return
        n_steps, n_chains = int(self.n_steps.value), int(self.n_chains.value)
        steps_per_chain = -(-n_steps // n_chains)
        self._stop.clear()
        self.error = None
        self.frames = Recorder(every=max(1, -(-steps_per_chain // self.max_frames)))
        self.p_trace = []
        self.progress.max, self.progress.value = steps_per_chain, 0
        self.progress.bar_style = ""
        self.run_button.disabled, self.stop_button.disabled, self.scrub.disabled = True, False, True
        self.status.value = f"run {self.counts['runs'] + 1}: running {steps_per_chain} steps x {n_chains} chain(s)..."
        self.counts["runs"] += 1
        self._last_live = time.monotonic()
        self.start_work(self._work, (n_steps, n_chains, int(self.seed.value)), block=block, name="oise-run")

    def _callback(self, state: OISEStep) -> None:
        self.frames(state)
        self.p_trace.append(float(state.p.mean()))
        every_live = max(1, state.n_steps // 50)
        if state.step % every_live == 0 or state.step == state.n_steps:
            self.progress.value = state.step
        if self._stop.is_set():
            if self.frames.steps and self.frames.steps[-1] != state.step:
                # Keep the step we stopped at as the last frame (a Recorder that records every step copies it).
                single = Recorder(every=1)
                single(state)
                for name in ("steps", "grids", "masks", "p", "delta_p", "saliency"):
                    getattr(self.frames, name).append(getattr(single, name)[0])
            raise KeyboardInterrupt  # oise catches it and returns the partial map
        now = time.monotonic()
        # Live frames only while a front end shows the panel (the widget's view count): a run executed headless
        # (nbconvert, nbval) skips them; the final frame is always drawn.
        if (
            self.view.watched
            and now - self._last_live >= self.live_seconds
            and state.step != state.n_steps
            and self.frames.steps
        ):
            self._draw_frame(len(self.frames) - 1)  # a live frame about once per live_seconds
            self._last_live = time.monotonic()

    def _work(self, n_steps: int, n_chains: int, seed: int) -> None:
        message = ""
        try:
            result = oise(
                self.model,
                self.image_tensor,
                self.target,
                n_steps=n_steps,
                n_chains=n_chains,
                seed=seed,
                grid_size=self.grid_size_value,
                callback=self._callback,
                **self.oise_options,
            )
            self.result = result.maps[0]
            self.result_info = {
                "partial": result.partial,
                "steps_done": result.steps_done,
                "model_calls": result.model_calls,
                "target": int(result.target[0]),
            }
            self.counts["model_calls"] += int(result.model_calls) + 1  # + the clean image
            self.progress.value = result.steps_done
            self.progress.bar_style = "warning" if result.partial else "success"
            if len(self.frames):
                self.scrub.max = len(self.frames) - 1
                if self.scrub.value == self.scrub.max:
                    self.show_frame(self.scrub.max)
                else:
                    self.scrub.value = self.scrub.max  # the observer draws it
            name = class_name(self.model, int(result.target[0]))
            verb = "stopped after" if result.partial else "done:"
            message = (
                f"run {self.counts['runs']}: {verb} {result.steps_done} steps x {n_chains} chain(s) = "
                f"{result.model_calls} model calls; target {name}"
            )
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
        self._mask_art = plots.show_map(
            axes[0], torch.zeros(size), "mask at this step", cmap="gray", label="mask value"
        )
        self._saliency_art = plots.overlay(axes[1], self.image_tensor[0], torch.zeros(size), title="running saliency")
        (self._p_line,) = axes[2].plot([], [], color="tab:blue", linewidth=0.8, label="p (mean over chains)")
        self._step_marker = axes[2].axvline(0, color="tab:red", linestyle="--", label="this frame")
        axes[2].set_xlabel("step (per chain)")
        axes[2].set_ylabel("target probability p")
        axes[2].set_ylim(0, 1.02)
        axes[2].set_title("p along the chain")
        # Below the axes: inside, it covered the trace wherever p dropped (notebook 03).
        axes[2].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)

    def _draw_empty(self) -> None:
        self.view.update()
        self.counts["renders"] += 1

    def _draw_frame(self, index: int) -> None:
        with self.view.lock:
            step = self.frames.steps[index]
            self._mask_art.set_data(plots.as_array(self.frames.masks[index][0, 0]))
            saliency = self.frames.saliency[index][0]
            self._saliency_art.set_data(plots.as_array(saliency))
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

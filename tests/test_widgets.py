"""The panels of notebooks 01-03, driven without a browser: set ``.value``, ``.click()``, read the results."""

from __future__ import annotations

import time

import ipywidgets
import pytest
import torch

from saliency_lib import oise
from saliency_lib.course import widgets
from saliency_lib.method import masks
from saliency_lib.method.core import class_probabilities

# ---- notebook 01: mask panel -------------------------------------------------------------------------------------


def test_mask_panel_builds_the_mask_as_the_library_does(planted_model, planted_images):
    panel = widgets.mask_panel(planted_model, planted_images, ["a", "b", "c"], grid_size=7, p_init=0.4, seed=3)
    assert isinstance(panel, ipywidgets.VBox)
    expected_grid = masks.init_grid(1, 7, 0.4, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(panel.grid, expected_grid)
    panel.shift_y.value, panel.shift_x.value = 2, 1
    expected_mask = masks.upsample(expected_grid[None], (28, 28), shifts=torch.tensor([[2, 1]]))[0]
    assert torch.allclose(panel.mask, expected_mask)
    # The mask is the H x W window of the (s+1)*cell upsampling at the chosen offset.
    assert panel.big_mask.shape == (8 * 4, 8 * 4)
    assert torch.allclose(panel.big_mask[2:30, 1:29], panel.mask)
    panel.image.value = 2
    masked = masks.apply_mask(planted_images[2:3], expected_mask[None], 0.0)
    assert torch.allclose(panel.masked, masked[0])
    # Tolerance: the panel's probability vs the library's: float32 rounding of one softmax.
    assert panel.probability == pytest.approx(float(class_probabilities(planted_model, masked)[0, 0]), abs=1e-6)
    assert panel.target == 0
    assert panel.clean_probability > panel.probability or panel.mask[4:14, 4:14].min() > 0.99
    assert "c" in panel.readout.value


def test_mask_panel_recomputes_only_what_changed(planted_model, planted_images):
    panel = widgets.mask_panel(planted_model, planted_images, grid_size=8, seed=0)
    start = dict(panel.counts)
    assert start["grid"] == start["mask"] == start["masked"] == start["renders"] == 1
    before = panel.view.png
    panel.image.value = 1  # new image: same grid, same mask
    assert (panel.counts["grid"], panel.counts["mask"], panel.counts["masked"]) == (1, 1, 2)
    assert panel.view.png != before
    panel.shift_x.value = 3  # new shift: same grid
    assert (panel.counts["grid"], panel.counts["mask"], panel.counts["masked"]) == (1, 2, 3)
    calls = planted_model.calls
    panel.image.value = 0  # back to image 0: its clean probability is cached, one model call for the masked image
    assert planted_model.calls == calls + 1
    panel.seed.value = 5  # new grid, hence new mask and new masked image
    assert (panel.counts["grid"], panel.counts["mask"], panel.counts["masked"]) == (2, 3, 5)
    assert panel.counts["renders"] == 5  # one render per change


def test_mask_panel_grid_size_clamps_the_shift(planted_model, planted_images):
    panel = widgets.mask_panel(planted_model, planted_images, grid_size=2)  # cell = 14 px
    panel.shift_y.value = 13
    renders = panel.counts["renders"]
    panel.grid_size.value = 7  # cell = 4 px: the shift must fall into [0, 4)
    assert panel.shift_y.max == 3 and panel.shift_y.value == 3
    assert panel.grid.shape == (7, 7) and panel.big_mask.shape == (32, 32)
    assert panel.counts["renders"] == renders + 1  # clamping the slider did not render twice


def test_mask_panel_p_init_extremes(planted_model, planted_images):
    panel = widgets.mask_panel(planted_model, planted_images, p_init=0.0)
    assert panel.grid.sum() == 0 and torch.all(panel.masked == 0)  # everything replaced by the reference (0)
    panel.p_init.value = 1.0
    assert torch.all(panel.grid == 1)
    # Tolerance: an all-on mask applied in float32 (x*1 + r*0).
    assert torch.allclose(panel.masked, planted_images[0], atol=1e-6)
    # Tolerance: the model on the masked vs the clean image, equal up to the rounding above.
    assert panel.probability == pytest.approx(panel.clean_probability, abs=1e-5)


# ---- notebook 02: update panel -----------------------------------------------------------------------------------


def test_update_panel_steps_with_the_library_rule(planted_model, planted_images):
    panel = widgets.update_panel(planted_model, planted_images[0], seed=11)
    assert panel.step == 0 and panel.history == []
    panel.ten_button.click()
    for _ in range(2):
        # Replay the next step with the library's pieces from the same generator state.
        generator = torch.Generator()
        generator.set_state(panel.generator.get_state())
        grid, mask, p_previous = panel.grid.clone(), panel.mask.clone(), panel.p_previous.clone()
        panel.step_button.click()
        masked = masks.apply_mask(planted_images[:1], mask, 0.0)
        p = class_probabilities(planted_model, masked)[:, 0]
        new_grid = masks.update_grid(grid, p, p - p_previous, step_size=0.02, generator=generator)
        new_mask = masks.upsample(new_grid, (28, 28), generator=generator)
        assert torch.equal(panel.grid, new_grid) and torch.allclose(panel.mask, new_mask)
        # Tolerance: the panel's step vs the pieces composed here: float32 rounding only.
        assert panel.history[-1]["p"] == pytest.approx(float(p), abs=1e-6)
        assert panel.history[-1]["delta_p"] == pytest.approx(float(p - p_previous), abs=1e-6)
        assert torch.equal(panel.last["masked"], masked[0])
    assert panel.step == 12 and len(panel.history) == 12
    assert torch.allclose(panel.saliency, masks.postprocess(panel.saliency_sum[None])[0])


def test_update_panel_reports_the_rule(planted_model, planted_images):
    panel = widgets.update_panel(planted_model, planted_images[0], seed=2, step_size=0.3)
    panel.ten_button.click()
    record, last = panel.history[-1], panel.last
    assert record["kept"] + record["dropped"] + record["turned_on"] + record["stayed_off"] == 64
    assert record["kept"] + record["dropped"] == int((last["grid"] > 0).sum())
    turned_on = (last["grid"] == 0) & (last["new_grid"] > 0)
    assert int(turned_on.sum()) == record["turned_on"]
    assert record["on_scale"] == pytest.approx(1 - 0.3 * abs(record["delta_p"]))
    rose = last["new_grid"] > last["grid"]
    assert torch.all(rose[turned_on])
    if rose.any():
        assert torch.allclose(last["new_grid"][rose], torch.tensor(record["on_scale"]))
    assert torch.all(last["new_grid"][(last["grid"] > 0) & ~rose] <= 1)
    dropped = (last["grid"] > 0) & (last["new_grid"] == 0)
    assert int(dropped.sum()) == record["dropped"]
    assert f"{record['p']:.3f}" in panel.readout.value
    # D > 0 on the values: the turned-on cells and the kept cells that were below 1 (the update rescales both).
    kept_rescaled = (last["grid"] > 0) & (last["grid"] < 1) & (last["new_grid"] > 0)
    assert record["rescaled"] == record["turned_on"] + int(kept_rescaled.sum())
    assert any(h["rescaled"] > h["turned_on"] for h in panel.history)  # lr = 0.3: some kept cells are rescaled
    assert f"the {record['turned_on']} turned on and the {int(kept_rescaled.sum())} kept cells" in panel.readout.value


def test_update_panel_labels_rescaled_cells_without_rounding_them_to_0_or_1(planted_model, planted_images):
    from saliency_lib import plots

    panel = widgets.update_panel(planted_model, planted_images[0], seed=2, step_size=0.01)
    panel.ten_button.click()
    values = torch.as_tensor(plots.as_array(panel.last["new_grid"]))
    texts = [text.get_text() for text in panel.axes[0, 3].texts]
    between = values[(values > 0) & (values < 1)]
    assert len(texts) == len(between) > 0  # a small step size: values like 0.9996
    assert sorted(texts) == sorted(plots.cell_value_text(v) for v in between.tolist())
    assert not {".000", "1.000", "0.000"} & set(texts)


def test_loop_panel_legend_sits_below_the_p_trace(planted_model, planted_images):
    panel = widgets.loop_panel(planted_model, planted_images[0], n_steps=10, seed=0)
    figure = panel.view.figure
    renderer = figure.canvas.get_renderer()
    figure.draw_without_rendering()
    legend, axes = panel.axes[2].get_legend(), panel.axes[2]
    assert legend.get_window_extent(renderer).y1 <= axes.get_window_extent(renderer).y0


def test_update_panel_controls(planted_model, planted_images):
    panel = widgets.update_panel(planted_model, planted_images[0], seed=0)
    panel.step_button.click()
    renders = panel.counts["renders"]
    panel.step_size.value = 0.1  # used from the next step: no reset, no redraw
    assert panel.step == 1 and panel.counts["resets"] == 1 and panel.counts["renders"] == renders
    panel.seed.value = 4  # a new chain
    assert panel.step == 0 and panel.counts["resets"] == 2
    fresh = widgets.update_panel(planted_model, planted_images[0], seed=4)
    assert torch.equal(panel.grid, fresh.grid)
    panel.grid_size.value = 4
    assert panel.grid.shape == (1, 4, 4)
    panel.step_button.click()
    assert (
        panel.history[-1]["kept"]
        + panel.history[-1]["dropped"]
        + panel.history[-1]["turned_on"]
        + panel.history[-1]["stayed_off"]
        == 16
    )
    panel.reset_button.click()
    assert panel.step == 0 and panel.saliency_sum.sum() == 0


# ---- notebook 03: loop panel -------------------------------------------------------------------------------------


def test_loop_panel_run_equals_oise_and_scrubbing_does_not_recompute(planted_model, planted_images):
    panel = widgets.loop_panel(planted_model, planted_images[0], n_steps=120, n_chains=2, seed=5, max_frames=10)
    panel.run(block=True)
    assert panel.error is None
    assert panel.counts["renders"] == 2  # the empty figure and the final frame: nobody watched, no live frames
    expected = oise(planted_model, planted_images[:1], n_steps=120, n_chains=2, seed=5)
    # Tolerance: the panel's run vs oise() with the same seed: same draws, float32 sums.
    assert torch.allclose(panel.result, expected.maps[0], atol=1e-6)
    assert panel.result_info == {"partial": False, "steps_done": 60, "model_calls": 120, "target": 0}
    assert panel.progress.value == panel.progress.max == 60
    assert len(panel.p_trace) == 60 and len(panel.frames) >= 10
    assert panel.scrub.max == len(panel.frames) - 1 and panel.scrub.value == panel.scrub.max
    assert torch.allclose(panel.frames.saliency[-1][0], panel.result, atol=1e-6)
    # The map points at the planted region.
    assert panel.result[4:14, 4:14].mean() > 2 * panel.result.mean()
    calls, renders, last_png = planted_model.calls, panel.counts["renders"], panel.view.png
    panel.scrub.value = 1
    assert planted_model.calls == calls and panel.counts["renders"] == renders + 1
    assert panel.view.png != last_png
    assert f"step {panel.frames.steps[1]}" in panel.scrub_label.value
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_loop_panel_runs_in_the_background_and_stops(planted_images):
    from conftest import PlantedModel

    slow = PlantedModel(delay=0.01)
    panel = widgets.loop_panel(slow, planted_images[0], n_steps=5000, seed=1, live_seconds=0.2)
    panel.view.widget._view_count = 1  # as if a front end showed the panel: live frames are drawn
    panel.run_button.click()  # returns at once: the loop runs in a thread
    assert panel.running and panel.run_button.disabled and not panel.stop_button.disabled
    deadline = time.monotonic() + 10
    while panel.progress.value < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    panel.run_button.click()  # ignored while running
    assert panel.counts["runs"] == 1
    panel.stop_button.click()
    assert panel.wait(timeout=10)
    assert panel.error is None
    info = panel.result_info
    assert info["partial"] and 20 <= info["steps_done"] < 5000
    assert panel.progress.value == info["steps_done"] and panel.progress.bar_style == "warning"
    assert "stopped" in panel.status.value
    assert panel.frames.steps[-1] == info["steps_done"]  # the step we stopped at is the last frame
    assert panel.counts["renders"] >= 2  # live frames were drawn while running
    assert not panel.run_button.disabled and panel.stop_button.disabled and not panel.scrub.disabled


def test_loop_panel_shows_errors(planted_images):
    class Broken(torch.nn.Module):
        calls = 0

        def forward(self, images):
            self.calls += 1
            if self.calls > 3:  # the clean image and two steps work, then it breaks
                raise RuntimeError("broken on masked images")
            return torch.zeros(len(images), 3)

    panel = widgets.loop_panel(Broken(), planted_images[0], n_steps=10)
    panel.run(block=True)
    assert "broken on masked images" in str(panel.error)
    assert panel.status.value.startswith("error") and "broken" in panel.status.value
    assert panel.progress.bar_style == "danger"
    assert not panel.run_button.disabled


def test_figure_view_renders_when_someone_can_look():
    lazy = widgets.FigureView((2, 2), eager=False)
    lazy.figure.subplots().plot([0, 1], [1, 0])
    lazy.update()
    assert lazy.renders == 0 and lazy.dirty
    first = lazy.png
    assert first.startswith(b"\x89PNG") and lazy.renders == 1 and lazy.png is first  # no second render
    eager = widgets.FigureView((2, 2), eager=True)
    eager.figure.subplots().plot([0, 1], [0, 1])
    eager.update()
    assert eager.renders == 1 and bytes(eager.widget.value).startswith(b"\x89PNG") and not eager.dirty
    assert widgets.FigureView((1, 1)).eager is False  # no Jupyter kernel under pytest


def test_figure_view_knows_when_it_is_watched():
    assert not widgets.FigureView((1, 1)).watched  # views are not counted unless asked
    view = widgets.FigureView((1, 1), count_views=True)
    assert not view.watched
    view.widget._view_count = 1  # what the front end does when it shows the image
    assert view.watched


def test_panels_reject_bad_input(planted_model, planted_images):
    with pytest.raises(ValueError, match="names"):
        widgets.mask_panel(planted_model, planted_images, names=["only one"])
    with pytest.raises(ValueError, match="one image"):
        widgets.update_panel(planted_model, planted_images)
    with pytest.raises(ValueError, match="one image"):
        widgets.loop_panel(planted_model, planted_images)

"""Notebook 05's panel, driven without a browser: set .value on controls, .click() Run, read the results."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from saliency_lib.course.widgets import ReconstructPanel, reconstruct_panel
from saliency_lib.generative.gan import Discriminator, Generator
from saliency_lib.generative.reconstruct import predictions


class Planted(nn.Module):
    """Class 1 when the top-left quadrant is brighter than the rest of the image, else class 0."""

    class_names = ("dark corner", "bright corner")

    def forward(self, images):
        score = images[:, :, :14, :14].mean(dim=(1, 2, 3)) - images.mean(dim=(1, 2, 3))
        return torch.stack([-score, score], dim=1) * 40


@pytest.fixture(scope="module")
def panel():
    torch.manual_seed(0)
    generator, discriminator = Generator().eval(), Discriminator().eval()
    images = torch.rand(2, 1, 28, 28) * 0.3
    images[0, :, :14, :14] += 0.6
    return reconstruct_panel(
        Planted(),
        generator,
        discriminator,
        images,
        ["bright", "plain"],
        n_variations=4,
        n_iterations=3,
        saliency_calls=40,
        n_candidates=64,
    )


def test_run_shows_variations_with_their_classes(panel):
    assert isinstance(panel, ReconstructPanel)
    runs, renders = panel.runs, panel.view.renders  # the panel is the module's: pytest-xdist may run either test first
    panel.fraction.value = 0.5
    panel.n_variations.value = 5
    panel.run_button.click()  # runs in the background; the panel is live meanwhile
    assert panel.wait(60) and panel.error is None
    assert panel.runs == runs + 1
    assert panel.region.shape == (28, 28) and int(panel.region.sum()) == round(0.3 * 0.5 * 784)
    assert panel.result.reconstructions.shape == (1, 5, 1, 28, 28)
    assert panel.progress.value == panel.progress.max == 3
    # the panel's agreement is the share of variations the model keeps in the original class
    again = predictions(panel.model, panel.result.reconstructions[0])
    assert torch.equal(again, panel.predicted)
    assert panel.original_class == 1
    assert panel.agreement == pytest.approx((again == 1).float().mean().item())
    assert "variations keep the class 'bright corner'" in panel.status.value
    assert panel.view.renders == renders + 1 and len(panel.view.widget.value) > 1000  # a PNG was drawn
    # the region is the most salient part of the cached OISE map
    saliency = panel.maps[(0, "oise")]
    assert saliency[panel.region].min() >= saliency[~panel.region].max()


def test_controls_change_the_run_and_maps_are_cached(panel):
    runs = panel.runs
    panel.fraction.value = 0.9
    panel.n_variations.value = 2
    panel.run(block=True)
    assert int(panel.region.sum()) == round(0.3 * 0.9 * 784)
    assert panel.result.reconstructions.shape[1] == 2
    assert len(panel.maps) == 1  # same image and source: the map was reused
    panel.source.value = "rise"
    panel.image.value = 1
    panel.run(block=True)
    assert set(panel.maps) == {(0, "oise"), (1, "rise")}
    assert panel.runs == runs + 2 and not panel.run_button.disabled


def test_names_must_match_images():
    with pytest.raises(ValueError, match="names"):
        ReconstructPanel(Planted(), Generator().eval(), Discriminator().eval(), torch.rand(2, 1, 28, 28), ["a"])


class Slow(Planted):
    """Planted, 20 ms per call: a run long enough to be stopped part-way."""

    def forward(self, images):
        time.sleep(0.02)
        return super().forward(images)


class SlowDiscriminator(Discriminator):
    """The DCGAN discriminator, 10 ms per call: each latent-search step takes at least that long."""

    def forward(self, images):
        time.sleep(0.01)
        return super().forward(images)


def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_stop_during_the_search_shows_the_variations_so_far_and_the_panel_stays_usable():
    torch.manual_seed(0)
    panel = reconstruct_panel(
        Slow(),
        Generator().eval(),
        SlowDiscriminator().eval(),
        torch.rand(1, 1, 28, 28),
        n_variations=3,
        n_iterations=400,
        saliency_calls=16,
        n_candidates=16,
    )
    panel.run_button.click()
    _wait_for(lambda: panel.progress.value >= 2)
    assert panel.running and panel.run_button.disabled and not panel.stop_button.disabled
    for _ in range(5):  # impatient clicks while it runs start nothing more
        panel.run_button.click()
        panel.run()
    panel.stop_button.click()
    assert panel.wait(30) and panel.error is None
    assert panel.result.partial and 2 <= panel.result.steps_done < 400
    assert panel.result.reconstructions.shape == (1, 3, 1, 28, 28)  # the variations found so far, shown
    assert panel.status.value.startswith(f"stopped after {panel.result.steps_done} of 400 search steps")
    assert panel.progress.bar_style == "warning" and panel.view.renders == 1
    assert not panel.run_button.disabled and panel.stop_button.disabled and panel.runs == 1
    panel.n_iterations.value = 2  # usable: the next run goes to the end
    panel.run(block=True)
    assert not panel.result.partial and panel.runs == 2 and panel.progress.bar_style == "success"


def test_stop_while_the_map_is_computed_caches_nothing_and_the_next_run_works():
    panel = reconstruct_panel(
        Slow(),
        Generator().eval(),
        Discriminator().eval(),
        torch.rand(1, 1, 28, 28),
        n_variations=2,
        n_iterations=1,
        saliency_calls=4000,
        n_candidates=8,
    )
    panel.run_button.click()
    _wait_for(lambda: "computing the OISE map" in panel.status.value)
    time.sleep(0.1)
    panel.stop()
    assert panel.wait(30) and panel.error is None
    assert panel.maps == {} and panel.result is None and panel.runs == 0
    assert "stopped while computing the OISE map" in panel.status.value
    assert not panel.run_button.disabled
    panel.saliency_calls = 16
    panel.run(block=True)
    assert panel.runs == 1 and set(panel.maps) == {(0, "oise")}

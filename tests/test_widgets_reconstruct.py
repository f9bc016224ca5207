"""Notebook 05's panel, driven without a browser: set .value on controls, .click() Run, read the results."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saliency_lib.gan import Discriminator, Generator
from saliency_lib.reconstruct import predictions
from saliency_lib.widgets import ReconstructPanel, reconstruct_panel


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
    return reconstruct_panel(Planted(), generator, discriminator, images, ["bright", "plain"],
                             n_variations=4, n_iterations=3, saliency_calls=40, n_candidates=64)


def test_run_shows_variations_with_their_classes(panel):
    assert isinstance(panel, ReconstructPanel)
    panel.fraction.value = 0.5
    panel.n_variations.value = 5
    panel.run_button.click()
    assert panel.runs == 1
    assert panel.region.shape == (28, 28) and int(panel.region.sum()) == round(0.3 * 0.5 * 784)
    assert panel.result.reconstructions.shape == (1, 5, 1, 28, 28)
    assert panel.progress.value == panel.progress.max == 3
    # the panel's agreement is the share of variations the model keeps in the original class
    again = predictions(panel.model, panel.result.reconstructions[0])
    assert torch.equal(again, panel.predicted)
    assert panel.original_class == 1
    assert panel.agreement == pytest.approx((again == 1).float().mean().item())
    assert "variations keep the class 'bright corner'" in panel.status.value
    assert panel.view.renders == 1 and len(panel.view.widget.value) > 1000  # a PNG was drawn
    # the region is the most salient part of the cached OISE map
    saliency = panel.maps[(0, "oise")]
    assert saliency[panel.region].min() >= saliency[~panel.region].max()


def test_controls_change_the_run_and_maps_are_cached(panel):
    panel.fraction.value = 0.9
    panel.n_variations.value = 2
    panel.run_button.click()
    assert int(panel.region.sum()) == round(0.3 * 0.9 * 784)
    assert panel.result.reconstructions.shape[1] == 2
    assert len(panel.maps) == 1  # same image and source: the map was reused
    panel.source.value = "rise"
    panel.image.value = 1
    panel.run_button.click()
    assert set(panel.maps) == {(0, "oise"), (1, "rise")}
    assert panel.runs == 3 and not panel.run_button.disabled


def test_names_must_match_images():
    with pytest.raises(ValueError, match="names"):
        ReconstructPanel(Planted(), Generator().eval(), Discriminator().eval(), torch.rand(2, 1, 28, 28), ["a"])

"""Baselines: Captum's methods behind one call shape, on a model whose evidence is known."""

import pytest
import torch

from saliency_lib import SaliencyResult
from saliency_lib.evaluation import baselines as B
from saliency_lib.evaluation import metrics as Mt
from saliency_lib.evaluation.datasets import planted_canvases
from saliency_lib.io import models
from saliency_lib.io.data import fashion_sample

FAST = {
    "oise": {"n_steps": 150},
    "rise": {"n_masks": 150},
    "lime": {"n_samples": 40},
    "integrated_gradients": {"n_path_points": 8},
    "occlusion": {"window": 8, "stride": 4},
}


@pytest.fixture(scope="module")
def planted():
    items, labels = fashion_sample(n_per_class=2)
    data = planted_canvases(items, labels, 6, seed=3)
    return models.load("planted-evidence"), data


@pytest.mark.parametrize("name", sorted(B.METHODS))
def test_every_method_gives_one_finite_map_per_image(planted, name):
    model, data = planted
    result = B.attribute(name, model, data.images, data.labels, **FAST.get(name, {}))
    assert isinstance(result, SaliencyResult)
    maps = result.maps
    assert maps.shape == (6, 64, 64) and maps.dtype == torch.float32 and not maps.requires_grad
    assert type(maps) is torch.Tensor and not hasattr(maps, "model_calls") and not hasattr(maps, "target")
    assert torch.isfinite(maps).all()
    assert isinstance(result.model_calls, int) and result.partial is False and result.seconds > 0
    assert result.target.tolist() == [1] * 6
    assert result[2].model_calls == result.model_calls and result[2].target.tolist() == [1]  # kept by indexing
    if name == "lime":
        # Superpixel-level: its maximum is a whole superpixel, often larger than the 8 x 8 checkerboard, so the
        # tie-aware pointing game gives partial credit; still far above a random map (~0.05 here).
        assert Mt.pointing_game(maps, data.boxes).mean() >= 0.3
    elif name != "random":
        # The planted checkerboard is the model's only evidence: every pixel-level method must find it.
        assert Mt.pointing_game(maps, data.boxes).mean() >= 0.8, name
    else:
        assert Mt.pointing_game(maps, data.boxes).mean() < 0.5


def test_budgets_are_the_model_calls(planted):
    model, data = planted
    assert B.attribute("oise", model, data.images[:2], n_steps=60).model_calls == 60
    assert B.attribute("rise", model, data.images[:2], n_masks=60).model_calls == 60
    assert B.attribute("lime", model, data.images[:2], n_samples=30).model_calls == 30
    assert B.attribute("occlusion", model, data.images[:2], window=16, stride=16).model_calls == 17


def test_oise_and_rise_keep_their_steps_and_partial_flag(planted):
    model, data = planted
    oise_result = B.attribute("oise", model, data.images[:2], n_steps=40, n_chains=4)
    assert (oise_result.model_calls, oise_result.steps_done, oise_result.partial) == (40, 10, False)
    rise_result = B.attribute("rise", model, data.images[:2], n_masks=40)
    assert (rise_result.model_calls, rise_result.steps_done, rise_result.partial) == (40, 40, False)
    assert B.attribute("oise", model, data.images[:2], n_steps=20, record_every=10).history.steps == [1, 10, 20]


def test_gradcam_is_captums_layergradcam(planted):
    from captum.attr import LayerAttribution, LayerGradCam

    model, data = planted
    ours = B.gradcam(model, data.images, 1).maps
    with torch.enable_grad():
        theirs = LayerGradCam(model, model.gradcam_layer).attribute(data.images, target=1, relu_attributions=True)
    theirs = LayerAttribution.interpolate(theirs, (64, 64), interpolate_mode="bilinear")[:, 0]
    assert torch.allclose(ours, theirs)


def test_seeded_methods_repeat_and_lime_leaves_the_global_generator_alone(planted):
    model, data = planted
    state = torch.random.get_rng_state()
    a = B.lime(model, data.images[:2], n_samples=30, seed=5).maps
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a, B.lime(model, data.images[:2], n_samples=30, seed=5).maps)
    assert torch.equal(
        B.attribute("rise", model, data.images[:2], n_masks=50, seed=1).maps,
        B.attribute("rise", model, data.images[:2], n_masks=50, seed=1).maps,
    )


def test_superpixels_label_every_pixel():
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = B.superpixels(images, n_segments=10)
    assert labels.shape == (2, 32, 32) and labels.min() == 0
    for image_labels in labels:  # consecutive labels from 0
        assert torch.equal(image_labels.unique(), torch.arange(int(image_labels.max()) + 1))


def test_bad_arguments_are_named(planted):
    model, data = planted
    with pytest.raises(ValueError, match="method must be one of"):
        B.attribute("shap", model, data.images)
    with pytest.raises(ValueError, match="window"):
        B.occlusion(model, data.images, window=0)
    with pytest.raises(ValueError, match="channels"):
        B.saliency(model, torch.rand(1, 3, 64, 64))

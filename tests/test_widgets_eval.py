"""Notebook 04's evaluation panel, driven without a browser."""

import torch

from saliency_lib.course.widgets import evaluation_panel
from saliency_lib.evaluation import metrics as Mt
from saliency_lib.evaluation.datasets import planted_canvases
from saliency_lib.io import models
from saliency_lib.io.data import fashion_sample


def make_panel():
    items, labels = fashion_sample(n_per_class=1)
    data = planted_canvases(items, labels, 3, seed=0)
    panel = evaluation_panel(
        models.load("planted-evidence"),
        data.images,
        data.labels,
        boxes=data.boxes,
        methods=("rise", "gradcam"),
        options={"rise": {"n_masks": 100}},
        pixels_per_step=256,
    )
    return panel, data


def test_run_explains_scores_and_draws_the_chosen_methods():
    panel, data = make_panel()
    panel.image.value = 2
    panel.methods.value = ("gradcam", "saliency", "random")
    panel.run.click()
    assert list(panel.maps) == ["gradcam", "saliency", "random"]
    assert panel.fraction.shape == (17,)
    for mode in ("deletion", "insertion"):
        assert set(panel.curves[mode]) == {"gradcam", "saliency", "random"}
        assert all(curve.shape == (17,) for curve in panel.curves[mode].values())
    # The model only sees the checkerboard: the gradient maps delete it first, the random map does not.
    assert panel.auc["deletion"]["saliency"] < panel.auc["deletion"]["random"] - 0.2
    assert panel.auc["insertion"]["gradcam"] > panel.auc["insertion"]["random"] + 0.2
    # The panel's curves are the library's.
    direct = Mt.deletion(panel.model, data.images[2:3], panel.maps["gradcam"].unsqueeze(0), [1], pixels_per_step=256)
    assert torch.allclose(direct.curve[0], panel.curves["deletion"]["gradcam"])
    assert panel.view.renders >= 1 and panel.view.widget.value[:4] == b"\x89PNG"


def test_step_slider_and_mode_change_the_perturbed_image():
    panel, data = make_panel()
    panel.run.click()
    renders = panel.view.renders
    panel.step.value = 0
    assert torch.allclose(panel.perturbed, data.images[0])  # nothing deleted yet
    panel.step.value = 2  # 512 most salient pixels to the reference
    changed = (panel.perturbed != data.images[0]).any(dim=0)
    assert 0 < changed.sum() <= 512
    panel.mode.value = "insertion"
    panel.step.value = 0
    assert not torch.allclose(panel.perturbed, data.images[0])  # the blurred start
    assert panel.view.renders > renders


def test_no_method_chosen_says_so():
    panel, _ = make_panel()
    panel.methods.value = ()
    panel.run.click()
    assert "at least one" in panel.status.value and panel.maps == {}

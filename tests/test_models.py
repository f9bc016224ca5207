"""Classifiers: loading, conventions, accuracy, and the clear failure of download-only models offline."""

from __future__ import annotations

import time

import pytest
import torch

from saliency_lib import data, models


@pytest.fixture(scope="module")
def fashion():
    return models.load("fashion-cnn")


def test_fashion_cnn_is_ready_and_accurate_on_the_sample(fashion):
    assert not fashion.training
    assert not any(parameter.requires_grad for parameter in fashion.parameters())
    images, labels = data.fashion_sample()
    assert models.accuracy(fashion, images, labels) >= 0.90
    assert fashion.class_names[0] == "T-shirt/top" and fashion.n_classes == 10


def test_masked_pixels_become_zero_in_the_normalised_space(fashion):
    reference = fashion.spec.reference()
    assert reference.shape == (1, 1, 1)
    normalised = (reference.view(1, 1, 1, 1) - fashion.mean) / fashion.std
    assert torch.allclose(normalised, torch.zeros(1), atol=1e-6)


def test_efficientnet_lite0_recognises_the_photographs():
    model = models.load("efficientnet-lite0")
    images, names = data.photographs(["cat", "coffee"])
    with torch.no_grad():
        top5 = model(images).topk(5, dim=1).indices
    assert model.n_classes == 1000 and model.spec.size == (224, 224)
    assert "Egyptian cat" in [model.class_names[i] for i in top5[0]]
    assert model.class_names[top5[1, 0]] == "espresso"


@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_download_only_models_fail_at_once_offline(name, monkeypatch, tmp_path):
    monkeypatch.setattr(models, "_online", lambda *args, **kwargs: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights
    start = time.perf_counter()
    with pytest.raises(models.ModelUnavailableError, match="offline.*fashion-cnn, efficientnet-lite0"):
        models.load(name)
    assert time.perf_counter() - start < 5


def test_unknown_model_lists_the_choices():
    with pytest.raises(ValueError, match="unknown model 'resnet18'.*fashion-cnn"):
        models.load("resnet18")


def test_imagenet_names_need_no_download():
    names = models.imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench"

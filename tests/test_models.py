"""Classifiers: loading, conventions, accuracy, and the clear failure of download-only models offline."""

from __future__ import annotations

import time

import pytest
import torch

from saliency_lib.evaluation.datasets import make_canvases
from saliency_lib.io import assets, data, models
from saliency_lib.method.core import class_probabilities


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
    # Tolerance: (mean - mean) / std after float32 round trips of the stored mean.
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


def test_shipped_classifier_recognises_canvases_from_held_out_images():
    model = models.load("clutter-cnn")
    entry = assets.read_manifest()["files"]["clutter_cnn.pt"]
    assert entry["measured"]["held_out_accuracy"] >= 0.75
    assert entry["command"] == "python -m saliency_lib assets build --only clutter_cnn.pt"
    items, labels = data.fashion_sample(n_per_class=20)  # the sample is test-set images: never seen in training
    canvases = make_canvases(items, labels, 200, seed=1)
    with torch.no_grad():
        accuracy = (model(canvases.images).argmax(1) == canvases.labels).float().mean().item()
    # The build measured its accuracy on 10,000 held-out canvases; 200 canvases give a noisier estimate.
    assert abs(accuracy - entry["measured"]["held_out_accuracy"]) < 0.1
    assert model.gradcam_layer is model.net.features[-1]
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 10)


def test_clutter_cnn_is_small():
    assert sum(p.numel() for p in models.ClutterCNN().parameters()) < 100_000


def test_planted_model_only_sees_the_checkerboard():
    model = models.load("planted-evidence")
    blank = torch.zeros(2, 1, 64, 64)
    planted = blank.clone()
    planted[1, 0, 10:18, 20:28] = models.checkerboard()
    probs = class_probabilities(model, planted)[:, 1]
    assert probs[0] < 0.01 and probs[1] > 0.99
    assert class_probabilities(model, torch.ones(1, 1, 64, 64))[0, 1] < 0.01  # a flat bright image is not evidence


def test_wrap_gives_our_classifiers_their_conventions():
    wrapped = models.wrap("clutter-cnn", models.ClutterCNN())
    assert wrapped.spec.mean == models.CLUTTER_MEAN and wrapped.class_names == data.FASHION_CLASSES
    with pytest.raises(ValueError, match="name"):
        models.wrap("resnet50", models.ClutterCNN())


def test_the_training_loop_is_seeded():
    images, labels = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def train(seed, max_shift):
        return models.train_classifier(
            models.FashionCNN,
            lambda epoch: (images, labels),
            epochs=1,
            examples_per_epoch=64,
            max_lr=1e-3,
            seed=seed,
            batch_size=32,
            max_shift=max_shift,
            progress=False,
        )

    a, b, c = train(0, 2), train(0, 2), train(1, 2)
    weight = lambda net: net.head[-1].weight  # noqa: E731
    assert torch.equal(weight(a), weight(b)) and not torch.equal(weight(a), weight(c))
    assert not a.training

"""The shared input checks: each raises a ValueError/TypeError naming the argument and what was expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from saliency_lib import _validate as V
from saliency_lib.models import Classifier, InputSpec


def spec_model(channels: int = 1) -> Classifier:
    net = nn.Sequential(nn.Flatten(), nn.LazyLinear(3))
    net(torch.zeros(1, channels, 6, 6))
    spec = InputSpec(channels=channels, size=(6, 6), mean=(0.3,) * channels, std=(0.5,) * channels)
    return Classifier("toy", net, spec, ("a", "b", "c"), net[0]).eval()


def test_check_int():
    assert V.check_int("n", 3) == 3
    with pytest.raises(TypeError, match="n must be an int"):
        V.check_int("n", 3.0)
    with pytest.raises(TypeError, match="n must be an int"):
        V.check_int("n", True)
    with pytest.raises(ValueError, match=r"n must be >= 2 and <= 4, got 5"):
        V.check_int("n", 5, 2, 4)


def test_check_images_adds_a_batch_axis_and_checks_the_model_convention():
    images, added = V.check_images(torch.rand(1, 6, 6))
    assert images.shape == (1, 1, 6, 6) and added
    images, added = V.check_images(torch.rand(2, 1, 6, 6), spec_model())
    assert not added
    with pytest.raises(ValueError, match="3 channels but model 'toy' expects 1"):
        V.check_images(torch.rand(2, 3, 6, 6), spec_model())
    with pytest.raises(ValueError, match=r"values in \[0.0, 1.0\]"):
        V.check_images(torch.full((1, 1, 6, 6), 2.0), spec_model())
    with pytest.raises(ValueError, match="empty"):
        V.check_images(torch.rand(0, 1, 6, 6))
    with pytest.raises(ValueError, match="NaN"):
        V.check_images(torch.tensor([[[[float("inf")]]]]))
    with pytest.raises(TypeError, match="float tensor"):
        V.check_images(torch.zeros(1, 1, 6, 6, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        V.check_images(np.zeros((1, 1, 6, 6)))


def test_resolve_target_accepts_the_usual_forms():
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert V.resolve_target(None, probs).tolist() == [1, 0]
    assert V.resolve_target(2, probs).tolist() == [2, 2]
    assert V.resolve_target(np.int64(2), probs).tolist() == [2, 2]
    assert V.resolve_target(torch.tensor(1), probs).tolist() == [1, 1]
    assert V.resolve_target([0, 2], probs).tolist() == [0, 2]
    assert V.resolve_target(torch.tensor([2, 1]), probs).tolist() == [2, 1]
    assert V.resolve_target(np.array([1, 1]), probs).tolist() == [1, 1]


@pytest.mark.parametrize("target, error, match", [
    (3, ValueError, r"class index in \[0, 2\]"),
    ([0, -1], ValueError, "class index"),
    ([0, 1, 2], ValueError, "3 entries but there are 2 images"),
    (True, TypeError, "bool"),
    (1.0, TypeError, "target"),
    (torch.tensor([0.0, 1.0]), TypeError, "integers"),
    (["a", "b"], TypeError, "ints"),
])
def test_resolve_target_rejects(target, error, match):
    with pytest.raises(error, match=match):
        V.resolve_target(target, torch.rand(2, 3))


def test_resolve_reference():
    images = torch.rand(2, 1, 6, 6)
    assert torch.allclose(V.resolve_reference("mean", spec_model(), images), torch.tensor(0.3).view(1, 1, 1))
    assert V.resolve_reference("mean", nn.Identity(), images) == 0.0
    assert V.resolve_reference("blur", nn.Identity(), images).shape == images.shape
    assert V.resolve_reference(0.5, nn.Identity(), images) == 0.5
    with pytest.raises(ValueError, match="reference must be 'mean', 'blur'"):
        V.resolve_reference("zero", nn.Identity(), images)
    with pytest.raises(ValueError, match="finite"):
        V.resolve_reference(float("nan"), nn.Identity(), images)
    with pytest.raises(ValueError, match="reference images must match"):
        V.resolve_reference(torch.rand(1, 1, 6, 6), nn.Identity(), images)
    with pytest.raises(TypeError, match="reference"):
        V.resolve_reference([0.1], nn.Identity(), images)


def test_class_probabilities_softmaxes_chunks_and_checks_the_output():
    model = spec_model()
    images = torch.rand(5, 1, 6, 6)
    probs = V.class_probabilities(model, images)
    assert probs.shape == (5, 3) and torch.allclose(probs.sum(1), torch.ones(5))
    assert torch.allclose(V.class_probabilities(model, images, batch_size=2), probs, atol=1e-6)
    assert torch.allclose(V.target_probability(model, images, torch.tensor([0, 1, 2, 0, 1])),
                          probs[torch.arange(5), torch.tensor([0, 1, 2, 0, 1])])
    with pytest.raises(ValueError, match=r"\(B, n_classes\)"):
        V.class_probabilities(nn.Flatten(0), images)
    with pytest.raises(ValueError, match="NaN"):
        V.class_probabilities(lambda x: torch.full((len(x), 3), float("nan")), images)
    with pytest.raises(ValueError, match="rejected images of shape"):
        V.class_probabilities(model, torch.rand(5, 1, 7, 7))
    with pytest.raises(ValueError, match="not probabilities"):
        V.class_probabilities(model, images, output="probabilities")
    with pytest.raises(ValueError, match="output must be"):
        V.class_probabilities(model, images, output="scores")


def test_model_device_and_class_count():
    model = spec_model()
    assert V.model_device(model, torch.device("meta")) == torch.device("cpu")
    assert V.model_device(nn.Identity(), torch.device("meta")) == torch.device("meta")
    assert V.n_classes_of(model) == 3 and V.n_classes_of(nn.Identity()) is None

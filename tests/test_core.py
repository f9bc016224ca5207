"""The black-box core (saliency_lib.method.core) and the shared argument checks (saliency_lib._checks).

Each check raises a ValueError/TypeError naming the argument and what was expected."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from saliency_lib.io.models import Classifier, InputSpec
from saliency_lib.method import checks as C
from saliency_lib.method import core as V


def spec_model(channels: int = 1) -> Classifier:
    net = nn.Sequential(nn.Flatten(), nn.LazyLinear(3))
    net(torch.zeros(1, channels, 6, 6))
    spec = InputSpec(channels=channels, size=(6, 6), mean=(0.3,) * channels, std=(0.5,) * channels)
    return Classifier("toy", net, spec, ("a", "b", "c"), net[0]).eval()


def test_check_int():
    assert C.check_int("n", 3) == 3
    with pytest.raises(TypeError, match="n must be an int"):
        C.check_int("n", 3.0)
    with pytest.raises(TypeError, match="n must be an int"):
        C.check_int("n", True)
    with pytest.raises(ValueError, match=r"n must be >= 2 and <= 4, got 5"):
        C.check_int("n", 5, 2, 4)


def test_check_images_adds_a_batch_axis_and_checks_the_model_convention():
    images, added = C.check_images(torch.rand(1, 6, 6))
    assert images.shape == (1, 1, 6, 6) and added
    images, added = C.check_images(torch.rand(2, 1, 6, 6), spec_model())
    assert not added
    with pytest.raises(ValueError, match="3 channels but model 'toy' expects 1"):
        C.check_images(torch.rand(2, 3, 6, 6), spec_model())
    with pytest.raises(ValueError, match=r"values in \[0.0, 1.0\]"):
        C.check_images(torch.full((1, 1, 6, 6), 2.0), spec_model())
    with pytest.raises(ValueError, match="empty"):
        C.check_images(torch.rand(0, 1, 6, 6))
    with pytest.raises(ValueError, match="NaN"):
        C.check_images(torch.tensor([[[[float("inf")]]]]))
    with pytest.raises(TypeError, match="float tensor"):
        C.check_images(torch.zeros(1, 1, 6, 6, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        C.check_images(np.zeros((1, 1, 6, 6)))


def test_resolve_target_accepts_the_usual_forms():
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert V.resolve_target(None, probs).tolist() == [1, 0]
    assert V.resolve_target(2, probs).tolist() == [2, 2]
    assert V.resolve_target(np.int64(2), probs).tolist() == [2, 2]
    assert V.resolve_target(torch.tensor(1), probs).tolist() == [1, 1]
    assert V.resolve_target([0, 2], probs).tolist() == [0, 2]
    assert V.resolve_target(torch.tensor([2, 1]), probs).tolist() == [2, 1]
    assert V.resolve_target(np.array([1, 1]), probs).tolist() == [1, 1]


@pytest.mark.parametrize(
    "target, error, match",
    [
        (3, ValueError, r"class index in \[0, 2\]"),
        ([0, -1], ValueError, "class index"),
        ([0, 1, 2], ValueError, "3 entries but there are 2 images"),
        (True, TypeError, "bool"),
        (1.0, TypeError, "target"),
        (torch.tensor([0.0, 1.0]), TypeError, "integers"),
        (["a", "b"], TypeError, "ints"),
    ],
)
def test_resolve_target_rejects(target, error, match):
    with pytest.raises(error, match=match):
        V.resolve_target(target, torch.rand(2, 3))


def test_resolve_reference():
    images = torch.rand(2, 1, 6, 6)
    assert torch.allclose(V.resolve_reference("mean", spec_model(), images), torch.tensor(0.3).view(1, 1, 1))
    assert V.resolve_reference("mean", nn.Identity(), images) == 0.0
    assert V.resolve_reference("blur", nn.Identity(), images).shape == images.shape
    assert V.resolve_reference(0.5, nn.Identity(), images) == 0.5
    with pytest.raises(ValueError, match="reference must be one of 'mean', 'black', 'blur'.*got 'zero'.*use 'black'"):
        V.resolve_reference("zero", nn.Identity(), images)
    with pytest.raises(ValueError, match="finite"):
        V.resolve_reference(float("nan"), nn.Identity(), images)
    with pytest.raises(ValueError, match="reference images must match"):
        V.resolve_reference(torch.rand(1, 1, 6, 6), nn.Identity(), images)
    with pytest.raises(TypeError, match="reference"):
        V.resolve_reference([0.1], nn.Identity(), images)


def test_black_is_pixel_zero_whatever_the_normalisation():
    # "black" is the lowest pixel of the model's value range, per channel: 0 in [0, 1] space, so after the model's
    # own normalisation it is -mean / std, not the 0 of the dataset mean.
    images = torch.rand(2, 3, 6, 6)
    model = spec_model(3)
    black = V.resolve_reference("black", model, images)
    assert black.shape == (3, 1, 1) and torch.equal(black, torch.zeros(3, 1, 1))
    normalised = (V.broadcast_reference(black, images).expand_as(images) - model.mean) / model.std
    assert torch.allclose(normalised, torch.full_like(images, -0.3 / 0.5))
    assert V.resolve_reference("black", nn.Identity(), images) == 0.0  # no convention declared: pixel 0
    assert "black" in V.REFERENCES and "mean" in V.REFERENCES
    # black and the mean differ exactly by the spec's mean
    assert torch.allclose(V.resolve_reference("mean", model, images) - black, torch.full((3, 1, 1), 0.3))


def test_class_probabilities_softmaxes_chunks_and_checks_the_output():
    model = spec_model()
    images = torch.rand(5, 1, 6, 6)
    probs = V.class_probabilities(model, images)
    assert probs.shape == (5, 3) and torch.allclose(probs.sum(1), torch.ones(5))
    # Tolerance: softmax of the same logits in batches of 2 vs 5: float32 rounding (~1e-7) only.
    assert torch.allclose(V.class_probabilities(model, images, batch_size=2), probs, atol=1e-6)
    assert torch.equal(
        V.call_model(model, images, batch_size=2), torch.cat([model(images[:2]), model(images[2:4]), model(images[4:])])
    )
    # Tolerance: the same softmax by two paths; probabilities in [0, 1], float32 eps 6e-8.
    assert torch.allclose(V.to_probabilities(V.call_model(model, images)), probs, atol=1e-6)
    assert torch.equal(V.to_probabilities(probs, "probabilities"), probs)
    with pytest.raises(ValueError, match=r"\(B, n_classes\)"):
        V.class_probabilities(nn.Flatten(0), images)
    with pytest.raises(ValueError, match="NaN"):
        V.class_probabilities(lambda x: torch.full((len(x), 3), float("nan")), images)
    with pytest.raises(ValueError, match="rejected images of shape"):
        V.class_probabilities(model, torch.rand(5, 1, 7, 7))
    with pytest.raises(ValueError, match="not probabilities"):
        V.class_probabilities(model, images, output="probabilities")
    with pytest.raises(ValueError, match="output must be one of"):
        V.class_probabilities(model, images, output="scores")


def test_model_device():
    model = spec_model()
    assert V.model_device(model, torch.device("meta")) == torch.device("cpu")
    assert V.model_device(nn.Identity(), torch.device("meta")) == torch.device("meta")
    assert V.model_device(lambda x: x, torch.device("meta")) == torch.device("meta")  # a function: no AttributeError


def test_check_model_accepts_functions_and_warns_once_about_training_mode():
    function = lambda x: x  # noqa: E731
    assert C.check_model(function) is function
    with pytest.raises(TypeError, match="model must be an nn.Module or a function"):
        C.check_model(3)
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    with pytest.warns(UserWarning, match="model is in training mode and its layers 1 \\(Dropout\\)"):
        C.check_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.check_model(model)  # once per model
        C.check_model(nn.Linear(2, 2))  # training mode without dropout or batch norm: nothing to say
    assert model.training


def test_check_images_converts_other_float_dtypes_as_a_copy():
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    images, _ = C.check_images(x, spec_model())
    assert (
        images.dtype == torch.float32 and x.dtype == torch.float64 and torch.equal(images.double(), x.float().double())
    )
    with pytest.raises(ValueError, match=r"looks channel-last \(H, W, C\)"):
        C.check_images(torch.rand(6, 6, 3))
    with pytest.raises(ValueError, match="use images / 255"):
        C.check_images(torch.full((1, 1, 6, 6), 255.0), spec_model())
    with pytest.warns(UserWarning, match="8-bit pixels"):
        C.check_images(torch.full((1, 1, 6, 6), 255.0))


def test_class_probabilities_warns_about_probabilities_given_as_logits():
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3), nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="output='probabilities'"):
        V.class_probabilities(model, torch.rand(4, 1, 6, 6))


@pytest.mark.parametrize(
    "target, match",
    [
        ("b", r"class name 'b'; use model.class_names.index\('b'\)"),
        (["a", "b"], "class names"),
        (np.float64(1.0), "got float64"),
        (torch.tensor([True, False]), "integers"),
    ],
)
def test_resolve_target_explains_names_and_numpy_floats(target, match):
    with pytest.raises(TypeError, match=match):
        V.resolve_target(target, torch.rand(2, 3))


def test_broadcast_reference_gives_a_tensor_that_broadcasts_over_the_masked_batch():
    images = torch.rand(2, 3, 5, 5)
    number = V.broadcast_reference(0.25, images)
    assert number.dim() == 0 and number.item() == 0.25 and number.dtype == images.dtype
    channel = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)
    assert torch.equal(V.broadcast_reference(channel, images), channel)
    batch = torch.rand(2, 3, 5, 5)
    repeated = V.broadcast_reference(batch, images, repeats=3)
    assert repeated.shape == (6, 3, 5, 5) and torch.equal(repeated[3:6], batch[1:2].expand(3, -1, -1, -1))
    assert torch.equal(V.broadcast_reference(batch, images), batch)


def test_seeded_generator_repeats_and_refuses_a_float_seed():
    a = torch.rand(4, generator=V.seeded_generator(7))
    assert torch.equal(a, torch.rand(4, generator=V.seeded_generator(7)))
    assert torch.equal(a, torch.rand(4, generator=V.seeded_generator(np.int64(7))))
    assert not torch.equal(a, torch.rand(4, generator=V.seeded_generator(8)))
    with pytest.raises(TypeError, match="seed must be None or an int, got float"):
        V.seeded_generator(1.5)
    with pytest.raises(TypeError, match="seed"):
        V.seeded_generator(True)


@pytest.mark.parametrize(
    "value, kwargs, ok",
    [
        (0.0, {}, True),
        (1, {}, True),
        (0.5, {}, True),
        (-0.1, {}, False),
        (1.01, {}, False),
        (float("nan"), {}, False),
        (True, {}, False),
        ("0.5", {}, False),
        (0.0, {"open_low": True}, False),
        (1.0, {"open_high": True}, False),
    ],
)
def test_check_fraction(value, kwargs, ok):
    if ok:
        assert C.check_fraction("p", value, **kwargs) == float(value)
    else:
        with pytest.raises(ValueError, match=r"p must be a number in [\[(]0, 1[\])], got"):
            C.check_fraction("p", value, **kwargs)


def test_check_number_seed_choice_callable():
    assert C.check_number("lr", 0.1, minimum=0) == 0.1
    for bad in (-1, float("inf"), True, None):
        with pytest.raises(ValueError, match="lr must be a finite number"):
            C.check_number("lr", bad, minimum=0)
    assert C.check_seed(None) is None and C.check_seed(3) == 3
    with pytest.raises(TypeError, match="seed must be None or an int"):
        C.check_seed(1.5)
    with pytest.raises(ValueError, match=r"mode must be one of \['a', 'b'\], got 'c'"):
        C.check_choice("mode", "c", ("a", "b"))
    with pytest.raises(TypeError, match="callback must be callable"):
        C.check_callable("callback", 3)


def test_check_maps_shapes_and_values():
    images = torch.rand(2, 1, 6, 6)
    assert C.check_maps(torch.rand(6, 6)).shape == (1, 6, 6)
    assert C.check_maps(torch.rand(2, 1, 6, 6), images).shape == (2, 6, 6)
    assert C.check_maps(torch.ones(2, 6, 6, dtype=torch.bool)).dtype == torch.bool
    with pytest.raises(ValueError, match=r"maps must have shape \(B, H, W\) = \(2, 6, 6\)"):
        C.check_maps(torch.rand(3, 6, 6), images)
    with pytest.raises(ValueError, match="NaN"):
        C.check_maps(torch.full((1, 6, 6), float("nan")))
    with pytest.raises(TypeError, match="region must be a torch.Tensor"):
        C.check_maps(np.zeros((6, 6)), name="region")

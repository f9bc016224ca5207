"""Metrics: RISE's deletion/insertion, pointing game, IoU, energy, Spearman and the Adebayo sanity check."""

import pytest
import torch
from torch import nn

from conftest import PlantedModel
from saliency_lib.evaluation import metrics as Mt


def RegionModel() -> PlantedModel:  # noqa: N802 (used like the class it replaced)
    """Class 1's logit grows with the brightness of the top-left 8 x 8 corner; nothing else matters."""
    return PlantedModel((0, 8, 0, 8), threshold=0.5, evidence_class=1)


def corner_map(batch=3, size=16, inside=True):
    maps = torch.rand(batch, size, size, generator=torch.Generator().manual_seed(1)) * 0.1
    if inside:
        maps[:, :8, :8] += 1
    else:
        maps[:, 8:, 8:] += 1
    return maps


@pytest.fixture
def images():
    return torch.ones(3, 1, 16, 16) * 0.9


def test_auc_is_the_normalised_trapezoid():
    assert Mt.auc(torch.ones(2, 5)).tolist() == [1.0, 1.0]
    assert Mt.auc(torch.linspace(1, 0, 11).view(1, -1)).item() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        Mt.auc(torch.ones(5))


def test_deletion_rewards_the_map_that_points_at_the_evidence(images):
    model = RegionModel()
    good = Mt.deletion(model, images, corner_map(), target=1, pixels_per_step=16)
    bad = Mt.deletion(model, images, corner_map(inside=False), target=1, pixels_per_step=16)
    assert (good.auc < bad.auc - 0.2).all()
    assert good.curve.shape == (3, 17) and good.model_calls == 17
    # First point: the clean image; last: everything replaced by the reference (0 for a model without a spec).
    clean = torch.softmax(model(images), 1)[:, 1]
    assert torch.allclose(good.curve[:, 0], clean)
    assert torch.allclose(good.curve[:, -1], torch.softmax(model(torch.zeros_like(images)), 1)[:, 1])
    assert good.fraction[0] == 0 and good.fraction[-1] == 1


def test_insertion_starts_from_the_blur_and_rewards_the_right_map():
    model = RegionModel()
    images = torch.zeros(2, 1, 16, 16)
    images[:, :, :8, :8] = 1.0
    blurred = Mt.insertion(model, images, corner_map(2), target=1, pixels_per_step=16)
    assert torch.allclose(blurred.curve[:, 0], torch.softmax(model(Mt.M.blur(images)), 1)[:, 1])
    good = Mt.insertion(model, images, corner_map(2), target=1, pixels_per_step=16, start=0.0)
    bad = Mt.insertion(model, images, corner_map(2, inside=False), target=1, pixels_per_step=16, start=0.0)
    assert (good.auc > bad.auc + 0.2).all()
    assert torch.allclose(good.curve[:, -1], torch.softmax(model(images), 1)[:, 1])


def test_deletion_and_insertion_take_the_black_reference_through_the_models_spec(images):
    # A model whose dataset mean is 0.4 (pixel space): "mean" fills with 0.4, "black" with pixel 0 (-0.4 / 0.2
    # after the model's normalisation), so the fully deleted image and insertion's start differ between them.
    from saliency_lib.io.models import Classifier, InputSpec

    net = RegionModel()
    spec = InputSpec(channels=1, size=(16, 16), mean=(0.4,), std=(0.2,))
    model = Classifier("toy", net, spec, ("a", "b"), net).eval()

    def probability(x):
        return torch.softmax(model(x), 1)[:, 1]

    maps = corner_map()
    black = Mt.deletion(model, images, maps, target=1, pixels_per_step=16, reference="black")
    grey = Mt.deletion(model, images, maps, target=1, pixels_per_step=16, reference="mean")
    assert torch.allclose(black.curve[:, -1], probability(torch.zeros_like(images)))
    assert torch.allclose(grey.curve[:, -1], probability(torch.full_like(images, 0.4)))
    assert not torch.allclose(black.curve[:, -1], grey.curve[:, -1])
    started = Mt.insertion(model, images, maps, target=1, pixels_per_step=16, start="black")
    assert torch.allclose(started.curve[:, 0], probability(torch.zeros_like(images)))
    with pytest.raises(ValueError, match="reference must be one of 'mean', 'black', 'blur'.*got 'gray'"):
        Mt.deletion(model, images, maps, target=1, reference="gray")
    with pytest.raises(ValueError, match="start must be one of 'mean', 'black', 'blur'.*got 'white'"):
        Mt.insertion(model, images, maps, target=1, start="white")


def test_curves_are_batched_consistently(images):
    model = RegionModel()
    maps = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(4))
    batched = Mt.deletion(model, images, maps, target=1, pixels_per_step=10, batch_size=7)
    single = Mt.deletion(model, images[1:2], maps[1:2], target=1, pixels_per_step=10)
    # Tolerance: one image in a batch of 7 vs alone: float32 kernels may sum in another order.
    assert torch.allclose(batched.curve[1], single.curve[0], atol=1e-6)


def test_curve_input_errors(images):
    with pytest.raises(ValueError, match="maps"):
        Mt.deletion(RegionModel(), images, torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="mode"):
        Mt.causal_curves(RegionModel(), images, torch.rand(3, 16, 16), "remove")
    with pytest.raises(ValueError, match="pixels_per_step"):
        Mt.deletion(RegionModel(), images, torch.rand(3, 16, 16), pixels_per_step=0)


def test_pointing_game_hits_misses_tolerance_and_ties():
    boxes = torch.tensor([[2, 2, 6, 6]])
    inside = torch.zeros(1, 16, 16)
    inside[0, 3, 4] = 1
    outside = torch.zeros(1, 16, 16)
    outside[0, 12, 12] = 1
    near = torch.zeros(1, 16, 16)
    near[0, 7, 7] = 1  # two pixels past the box's end
    assert Mt.pointing_game(inside, boxes, tolerance=0).item() == 1
    assert Mt.pointing_game(outside, boxes, tolerance=0).item() == 0
    assert Mt.pointing_game(near, boxes, tolerance=0).item() == 0
    assert Mt.pointing_game(near, boxes, tolerance=2).item() == 1
    flat = torch.ones(1, 16, 16)  # every pixel is a maximum: score = the box's area share
    assert Mt.pointing_game(flat, boxes, tolerance=0).item() == pytest.approx(16 / 256)


def test_iou_and_energy():
    boxes = torch.tensor([[0, 0, 8, 8], [4, 4, 12, 12]])
    exact = Mt.box_masks(boxes, (16, 16)).float()
    assert torch.allclose(Mt.box_iou(exact, boxes), torch.ones(2))
    assert torch.allclose(Mt.energy_in_box(exact, boxes), torch.ones(2))
    half = exact.clone()
    half[:, :, :] = 0
    half[0, :8, :4] = 1  # half of box 0
    assert Mt.box_iou(half[:1], boxes[:1]).item() == pytest.approx(0.5)
    assert Mt.energy_in_box(torch.zeros(1, 16, 16), boxes[:1]).item() == pytest.approx(64 / 256)
    assert Mt.energy_in_box(-exact, boxes).tolist() == pytest.approx([0.25, 0.25])  # negative mass is clipped
    with pytest.raises(ValueError, match="boxes"):
        Mt.box_iou(exact, torch.tensor([[0, 0, 8]]))
    with pytest.raises(ValueError, match="x1 > x0"):
        Mt.box_masks(torch.tensor([[5, 0, 5, 8]]), (16, 16))


def test_spearman():
    a = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(Mt.spearman(a, a), torch.ones(2))
    assert torch.allclose(Mt.spearman(a, -a), -torch.ones(2))
    assert torch.allclose(Mt.spearman(a, 3 * a + 1), torch.ones(2))  # ranks only
    assert Mt.spearman(a, torch.zeros_like(a)).tolist() == [0.0, 0.0]


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def gradient_map(model, images, targets):
    images = images.clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(images).gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(out, images)
    return grad.abs()[:, 0]


def test_sanity_check_separates_model_blind_maps_from_model_dependent_ones():
    model = TinyNet()
    before = [p.clone() for p in model.parameters()]
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    blind = Mt.sanity_check(lambda m, x, t: x[:, 0], model, images, seed=0)  # edge-detector-like: ignores m
    assert blind.layers == ["fc", "conv"]
    assert torch.allclose(blind.correlation, torch.ones_like(blind.correlation))
    grads = Mt.sanity_check(gradient_map, model, images, seed=0)
    assert grads.correlation[-1].mean() < 0.7
    assert grads.maps.shape == (3, 4, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the model passed in is untouched
    again = Mt.sanity_check(gradient_map, model, images, seed=0)
    assert torch.equal(again.correlation, grads.correlation)


def test_random_maps_are_seeded():
    assert torch.equal(Mt.random_maps(2, (5, 5), seed=3), Mt.random_maps(2, (5, 5), seed=3))
    assert not torch.equal(Mt.random_maps(2, (5, 5), seed=3), Mt.random_maps(2, (5, 5), seed=4))

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
    # min-max first: the box holds the map's minimum, so none of the scaled mass
    assert Mt.energy_in_box(-exact, boxes).tolist() == pytest.approx([0.0, 0.0])
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


# ---- the scoring protocol: no method wins by its post-processing or by where its ties fall (issue 29) --------


def sparse_maps(batch, size=28, zeros=0.65, seed=0):
    """Random maps with a share ``zeros`` of exact zeros, as a mean-subtracted, clipped map has."""
    maps = torch.rand(batch, size, size, generator=torch.Generator().manual_seed(seed))
    return torch.where(maps < zeros, torch.zeros_like(maps), maps)


def test_value_metrics_ignore_an_offset_and_a_positive_scale():
    maps = torch.rand(6, 20, 20, generator=torch.Generator().manual_seed(3))
    boxes = torch.tensor([[2, 2, 10, 10], [0, 0, 20, 5], [5, 5, 15, 15], [1, 8, 9, 19], [10, 0, 20, 20], [3, 3, 4, 4]])
    moved = 2.5 * maps + 0.76  # a floor as RISE's expectation map has, and another scale
    for metric in (Mt.energy_in_box, Mt.box_iou, Mt.pointing_game):
        assert torch.allclose(metric(moved, boxes), metric(maps, boxes), atol=1e-6), metric.__name__


def test_an_offset_on_one_method_does_not_change_who_wins_the_box():
    """The artefact the old energy had: a map with a floor (RISE's raw map) lost to a clipped one by its floor."""
    boxes = torch.tensor([[4, 4, 12, 12]] * 8)
    inside = Mt.box_masks(boxes, (16, 16)).float()
    noise = torch.rand(8, 16, 16, generator=torch.Generator().manual_seed(4))
    a = inside * 0.5 + noise * 0.5  # weaker evidence in the box
    b = inside + noise * 0.5  # stronger evidence in the box
    before = Mt.energy_in_box(b, boxes) - Mt.energy_in_box(a, boxes)
    after = Mt.energy_in_box(b + 10.0, boxes) - Mt.energy_in_box(a, boxes)
    assert (before > 0).all()
    assert torch.allclose(after, before, atol=1e-6)


def test_minmax_scales_each_map_to_the_unit_interval():
    maps = torch.stack([torch.arange(4.0).view(2, 2), torch.full((2, 2), 7.0)])
    assert torch.allclose(Mt.minmax(maps), torch.tensor([[[0, 1 / 3], [2 / 3, 1]], [[1, 1], [1, 1]]]))
    assert torch.equal(maps[1], torch.full((2, 2), 7.0))  # the input is not changed


def test_tied_pixels_go_in_a_seeded_random_order_and_distinct_values_keep_theirs():
    flat = torch.zeros(1, 8, 8)
    by_order = Mt.pixel_ranks(flat, "order")
    assert by_order[0, :8].tolist() == list(range(8))  # the old rule: the top row first
    top_row = torch.stack([Mt.pixel_ranks(flat, "random", seed)[0, :8] for seed in range(200)]).float()
    assert abs(top_row.mean().item() - 31.5) < 2.0  # anywhere in the order, on average
    assert torch.equal(Mt.pixel_ranks(flat, "random", 5), Mt.pixel_ranks(flat, "random", 5))
    maps = sparse_maps(4, size=10, seed=1)
    ranks = Mt.pixel_ranks(maps, "random", 3).view(4, -1)
    values = maps.view(4, -1)
    for b in range(4):
        order = torch.argsort(ranks[b])
        assert (values[b][order].diff() <= 0).all()  # most salient first, whatever the tie-break
    with pytest.raises(ValueError, match="ties"):
        Mt.pixel_ranks(maps, "first")


def test_deletion_of_a_clipped_map_does_not_depend_on_where_its_zeros_sit(images):
    """A map tied at zero except a few pixels: with the pixel-order rule the zeros of the top rows, where the
    model's evidence is, go first; with random ties the result is the same as for the mirrored layout."""
    model = RegionModel()
    maps = torch.zeros(3, 16, 16)
    maps[:, 15, 15] = 1.0  # one salient pixel far from the evidence; the rest tied
    mirrored = maps.flip(1).flip(2)  # the salient pixel now in the corner of the evidence
    mirrored[:, :8, :8] = 0
    mirrored[:, 15, 0] = 1.0
    ordered = Mt.deletion(model, images, maps, 1, pixels_per_step=16, ties="order").auc
    ordered_other = Mt.deletion(model, images, mirrored, 1, pixels_per_step=16, ties="order").auc
    fair = torch.stack([Mt.deletion(model, images, maps, 1, pixels_per_step=16, tie_seed=s).auc for s in range(8)])
    fair_other = torch.stack(
        [Mt.deletion(model, images, mirrored, 1, pixels_per_step=16, tie_seed=s).auc for s in range(8)]
    )
    assert torch.allclose(ordered, ordered_other)  # both lucky in the same way: the evidence's rows go first
    assert (fair.mean() - ordered.mean()).abs() > 0.05  # ... which random ties do not give
    assert (fair.mean() - fair_other.mean()).abs() < 0.05


def test_spearman_gives_ties_their_average_rank():
    from scipy.stats import spearmanr

    a, b = sparse_maps(200, seed=1), sparse_maps(200, seed=2)
    rho = Mt.spearman(a, b)
    assert abs(rho.mean().item()) < 0.02  # two unrelated sparse maps do not agree (pixel-order ties gave ~0.18)
    for i in range(3):
        expected = spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy()).statistic
        assert rho[i].item() == pytest.approx(expected, abs=1e-6)
    assert torch.allclose(Mt.spearman(a * 3 + 1, b), rho)

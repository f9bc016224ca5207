"""OISE end to end: faithful to the pieces, reproducible, batched, interruptible, checked, and it localises."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import bright_region_images, region_model
from saliency_lib import OISE, Recorder, SaliencyResult, oise
from saliency_lib.method import masks as M
from saliency_lib.method.oise_method import OISEStep


def region_iou(saliency: torch.Tensor, region, size) -> float:
    """IoU of the region with the map's top-k pixels, k = the region's area."""
    truth = torch.zeros(size, dtype=torch.bool)
    r0, r1, c0, c1 = region
    truth[r0:r1, c0:c1] = True
    top = torch.zeros(size[0] * size[1], dtype=torch.bool)
    top[saliency.flatten().topk(int(truth.sum())).indices] = True
    top = top.view(size)
    return ((top & truth).sum() / (top | truth).sum()).item()


class SoftmaxModel(nn.Module):
    """A fixed random linear classifier on 1x12x10 images (logits)."""

    def __init__(self, n_classes: int = 5, channels: int = 1, size=(12, 10)):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(
            torch.randn(n_classes, channels * size[0] * size[1], generator=gen), requires_grad=False
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return 3 * images.flatten(1) @ self.weight.T / math.sqrt(self.weight.shape[1])


GRAY_REGION = (4, 12, 14, 24)


@pytest.fixture(scope="module")
def gray():
    return region_model(GRAY_REGION), bright_region_images(3, 1, 28, 28, GRAY_REGION)


# ------------------------------------------------------------------------------------------ shape and range


def test_output_shape_range_and_fields(gray):
    model, images = gray
    result = oise(model, images, n_steps=50, seed=0)
    assert isinstance(result, SaliencyResult)
    saliency = result.maps
    assert saliency.shape == (3, 28, 28) and saliency.dtype == torch.float32
    assert saliency.min() >= 0 and saliency.max() <= 1 and torch.allclose(saliency.amax(dim=(1, 2)), torch.ones(3))
    assert result.partial is False and result.steps_done == 50 and result.model_calls == 50
    assert result.target.tolist() == [1, 1, 1] and result.target.dtype == torch.int64 and result.history is None
    assert result.seconds > 0
    assert not saliency.requires_grad and not saliency.is_inference() and not result.target.is_inference()
    single = oise(model, images[0], n_steps=20, seed=0)
    assert single.maps.shape == (1, 28, 28) and len(single) == 1


def test_the_maps_are_a_plain_tensor_and_indexing_the_result_keeps_every_field(gray):
    model, images = gray
    result = oise(model, images, n_steps=30, n_chains=2, seed=0, record_every=5)
    assert type(result.maps) is torch.Tensor
    for name in ("model_calls", "partial", "steps_done", "target", "history", "seconds"):
        assert not hasattr(result.maps, name), name
    one = result[1]
    assert isinstance(one, SaliencyResult) and one.maps.shape == (1, 28, 28)
    assert torch.equal(one.maps, result.maps[1:2]) and one.target.tolist() == [1]
    assert (one.model_calls, one.partial, one.steps_done, one.seconds) == (30, False, 15, result.seconds)
    assert one.history.steps == result.history.steps
    assert torch.equal(one.history.stacked()["grids"], result.history.stacked()["grids"][:, 1:2])
    assert torch.equal(result[-1].maps, result.maps[2:]) and len(result[[0, 2]]) == 2 and len(result[1:]) == 2
    assert [r.target.tolist() for r in result] == [[1], [1], [1]]
    with pytest.raises(IndexError):
        result[3]
    with pytest.raises(TypeError, match="result.maps"):
        result[0, 5]


def test_same_seed_bit_identical_other_seed_different_global_state_untouched(gray):
    model, images = gray
    state = torch.get_rng_state()
    a = oise(model, images, n_steps=80, seed=3)
    b = oise(model, images, n_steps=80, seed=3)
    assert torch.equal(a.maps, b.maps)
    assert not torch.equal(a.maps, oise(model, images, n_steps=80, seed=4).maps)
    assert torch.equal(state, torch.get_rng_state())


def test_batch_size_splits_calls_without_changing_the_result(gray):
    model, images = gray
    calls = []
    hook = model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    try:
        whole = oise(model, images, 1, n_steps=10, n_chains=2, seed=1)
        n_whole = len(calls)
        split = oise(model, images, 1, n_steps=10, n_chains=2, seed=1, batch_size=4)
    finally:
        hook.remove()
    assert torch.equal(whole.maps, split.maps)
    assert n_whole == 5 and set(calls[:n_whole]) == {6}  # one call of B*K = 6 images per step
    assert max(calls[n_whole:]) == 4  # bounded by batch_size


def test_a_short_run_is_the_start_of_a_longer_one(gray):
    model, images = gray
    recorder = Recorder(every=70)
    oise(model, images, n_steps=150, seed=5, callback=recorder)
    short = oise(model, images, n_steps=70, seed=5)
    assert recorder.steps == [1, 70, 140, 150]
    assert torch.allclose(recorder.saliency[1], short.maps)


# --------------------------------------------------------------- faithful: the loop is the pieces composed


def _reference_oise(model, images, target, n_steps, seed, reference, step_size=0.02, grid_size=8, p_init=0.3):
    """OISE written plainly from the public pieces (method.md, step by step), one step at a time.

    It draws its random numbers in the same order as the library (64 steps at a time), so the two must agree.
    """
    gen = torch.Generator().manual_seed(seed)
    batch, _, height, width = images.shape
    cell = M.cell_size((height, width), grid_size)
    grid = M.init_grid(batch, grid_size, p_init, generator=gen)
    mask = M.upsample(grid, (height, width), shifts=M.random_shifts(batch, cell, generator=gen))
    p_previous = torch.zeros(batch)
    total = torch.zeros(batch, height, width)
    for start in range(0, n_steps, 64):
        uniforms = torch.rand(64, batch, grid_size, grid_size, generator=gen)
        dys = torch.randint(0, cell[0], (64, batch), generator=gen)
        dxs = torch.randint(0, cell[1], (64, batch), generator=gen)
        for t in range(min(64, n_steps - start)):
            with torch.no_grad():
                p = model(M.apply_mask(images, mask, reference)).softmax(1)[torch.arange(batch), target]
            grid = M.update_grid(grid, p, p - p_previous, step_size=step_size, uniform=uniforms[t])
            mask = M.upsample(grid, (height, width), shifts=torch.stack([dys[t], dxs[t]], 1))
            total += mask  # accumulate after the update, unweighted (the authors)
            p_previous = p
    return M.postprocess(total)


def test_the_fast_loop_equals_the_pieces_composed_as_the_method_describes():
    model = SoftmaxModel()
    images = torch.rand(2, 1, 12, 10, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([2, 4])
    fast = oise(model, images, target, n_steps=150, seed=9, reference=0.3, grid_size=4, step_size=0.5).maps
    slow = _reference_oise(model, images, target, 150, 9, 0.3, step_size=0.5, grid_size=4)
    # Tolerance: the fused loop vs the pieces one by one: same draws, 150 float32 masks summed in another order.
    assert torch.allclose(fast, slow, atol=1e-5)


def test_callback_sees_the_update_rule_at_work():
    """Inside the loop: on-cells are kept at rate p, off-cells turn on at rate 1 - p, rescaling as the paper."""
    model = SoftmaxModel()
    images = torch.rand(4, 1, 12, 10, generator=torch.Generator().manual_seed(2))
    kept = on_before = turned_on = off_before = 0
    expected_kept = expected_on = 0.0
    bad_values = 0

    def check(state: OISEStep) -> None:
        nonlocal kept, on_before, turned_on, off_before, expected_kept, expected_on, bad_values
        changes = M.cell_changes(state.previous_grid, state.grid)
        p = state.p[..., None, None]
        was_on = state.previous_grid > 0
        kept += changes.kept.sum().item()
        on_before += was_on.sum().item()
        expected_kept += (p * was_on).sum().item()
        turned_on += changes.turned_on.sum().item()
        off_before += (~was_on).sum().item()
        expected_on += ((1 - p) * ~was_on).sum().item()
        rescaled = 1 - 0.02 * state.delta_p.abs()[..., None, None]
        grew = (state.grid > 0).float() > state.previous_grid
        target = torch.where(grew, rescaled.expand_as(state.grid), (state.grid > 0).float())
        bad_values += int(not torch.allclose(state.grid, target))
        assert state.mask.shape == (4, 1, 12, 10) and state.next_mask.shape == (4, 1, 12, 10)

    oise(model, images, n_steps=300, seed=0, grid_size=6, callback=check)
    assert bad_values == 0
    # Sums of Bernoulli(p_i): the counts are within 5 standard deviations (sqrt(sum p(1-p)) <= sqrt(n)/2).
    assert abs(kept - expected_kept) < 5 * math.sqrt(on_before) / 2
    assert abs(turned_on - expected_on) < 5 * math.sqrt(off_before) / 2


def test_first_delta_p_is_p_and_steps_chain_p(gray):
    model, images = gray
    recorder = Recorder(every=1)
    oise(model, images, n_steps=5, seed=0, callback=recorder)
    assert torch.equal(recorder.delta_p[0], recorder.p[0])  # p_previous = 0 at the first step
    assert torch.allclose(recorder.delta_p[3], recorder.p[3] - recorder.p[2])
    # The grid after step t is the grid evaluated at step t + 1.
    assert len(recorder) == 5


# -------------------------------------------------------------------------------- history, chains, options


def test_record_every_returns_a_history(gray):
    model, images = gray
    result = oise(model, images, n_steps=30, n_chains=2, seed=0, record_every=10)
    history = result.history
    assert history.steps == [1, 10, 15]  # 30 steps over 2 chains: 15 steps each
    stacked = history.stacked()
    assert stacked["grids"].shape == (3, 3, 2, 8, 8) and stacked["masks"].shape == (3, 3, 2, 28, 28)
    assert stacked["p"].shape == (3, 3, 2) and stacked["saliency"].shape == (3, 3, 28, 28)
    assert torch.allclose(stacked["saliency"][-1], result.maps)
    stacked["saliency"] += 1  # ordinary tensors, not inference tensors
    chosen = oise(model, images, n_steps=30, seed=0, record_every=[2, 3, 29]).history
    assert chosen.steps == [2, 3, 29] and chosen.masks[0].shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="record_every"):
        oise(model, images, n_steps=30, record_every=[0, 3])


def test_chains_split_the_steps_and_count_model_calls(gray):
    model, images = gray
    result = oise(model, images, n_steps=100, n_chains=8, seed=0)
    assert result.steps_done == 13 and result.model_calls == 104


def test_target_choices_change_the_map():
    model = SoftmaxModel()
    images = torch.rand(2, 1, 12, 10, generator=torch.Generator().manual_seed(0))
    a = oise(model, images, 0, n_steps=60, seed=0, grid_size=4)
    b = oise(model, images, [0, 3], n_steps=60, seed=0, grid_size=4)
    assert a.target.tolist() == [0, 0] and b.target.tolist() == [0, 3]
    assert torch.equal(a.maps[0], b.maps[0]) or not torch.equal(a.maps[1], b.maps[1])
    assert not torch.equal(a.maps[1], b.maps[1])


def test_the_captum_shaped_twin_returns_the_same_result(gray):
    model, images = gray
    twin = OISE(model).attribute(images, target=1, n_steps=20, seed=0)
    assert isinstance(twin, SaliencyResult) and twin.model_calls == 20 and twin.target.tolist() == [1, 1, 1]
    assert torch.equal(twin.maps, oise(model, images, 1, n_steps=20, seed=0).maps)


def test_probabilities_output_gives_the_same_map_as_logits():
    model = SoftmaxModel()
    probabilities = nn.Sequential(model, nn.Softmax(dim=1))
    images = torch.rand(2, 1, 12, 10, generator=torch.Generator().manual_seed(0))
    a = oise(model, images, n_steps=40, seed=2, grid_size=4)
    b = oise(probabilities, images, n_steps=40, seed=2, grid_size=4, output="probabilities")
    assert torch.equal(a.maps, b.maps)
    with pytest.raises(ValueError, match="probabilities"):
        oise(model, images, n_steps=5, output="probabilities")


def test_weight_by_score_and_blur_reference_are_options_that_still_localise(gray):
    model, images = gray
    plain = oise(model, images, n_steps=300, seed=0).maps
    weighted = oise(model, images, n_steps=300, seed=0, weight_by_score=True).maps
    # A blurred copy keeps much of the region's brightness, so the signal is weaker: more steps.
    blurred = oise(model, images, n_steps=1000, seed=0, reference="blur").maps
    assert not torch.equal(plain, weighted)
    for saliency in (weighted, blurred):
        assert region_iou(saliency[0], GRAY_REGION, (28, 28)) > 0.4


def test_keyboard_interrupt_returns_the_partial_map(gray):
    model, images = gray

    def stop_at_seven(state: OISEStep) -> None:
        if state.step == 7:
            raise KeyboardInterrupt

    partial = oise(model, images, n_steps=100, seed=1, callback=stop_at_seven)
    assert partial.partial is True and partial.steps_done == 7 and partial.model_calls == 7
    assert partial[0].partial is True and partial[0].steps_done == 7  # indexing keeps it
    assert torch.allclose(partial.maps, oise(model, images, n_steps=7, seed=1).maps)


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(images=torch.rand(28, 28)), ValueError, "images"),
        (dict(images=torch.rand(1, 1, 1, 28, 28)), ValueError, "images"),
        (dict(images=torch.randint(0, 255, (1, 1, 28, 28))), TypeError, "images"),
        (dict(images=torch.full((1, 1, 28, 28), float("nan"))), ValueError, "images"),
        (dict(images=[[0.0]]), TypeError, "images"),
        (dict(target=2), ValueError, "target"),
        (dict(target=-1), ValueError, "target"),
        (dict(target=[0, 1]), ValueError, "target"),
        (dict(target=1.0), TypeError, "target"),
        (dict(target=torch.tensor([0.5, 1.0, 0.0])), TypeError, "target"),
        (dict(grid_size=0), ValueError, "grid_size"),
        (dict(grid_size=29), ValueError, "grid_size"),
        (dict(grid_size=8.0), TypeError, "grid_size"),
        (dict(n_steps=0), ValueError, "n_steps"),
        (dict(p_init=1.5), ValueError, "p_init"),
        (dict(p_init=-0.1), ValueError, "p_init"),
        (dict(n_chains=0), ValueError, "n_chains"),
        (dict(n_chains=50, n_steps=10), ValueError, "n_chains"),
        (dict(step_size=-0.1), ValueError, "step_size"),
        (dict(step_size=float("nan")), ValueError, "step_size"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(output="softmax"), ValueError, "output"),
        (dict(seed="zero"), TypeError, "seed"),
        (dict(record_every=0), ValueError, "record_every"),
        (dict(callback=3), TypeError, "callback"),
        (dict(reference="gray"), ValueError, "reference"),
    ],
)
def test_bad_input_names_the_argument(gray, change, error, match):
    model, images = gray
    kwargs = dict(images=images, target=None, n_steps=10)
    kwargs.update(change)
    with pytest.raises(error, match=match):
        oise(model, kwargs.pop("images"), kwargs.pop("target"), **kwargs)


class Reshaper(nn.Module):
    def __init__(self, shape_of):
        super().__init__()
        self.shape_of = shape_of

    def forward(self, images):
        return torch.zeros(self.shape_of(len(images)))


@pytest.mark.parametrize("shape_of", [lambda b: (b,), lambda b: (b, 2, 2), lambda b: (b + 1, 3)])
def test_model_output_must_be_batch_by_classes(shape_of):
    with pytest.raises(ValueError, match=r"\(B, n_classes\)"):
        oise(Reshaper(shape_of), torch.rand(2, 1, 8, 8), n_steps=3, grid_size=2)
    with pytest.raises(ValueError, match=r"\(B, n_classes\)"):
        oise(Reshaper(shape_of), torch.rand(2, 1, 8, 8), 0, n_steps=3, grid_size=2)


def test_channel_count_the_model_rejects():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    conv(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="rejected images of shape"):
        oise(conv, torch.rand(1, 1, 8, 8), n_steps=3, grid_size=2)
    with pytest.raises(ValueError, match="rejected images of shape"):
        oise(conv, torch.rand(1, 1, 8, 8), 0, n_steps=3, grid_size=2)


def test_a_model_that_turns_masked_images_into_nan_is_reported():
    class NanOnMasked(nn.Module):
        def forward(self, images):
            bad = (images < 0.5).any() and images.mean() < 0.9
            return torch.full((len(images), 2), float("nan")) if bad else torch.zeros(len(images), 2)

    with pytest.raises(ValueError, match="NaN"):
        oise(NanOnMasked(), torch.ones(1, 1, 8, 8), 0, n_steps=5, grid_size=2, reference=0.0)


# ------------------------------------------------------------------------------------- planted evidence


@pytest.mark.parametrize(
    "channels, size, region",
    [
        (1, (28, 28), GRAY_REGION),
        (3, (40, 64), (20, 36, 6, 22)),  # RGB, non-square, region in the lower left
        (3, (64, 36), (8, 24, 18, 34)),  # tall image
    ],
)
def test_oise_points_into_and_covers_a_planted_region(channels, size, region):
    model = region_model(region)
    images = bright_region_images(2, channels, *size, region, seed=1)
    saliency = oise(model, images, n_steps=600, seed=0, reference=0.0).maps
    r0, r1, c0, c1 = region
    for b in range(2):
        iou = region_iou(saliency[b], region, size)
        peak = divmod(int(saliency[b].argmax()), size[1])
        print(f"OISE planted {channels}x{size}: IoU {iou:.2f}")
        assert r0 <= peak[0] < r1 and c0 <= peak[1] < c1, peak
        assert iou >= 0.4, iou
        inside = saliency[b, r0:r1, c0:c1].mean()
        assert inside > 3 * saliency[b].mean() * (1 - (r1 - r0) * (c1 - c0) / (size[0] * size[1]))


# ----------------------------------------------------------------------------------------- trained model


def _fashion_or_skip():
    from saliency_lib.io import assets, models

    try:
        assets.checked_path("fashion_cnn.pt")
    except Exception as error:  # noqa: BLE001 - the shipped weights are not there yet
        pytest.skip(f"data/fashion_cnn.pt unavailable: {error}")
    return models.load("fashion-cnn")


@pytest.mark.slow(reason="OISE at 1,000 calls on 30 Fashion-MNIST images (about 15-30 s)")
def test_trained_model_deleting_the_top_ten_percent_hurts_more_than_random():
    """The issue's check with the shipped Fashion CNN: delete (set to the reference) 10% of the pixels.

    Paper settings except n_steps = 1000 (not 5000, to fit the test budget), 30 test images in one batched call.
    Our measurements (see the report): OISE's maps on this model converge slowly - at 200 steps the top 10% is
    no better than random 10% - so the test needs about 1000 steps; the ordering top < random < bottom holds
    on average over the images, not on every image.
    """
    from saliency_lib.io import data

    model = _fashion_or_skip()
    images, _ = data.fashion_sample(n_per_class=3)  # 30 test images, 3 per class
    result = oise(model, images, n_steps=1000, seed=0)  # one batched call: 30 images per step
    saliency, target = result.maps, result.target
    count = len(images)
    k = int(0.1 * 28 * 28)
    reference = model.spec.reference()

    def probability_after_deleting(scores):
        deleted = torch.zeros(count, 28 * 28)
        deleted.scatter_(1, scores.flatten(1).topk(k, dim=1).indices, 1.0)
        with torch.no_grad():
            probs = model(M.apply_mask(images, 1 - deleted.view(-1, 28, 28), reference)).softmax(1)
        return probs.gather(1, target.view(-1, 1))[:, 0]

    p_top = probability_after_deleting(saliency)
    p_bottom = probability_after_deleting(-saliency)  # the 10% OISE finds least salient
    gen = torch.Generator().manual_seed(0)
    p_random = torch.stack(
        [probability_after_deleting(torch.rand(count, 28, 28, generator=gen)) for _ in range(4)]
    ).mean(0)
    print(
        f"fashion-cnn, {count} images, OISE 1000 steps: p(target) after deleting the top 10% "
        f"{p_top.mean():.3f}, a random 10% {p_random.mean():.3f}, the bottom 10% {p_bottom.mean():.3f}"
    )
    assert p_top.mean() < p_random.mean() < p_bottom.mean()


def test_the_raw_sum_is_the_map_before_the_papers_post_processing():
    from saliency_lib.io import data, models

    model, images = models.load("fashion-cnn"), data.fashion_sample(n_per_class=1)[0][:3]
    paper = oise(model, images, n_steps=60, seed=2, record_every=[30, 60])
    raw = oise(model, images, n_steps=60, seed=2, record_every=[30, 60], postprocess=False)
    assert torch.equal(M.postprocess(raw.maps), paper.maps)
    assert torch.equal(M.postprocess(raw.history.saliency[0]), paper.history.saliency[0])
    assert raw.maps.min() >= 0 and raw.maps.max() > 1  # a sum of masks, not scaled
    with pytest.raises(TypeError, match="postprocess"):
        oise(model, images, n_steps=10, postprocess="raw")

"""RISE on the shared mask machinery: its formula, reproducibility, batching, checks and localisation."""

from __future__ import annotations

import pytest
import torch

from conftest import PlantedModel, bright_region_images, region_model
from saliency_lib import RISE, SaliencyResult, rise
from saliency_lib.method import masks as M

REGION = (4, 12, 14, 24)


def test_rise_is_the_score_weighted_mean_of_its_masks():
    """Recompute RISE by hand from the same random masks: sum_i p_i m_i / (N p_keep)."""
    model = region_model(REGION)
    images = bright_region_images(2, 1, 28, 28, REGION)
    result = rise(model, images, 1, n_masks=250, seed=4, p_keep=0.4, reference=0.0)
    gen = torch.Generator().manual_seed(4)
    upsampler = M.Upsampler(8, (28, 28))
    total = torch.zeros(2, 28, 28)
    for start in range(0, 250, 100):
        count = min(100, 250 - start)
        grids = M.init_grid(count, 8, 0.4, generator=gen)
        masks = upsampler(grids, M.random_shifts(count, upsampler.cell, generator=gen))
        for b in range(2):
            with torch.no_grad():
                p = model(M.apply_mask(images[b : b + 1].expand(count, -1, -1, -1), masks, 0.0)).softmax(1)[:, 1]
            total[b] += (p[:, None, None] * masks).sum(0)
    # Tolerance: 250 weighted float32 masks summed in another order (values ~1).
    assert torch.allclose(result.maps, total / (250 * 0.4), atol=1e-5)
    assert result.model_calls == 250 and result.partial is False and result.target.tolist() == [1, 1]
    assert result.steps_done == 250 and result.seconds > 0 and result.history is None


def test_rise_shapes_seed_and_batch_size():
    model = region_model(REGION)
    images = bright_region_images(3, 1, 28, 28, REGION)
    state = torch.get_rng_state()
    result = rise(model, images, n_masks=120, seed=1)
    assert isinstance(result, SaliencyResult) and type(result.maps) is torch.Tensor
    assert not hasattr(result.maps, "model_calls") and not result.target.is_inference()
    a = result.maps
    assert a.shape == (3, 28, 28) and torch.isfinite(a).all() and a.min() >= 0
    assert torch.equal(a, rise(model, images, n_masks=120, seed=1).maps)
    assert torch.equal(a, rise(model, images, n_masks=120, seed=1, batch_size=7).maps)
    assert not torch.equal(a, rise(model, images, n_masks=120, seed=2).maps)
    assert torch.equal(state, torch.get_rng_state())
    assert rise(model, images[0], n_masks=10, seed=0).maps.shape == (1, 28, 28)
    twin = RISE(model).attribute(images, n_masks=120, seed=1)  # the Captum-shaped twin: the same result
    assert isinstance(twin, SaliencyResult) and torch.equal(twin.maps, a) and twin.model_calls == 120


@pytest.mark.parametrize(
    "channels, size, region",
    [
        (1, (28, 28), REGION),
        (3, (40, 64), (20, 36, 6, 22)),
        (3, (64, 36), (8, 24, 18, 34)),
    ],
)
def test_rise_points_into_and_covers_a_planted_region(channels, size, region):
    model = region_model(region)
    images = bright_region_images(2, channels, *size, region, seed=1)
    saliency = rise(model, images, n_masks=600, seed=0, reference=0.0).maps
    r0, r1, c0, c1 = region
    truth = torch.zeros(size, dtype=torch.bool)
    truth[r0:r1, c0:c1] = True
    for b in range(2):
        top = torch.zeros(size[0] * size[1], dtype=torch.bool)
        top[saliency[b].flatten().topk(int(truth.sum())).indices] = True
        iou = ((top.view(size) & truth).sum() / (top.view(size) | truth).sum()).item()
        peak = divmod(int(saliency[b].argmax()), size[1])
        print(f"RISE planted {channels}x{size}: IoU {iou:.2f}")
        assert r0 <= peak[0] < r1 and c0 <= peak[1] < c1, peak
        assert iou >= 0.4, iou


def test_rise_stops_cleanly_on_keyboard_interrupt():
    class StopAfterTwoCalls(PlantedModel):
        batches = 0

        def forward(self, images):
            self.batches += 1
            if self.batches == 3:
                raise KeyboardInterrupt
            return super().forward(images)

    model = StopAfterTwoCalls(REGION, threshold=0.45, evidence_class=1)
    result = rise(model, bright_region_images(2, 1, 28, 28, REGION), 1, n_masks=1000, seed=0)
    assert result.partial is True and result.model_calls == result.steps_done == 200
    assert torch.isfinite(result.maps).all()
    assert result[1].partial is True and result[1].model_calls == 200  # indexing keeps it


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(n_masks=0), ValueError, "n_masks"),
        (dict(p_keep=0.0), ValueError, "p_keep"),
        (dict(p_keep=1.2), ValueError, "p_keep"),
        (dict(grid_size=40), ValueError, "grid_size"),
        (dict(batch_size=-1), ValueError, "batch_size"),
        (dict(target=5), ValueError, "target"),
        (dict(target=[1, 1, 1]), ValueError, "target"),
        (dict(images=torch.zeros(1, 1, 28, 28, dtype=torch.uint8)), TypeError, "images"),
    ],
)
def test_rise_bad_input_names_the_argument(change, error, match):
    kwargs = dict(images=bright_region_images(2, 1, 28, 28, REGION), target=None, n_masks=10)
    kwargs.update(change)
    with pytest.raises(error, match=match):
        rise(region_model(REGION), kwargs.pop("images"), kwargs.pop("target"), **kwargs)

"""The mask pieces of OISE and RISE, each on its own: shapes, ranges, faithfulness and the update statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.transform import resize

from saliency_lib.method import masks as M


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------- init_grid


def test_init_grid_shape_values_and_rate():
    grid = M.init_grid(500, 8, 0.3, generator=generator())
    assert grid.shape == (500, 8, 8) and grid.dtype == torch.float32
    assert set(grid.unique().tolist()) <= {0.0, 1.0}
    n = grid.numel()
    # Binomial(n, 0.3): the on-rate is within 5 standard errors of 0.3.
    assert abs(grid.mean().item() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / n)


def test_init_grid_is_seeded_and_leaves_the_global_random_state_alone():
    state = torch.get_rng_state()
    a = M.init_grid(4, 8, 0.3, generator=generator(7))
    b = M.init_grid(4, 8, 0.3, generator=generator(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, M.init_grid(4, 8, 0.3, generator=generator(8)))
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(batch=2, grid_size=0), ValueError, "grid_size"),
        (dict(batch=2, grid_size=2.5), TypeError, "grid_size"),
        (dict(batch=0), ValueError, "batch"),
        (dict(batch=2, p_init=1.5), ValueError, "p_init"),
        (dict(batch=2, p_init=True), ValueError, "p_init"),
    ],
)
def test_init_grid_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        M.init_grid(**kwargs)


# ------------------------------------------------------------------------------------------- cells and shifts


@pytest.mark.parametrize(
    "size, grid_size, cell",
    [((28, 28), 8, (4, 4)), ((224, 224), 8, (28, 28)), ((30, 50), 7, (5, 8)), ((5, 5), 1, (5, 5))],
)
def test_cell_size_is_ceil_per_axis(size, grid_size, cell):
    assert M.cell_size(size, grid_size) == cell


def test_random_shifts_cover_the_cell_uniformly():
    shifts = M.random_shifts(4000, (3, 5), generator=generator())
    assert shifts.shape == (4000, 2) and shifts.dtype == torch.int64
    assert set(shifts[:, 0].tolist()) == {0, 1, 2} and set(shifts[:, 1].tolist()) == {0, 1, 2, 3, 4}
    counts = torch.bincount(shifts[:, 1], minlength=5).float()
    assert (counts - 800).abs().max() < 5 * math.sqrt(800)


# ------------------------------------------------------------------------------------------------- upsample


def test_interpolation_matrix_rows_are_convex_weights():
    weights = M.interpolation_matrix(8, 252)
    assert weights.shape == (252, 8)
    # Tolerance: 8 float32 weights summed: a few eps (6e-8) each.
    assert torch.allclose(weights.sum(1), torch.ones(252), atol=1e-6)
    assert (weights >= 0).all()


def _skimage_reference(grid: torch.Tensor, size, shift) -> np.ndarray:
    """The authors' (and RISE's) upsampling: skimage resize, order 1, mode 'reflect', then the crop."""
    s = grid.shape[-1]
    cell = M.cell_size(size, s)
    big = resize(
        grid.double().numpy(), ((s + 1) * cell[0], (s + 1) * cell[1]), order=1, mode="reflect", anti_aliasing=False
    )
    return big[shift[0] : shift[0] + size[0], shift[1] : shift[1] + size[1]]


@settings(max_examples=25, deadline=None)
@given(height=st.integers(4, 60), width=st.integers(4, 60), grid_size=st.integers(1, 9), seed=st.integers(0, 99))
def test_upsample_matches_the_authors_skimage_resize_and_crop(height, width, grid_size, seed):
    grid_size = min(grid_size, height, width)
    gen = generator(seed)
    grids = torch.rand(3, grid_size, grid_size, generator=gen)
    shifts = M.random_shifts(3, M.cell_size((height, width), grid_size), generator=gen)
    out = M.upsample(grids, (height, width), shifts=shifts)
    assert out.shape == (3, height, width)
    for b in range(3):
        expected = _skimage_reference(grids[b], (height, width), shifts[b].tolist())
        # Tolerance: skimage (float64) vs our float32 interpolation of values in [0, 1]: rounding of 2 products + a sum.
        np.testing.assert_allclose(out[b].numpy(), expected, atol=2e-6)


def test_upsample_keeps_binary_grids_in_range_and_smooth():
    grids = M.init_grid(16, 8, 0.5, generator=generator())
    out = M.upsample(grids, (224, 224), generator=generator(1))
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6
    # Bilinear: neighbouring pixels differ by at most one grid step per big cell (252 / 8 = 31.5 px).
    assert (out[:, 1:] - out[:, :-1]).abs().max() <= 1 / 31.5 + 1e-5


def test_upsample_with_a_random_shift_is_seeded_and_shifts_change_the_mask():
    grids = M.init_grid(2, 8, 0.5, generator=generator())
    a = M.upsample(grids, (28, 28), generator=generator(3))
    b = M.upsample(grids, (28, 28), generator=generator(3))
    assert torch.equal(a, b)
    zero = M.upsample(grids, (28, 28), shifts=torch.zeros(2, 2, dtype=torch.long))
    three = M.upsample(grids, (28, 28), shifts=torch.full((2, 2), 3, dtype=torch.long))
    assert not torch.allclose(zero, three)


def test_upsampler_gives_the_same_masks_as_upsample():
    upsampler = M.Upsampler(8, (40, 64))
    assert upsampler.cell == (5, 8) and upsampler.rows.shape == (5, 40, 8) and upsampler.cols.shape == (8, 64, 8)
    grids = torch.rand(5, 8, 8, generator=generator())
    shifts = M.random_shifts(5, upsampler.cell, generator=generator(2))
    # Tolerance: the same two matrix products in another order: float32 rounding of values in [0, 1].
    assert torch.allclose(upsampler(grids, shifts), M.upsample(grids, (40, 64), shifts=shifts), atol=1e-7)


@pytest.mark.parametrize(
    "grids, kwargs, error, match",
    [
        (torch.zeros(2, 8, 7), {}, ValueError, "grids"),
        (torch.zeros(8, 8), {}, ValueError, "grids"),
        (torch.zeros(2, 8, 8), {"shifts": torch.zeros(3, 2, dtype=torch.long)}, ValueError, "shifts"),
        (torch.zeros(2, 8, 8), {"shifts": torch.full((2, 2), 4, dtype=torch.long)}, ValueError, "shifts"),
        (torch.zeros(2, 8, 8), {"shifts": torch.zeros(2, 2)}, TypeError, "shifts"),
    ],
)
def test_upsample_rejects_bad_arguments(grids, kwargs, error, match):
    with pytest.raises(error, match=match):
        M.upsample(grids, (28, 28), **kwargs)


# ----------------------------------------------------------------------------------------------- apply_mask


def test_apply_mask_keeps_ones_and_replaces_zeros_by_the_reference():
    images = torch.rand(2, 3, 8, 8, generator=generator())
    masks = torch.zeros(2, 8, 8)
    masks[:, :4] = 1
    reference = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)
    out = M.apply_mask(images, masks, reference)
    assert out.shape == images.shape
    assert torch.equal(out[:, :, :4], images[:, :, :4])
    assert torch.allclose(out[:, :, 4:], reference.expand(3, 4, 8).expand(2, 3, 4, 8))
    half = M.apply_mask(images, torch.full((2, 1, 8, 8), 0.5), 0.0)
    assert torch.allclose(half, images / 2)
    blurred = M.blur(images)
    assert torch.allclose(M.apply_mask(images, masks, blurred)[:, :, 4:], blurred[:, :, 4:])


def test_apply_mask_with_the_mean_is_the_authors_product_in_normalised_space():
    mean, std = 0.286, 0.353
    images = torch.rand(2, 1, 28, 28, generator=generator())
    masks = torch.rand(2, 28, 28, generator=generator(1))
    out = M.apply_mask(images, masks, mean)
    # Tolerance: (x*m + r*(1-m) - r)/s vs (x - r)/s*m: float32 rounding, values within ~3.
    assert torch.allclose((out - mean) / std, (images - mean) / std * masks.unsqueeze(1), atol=1e-6)


def test_apply_mask_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="masks"):
        M.apply_mask(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 9))
    with pytest.raises(ValueError, match="images"):
        M.apply_mask(torch.zeros(3, 8, 8), torch.zeros(1, 8, 8))


def test_blur_keeps_the_shape_of_small_and_large_images():
    assert M.blur(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    flat = torch.full((1, 3, 32, 32), 0.4)
    # Tolerance: a 2-D Gaussian (weights sum to 1 in float32) of a constant image.
    assert torch.allclose(M.blur(flat), flat, atol=1e-6)


# ---------------------------------------------------------------------------------------------- update_grid


def test_flip_cells_keeps_a_state_with_probability_p():
    was_on = torch.tensor([[[True, True, False, False]]])
    uniform = torch.tensor([[[0.1, 0.9, 0.1, 0.9]]])
    on = M.flip_cells(was_on, torch.tensor(0.5).view(1, 1, 1), uniform)
    # u < p keeps the state (on stays on, off stays off); u >= p flips it.
    assert on.tolist() == [[[True, False, False, True]]]


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.8, 0.97])
def test_update_statistics_keep_rate_is_p_and_turn_on_rate_is_one_minus_p(p):
    grids = M.init_grid(3000, 8, 0.5, generator=generator(11))
    new = M.update_grid(grids, torch.full((3000,), p), torch.zeros(3000), generator=generator(12))
    changes = M.cell_changes(grids, new)
    n_on, n_off = int((grids > 0).sum()), int((grids == 0).sum())
    keep_rate = changes.kept.sum().item() / n_on
    turn_on_rate = changes.turned_on.sum().item() / n_off
    # Binomial sampling error: 5 standard errors (a false alarm has probability < 1e-6).
    assert abs(keep_rate - p) < 5 * math.sqrt(p * (1 - p) / n_on), keep_rate
    assert abs(turn_on_rate - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n_off), turn_on_rate


def test_update_statistics_hold_per_grid_with_different_p():
    # One p per grid: grids with low p are mostly inverted, grids with high p mostly kept.
    p = torch.linspace(0.0, 1.0, 11).repeat_interleave(300)
    grids = M.init_grid(len(p), 8, 0.3, generator=generator(3))
    new = M.update_grid(grids, p, torch.zeros_like(p), generator=generator(4))
    same = ((grids > 0) == (new > 0)).float().mean(dim=(1, 2)).view(11, 300).mean(1)
    assert torch.allclose(same, torch.linspace(0.0, 1.0, 11), atol=5 * math.sqrt(0.25 / (300 * 64)))


def test_update_rescales_by_the_change_of_values_as_the_authors_do():
    lr, delta = 0.02, -0.5
    rate = lr * abs(delta)
    #                  kept(1)  kept(<1)     dropped  turned on  stayed off
    grids = torch.tensor([[[1.0, 1.0 - 0.007, 1.0, 0.0, 0.0]]]).view(1, 1, 5)
    uniform = torch.tensor([[[0.1, 0.1, 0.9, 0.9, 0.1]]])  # p = 0.5: u < p keeps the state, else flips
    new = M.update_grid(grids, torch.tensor([0.5]), torch.tensor([delta]), step_size=lr, uniform=uniform)
    expected = torch.tensor([[[1.0, 1.0 - rate, 0.0, 1.0 - rate, 0.0]]])
    assert torch.allclose(new, expected)


def test_update_with_zero_step_size_gives_binary_grids():
    grids = torch.rand(10, 8, 8, generator=generator())
    new = M.update_grid(
        grids, torch.rand(10, generator=generator(1)), torch.ones(10), step_size=0.0, generator=generator(2)
    )
    assert set(new.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=torch.tensor([1.5, 0.5]), delta_p=torch.zeros(2)), "p must be probabilities"),
        (dict(p=torch.tensor([0.5]), delta_p=torch.zeros(2)), "one value per grid"),
        (dict(p=torch.tensor([0.5, 0.5]), delta_p=torch.zeros(2), step_size=2.0), "step_size"),
        (dict(p=torch.tensor([0.5, 0.5]), delta_p=torch.zeros(2), uniform=torch.rand(2, 8, 7)), "uniform"),
    ],
)
def test_update_grid_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.update_grid(torch.ones(2, 8, 8), **kwargs)


def test_cell_changes_partition_the_cells():
    old = M.init_grid(20, 8, 0.5, generator=generator())
    new = M.init_grid(20, 8, 0.5, generator=generator(1))
    changes = M.cell_changes(old, new)
    total = sum(part.long() for part in changes)
    assert torch.equal(total, torch.ones_like(total))


# ---------------------------------------------------------------------------------------------- postprocess


def test_postprocess_subtracts_the_mean_clips_and_scales():
    sums = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # mean 3
    out = M.postprocess(sums)
    assert torch.allclose(out, torch.tensor([[[0.0, 0.0], [0.0, 1.0]]]))
    softer = M.postprocess(sums, mean_fraction=0.5)  # subtract 1.5: [0, 0.5, 1.5, 4.5] / 4.5
    assert torch.allclose(softer, torch.tensor([[[0.0, 0.5 / 4.5], [1.5 / 4.5, 1.0]]]))


def test_postprocess_handles_flat_maps_and_keeps_each_map_separate():
    sums = torch.stack([torch.full((4, 4), 7.0), torch.arange(16.0).view(4, 4)])
    out = M.postprocess(sums)
    assert torch.equal(out[0], torch.zeros(4, 4))
    assert out[1].max() == 1 and out[1].min() == 0 and torch.isfinite(out).all()


def test_postprocess_rejects_wrong_rank():
    with pytest.raises(ValueError, match="saliency_sum"):
        M.postprocess(torch.zeros(4, 4))

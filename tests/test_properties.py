"""Property-based tests (hypothesis): random shapes, dtypes and values for masks, core, oise, rise and metrics.

Each property holds for every drawn input: outputs keep their documented shape, range and finiteness (or a
``TypeError`` / ``ValueError`` names the argument); the same seed gives the same output; ``batch_size`` never
changes an output; a run of N steps is the prefix of a longer run; chunked and unchunked metric curves agree; the
inputs are never modified. Examples are small (images up to 12 x 12) so the file runs in well under a minute.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import saliency_lib
from saliency_lib.evaluation import metrics
from saliency_lib.method import checks as C
from saliency_lib.method import core
from saliency_lib.method import masks as M

FEW = settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


class Quadrant(nn.Module):
    """Planted two-class model for any size (even 1 x 1): class 0's evidence is the top-left quadrant's mean."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x):
        h, w = (x.shape[-2] + 1) // 2, (x.shape[-1] + 1) // 2
        evidence = x[:, :, :h, :w].mean(dim=(1, 2, 3))
        return torch.stack([12 * evidence - 3, torch.zeros_like(evidence)], dim=1)


MODEL = Quadrant().eval()


@st.composite
def image_batches(draw, max_batch: int = 3, max_side: int = 12, min_side: int = 1):
    """Float32 ``(B, C, H, W)`` images in [0, 1]: batch 1 to ``max_batch``, odd and non-square sides."""
    batch = draw(st.integers(1, max_batch))
    channels = draw(st.sampled_from([1, 3]))
    height, width = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**16))
    kind = draw(st.sampled_from(["uniform", "binary", "constant"]))
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, height, width, generator=generator)
    if kind == "binary":
        x = (x > 0.5).float()
    elif kind == "constant":
        x = torch.full_like(x, float(seed % 3) / 2)
    return x


def grid_for(draw, images) -> int:
    return draw(st.integers(1, min(images.shape[-2:])))


def assert_names_argument(error: Exception, names: tuple[str, ...]) -> None:
    assert str(error).split(" ")[0] in names, str(error)


# ---- masks ------------------------------------------------------------------------------------------------------


@SOME
@given(batch=st.integers(1, 4), grid=st.integers(1, 6), p=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_init_grid_is_binary_shaped_and_seeded(batch, grid, p, seed):
    a = M.init_grid(batch, grid, p, generator=core.seeded_generator(seed))
    assert a.shape == (batch, grid, grid) and a.dtype == torch.float32
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, M.init_grid(batch, grid, p, generator=core.seeded_generator(seed)))


@SOME
@given(p=st.one_of(st.floats(allow_nan=True), st.booleans(), st.text(max_size=2)))
def test_init_grid_names_a_bad_probability(p):
    try:
        M.init_grid(2, 3, p)
    except (TypeError, ValueError) as error:
        assert_names_argument(error, ("p_init",))
    else:
        assert 0 <= p <= 1 and not isinstance(p, bool)


@SOME
@given(
    data=st.data(),
    batch=st.integers(1, 3),
    grid=st.integers(1, 6),
    height=st.integers(1, 13),
    width=st.integers(1, 13),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int64]),
)
def test_upsample_keeps_grids_in_unit_range(data, batch, grid, height, width, dtype):
    seed = data.draw(st.integers(0, 1000))
    grids = torch.rand(batch, grid, grid, generator=torch.Generator().manual_seed(seed))
    grids = (grids > 0.5).to(dtype) if dtype == torch.int64 else grids.to(dtype)
    before = grids.clone()
    masks = M.upsample(grids, (height, width), generator=core.seeded_generator(seed))
    assert masks.shape == (batch, height, width) and masks.is_floating_point()
    assert torch.isfinite(masks).all() and masks.min() >= -1e-6 and masks.max() <= 1 + 1e-6
    assert torch.equal(masks, M.upsample(grids, (height, width), generator=core.seeded_generator(seed)))
    assert torch.equal(grids, before)


@SOME
@given(images=image_batches(), data=st.data())
def test_apply_mask_stays_between_image_and_reference(images, data):
    seed = data.draw(st.integers(0, 1000))
    masks = torch.rand(images.shape[0], *images.shape[-2:], generator=torch.Generator().manual_seed(seed))
    reference = data.draw(st.sampled_from(["number", "channel", "images"]))
    ref = {"number": 0.5, "channel": torch.rand(images.shape[1], 1, 1), "images": torch.rand(images.shape)}[reference]
    kept = images.clone(), masks.clone()
    out = M.apply_mask(images, masks, ref)
    ref_t = M.reference_tensor(ref, images).expand_as(images)
    assert out.shape == images.shape
    low, high = torch.minimum(images, ref_t), torch.maximum(images, ref_t)
    assert (out >= low - 1e-6).all() and (out <= high + 1e-6).all()
    assert torch.equal(images, kept[0]) and torch.equal(masks, kept[1])


@SOME
@given(
    batch=st.integers(1, 4),
    grid=st.integers(1, 5),
    seed=st.integers(0, 1000),
    step=st.floats(0, 1),
    p=st.floats(0, 1),
    previous=st.floats(0, 1),
)
def test_update_grid_values_are_zero_one_or_the_shrink(batch, grid, seed, step, p, previous):
    generator = torch.Generator().manual_seed(seed)
    grids = M.init_grid(batch, grid, 0.5, generator=generator) * torch.where(
        torch.rand(batch, grid, grid, generator=generator) < 0.3, 0.9, 1.0
    )
    before = grids.clone()
    p_t, dp = torch.full((batch,), p), torch.full((batch,), p - previous)
    new = M.update_grid(grids, p_t, dp, step_size=step, generator=core.seeded_generator(seed))
    shrink = torch.tensor(1 - step * abs(p - previous), dtype=torch.float32)
    allowed = torch.tensor([0.0, 1.0, shrink.item()])
    assert new.shape == grids.shape
    assert torch.isclose(new.unsqueeze(-1), allowed).any(-1).all()
    assert torch.equal(grids, before)
    assert torch.equal(new, M.update_grid(grids, p_t, dp, step_size=step, generator=core.seeded_generator(seed)))


@SOME
@given(
    batch=st.integers(1, 3),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    seed=st.integers(0, 1000),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e6, 1e30]),
    offset=st.floats(-1e6, 1e6),
)
def test_postprocess_gives_unit_range_maps(batch, height, width, seed, scale, offset):
    total = torch.randn(batch, height, width, generator=torch.Generator().manual_seed(seed)) * scale + offset
    before = total.clone()
    out = M.postprocess(total)
    assert out.shape == total.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    peaks = out.amax(dim=(1, 2))
    assert ((peaks == 1) | (peaks == 0)).all()
    assert torch.equal(total, before)


# ---- core -------------------------------------------------------------------------------------------------------


@SOME
@given(images=image_batches(max_batch=7), batch_size=st.integers(1, 8))
def test_class_probabilities_are_rows_of_probabilities_whatever_the_batch_size(images, batch_size):
    before = images.clone()
    probs = core.class_probabilities(MODEL, images)
    assert probs.shape == (len(images), 2) and torch.isfinite(probs).all()
    assert torch.allclose(probs.sum(1), torch.ones(len(images)))
    assert torch.equal(core.class_probabilities(MODEL, images, batch_size=batch_size), probs)
    assert torch.equal(core.call_model(MODEL, images, batch_size), core.call_model(MODEL, images))
    assert torch.equal(images, before)


TARGETS = st.one_of(
    st.none(),
    st.integers(-3, 4),
    st.booleans(),
    st.floats(-2, 3),
    st.text(max_size=3),
    st.lists(st.integers(-1, 3), max_size=4),
    st.lists(st.text(min_size=1, max_size=2), min_size=1, max_size=3),
    st.lists(st.floats(0, 2), min_size=1, max_size=3),
    st.builds(lambda v: torch.tensor(v), st.lists(st.integers(-1, 3), max_size=4)),
    st.builds(lambda v: torch.tensor(v), st.lists(st.floats(0, 2), max_size=3)),
    st.builds(lambda v: torch.tensor(v), st.lists(st.booleans(), min_size=1, max_size=3)),
    st.builds(lambda v: torch.tensor(v), st.integers(-1, 3)),
    st.builds(lambda v: np.array(v), st.lists(st.integers(-1, 3), max_size=4)),
    st.builds(np.int64, st.integers(-1, 3)),
    st.builds(np.float64, st.floats(0, 2)),
    st.builds(lambda v: np.array(v), st.integers(-1, 3)),
    st.builds(lambda v: np.array(v), st.floats(0, 2)),
)


@settings(max_examples=150, deadline=None, database=None)
@given(target=TARGETS, batch=st.integers(1, 3))
def test_resolve_target_gives_valid_classes_or_names_target(target, batch):
    probs = torch.softmax(torch.randn(batch, 3, generator=torch.Generator().manual_seed(batch)), 1)
    try:
        values = core.resolve_target(target, probs)
    except (TypeError, ValueError) as error:
        assert_names_argument(error, ("target",))
        return
    assert values.dtype == torch.int64 and values.shape == (batch,)
    assert ((values >= 0) & (values < 3)).all()


DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8, torch.int64, torch.bool]


@SOME
@given(
    dims=st.lists(st.integers(0, 6), min_size=0, max_size=5),
    dtype=st.sampled_from(DTYPES),
    fill=st.sampled_from(["rand", "nan", "inf", "big"]),
)
def test_check_images_accepts_or_names_images(dims, dtype, fill):
    x = torch.rand(*dims) if dims else torch.rand(())
    x = (
        {
            "rand": x,
            "nan": x.masked_fill(x > 0.7, float("nan")),
            "inf": x.masked_fill(x > 0.7, float("inf")),
            "big": x * 255,
        }[fill].to(dtype)
        if dtype.is_floating_point
        else (x * 255).to(dtype)
    )
    before = x.clone()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # values in 0-255 warn; that is checked in test_bad_input
            images, added = C.check_images(x)
    except (TypeError, ValueError) as error:
        assert_names_argument(error, ("images",))
    else:
        assert images.dim() == 4 and images.dtype == torch.float32 and images.numel() > 0
        assert torch.isfinite(images).all() and added == (x.dim() == 3)
    assert x.dtype == before.dtype and torch.equal(torch.nan_to_num(x.float()), torch.nan_to_num(before.float()))


# ---- oise -------------------------------------------------------------------------------------------------------


def references(images) -> list:
    return ["mean", "blur", 0.5]


@st.composite
def oise_cases(draw):
    images = draw(image_batches())
    return images, dict(
        grid_size=grid_for(draw, images),
        n_chains=draw(st.integers(1, 3)),
        p_init=draw(st.sampled_from([0.0, 0.3, 1.0])),
        step_size=draw(st.sampled_from([0.0, 0.02, 1.0])),
        reference=draw(st.sampled_from(references(images))),
        weight_by_score=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


@FEW
@given(case=oise_cases(), n_steps=st.integers(3, 12), batch_size=st.integers(1, 5))
def test_oise_maps_are_unit_range_seeded_and_batch_size_free(case, n_steps, batch_size):
    images, options = case
    assume(options["n_chains"] <= n_steps)
    before = images.clone()
    result = saliency_lib.oise(MODEL, images, n_steps=n_steps, **options)
    maps = result.maps
    assert maps.shape == (images.shape[0], *images.shape[-2:]) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert result.steps_done == -(-n_steps // options["n_chains"]) and not result.partial
    assert torch.equal(maps, saliency_lib.oise(MODEL, images, n_steps=n_steps, **options).maps)
    assert torch.equal(maps, saliency_lib.oise(MODEL, images, n_steps=n_steps, batch_size=batch_size, **options).maps)
    assert torch.equal(images, before)


@FEW
@given(case=oise_cases(), short=st.integers(1, 70), extra=st.integers(1, 70))
def test_a_short_oise_run_is_the_prefix_of_a_longer_one(case, short, extra):
    """Steps 1..N of a run of N + extra steps (per chain) are the run of N steps: history and final map."""
    images, options = case
    chains = options["n_chains"]
    a = saliency_lib.oise(MODEL, images, n_steps=short * chains, record_every=1, **options)
    b = saliency_lib.oise(MODEL, images, n_steps=(short + extra) * chains, record_every=1, **options)
    ha, hb = a.history.stacked(), b.history.stacked()
    for key in ("grids", "masks", "p", "saliency"):
        assert torch.equal(ha[key], hb[key][:short]), key
    assert torch.equal(a.maps, hb["saliency"][short - 1])


@FEW
@given(case=oise_cases())
def test_oise_target_shapes(case):
    images, options = case
    result = saliency_lib.oise(MODEL, images[0], 1, n_steps=options["n_chains"] + 1, **options)  # a (C, H, W) image
    assert result.maps.shape == (1, *images.shape[-2:]) and result.target.tolist() == [1]


# ---- rise -------------------------------------------------------------------------------------------------------


@FEW
@given(images=image_batches(), data=st.data(), n_masks=st.integers(1, 230), batch_size=st.integers(1, 300))
def test_rise_maps_are_finite_seeded_and_batch_size_free(images, data, n_masks, batch_size):
    grid = grid_for(data.draw, images)
    options = dict(
        grid_size=grid,
        p_keep=data.draw(st.sampled_from([0.1, 0.5, 1.0])),
        reference=data.draw(st.sampled_from(references(images))),
        seed=data.draw(st.integers(0, 99)),
    )
    before = images.clone()
    result = saliency_lib.rise(MODEL, images, n_masks=n_masks, **options)
    maps = result.maps
    assert maps.shape == (images.shape[0], *images.shape[-2:]) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.min() >= 0
    # Each mask is in [0, 1] and each p in [0, 1]: the expectation is at most 1 / p_keep.
    assert maps.max() <= 1 / options["p_keep"] + 1e-5
    assert result.model_calls == n_masks
    assert torch.equal(maps, saliency_lib.rise(MODEL, images, n_masks=n_masks, **options).maps)
    assert torch.equal(maps, saliency_lib.rise(MODEL, images, n_masks=n_masks, batch_size=batch_size, **options).maps)
    assert torch.equal(images, before)


# ---- metrics ----------------------------------------------------------------------------------------------------


@st.composite
def images_and_maps(draw, max_batch: int = 3):
    images = draw(image_batches(max_batch=max_batch, max_side=9))
    kind = draw(st.sampled_from(["rand", "flat", "ties", "bool", "double"]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 999)))
    maps = torch.rand(images.shape[0], *images.shape[-2:], generator=generator)
    maps = {
        "rand": maps,
        "flat": torch.zeros_like(maps),
        "ties": (maps * 3).round(),
        "bool": maps > 0.5,
        "double": maps.double() * 1e3 - 500,
    }[kind]
    return images, maps


@FEW
@given(case=images_and_maps(), mode=st.sampled_from(["deletion", "insertion"]), data=st.data())
def test_causal_curves_are_probabilities_and_chunking_free(case, mode, data):
    images, maps = case
    n_pixels = images.shape[-2] * images.shape[-1]
    pixels = data.draw(st.one_of(st.none(), st.integers(1, n_pixels)))
    batch_size = data.draw(st.integers(1, 40))
    kept = images.clone(), maps.clone()
    whole = metrics.causal_curves(MODEL, images, maps, mode, pixels_per_step=pixels, batch_size=10**6)
    chunked = metrics.causal_curves(MODEL, images, maps, mode, pixels_per_step=pixels, batch_size=batch_size)
    n_points = -(-n_pixels // (pixels or images.shape[-1])) + 1
    assert whole.curve.shape == (images.shape[0], n_points) and whole.model_calls == n_points
    assert torch.isfinite(whole.curve).all() and whole.curve.min() >= 0 and whole.curve.max() <= 1
    assert (whole.auc >= 0).all() and (whole.auc <= 1).all()
    assert whole.fraction[0] == 0 and whole.fraction[-1] == 1 and (whole.fraction.diff() > 0).all()
    # Tolerance: probabilities of the same images in other chunk sizes: float32 rounding only.
    assert torch.allclose(chunked.curve, whole.curve, atol=1e-6, rtol=0)
    clean = core.class_probabilities(MODEL, images).gather(1, whole.target.view(-1, 1))[:, 0]
    end = 0 if mode == "deletion" else -1  # nothing deleted yet / everything inserted: the image itself
    # Tolerance: the clean image's probability by two call paths: float32 rounding only.
    assert torch.allclose(whole.curve[:, end], clean, atol=1e-6)
    assert torch.equal(images, kept[0]) and torch.equal(maps, kept[1])


@SOME
@given(case=images_and_maps(max_batch=4), data=st.data())
def test_localisation_scores_are_in_unit_range(case, data):
    images, maps = case
    height, width = maps.shape[-2:]
    boxes = []
    for _ in range(maps.shape[0]):
        x0, y0 = data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1))
        boxes.append([x0, y0, data.draw(st.integers(x0 + 1, width)), data.draw(st.integers(y0 + 1, height))])
    boxes = torch.tensor(boxes)
    for score in (metrics.pointing_game(maps, boxes), metrics.box_iou(maps, boxes), metrics.energy_in_box(maps, boxes)):
        assert score.shape == (maps.shape[0],) and torch.isfinite(score).all()
        assert (score >= 0).all() and (score <= 1 + 1e-6).all()


@SOME
@given(case=images_and_maps(max_batch=4))
def test_pixel_ranks_are_permutations_and_spearman_is_a_correlation(case):
    _, maps = case
    ranks = metrics.pixel_ranks(maps.float())
    n = maps.shape[-2] * maps.shape[-1]
    assert torch.equal(ranks.sort(dim=1).values, torch.arange(n).expand_as(ranks))
    flat_maps = maps.float().reshape(len(maps), -1)
    top = (ranks == 0).float().argmax(1, keepdim=True)  # the pixel ranked first holds the maximum
    assert torch.equal(flat_maps.gather(1, top)[:, 0], flat_maps.amax(1))
    rho = metrics.spearman(maps.float(), maps.float().flip(-1))
    assert rho.shape == (len(maps),) and torch.isfinite(rho).all() and (rho.abs() <= 1 + 1e-6).all()
    self_rho = metrics.spearman(maps.float(), maps.float())
    flat = flat_maps.amax(1) == flat_maps.amin(1)
    # Tolerance: a Pearson correlation of float32 ranks (up to 4,096 pixels) with itself.
    assert torch.allclose(self_rho[~flat], torch.ones(int((~flat).sum())), atol=1e-5)


@SOME
@given(
    curve=st.lists(st.lists(st.floats(0, 1), min_size=2, max_size=9), min_size=1, max_size=3).filter(
        lambda rows: len({len(r) for r in rows}) == 1
    )
)
def test_auc_of_probability_curves_is_in_unit_range(curve):
    area = metrics.auc(torch.tensor(curve))
    assert area.shape == (len(curve),) and (area >= 0).all() and (area <= 1 + 1e-6).all()


def test_blur_of_a_one_pixel_image():
    """Found by the insertion property (fixed): RISE's insertion start (``masks.blur``) of a 1 x W image."""
    images = torch.rand(2, 1, 1, 5)
    assert torch.equal(M.blur(images), images)
    metrics.insertion(MODEL, images, torch.rand(2, 1, 5))


def test_spearman_of_one_pixel_maps_is_flat_and_quiet():
    """Found by the spearman property: a 1-pixel map is flat (0 by the docstring) without a std() warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.spearman(torch.ones(2, 1, 1), torch.ones(2, 1, 1)).tolist() == [0.0, 0.0]


# ---- numbers: 1 thread or 2 -------------------------------------------------------------------------------------


@pytest.mark.slow(reason="seeded maps and curves twice, with 1 and 2 threads (about 10 s)")
def test_one_and_two_threads_agree():
    """The tolerance docs/troubleshooting.md states: seeded maps and curves agree to 1e-5 with 1 and 2 threads."""
    from saliency_lib.io.models import FashionCNN

    torch.manual_seed(0)
    model = FashionCNN().eval()
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            maps = saliency_lib.oise(model, images, n_steps=60, n_chains=2, seed=0).maps
            out[n] = (
                maps,
                saliency_lib.rise(model, images, n_masks=60, seed=0).maps,
                metrics.deletion(model, images, maps).auc,
            )
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(out[1], out[2]):
        # Tolerance: 1 vs 2 threads split the same float32 sums; measured 3e-7 on EfficientNet OISE maps.
        assert torch.allclose(one, two, atol=1e-5, rtol=0)

"""Tests of saliency_lib.generative.reconstruct: region selection, context weights, latent search, agreement,
controls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saliency_lib.generative.gan import Discriminator, Generator
from saliency_lib.generative.reconstruct import (
    agreement,
    box_region,
    context_weights,
    fill_region,
    inpaint,
    predictions,
    random_region,
    salient_region,
)


@pytest.fixture(scope="module")
def toy_gan():
    # Untrained but fixed networks: the search must still lower its own loss on them.
    torch.manual_seed(0)
    return Generator().eval().requires_grad_(False), Discriminator().eval().requires_grad_(False)


class MeanBrightness(nn.Module):
    """Planted classifier: class 1 when the mean of the top-left 14 x 14 quadrant exceeds 0.5, else class 0."""

    def forward(self, images):
        score = images[:, :, :14, :14].mean(dim=(1, 2, 3)) - 0.5
        return torch.stack([-score, score], dim=1) * 50


# ---- region selection --------------------------------------------------------------------------------------------


def test_salient_region_takes_exactly_the_top_pixels():
    saliency = torch.arange(16.0).view(1, 4, 4)  # pixel 15 is the most salient
    region = salient_region(saliency, 0.25)
    assert region.dtype == torch.bool and region.shape == (1, 4, 4)
    assert region.sum() == 4
    assert region.view(-1)[12:].all() and not region.view(-1)[:12].any()


def test_salient_region_batched_count_and_order_independent_of_other_images():
    torch.manual_seed(1)
    maps = torch.rand(5, 28, 28)
    region = salient_region(maps, 0.2)
    assert (region.flatten(1).sum(1) == round(0.2 * 784)).all()
    assert torch.equal(salient_region(maps[2:3], 0.2)[0], region[2])
    # every selected pixel is at least as salient as every unselected one
    for b in range(5):
        assert maps[b][region[b]].min() >= maps[b][~region[b]].max()


def test_salient_region_ties_are_deterministic():
    flat = torch.zeros(1, 6, 6)
    first = salient_region(flat, 0.5)
    assert first.sum() == 18 and torch.equal(first, salient_region(flat, 0.5))


def test_box_region_is_the_bounding_box():
    region = torch.zeros(1, 8, 8, dtype=torch.bool)
    region[0, 2, 3] = region[0, 5, 6] = True
    box = box_region(region)
    expected = torch.zeros(1, 8, 8, dtype=torch.bool)
    expected[0, 2:6, 3:7] = True
    assert torch.equal(box, expected)
    saliency = torch.zeros(1, 8, 8)
    saliency[0, 2, 3], saliency[0, 5, 6] = 2.0, 1.0
    assert torch.equal(salient_region(saliency, 2 / 64, box=True), expected)
    assert not box_region(torch.zeros(1, 4, 4, dtype=torch.bool)).any()


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, True, "half"])
def test_salient_region_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        salient_region(torch.rand(1, 4, 4), fraction)


@pytest.mark.parametrize("shape", [(1, 2, 4, 4), (16,)])
def test_salient_region_rejects_bad_shape(shape):
    # (B, 1, H, W) maps lose their channel axis (the shared check_maps rule); other shapes are refused
    with pytest.raises(ValueError, match="saliency"):
        salient_region(torch.rand(*shape), 0.5)


def test_random_region_same_size_seeded_and_different():
    torch.manual_seed(2)
    like = salient_region(torch.rand(6, 28, 28), 0.2)
    first = random_region(like, seed=3)
    assert torch.equal(first.flatten(1).sum(1), like.flatten(1).sum(1))
    assert torch.equal(first, random_region(like, seed=3))
    assert not torch.equal(first, random_region(like, seed=4))
    assert not torch.equal(first, like)


def test_random_region_refuses_a_float_seed():
    like = salient_region(torch.rand(1, 8, 8), 0.25)
    with pytest.raises(TypeError, match="seed"):
        random_region(like, seed=1.5)


# ---- context weights ---------------------------------------------------------------------------------------------


def test_context_weights_by_hand():
    hole = torch.zeros(1, 9, 9)
    hole[0, 4, 4] = 1
    weights = context_weights(hole, kernel_size=3)
    assert weights[0, 4, 4] == 0  # the hole itself carries no weight
    assert torch.allclose(weights[0, 3:6, 3:6].sum(), torch.tensor(8 / 9))  # 8 neighbours, 1/9 each
    assert weights[0, 0, 0] == 0  # far from the hole
    assert weights.min() >= 0 and weights.max() <= 1


def test_context_weights_grow_near_larger_holes():
    small, big = torch.zeros(1, 11, 11), torch.zeros(1, 11, 11)
    small[0, 5, 5] = 1
    big[0, 4:7, 4:7] = 1
    assert context_weights(big, 5)[0, 5, 3] > context_weights(small, 5)[0, 5, 4]


def test_context_weights_rejects_even_kernel():
    with pytest.raises(ValueError, match="kernel_size"):
        context_weights(torch.zeros(1, 5, 5), kernel_size=4)


# ---- latent search -----------------------------------------------------------------------------------------------


def _problem(n_images=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n_images, 1, 28, 28, generator=generator)
    region = salient_region(torch.rand(n_images, 28, 28, generator=generator), 0.2)
    return images, region


def test_latent_search_lowers_the_loss_of_every_image(toy_gan):
    images, region = _problem(4)
    result = inpaint(*toy_gan, images, region, n_codes=6, n_iterations=25, lr=0.01, seed=0)
    assert result.loss.shape == result.initial_loss.shape == (4, 6)
    per_image_final, per_image_initial = result.loss.mean(1), result.initial_loss.mean(1)
    assert (per_image_final < per_image_initial).all(), (per_image_final, per_image_initial)
    assert (result.loss < result.initial_loss).float().mean() > 0.8
    # Tolerance: the loss logged during the search vs recomputed: float32 means of 784 pixels x 6 codes (values ~1).
    assert torch.allclose(result.history[0], per_image_initial, atol=1e-4)
    # Tolerance: as above, at the last iteration.
    assert torch.allclose(result.history[-1], per_image_final, atol=1e-4)
    assert result.history.shape == (26, 4)
    # Tolerance: the total vs its two float32 parts recombined (values ~1).
    assert torch.allclose(result.loss, result.context_loss + 0.005 * result.realism_loss, atol=1e-4)


def test_latent_search_output_is_consistent(toy_gan):
    images, region = _problem(2)
    result = inpaint(*toy_gan, images, region, n_codes=3, n_iterations=3, seed=1)
    assert result.reconstructions.shape == result.generated.shape == (2, 3, 1, 28, 28)
    hole = region[:, None, None].expand_as(result.reconstructions)
    known = images[:, None].expand_as(result.reconstructions)
    assert torch.equal(result.reconstructions[~hole], known[~hole])
    assert torch.equal(result.reconstructions[hole], result.generated[hole])
    assert (result.fill[~hole] == 0).all()
    assert result.z.shape == (2, 3, 100) and result.z.abs().max() <= 1
    with torch.no_grad():
        regenerated = toy_gan[0](result.z.view(-1, 100)).view(2, 3, 1, 28, 28)
    # Tolerance: the generator run again on the kept codes, in another batch shape.
    assert torch.allclose(regenerated, result.generated, atol=1e-5)


def test_latent_search_seeded_and_batched(toy_gan):
    images, region = _problem(3)
    first = inpaint(*toy_gan, images, region, n_codes=2, n_iterations=4, seed=5)
    again = inpaint(*toy_gan, images, region, n_codes=2, n_iterations=4, seed=5)
    chunked = inpaint(*toy_gan, images, region, n_codes=2, n_iterations=4, seed=5, batch_size=1)
    assert torch.equal(first.z, again.z)
    # Tolerance: 4 Adam-like steps in batches of 1 vs 3: float32 convolutions summed in another order.
    assert torch.allclose(first.z, chunked.z, atol=1e-5)
    other = inpaint(*toy_gan, images, region, n_codes=2, n_iterations=4, seed=6)
    assert not torch.equal(first.z, other.z)


def test_warm_start_begins_closer_than_random_codes(toy_gan):
    images, region = _problem(3)
    cold = inpaint(*toy_gan, images, region, n_codes=4, n_iterations=0, seed=0)
    warm = inpaint(*toy_gan, images, region, n_codes=4, n_iterations=0, seed=0, n_candidates=256)
    assert (warm.context_loss.mean(1) <= cold.context_loss.mean(1)).all()


def test_latent_search_errors(toy_gan):
    images, region = _problem(2)
    with pytest.raises(ValueError, match="region must have shape"):
        inpaint(*toy_gan, images, region[:1])
    empty = region.clone()
    empty[1] = False
    with pytest.raises(ValueError, match=r"empty for image\(s\) \[1\]"):
        inpaint(*toy_gan, images, empty)
    full = region.clone()
    full[0] = True
    with pytest.raises(ValueError, match="whole image"):
        inpaint(*toy_gan, images, full)
    with pytest.raises(ValueError, match="generator makes images of shape"):
        inpaint(*toy_gan, torch.rand(1, 1, 32, 32), salient_region(torch.rand(1, 32, 32), 0.2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        inpaint(*toy_gan, images * 3, region)
    with pytest.raises(ValueError, match="n_candidates"):
        inpaint(*toy_gan, images, region, n_codes=8, n_candidates=4)


# ---- agreement and the controls ----------------------------------------------------------------------------------


def test_agreement_with_a_planted_classifier():
    model = MeanBrightness()
    images = torch.cat([torch.ones(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)])  # classes 1 and 0
    variations = images[:, None].repeat(1, 4, 1, 1, 1)
    variations[0, :3, :, :14, :14] = 0.0  # three of four variations of image 0 lose its evidence
    scores = agreement(model, images, variations)
    assert torch.allclose(scores, torch.tensor([0.25, 1.0]))
    assert predictions(model, variations).shape == (2, 4)
    assert torch.allclose(agreement(model, images, images), torch.ones(2))


def test_agreement_rejects_mismatched_variations():
    with pytest.raises(ValueError, match="variations"):
        agreement(MeanBrightness(), torch.rand(2, 1, 28, 28), torch.rand(3, 4, 1, 28, 28))


def test_fill_region_controls():
    images = torch.rand(2, 1, 28, 28)
    region = salient_region(torch.rand(2, 28, 28), 0.3)
    filled = fill_region(images, region, 0.25)
    assert (filled[region[:, None]] == 0.25).all()
    assert torch.equal(filled[~region[:, None]], images[~region[:, None]])
    other = torch.zeros_like(images)
    assert (fill_region(images, region, other)[region[:, None]] == 0).all()
    assert torch.allclose(
        fill_region(images, region, torch.tensor([0.5]).view(1, 1, 1))[region[:, None]], torch.tensor(0.5)
    )
    with pytest.raises(ValueError, match="region"):
        fill_region(images, region[:1], 0.0)


def test_inpainting_recovers_a_planted_region_the_classifier_needs(toy_gan):
    # The generator cannot invent a bright quadrant it never makes: regenerating the evidence of the planted
    # classifier must change its decision for more variations than regenerating an irrelevant corner.
    model = MeanBrightness()
    images = torch.zeros(2, 1, 28, 28)
    images[:, :, :14, :14] = 1.0
    evidence = torch.zeros(2, 28, 28, dtype=torch.bool)
    evidence[:, :14, :14] = True
    corner = torch.zeros(2, 28, 28, dtype=torch.bool)
    corner[:, 18:, 18:] = True
    generator, discriminator = toy_gan
    mean_brightness = generator(torch.rand(64, 100) * 2 - 1)[:, :, :14, :14].mean()
    assert mean_brightness < 0.9  # the toy generator does not make fully bright patches
    on_evidence = inpaint(generator, discriminator, images, evidence, n_codes=4, n_iterations=2, seed=0)
    on_corner = inpaint(generator, discriminator, images, corner, n_codes=4, n_iterations=2, seed=0)
    assert agreement(model, images, on_corner.reconstructions).mean() == 1.0
    assert agreement(model, images, on_evidence.reconstructions).mean() < 1.0


# ---- the experiment (quick suite through the command, shipped weights) ----------------------------------------------


@pytest.mark.slow(reason="Part B's quick experiment end to end (about 10 s)")
def test_quick_experiment_writes_consistent_results(tmp_path):
    import json

    from saliency_research.cli import main
    from saliency_research.reconstruction_experiment import FRACTIONS, PAPER_LYNX

    assert main(["reconstruct", "--suite", "quick", "--out", str(tmp_path), "--no-progress"]) == 0
    result = json.loads((tmp_path / "reconstruction_quick.json").read_text())
    assert (tmp_path / "reconstruction_quick.png").stat().st_size > 5000
    table = (tmp_path / "reconstruction_quick.md").read_text()
    assert "paper (theirs)" in table and "88.9%" in table
    assert result["images"] == 10 and result["fractions"] == list(FRACTIONS)
    assert result["paper_lynx_theirs"] == {str(k): v for k, v in PAPER_LYNX.items()}
    expected = {
        "oise_generated",
        "rise_generated",
        "random_generated",
        "oise_black",  # Fashion-MNIST's own reference: the region filled with black
        "oise_blur",
        "rise_black",
        "rise_blur",
    }
    assert set(result["conditions"]) == expected
    assert result["reference"] == "black" and result["forced_reference"] is None
    assert "Masked-pixel value of the OISE and RISE maps: black" in table
    for name in expected:
        sizes = []
        for fraction in FRACTIONS:
            row = result["conditions"][name][str(fraction)]
            per_image = torch.tensor(result["per_image_agreement"][name][str(fraction)])
            assert len(per_image) == 10 and ((per_image >= 0) & (per_image <= 1)).all()
            assert abs(per_image.mean().item() - row["agreement"]["mean"]) < 1e-3
            low, high = row["agreement"]["ci95"]  # reports.summarise: a [low, high] interval around the mean
            assert low <= row["agreement"]["mean"] <= high and row["agreement"]["n"] == 10
            sizes.append(row["hole_pixels"])
            if name.endswith("generated"):
                assert row["loss"] <= row["initial_loss"] + 1e-6  # the search never ends worse than it began
        assert sizes == sorted(sizes) and sizes[0] == round(0.3 * 0.5 * 784)


@pytest.mark.slow(reason="Part B's quick maps with three references (about 10-20 s)")
def test_the_reference_reaches_the_maps_and_a_forced_one_gets_its_own_file(tmp_path):
    from saliency_research.reconstruction_experiment import result_stem, run_experiment

    caches = {}
    for reference in (None, "mean", "black"):
        caches[reference] = tmp_path / f"{reference}.pt"
        assert (
            run_experiment("quick", maps_cache=caches[reference], maps_only=True, progress=False, reference=reference)
            is None
        )
    maps = {k: torch.load(v, weights_only=True) for k, v in caches.items()}
    assert '"reference": "black"' in maps[None]["key"] and '"reference": "mean"' in maps["mean"]["key"]
    for method in ("oise", "rise"):
        assert torch.equal(maps[None]["maps"][method], maps["black"]["maps"][method])  # the default is black
        assert not torch.allclose(maps["mean"]["maps"][method], maps["black"]["maps"][method], atol=1e-3)
    assert (
        result_stem("paper") == "reconstruction_paper" and result_stem("paper", "mean") == "reconstruction_paper_mean"
    )
    with pytest.raises(ValueError, match="reference must be one of"):
        run_experiment("quick", maps_only=True, progress=False, reference="grey")


def test_latent_search_refuses_networks_in_training_mode():
    images, region = _problem(1)
    with pytest.raises(ValueError, match="generator is in training mode"):
        inpaint(Generator().train(), Discriminator().eval(), images, region)


def test_resummarise_turns_old_half_widths_into_intervals_with_the_same_means(tmp_path):
    import json

    from saliency_research.reconstruction_experiment import resummarise, write_results
    from saliency_research.reports import summarise

    per_image = {"oise_generated": {"0.5": [1.0, 0.875, 0.5, 1.0], "0.9": [0.25, 1.0, 0.75, 0.0]}}
    old = {
        "suite": "old",
        "images": 4,
        "clean_accuracy": 1.0,
        "fractions": [0.5, 0.9],
        "settings": {"n_codes": 8, "n_steps": 25},
        "choices": {"ours": ["ours"]},
        "paper_lynx_theirs": {"0.5": 0.889, "0.9": 0.647},
        "conditions": {
            "oise_generated": {
                f: {"agreement": {"mean": round(sum(v) / 4, 4), "std": 0.0, "ci95": 0.1, "n_images": 4}, "loss": 1.0}
                for f, v in per_image["oise_generated"].items()
            }
        },
        "per_image_agreement": per_image,
        "timings": {"total_seconds": 1.0},
        "environment": {"threads": 1},
    }
    path = tmp_path / "reconstruction_old.json"
    path.write_text(json.dumps(old))
    result = resummarise(path)
    for f, values in per_image["oise_generated"].items():
        row = result["conditions"]["oise_generated"][f]
        assert row["agreement"] == summarise(values)
        assert row["agreement"]["mean"] == old["conditions"]["oise_generated"][f]["agreement"]["mean"]
    assert result["settings"] == {"n_codes": 8, "n_iterations": 25}
    assert json.loads(path.read_text()) == result
    assert (tmp_path / "reconstruction_old.png").exists() and "[" in (tmp_path / "reconstruction_old.md").read_text()
    write_results(result, tmp_path / "again")  # an already converted file converts to itself
    assert resummarise(tmp_path / "again" / "reconstruction_old.json") == result


# ---- the paper's budget: suite and the classical inpainting control --------------------------------------


def test_the_paper_suite_makes_its_maps_at_5000_calls_and_adds_the_classical_control():
    from saliency_research.reconstruction_experiment import SUITES

    paper = SUITES["paper"]
    assert paper["saliency_calls"] == 5000 and paper["oise_chains"] == 1 and paper["biharmonic"] is True
    assert "biharmonic" not in SUITES["quick"] and "biharmonic" not in SUITES["full"]
    assert SUITES["full"]["saliency_calls"] == 500 and SUITES["quick"]["saliency_calls"] == 200


def test_biharmonic_fill_replaces_only_the_region_on_two_images():
    from saliency_lib.io.data import fashion_sample
    from saliency_research.reconstruction_experiment import biharmonic_fill

    images = fashion_sample(n_per_class=1)[0][:2]
    region = torch.zeros(2, 28, 28, dtype=torch.bool)
    region[0, 10:16, 10:16] = True
    region[1, 3:9, 18:25] = True
    filled = biharmonic_fill(images, region)
    assert filled.shape == images.shape and filled.dtype == images.dtype
    outside = ~region.unsqueeze(1)
    assert torch.equal(filled[outside], images[outside])
    assert not torch.equal(filled[~outside], images[~outside]) and 0 <= filled.min() and filled.max() <= 1


def test_the_paired_table_compares_the_gan_with_the_classical_fills():
    from saliency_research.reconstruction_experiment import paired_table

    per_image = {
        "oise_generated": {"0.5": [1.0, 0.75]},
        "oise_biharmonic": {"0.5": [0.0, 1.0]},
        "oise_mean": {"0.5": [0.0, 0.0]},
    }
    lines = paired_table({"per_image_agreement": per_image, "fractions": [0.5]})
    assert any(line.startswith("| OISE region: GAN - biharmonic | +37.5%") for line in lines)
    assert any(line.startswith("| OISE region: GAN - mean | +87.5%") for line in lines)
    assert paired_table({"per_image_agreement": {"oise_mean": {}}, "fractions": [0.5]}) == []

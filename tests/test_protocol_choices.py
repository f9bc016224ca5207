"""``saliency_research/bench/protocol_choices.py``: RISE's metric, the OISE map variants, the merge.

Every expected value is worked out here, by hand or by an independent computation (scipy's ``convolve2d``, the
transcription of RISE's ``evaluation.py`` in ``saliency_research/bench/authors_reference.py``); none is a recorded
float.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from torch import nn

REPO = Path(__file__).resolve().parent.parent

from saliency_lib.evaluation import metrics as Mt  # noqa: E402
from saliency_lib.method import masks as M  # noqa: E402
from saliency_lib.method.oise_method import oise  # noqa: E402
from saliency_research.bench import authors_reference as R  # noqa: E402
from saliency_research.bench import protocol_choices as P  # noqa: E402
from saliency_research.reports import summarise  # noqa: E402


class WeightedSum(nn.Module):
    """Two classes; logit of class 0 = ``scale * sum(weights * x)``, class 1 = 0, so p0 = sigmoid(that)."""

    def __init__(self, weights: torch.Tensor, scale: float = 0.1) -> None:
        super().__init__()
        self.weights, self.scale = weights, scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        evidence = self.scale * (images[:, 0] * self.weights).sum(dim=(1, 2))
        return torch.stack([evidence, torch.zeros_like(evidence)], dim=1)


# A 3 x 2 image whose pixels weigh 1, 2, 4, ... 32: the probability tells exactly which pixels are still there.
POWERS = torch.tensor([[1.0, 2.0], [4.0, 8.0], [16.0, 32.0]])
# Pixel 3 first, pixel 0 second, the other four tied at 0.
TIED_MAP = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]])


def sigmoid(values: list[float], scale: float = 0.1) -> torch.Tensor:
    return torch.sigmoid(scale * torch.tensor(values)).view(1, -1)


def test_rise_order_breaks_ties_as_flipped_argsort():
    order = P.rise_order(TIED_MAP)[0].tolist()
    # By definition: numpy's default argsort, flipped (numpy's sort is not stable, so the four tied zeros come in
    # whatever order it leaves them, reversed).
    assert order == np.flip(np.argsort(TIED_MAP.reshape(-1).numpy())).tolist()
    # By hand: pixel 3 (value 2), then pixel 0 (value 1), then the tied pixels 1, 2, 4, 5.
    assert order[:2] == [3, 0] and sorted(order[2:]) == [1, 2, 4, 5]
    # With ties="order" (pixel_ranks' default) the package puts tied pixels first pixel first: 3, 0, 1, 2, 4, 5.
    assert torch.argsort(Mt.pixel_ranks(TIED_MAP)[0]).tolist() == [3, 0, 1, 2, 4, 5]


def _weight_left(order: list[int], step: int = 2) -> list[float]:
    """Weight of the pixels still there after 0, 1, 2, ... steps of ``step`` pixels removed in ``order``."""
    weights = POWERS.reshape(-1).tolist()
    return [sum(w for k, w in enumerate(weights) if k not in order[: i * step]) for i in range(len(order) // step + 1)]


def test_rise_deletion_one_row_per_step_and_tie_order():
    model, image = WeightedSum(POWERS), torch.ones(1, 1, 3, 2)
    rise_style = P.rise_causal(model, image, TIED_MAP, torch.tensor([0]), "deletion", fill=0.0)
    # One row (2 pixels) per step: 4 points. First nothing, then {3, 0} (weight 63 - 9 = 54 left), then the ties
    # two at a time in numpy's order, then nothing left.
    left = _weight_left(P.rise_order(TIED_MAP)[0].tolist())
    assert rise_style.model_calls == 4 and left[:2] == [63, 54] and left[-1] == 0
    assert torch.allclose(rise_style.curve, sigmoid(left), atol=1e-6)
    # The package's deletion with ties="order" removes the ties in pixel order: {3, 0}; {1, 2}; {4, 5}: 63, 54, 48, 0.
    ours = Mt.deletion(model, image, TIED_MAP, torch.tensor([0]), reference=0.0, ties="order")
    assert torch.allclose(ours.curve, sigmoid([63, 54, 48, 0]), atol=1e-6)
    # By default the ties go in a seeded random order: the first step is always {3, 0}, the rest depends on it.
    fair = Mt.deletion(model, image, TIED_MAP, torch.tensor([0]), reference=0.0, tie_seed=1)
    shuffled = torch.argsort(Mt.pixel_ranks(TIED_MAP, "random", 1)[0]).tolist()
    assert shuffled[0] == 3 and torch.allclose(fair.curve, sigmoid(_weight_left(shuffled)), atol=1e-6)
    expected_auc = (sigmoid(left).sum() - sigmoid([63])[0, 0] / 2 - sigmoid([0])[0, 0] / 2) / 3
    assert rise_style.auc.item() == pytest.approx(expected_auc.item(), abs=1e-6)


def test_rise_blur_is_zero_padded_gkern():
    ones = torch.ones(1, 1, 21, 21)
    kernel = R.gkern(11, 5, 1)[0, 0].numpy()
    blurred = P.rise_blur(ones, fill=0.0)
    # Zero padding, computed independently: scipy's convolution with zero fill (the kernel is symmetric).
    expected = convolve2d(np.ones((21, 21)), kernel, mode="same", boundary="fill", fillvalue=0)
    assert np.allclose(blurred[0, 0].numpy(), expected, atol=1e-6)
    assert blurred[0, 0, 10, 10].item() == pytest.approx(1.0, abs=1e-5)  # the kernel sums to 1 inside
    assert blurred[0, 0, 0, 0].item() < 0.5  # the corner sees mostly padding
    # The package's blur pads by reflection: a constant image stays constant.
    assert torch.allclose(M.blur(ones), ones, atol=1e-5)
    # Padding with the reference value: a constant image equal to it stays constant.
    assert torch.allclose(P.rise_blur(ones, fill=1.0), ones, atol=1e-5)


def test_rise_insertion_starts_from_the_zero_padded_blur():
    model, image = WeightedSum(POWERS), torch.ones(1, 1, 3, 2)
    result = P.rise_causal(model, image, TIED_MAP, torch.tensor([0]), "insertion", fill=0.0)
    start = convolve2d(np.ones((3, 2)), R.gkern(11, 5, 1)[0, 0].numpy(), mode="same", boundary="fill")
    order = P.rise_order(TIED_MAP)[0].tolist()
    inserted = [order[: 2 * i] for i in range(4)]  # one row (2 pixels) per step
    expected = []
    for pixels in inserted:
        mixed = start.reshape(-1).copy()
        mixed[pixels] = 1.0
        expected.append(float((POWERS.reshape(-1).numpy() * mixed).sum()))
    assert torch.allclose(result.curve, sigmoid(expected), atol=1e-5)


def test_rise_metric_matches_the_transcription_of_rise_evaluation():
    generator = torch.Generator().manual_seed(3)
    model = WeightedSum(torch.randn(8, 8, generator=generator), scale=0.5)
    images = torch.rand(2, 1, 8, 8, generator=generator)
    maps = (torch.rand(2, 8, 8, generator=generator) * 4).floor()  # 4 levels: 64 pixels, many ties
    adapter = R.TargetProbability(model, mean=(0.0,), std=(1.0,))  # normalised space = pixel space, 0 = black
    for mode, short in (("deletion", "del"), ("insertion", "ins")):
        ours = P.rise_causal(model, images, maps, torch.tensor([0, 1]), mode, fill=0.0)
        for b in range(2):
            theirs = R.causal_metric_reference(adapter, images[b].numpy(), maps[b].numpy(), b, short, 8)
            assert ours.auc[b].item() == pytest.approx(theirs, abs=1e-5)


def test_oise_map_variants_on_a_tiny_sum():
    raw = torch.tensor([[[0.0, 1.0], [2.0, 5.0]]])  # mean 2
    maps = P.oise_map_variants(raw)
    assert torch.allclose(maps["oise_raw"], raw / 5)
    assert torch.allclose(maps["oise_mean1.0"], torch.tensor([[[0.0, 0.0], [0.0, 1.0]]]))
    assert torch.allclose(maps["oise_mean0.96"], torch.tensor([[[0.0, 0.0], [0.08 / 3.08, 1.0]]]))


def test_last_sum_gives_oise_its_own_map(planted_model, planted_images):
    keeper = P.LastSum()
    final = oise(planted_model, planted_images, 0, n_steps=20, seed=1, callback=keeper)
    assert keeper.total.shape == (3, 28, 28)
    assert torch.equal(P.oise_map_variants(keeper.total)["oise_mean1.0"], final.maps)


def _fake_part(directory: Path, indices: list[int], generator: torch.Generator) -> list[dict]:
    records = []
    for index in indices:
        scores = {
            variant: {
                metric: {mode: float(torch.rand(1, generator=generator)) for mode in P.MODES} for metric in P.METRICS
            }
            for variant in list(P.OISE_MAPS) + list(P.RISE_VARIANTS)
        }
        records.append(P.image_record("fashion", index, 0, scores))
    settings = {
        "dataset": "fashion",
        "model": "fake",
        "budget": 10,
        "calls_per_map": {},
        "seed": 0,
        "block": 1,
        "reference": "black",
        "reference_pixel": [0.0],
        "reference_normalised": [0.0],
        "suite_pixels_per_step": 56,
        "data": {"target": "model top-1"},
        "targets_not_top1": 0,
        "oise_seeds": {str(i): i for i in indices},
        "seconds": {"maps": {"oise": 1.0}},
        "machine": {"cpu": "fake", "logical_cores": 1, "torch_threads": 1, "load_1min": 0.0},
        "versions": {},
    }
    stem = P.part_stem("fashion", indices[0], indices[-1] + 1)
    (directory / f"{stem}.json").write_text(json.dumps({"settings": settings, "records": records}))
    return records


def test_merge_pairs_images_across_parts(tmp_path):
    generator = torch.Generator().manual_seed(0)
    parts = tmp_path / "parts"
    parts.mkdir()
    records = _fake_part(parts, [3, 4], generator) + _fake_part(parts, [0, 1, 2], generator)
    json_path, md_path = P.merge(parts, tmp_path, stem="merged")
    payload = json.loads(json_path.read_text())["datasets"]["fashion"]
    assert payload["n"] == 5 and payload["indices"] == [[0, 5]]
    assert payload["per_image"]["index"] == [0, 1, 2, 3, 4]
    by_index = sorted(records, key=lambda r: r["index"])
    oise_map, rise_variant, metric = P.DEFAULT
    for mode in P.MODES:
        difference = [r["scores"][oise_map][metric][mode] - r["scores"][rise_variant][metric][mode] for r in by_index]
        assert payload["main"][0][mode]["oise_minus_rise"] == summarise(torch.tensor(difference, dtype=torch.float64))
    assert len(payload["grid"]) == len(P.OISE_MAPS) * len(P.RISE_VARIANTS) * len(P.METRICS)
    text = md_path.read_text()
    assert "default (ours): raw maps for both" in text and "Text for the card and notebook 04" in text


def test_merge_refuses_an_image_in_two_parts(tmp_path):
    generator = torch.Generator().manual_seed(0)
    _fake_part(tmp_path, [0, 1], generator)
    _fake_part(tmp_path, [1, 2], generator)
    with pytest.raises(ValueError, match="two parts"):
        P.merge(tmp_path, tmp_path / "out", stem="merged")

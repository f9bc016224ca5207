"""Golden tests: seeded outputs of the public calls, recorded before the redesign (issue 10), must not change.

``tests/golden/golden.pt`` was written once by ``python tests/test_golden.py --write`` on the code as it stood
before any module moved (commit recorded in ``golden.json``). Every later change of structure must reproduce
it (the quick suite's numbers are checked in tests/test_evaluation.py, which runs that suite once).
Tolerance: ``ATOL`` below, stated for float re-ordering only (e.g. a sum split differently); the values
have so far been bit-identical.

To refresh it after an intended change of behaviour (not of structure): re-run with ``--write`` and say why in
the commit message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

GOLDEN = Path(__file__).parent / "golden" / "golden.pt"
# Largest absolute difference accepted. 0 would demand bit-identity; 1e-6 allows a float sum in another order.
ATOL = 1e-6


class Planted(nn.Module):
    """Class 0's evidence is the mean of rows/cols 4-13 (as the planted model of conftest.py); 1 x 28 x 28."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, images):
        evidence = images[:, :, 4:14, 4:14].mean(dim=(1, 2, 3))
        return torch.stack([12.0 * evidence - 3.0, torch.zeros_like(evidence)], dim=1)


def _images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    images = 0.3 * torch.rand(3, 1, 28, 28, generator=generator)
    images[:, :, 4:14, 4:14] += 0.6
    return images.clamp(0, 1)


def compute() -> dict[str, torch.Tensor]:
    """Every recorded output, by name. Uses only the public API (update the calls, never the values)."""
    import saliency_lib as S
    from saliency_lib import baselines, metrics, models, reconstruct
    from saliency_lib.data import fashion_sample
    from saliency_lib.gan import load_discriminator, load_generator

    out: dict[str, torch.Tensor] = {}
    model, images = Planted().eval(), _images()
    for reference in ("mean", "blur", 0.5):
        key = reference if isinstance(reference, str) else "number"
        out[f"oise/ref={key}"] = S.oise(model, images, n_steps=150, seed=3, reference=reference)
        out[f"rise/ref={key}"] = S.rise(model, images, n_masks=150, seed=3, reference=reference)
    out["oise/ref=tensor"] = S.oise(model, images, n_steps=100, seed=4, reference=images.flip(-1))
    out["oise/chains=4"] = S.oise(model, images, n_steps=200, n_chains=4, seed=5)
    out["oise/weight_by_score"] = S.oise(model, images, n_steps=130, seed=6, weight_by_score=True)
    out["oise/batch_size=2,grid=5"] = S.oise(model, images, n_steps=70, seed=7, batch_size=2, grid_size=5,
                                             p_init=0.5, step_size=0.1)
    out["oise/target=1"] = S.oise(model, images, 1, n_steps=90, seed=8)
    out["rise/batch_size=50,grid=4"] = S.rise(model, images, n_masks=230, seed=9, batch_size=50, grid_size=4,
                                              p_keep=0.3)

    # Metrics on the trained Fashion CNN (the real thing), small and seeded.
    fashion = models.load("fashion-cnn")
    sample, labels = fashion_sample(n_per_class=1)
    sample, labels = sample[:4], labels[:4]
    maps = S.rise(fashion, sample, labels, n_masks=200, seed=0)
    out["fashion/rise_maps"] = maps
    for mode in ("deletion", "insertion"):
        result = getattr(metrics, mode)(fashion, sample, maps, labels, pixels_per_step=56)
        out[f"metrics/{mode}/curves"] = result.curve
        out[f"metrics/{mode}/auc"] = result.auc
    boxes = torch.tensor([[4, 4, 14, 14], [0, 0, 28, 28], [10, 2, 20, 12], [3, 5, 9, 27]])
    out["metrics/pointing"] = metrics.pointing_game(maps, boxes).float()
    out["metrics/iou"] = metrics.box_iou(maps, boxes)
    out["metrics/energy"] = metrics.energy_in_box(maps, boxes)

    for name in sorted(baselines.METHODS):
        options = {"lime": {"n_samples": 40}, "oise": {"n_steps": 100}, "rise": {"n_masks": 100},
                   "integrated_gradients": {"n_path_points": 8}}.get(name, {})
        out[f"baselines/{name}"] = baselines.attribute(name, fashion, sample[:2], labels[:2], **options).float()

    # Part B: the latent search on two images with the shipped DCGAN.
    generator, discriminator = load_generator(), load_discriminator()
    region = reconstruct.salient_region(maps[:2], 0.3)
    result = reconstruct.inpaint(generator, discriminator, sample[:2], region, n_codes=4, n_iterations=5,
                                 n_candidates=64, seed=0)
    out["inpaint/reconstructions"] = result.reconstructions
    out["inpaint/z"] = result.z
    out["inpaint/loss"] = result.loss
    return {key: value.detach().cpu().float() for key, value in out.items()}


def benchmark_numbers(payload: dict) -> dict[str, float]:
    """The quick evaluation suite's metric means (record by record), without wall times."""
    numbers = {}
    for record in payload["records"]:
        for metric, summary in record["metrics"].items():
            key = f"{record['dataset']}/{record['method']}/{metric}"
            if "budget" in record:
                key += f"/{record['budget']}"
            numbers[key] = summary["mean"]
    return numbers


def quick_benchmark_numbers(tmp: Path) -> dict[str, float]:
    """Runs the quick suite into ``tmp`` and returns :func:`benchmark_numbers` of it."""
    from saliency_lib.cli import main

    assert main(["evaluate", "--suite", "quick", "--out", str(tmp), "--no-progress"]) == 0
    return benchmark_numbers(json.loads((tmp / "evaluation_quick.json").read_text()))


def assert_benchmark_unchanged(payload: dict) -> None:
    """The quick suite's numbers equal the recorded ones (called by tests/test_evaluation.py, which runs it once)."""
    numbers = benchmark_numbers(payload)
    expected = torch.load(GOLDEN, weights_only=True)["benchmark"]
    assert set(numbers) == set(expected)
    for key, value in expected.items():
        assert abs(numbers[key] - value) <= 1e-5, f"{key}: {numbers[key]} != {value}"


@pytest.fixture(scope="module")
def golden():
    return torch.load(GOLDEN, weights_only=True)


@pytest.fixture(scope="module")
def now():
    torch.set_num_threads(1)
    return compute()


def test_every_recorded_output_is_still_computed(golden, now):
    assert set(now) == set(golden["outputs"])


@pytest.mark.parametrize("key", sorted(torch.load(GOLDEN, weights_only=True)["outputs"]) if GOLDEN.exists() else [])
def test_output_unchanged(golden, now, key):
    expected, actual = golden["outputs"][key], now[key]
    assert actual.shape == expected.shape, key
    difference = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert difference <= ATOL, f"{key}: max abs difference {difference:.3g} > {ATOL}"


if __name__ == "__main__" and "--write" in sys.argv:
    import subprocess
    import tempfile

    torch.set_num_threads(1)
    outputs = compute()
    with tempfile.TemporaryDirectory() as tmp:
        benchmark = quick_benchmark_numbers(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    torch.save({"outputs": outputs, "benchmark": benchmark}, GOLDEN)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (GOLDEN.parent / "golden.json").write_text(json.dumps(
        {"written_at_commit": commit, "torch": torch.__version__, "outputs": len(outputs),
         "benchmark_numbers": len(benchmark)}, indent=1) + "\n")
    print(f"wrote {GOLDEN}: {len(outputs)} outputs, {len(benchmark)} benchmark numbers")

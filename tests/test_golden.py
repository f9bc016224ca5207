"""Golden tests: seeded outputs of this project's own computations must not drift.

``tests/golden/golden.pt`` holds seeded outputs of OISE, RISE, the mask machinery (through them), the metrics, the
latent search (inpaint) and the quick evaluation suite's numbers for our methods (oise, rise, random). Captum's
methods are not recorded: Captum is not pinned, so its internals are not ours to freeze; tests/test_baselines.py
checks that our wrapper calls Captum the way Captum documents.

**Tolerances are measurements, not guesses.** ``python -m saliency_research.bench.kernel_spread`` recomputes every
recorded
number under each CPU kernel setting this machine can switch to (PyTorch's ``ATEN_CPU_CAPABILITY`` = default /
avx2 / avx512, oneDNN's ``ONEDNN_MAX_CPU_ISA``, 1 vs 2 threads) and writes the largest spread of each quantity
to ``benchmarks/results/kernel_spread.md``. Each tolerance in :data:`TOLERANCES` sits a stated margin above that
spread, per kind of quantity: maps relative to their own scale, probabilities and AUCs absolutely. Same seed, same
bits is a promise too, but a same-machine, same-run one: tests/test_oise.py, test_rise.py and test_properties.py
compute twice and compare with ``torch.equal``; nothing here is bit-compared with numbers from another CPU.
``tests/test_portability.py`` re-runs :func:`measure` under ``ATEN_CPU_CAPABILITY=default`` and checks it with the
same tolerances, so a tolerance that holds for one instruction set only fails here, not on a learner's laptop.

To refresh the file after an intended change of behaviour: ``python tests/test_golden.py --write``, then re-run
``python -m saliency_research.bench.kernel_spread``, and say why in the commit message.
"""

from __future__ import annotations

import fnmatch
import json
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from conftest import PlantedModel

GOLDEN = Path(__file__).parent / "golden" / "golden.pt"
OUR_METHODS = ("oise", "rise", "random")  # the quick suite's methods whose numbers we record (the rest is Captum)

# Largest spread measured across 8 kernel settings (benchmarks/results/kernel_spread.md) x a margin. Two units:
#   "scale": max |actual - expected| / max |expected| per map (a map's scale is its own largest value);
#   "abs":   max |actual - expected| (probabilities, AUCs, losses, latent codes, pixels).
# The first pattern that matches a key applies.
TOLERANCES: dict[str, tuple[str, float]] = {
    # OISE/RISE maps are sums of the same seeded masks; only the probabilities' last digits differ between kernels,
    # and they reach a map through OISE's rescaling (1 +- step_size * |dp|) or RISE's weights. Measured up to
    # 6.6e-7 of the map's scale (OISE), 3.4e-7 (RISE); 1e-4 is a x150 margin, and 50x below the 5e-3 that one
    # changed mask in 200 steps moves a cell by.
    "oise/*": ("scale", 1e-4),
    "rise/*": ("scale", 1e-4),
    "fashion/rise_maps": ("scale", 1e-4),
    "baselines/*": ("scale", 1e-4),
    # Probabilities along the deletion/insertion curves of the real Fashion CNN: measured 4.8e-7; x20 margin.
    "metrics/*/curves": ("abs", 1e-5),
    # AUCs average those curves: measured 6e-8; 1e-5 is x160 and 100x below a third-decimal change.
    "metrics/*/auc": ("abs", 1e-5),
    # The pointing game is a yes/no per image; measured 0 changes (no near-tie at the maximum). A flip would be a
    # real change here, so none is allowed.
    "metrics/pointing": ("abs", 0.0),
    # IoU thresholds the map at half its maximum: measured 0, but one pixel that sits on the threshold moves it
    # by about 1/(union of ~100 pixels) = 0.01, the resolution of the quantity.
    "metrics/iou": ("abs", 1e-2),
    "metrics/energy": ("abs", 1e-5),  # a ratio of sums of the map: measured 3e-8
    # The latent search (5 steps of the DCGAN's transposed convolutions): measured 5.7e-6 on pixels, codes and
    # the loss; x17 margin.
    "inpaint/*": ("abs", 1e-4),
    # The quick suite's per-method means are rounded to 4 decimals in the records: a 1e-8 move can cross a rounding
    # boundary, so one last-digit step (1e-4) is what was measured; 3e-4 allows that step with a margin, and a
    # real change of a metric (>= 1e-3) still fails. Pointing is a share of images (measured 0 changes).
    "quick/*/pointing": ("abs", 0.0),
    "quick/*": ("abs", 3e-4),
}


def pattern_of(key: str) -> str:
    """The first pattern of :data:`TOLERANCES` that matches a recorded key."""
    for pattern in TOLERANCES:
        if fnmatch.fnmatchcase(key, pattern):
            return pattern
    raise KeyError(
        f"no tolerance for {key!r}: add a pattern to TOLERANCES "
        "(measured with saliency_research/bench/kernel_spread.py)"
    )


def tolerance(key: str) -> tuple[str, float]:
    """The ``(kind, tolerance)`` of a recorded key."""
    return TOLERANCES[pattern_of(key)]


def difference(kind: str, actual: torch.Tensor, expected: torch.Tensor) -> float:
    """How far ``actual`` is from ``expected``, in the unit of ``kind`` (see :data:`TOLERANCES`)."""
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not actual.numel():
        return 0.0
    gap = (actual.double() - expected.double()).abs()
    if kind == "abs":
        return gap.max().item()
    if kind == "scale":
        per_map = gap.flatten(1) if gap.dim() > 1 else gap.view(1, -1)
        scale = expected.double().abs().flatten(1) if gap.dim() > 1 else expected.double().abs().view(1, -1)
        return (per_map.amax(1) / scale.amax(1).clamp_min(1e-12)).max().item()
    raise ValueError(f"kind must be 'abs' or 'scale', got {kind!r}")


def _images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    images = 0.3 * torch.rand(3, 1, 28, 28, generator=generator)
    images[:, :, 4:14, 4:14] += 0.6
    return images.clamp(0, 1)


def compute() -> dict[str, torch.Tensor]:
    """Every recorded output of our own computations, by name. Public API only (update calls, never values)."""
    import saliency_lib as S
    from saliency_lib.evaluation import baselines, metrics
    from saliency_lib.generative import reconstruct
    from saliency_lib.generative.gan import load_discriminator, load_generator
    from saliency_lib.io import models
    from saliency_lib.io.data import fashion_sample

    out: dict[str, torch.Tensor] = {}
    model, images = PlantedModel().eval(), _images()
    for reference in ("mean", "blur", 0.5):
        key = reference if isinstance(reference, str) else "number"
        out[f"oise/ref={key}"] = S.oise(model, images, n_steps=150, seed=3, reference=reference).maps
        out[f"rise/ref={key}"] = S.rise(model, images, n_masks=150, seed=3, reference=reference).maps
    out["oise/ref=tensor"] = S.oise(model, images, n_steps=100, seed=4, reference=images.flip(-1)).maps
    out["oise/chains=4"] = S.oise(model, images, n_steps=200, n_chains=4, seed=5).maps
    out["oise/weight_by_score"] = S.oise(model, images, n_steps=130, seed=6, weight_by_score=True).maps
    out["oise/batch_size=2,grid=5"] = S.oise(
        model, images, n_steps=70, seed=7, batch_size=2, grid_size=5, p_init=0.5, step_size=0.1
    ).maps
    out["oise/target=1"] = S.oise(model, images, 1, n_steps=90, seed=8).maps
    out["rise/batch_size=50,grid=4"] = S.rise(
        model, images, n_masks=230, seed=9, batch_size=50, grid_size=4, p_keep=0.3
    ).maps

    # Metrics on the trained Fashion CNN (the real thing), small and seeded.
    fashion = models.load("fashion-cnn")
    sample, labels = fashion_sample(n_per_class=1)
    sample, labels = sample[:4], labels[:4]
    maps = S.rise(fashion, sample, labels, n_masks=200, seed=0).maps
    out["fashion/rise_maps"] = maps
    for mode in ("deletion", "insertion"):
        result = getattr(metrics, mode)(fashion, sample, maps, labels, pixels_per_step=56)
        out[f"metrics/{mode}/curves"] = result.curve
        out[f"metrics/{mode}/auc"] = result.auc
    boxes = torch.tensor([[4, 4, 14, 14], [0, 0, 28, 28], [10, 2, 20, 12], [3, 5, 9, 27]])
    out["metrics/pointing"] = metrics.pointing_game(maps, boxes).float()
    out["metrics/iou"] = metrics.box_iou(maps, boxes)
    out["metrics/energy"] = metrics.energy_in_box(maps, boxes)

    # Our black-box methods through the baselines' one entry point (Captum's methods: see the module docstring).
    options = {"oise": {"n_steps": 100}, "rise": {"n_masks": 100}, "random": {}}
    for name in OUR_METHODS:
        out[f"baselines/{name}"] = baselines.attribute(name, fashion, sample[:2], labels[:2], **options[name]).maps

    # Part B: the latent search on two images with the shipped DCGAN.
    generator, discriminator = load_generator(), load_discriminator()
    region = reconstruct.salient_region(maps[:2], 0.3)
    result = reconstruct.inpaint(
        generator, discriminator, sample[:2], region, n_codes=4, n_iterations=5, n_candidates=64, seed=0
    )
    out["inpaint/reconstructions"] = result.reconstructions
    out["inpaint/z"] = result.z
    out["inpaint/loss"] = result.loss
    return {key: value.detach().cpu().float() for key, value in out.items()}


def benchmark_numbers(payload: dict) -> dict[str, float]:
    """The quick evaluation suite's metric means for :data:`OUR_METHODS`, keyed ``quick/dataset/method/metric``."""
    numbers = {}
    for record in payload["records"]:
        if record["method"] not in OUR_METHODS:
            continue
        for metric, summary in record["metrics"].items():
            key = f"quick/{record['dataset']}/{record['method']}/{metric}"
            if "budget" in record:
                key += f"/{record['budget']}"
            numbers[key] = summary["mean"]
    return numbers


def quick_benchmark_numbers(tmp: Path) -> dict[str, float]:
    """Runs the quick suite for :data:`OUR_METHODS` into ``tmp`` and returns :func:`benchmark_numbers` of it."""
    from saliency_research.cli import main

    assert main(["evaluate", "--suite", "quick", "--methods", *OUR_METHODS, "--out", str(tmp), "--no-progress"]) == 0
    return benchmark_numbers(json.loads((tmp / "evaluation_quick.json").read_text()))


def check_numbers(numbers: dict[str, float], expected: dict[str, float]) -> list[str]:
    """Every way ``numbers`` (quick suite) departs from ``expected`` beyond its tolerance, as readable lines."""
    problems = [f"{key}: recorded but not computed" for key in sorted(set(expected) - set(numbers))]
    problems += [f"{key}: computed but not recorded" for key in sorted(set(numbers) - set(expected))]
    for key in sorted(set(expected) & set(numbers)):
        _, tol = tolerance(key)
        if abs(numbers[key] - expected[key]) > tol + 1e-12:
            problems.append(f"{key}: {numbers[key]} != {expected[key]} (tolerance {tol:g})")
    return problems


def assert_benchmark_unchanged(payload: dict) -> None:
    """The quick suite's numbers (ours) equal the recorded ones within tolerance (tests/test_evaluation.py)."""
    problems = check_numbers(benchmark_numbers(payload), torch.load(GOLDEN, weights_only=True)["benchmark"])
    assert not problems, "\n".join(problems)


def check_outputs(now: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    """Every recorded output of :func:`compute` that moved beyond its tolerance, as readable lines."""
    problems = [f"{key}: recorded but not computed" for key in sorted(set(expected) - set(now))]
    for key in sorted(set(expected) & set(now)):
        kind, tol = tolerance(key)
        moved = difference(kind, now[key], expected[key])
        if moved > tol:
            problems.append(f"{key}: {kind} difference {moved:.3g} > {tol:g}")
    return problems


def measure() -> dict:
    """What tests/test_portability.py and saliency_research/bench/kernel_spread.py recompute under other kernels."""
    from test_runtime import fast_vs_pytorch

    with tempfile.TemporaryDirectory() as tmp:
        benchmark = quick_benchmark_numbers(Path(tmp))
        runtime_gaps = fast_vs_pytorch(Path(tmp) / "onnx")
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "outputs": compute(),
        "benchmark": benchmark,
        "runtime": runtime_gaps,
    }


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
    assert not check_outputs({key: now[key]}, {key: golden["outputs"][key]})


def test_every_recorded_key_has_a_measured_tolerance(golden):
    for key in [*golden["outputs"], *golden["benchmark"]]:
        kind, tol = tolerance(key)
        assert kind in ("abs", "scale") and tol >= 0, key


def test_the_check_catches_a_real_change(golden, now):
    # A tolerance that hid a behaviour change would be no test: one extra mask step, or a map nudged by 1%, fails.
    import saliency_lib as S

    moved = {"oise/ref=mean": S.oise(PlantedModel().eval(), _images(), n_steps=151, seed=3, reference="mean").maps}
    assert check_outputs(moved, {"oise/ref=mean": golden["outputs"]["oise/ref=mean"]})
    nudged = {key: now[key] * 1.01 for key in ("rise/ref=blur", "metrics/deletion/auc")}
    assert len(check_outputs(nudged, {key: golden["outputs"][key] for key in nudged})) == 2
    assert check_numbers({"quick/fashion/oise/deletion": 0.5}, {"quick/fashion/oise/deletion": 0.501})
    assert not check_numbers({"quick/fashion/oise/deletion": 0.5}, {"quick/fashion/oise/deletion": 0.5001})


if __name__ == "__main__" and "--write" in sys.argv:
    import subprocess

    torch.set_num_threads(1)
    outputs = compute()
    with tempfile.TemporaryDirectory() as tmp:
        benchmark = quick_benchmark_numbers(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    torch.save({"outputs": outputs, "benchmark": benchmark}, GOLDEN)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    info = {
        "written_at_commit": commit,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "outputs": len(outputs),
        "benchmark_numbers": len(benchmark),
    }
    (GOLDEN.parent / "golden.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {GOLDEN}: {len(outputs)} outputs, {len(benchmark)} benchmark numbers")
elif __name__ == "__main__" and "--measure" in sys.argv:
    # python tests/test_golden.py --measure OUT.pt: everything the golden, runtime and quick-suite checks compare.
    torch.save(measure(), sys.argv[sys.argv.index("--measure") + 1])

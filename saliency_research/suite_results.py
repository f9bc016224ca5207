"""What a suite run writes: its settings and machine, and its records merged into
``benchmarks/results/evaluation_<suite>.json`` and ``.md`` under a lock (parts running at the same time
share one file), with OISE's paired difference to RISE per dataset.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from contextlib import contextmanager
from pathlib import Path

import torch

from saliency_lib.evaluation.datasets import DATASETS
from saliency_research.reports import AGREEMENT_FLOOR, evaluation_markdown, summarise, write_results
from saliency_research.suites import EXPERIMENT, SCORING, SUITES, result_stem

__all__ = [
    "PAPER_NOTES",
    "machine",
    "dataset_seconds",
    "suite_settings",
    "locked",
    "reference_setting",
    "paired_vs_rise",
    "write_suite",
]


def dataset_seconds(records: list[dict]) -> dict:
    """Wall time per dataset: the sum of its records' times (explanations plus metrics)."""
    seconds: dict[str, float] = {}
    for r in records:
        seconds[r["dataset"]] = round(seconds.get(r["dataset"], 0.0) + r.get("wall_seconds", 0.0), 1)
    return seconds


def suite_settings(suite: str, seed: int, dataset_seconds: dict, reference: str | None = None) -> dict:
    """The ``settings`` of a suite's result file: seed, reference, every dataset's plan, wall times, machine."""
    return {
        "seed": seed,
        "scoring": SCORING,
        "reference": reference_setting(reference),
        "plans": [
            {
                "dataset": p.name,
                "n": p.n,
                "oise_rise_budget": p.budget,
                "pixels_per_step": p.pixels_per_step,
                "options": p.options,
                "reference": reference or p.masked_value(),
                "insertion_start": p.insertion_start,
                **({"runtime": p.runtime} if p.runtime != "torch" else {}),
            }
            for p in SUITES[suite]
        ],
        "dataset_seconds": dataset_seconds,
        "total_seconds": round(sum(dataset_seconds.values()), 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), Python "
        f"{platform.python_version()}, torch {torch.__version__}",
        "notes": [
            "OISE n_steps == RISE n_masks (equal model calls); OISE uses the paper's defaults otherwise "
            "(8x8 grid, p_init 0.3, lr 0.02, one chain, unweighted sum); RISE uses p_keep 0.5, 8x8 grid.",
            "LIME runs with a modest n_samples (see options; LIME's default is 1000) on SLIC superpixels.",
            "Reference: masked pixels take the record's `reference` in the methods that mask (OISE, "
            "RISE, Occlusion, LIME, Integrated Gradients' baseline) and in deletion alike: by default the data's own "
            "absent value (black on Fashion-MNIST and the canvases; the dataset mean on photos); "
            "`--reference mean` forces the authors' dataset mean everywhere (files `evaluation_<suite>_mean.*`). "
            "Insertion starts from a Gaussian blur (11, sigma 5) throughout.",
            f"Seed agreement: Spearman rank correlation of a seeded method's maps under seeds 0 and 1 on the first "
            f"images of each dataset (random: the control); below {AGREEMENT_FLOOR} the method's maps have not "
            "converged there and its ranking on that dataset is a draw.",
            "model_calls are forward passes per image; gradient methods add one backward pass per forward.",
            "95% CI: mean +- t(0.975, n-1) * sd / sqrt(n) over images (n = 4 photos: wide, by design honest).",
            "Photos: 4 curve steps of 12,544 pixels (RISE uses 224 px per step) and small budgets, set by "
            "EfficientNet-Lite0's cost on the shared CPU; with so few steps a scattered map (random, gradients) "
            "deletes fast - see notebook 04 on what deletion rewards.",
            "Timings are wall-clock on a shared 2-core machine under load from other jobs; parts of the suite ran "
            "concurrently (python -m saliency_research evaluate --suite full --datasets ... merges records).",
        ]
        + (PAPER_NOTES if suite == "paper" else []),
    }


PAPER_NOTES = [
    "Paper suite: OISE n_steps = RISE n_masks = 5000 (the paper's N). OISE, RISE, Occlusion, LIME, random and "
    "every deletion/insertion curve ran in ONNX Runtime on the CPU (saliency_lib.io.runtime, same logits within "
    "1e-5); Grad-CAM, Integrated Gradients and Saliency in PyTorch (gradients); the planted-evidence model in "
    "PyTorch throughout. Each record says its runtime and the machine (CPU, cores, 1-minute load) it ran on.",
    "Parts ran as separate processes (--datasets/--methods) writing into one file under a lock; wall_seconds "
    "are per record, and the load average says how busy the shared machine was.",
]


def machine() -> dict:
    """The CPU a record was measured on: model name, logical cores, torch threads and the 1-minute load average
    when the record was written (other jobs share the machine: the load says how much)."""
    name = platform.processor() or platform.machine()
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout.splitlines()
        name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), name)
    except (OSError, subprocess.SubprocessError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": name,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_1min": None if load is None else round(load, 2),
    }


@contextmanager
def locked(path: Path):
    """An exclusive lock on ``path`` (POSIX ``flock``; no lock where there is none): parts of a suite that run
    at the same time into one result file then merge their records instead of overwriting each other's."""
    try:
        import fcntl
    except ImportError:  # Windows: run the parts one after another
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reference_setting(reference: str | None) -> str:
    """What a result file says about its reference: one forced on every dataset, or each dataset's own."""
    return reference if reference is not None else "per dataset (saliency_lib.evaluation.datasets.DATASET_REFERENCES)"


def paired_vs_rise(records: list[dict], parts_dir: Path) -> None:
    """Add ``vs_rise`` to every record whose method and RISE both have per-image values in ``parts_dir`` (the
    merged files of :func:`.scoring.evaluate_sharded`): the paired per-image difference method - RISE of each metric,
    summarised (mean, 95% CI). Records without them (another rank, a legacy file) are left as they are."""

    def per_image(dataset: str, method: str) -> list[dict] | None:
        path = parts_dir / f"{EXPERIMENT}-{dataset}-{method}.json"
        return json.loads(path.read_text())["records"] if path.exists() else None

    for dataset in dict.fromkeys(r["dataset"] for r in records):
        rise = per_image(dataset, "rise")
        if rise is None:
            continue
        for record in records:
            if record["dataset"] != dataset or record["method"] == "rise":
                continue
            mine = per_image(dataset, record["method"])
            if mine is None or len(mine) != len(rise) or len(mine) != record["n"]:
                continue
            record["vs_rise"] = {
                key: summarise(torch.tensor([a[key] - b[key] for a, b in zip(mine, rise)], dtype=torch.float64))
                for key in record["metrics"]
                if all(key in a for a in mine) and all(key in b for b in rise)
            }


def write_suite(
    suite: str, out_dir: Path, records: list, seed: int, replace: tuple | None = None, reference: str | None = None
) -> None:
    """Write the result file. ``replace = (datasets, methods)`` of a restricted run: its records replace the
    file's records of those datasets x methods, read again under a lock now, so concurrent parts all survive.

    Raises:
        ValueError: the file holds results of another reference (or of before the reference was recorded):
            records of two references never merge into one file.
    """
    stem = result_stem(suite, reference)
    setting = reference_setting(reference)
    with locked(Path(out_dir) / f".{stem}.lock"):
        existing = Path(out_dir) / f"{stem}.json"
        if replace is not None and existing.exists():
            datasets, methods = replace
            previous = json.loads(existing.read_text())
            theirs = previous.get("settings", {}).get("reference")
            if theirs != setting:
                raise ValueError(
                    f"{existing} holds results made with reference {theirs or 'mean (not recorded: an older file)'}"
                    f", this run uses {setting}: records of two references must not share a file; move that file "
                    f"to {result_stem(suite, 'mean')}.json (the authors' mean) or delete it, then run again"
                )

            def selected(r):
                return (datasets is None or r["dataset"] in datasets) and (methods is None or r["method"] in methods)

            ours = [r for r in records if selected(r)]
            done = {(r["dataset"], r["method"]) for r in ours}
            others = [r for r in previous["records"] if not selected(r) and (r["dataset"], r["method"]) not in done]
            records = others + ours
        records = [dict(r) for r in records]
        paired_vs_rise(records, Path(out_dir) / f"{stem}.parts")
        partial = {r["dataset"] for r in records} != {p.name for p in SUITES[suite]}
        payload = {
            "suite": suite,
            "command": f"python -m saliency_research evaluate --suite {suite}"
            + (f" --reference {reference}" if reference is not None else ""),
            "partial": partial,
            "settings": suite_settings(suite, seed, dataset_seconds(records), reference),
            "records": records,
        }
        write_results(payload, evaluation_markdown(payload, DATASETS), stem, out_dir)

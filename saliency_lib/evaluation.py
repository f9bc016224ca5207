"""The evaluation: every method on data with ground truth, with confidence intervals and costs.

``python -m saliency_lib evaluate --suite quick|full`` runs :func:`run_suite` and writes
``benchmarks/results/evaluation_<suite>.json`` and ``.md`` (:mod:`saliency_lib.reports`). One JSON record per
(dataset, method): metric means with 95% confidence intervals (:func:`saliency_lib.reports.summarise`: Student t
on the per-image values), n, model calls and seconds per explanation. The datasets (planted evidence, cluttered
Fashion-MNIST, the Fashion-MNIST sample, the photographs with our boxes) are :mod:`saliency_lib.datasets`;
``sanity`` runs Adebayo et al.'s cascading randomisation on the sample, ``budget`` runs OISE and RISE at several
equal budgets (full suite only).

OISE and RISE get exactly the same number of model calls (``n_steps == n_masks``). Nothing here is tuned toward
any method: the budgets are set by time, and every method uses its library's defaults except where stated in the
suite (:data:`SUITES`).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import metrics as Mt
from ._checks import check_choice
from .baselines import METHODS, attribute
from .datasets import DATASETS, load_dataset
from .reports import RESULTS_DIR, evaluation_markdown, summarise, write_results

__all__ = [
    "DatasetPlan",
    "SUITES",
    "evaluate",
    "run_suite",
    "EXPERIMENT",
]

EXPERIMENT = "evaluation"  # result files are named evaluation_<suite>.json and .md
LOCALIZATION = ("pointing", "iou", "energy")
FAITHFULNESS = ("deletion", "insertion")


@dataclass
class DatasetPlan:
    """How one dataset is run within a suite.

    Attributes:
        name: one of :data:`DATASETS`.
        n: images (canvases) evaluated.
        budget: model calls per image for OISE (``n_steps``) and RISE (``n_masks``), always equal.
        pixels_per_step: pixels deleted/inserted per step of the curves.
        methods: which of :data:`saliency_lib.baselines.METHODS` run.
        options: per-method options beyond the budget (e.g. LIME's ``n_samples``).
        chunk: images explained per batch.
        curve_batch: masked images per model call in the deletion/insertion curves.
    """

    name: str
    n: int
    budget: int
    pixels_per_step: int = 28
    methods: tuple[str, ...] = tuple(METHODS)
    options: dict = field(default_factory=dict)
    chunk: int = 50
    curve_batch: int = 256


def _suite(scale: str) -> list[DatasetPlan]:
    quick = scale == "quick"
    # Budgets are set by the time the suite may take on a shared 2-core CPU (full: <= 35 min), never per method.
    common = {"lime": {"n_samples": 50 if quick else 100}, "integrated_gradients": {"n_path_points": 16},
              "rise": {"batch_size": 500}}
    plans = [
        DatasetPlan("planted", 16 if quick else 100, 300, pixels_per_step=256,
                    options={**common, "occlusion": {"window": 8, "stride": 4}}),
        DatasetPlan("clutter", 20 if quick else 500, 300, pixels_per_step=256,
                    options={**common, "occlusion": {"window": 8, "stride": 8}}),
        DatasetPlan("fashion", 20 if quick else 500, 300, pixels_per_step=56,
                    options={**common, "occlusion": {"window": 4, "stride": 4}}),
        DatasetPlan("sanity", 4 if quick else 10, 300, methods=tuple(m for m in METHODS if m != "random"),
                    options={**common, "occlusion": {"window": 4, "stride": 4}}, chunk=16),
    ]
    if not quick:
        # How OISE and RISE change with the budget (the paper runs 5000 steps): a few images, three budgets.
        plans.append(DatasetPlan("budget", 20, 3000, pixels_per_step=56, methods=("oise", "rise"),
                                 options={"rise": {"batch_size": 500}, "budgets": (300, 1000, 3000)}, chunk=20))
        # EfficientNet-Lite0 costs ~0.1-0.5 s per image on the shared CPU: small budgets, coarse curves (stated).
        photo = {"lime": {"n_samples": 30}, "integrated_gradients": {"n_path_points": 4, "batch_size": 8},
                 "occlusion": {"window": 56, "stride": 56, "batch_size": 16}, "rise": {"batch_size": 25},
                 "oise": {"batch_size": 25}}
        plans.append(DatasetPlan("photos", 4, 150, pixels_per_step=224 * 56, options=photo, chunk=4,
                                 curve_batch=20))
    return plans


SUITES = {"quick": _suite("quick"), "full": _suite("full")}


def _method_options(plan: DatasetPlan, method: str, seed: int) -> dict:
    options = dict(plan.options.get(method, {}))
    if method == "oise":
        options.setdefault("n_steps", plan.budget)
    elif method == "rise":
        options.setdefault("n_masks", plan.budget)
    if method in ("oise", "rise", "random", "lime"):
        options.setdefault("seed", seed)
    return options


def evaluate(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, method: str, options: dict, *,
             boxes: torch.Tensor | None = None, pixels_per_step: int = 28, chunk: int = 50,
             curve_batch: int = 256, progress: bool = False) -> dict:
    """Explain ``images`` with one method and score every map. Returns per-image metric tensors and costs.

    Returns:
        ``{"values": {metric: (n,) tensor}, "maps": (n, H, W), "seconds": explanation time per image,
        "model_calls": per image, "curves": {"deletion": (n, T), "insertion": (n, T)}, "fraction": (T,)}``.
    """
    values: dict[str, list] = {key: [] for key in FAITHFULNESS + (LOCALIZATION if boxes is not None else ())}
    curves: dict[str, list] = {"deletion": [], "insertion": []}
    all_maps, seconds, calls, fraction = [], 0.0, 0, None
    starts = range(0, len(images), chunk)
    for start in tqdm(starts, desc=method, disable=not progress, leave=False):
        batch, target = images[start:start + chunk], targets[start:start + chunk]
        began = time.perf_counter()
        maps = attribute(method, model, batch, target, **options)
        seconds += time.perf_counter() - began
        calls = getattr(maps, "model_calls", 0)
        maps = maps.detach().cpu()
        all_maps.append(maps)
        for mode in FAITHFULNESS:
            result = Mt.causal_curves(model, batch, maps, mode, target, pixels_per_step=pixels_per_step,
                                      batch_size=curve_batch)
            values[mode].append(result.auc.cpu())
            curves[mode].append(result.curve.cpu())
            fraction = result.fraction
        if boxes is not None:
            box = boxes[start:start + chunk]
            values["pointing"].append(Mt.pointing_game(maps, box))
            values["iou"].append(Mt.box_iou(maps, box))
            values["energy"].append(Mt.energy_in_box(maps, box))
    return {"values": {key: torch.cat(v) for key, v in values.items()}, "maps": torch.cat(all_maps),
            "seconds": seconds / len(images), "model_calls": calls,
            "curves": {key: torch.cat(v) for key, v in curves.items()}, "fraction": fraction}


def _sanity_records(plan: DatasetPlan, data: dict, seed: int, progress: bool) -> list[dict]:
    records = []
    model, images, targets = data["model"], data["images"][:plan.n], data["targets"][:plan.n]
    for method in plan.methods:
        options = _method_options(plan, method, seed)

        def explain_fn(m, x, t, _method=method, _options=options):
            return attribute(_method, m, x, t, **_options)

        began = time.perf_counter()
        result = Mt.sanity_check(explain_fn, model, images, targets, seed=seed, progress=progress)
        seconds = time.perf_counter() - began
        # The yardstick for a random method: how similar are two of its maps on the *same* model with another seed?
        # A stochastic map that is noisy decorrelates under randomisation for that reason alone (ours).
        if "seed" in options:
            again = attribute(method, model, images, targets, **{**options, "seed": options["seed"] + 1})
            same_model = Mt.spearman(result.maps[0], again.detach().float().cpu())
        else:
            same_model = torch.ones(len(images))
        records.append({
            "dataset": "sanity", "method": method, "n": len(images),
            "metrics": {"rank_corr_same_model_other_seed": summarise(same_model),
                        "rank_corr_top_layer": summarise(result.correlation[0]),
                        "rank_corr_all_layers": summarise(result.correlation[-1]),
                        "abs_rank_corr_all_layers": summarise(result.correlation_abs[-1])},
            "per_layer_mean": [round(v, 4) for v in result.correlation.mean(dim=1).tolist()],
            "layers": result.layers, "options": options,
            "seconds_per_image": round(seconds / len(images) / (len(result.layers) + 1), 4),
            "model_calls": None, "info": data["info"], "wall_seconds": round(seconds, 1),
        })
        if progress:
            rho = records[-1]["metrics"]["rank_corr_all_layers"]["mean"]
            print(f"  sanity {method:>22}: rho after all layers {rho:+.3f}", flush=True)
    return records


def run_suite(suite: str = "quick", out_dir: Path | None = None, *, datasets: list[str] | None = None,
              methods: list[str] | None = None, seed: int = 0, progress: bool = True, write: bool = True) -> dict:
    """Run a suite and (``write=True``) save ``evaluation_<suite>.json`` and ``.md`` in ``out_dir``.

    Args:
        suite: ``"quick"`` (CI, a few minutes) or ``"full"`` (the committed results).
        out_dir: where to write (default: ``benchmarks/results``).
        datasets, methods: restrict to these (default: all of the suite).
        seed: seed of every random draw (canvases, OISE, RISE, LIME, random maps).

    Returns:
        ``{"suite", "settings", "records": [...], "photo_maps": {...} (full suite)}``; the JSON holds the same
        without the maps.
    """
    check_choice("suite", suite, SUITES)
    for name in datasets or []:
        check_choice("datasets", name, DATASETS)
    for name in methods or []:
        check_choice("methods", name, METHODS)
    out_dir = Path(out_dir or RESULTS_DIR)
    plans = [p for p in SUITES[suite] if datasets is None or p.name in datasets]
    # A run restricted to some datasets (and methods) replaces just those records in an existing result file and
    # keeps the rest, so a long suite can be run (and re-run) in parts. Each record keeps its own wall time.
    records = []
    existing = out_dir / f"{EXPERIMENT}_{suite}.json"
    if (datasets is not None or methods is not None) and write and existing.exists():
        previous = json.loads(existing.read_text())
        records = [r for r in previous["records"]
                   if not ((datasets is None or r["dataset"] in datasets)
                           and (methods is None or r["method"] in methods))]
    extras = {}
    for plan in plans:
        data = load_dataset(plan.name, plan.n, seed=seed)
        chosen = [m for m in plan.methods if methods is None or m in methods]
        if progress:
            print(f"[evaluate] {suite}/{plan.name}: n={plan.n}, OISE/RISE budget {plan.budget} calls, "
                  f"methods {chosen}", flush=True)
        if plan.name == "sanity":
            records += _sanity_records(DatasetPlan(**{**plan.__dict__, "methods": tuple(chosen)}), data, seed,
                                       progress)
        elif plan.name == "budget":
            records += _budget_records(plan, data, chosen, seed, progress)
        else:
            records += _dataset_records(plan, data, chosen, seed, progress, extras)
        if write:  # after every dataset, so a long run leaves usable partial results
            _write(suite, out_dir, records, seed)
    result = {"suite": suite, "records": records, **extras}
    result["settings"] = _settings(suite, seed, _dataset_seconds(records))
    return result


def _budget_records(plan: DatasetPlan, data: dict, chosen: list[str], seed: int, progress: bool) -> list[dict]:
    """OISE and RISE at several equal budgets on the same images: faithfulness and seed-to-seed stability."""
    records = []
    images, targets = data["images"][:plan.n], data["targets"][:plan.n]
    for budget in plan.options["budgets"]:
        for method in chosen:
            key = "n_steps" if method == "oise" else "n_masks"
            options = {**plan.options.get(method, {}), key: budget, "seed": seed}
            began = time.perf_counter()
            out = evaluate(data["model"], images, targets, method, options, pixels_per_step=plan.pixels_per_step,
                           chunk=plan.chunk, curve_batch=plan.curve_batch)
            again = attribute(method, data["model"], images, targets, **{**options, "seed": seed + 1})
            stability = Mt.spearman(out["maps"], again.detach().float().cpu())
            records.append({
                "dataset": "budget", "method": f"{method}@{budget}", "n": len(images),
                "metrics": {**{k: summarise(v) for k, v in out["values"].items()},
                            "rank_corr_other_seed": summarise(stability)},
                "model_calls": out["model_calls"], "seconds_per_image": round(out["seconds"], 4),
                "options": options, "pixels_per_step": plan.pixels_per_step, "info": data["info"],
                "wall_seconds": round(time.perf_counter() - began, 1)})
            if progress:
                summary = ", ".join(f"{k} {v['mean']:.3f}" for k, v in records[-1]["metrics"].items())
                print(f"  budget {method}@{budget}: {summary}", flush=True)
    return records


def _dataset_seconds(records: list[dict]) -> dict:
    """Wall time per dataset: the sum of its records' times (explanations plus metrics)."""
    seconds: dict[str, float] = {}
    for r in records:
        seconds[r["dataset"]] = round(seconds.get(r["dataset"], 0.0) + r.get("wall_seconds", 0.0), 1)
    return seconds


def _dataset_records(plan: DatasetPlan, data: dict, chosen: list[str], seed: int, progress: bool,
                     extras: dict) -> list[dict]:
    records = []
    images, targets, boxes = data["images"][:plan.n], data["targets"][:plan.n], data["boxes"]
    for method in chosen:
        options = _method_options(plan, method, seed)
        began = time.perf_counter()
        out = evaluate(data["model"], images, targets, method, options, boxes=boxes,
                       pixels_per_step=plan.pixels_per_step, chunk=plan.chunk,
                       curve_batch=plan.curve_batch, progress=progress)
        record = {"dataset": plan.name, "method": method, "n": len(images),
                  "metrics": {key: summarise(v) for key, v in out["values"].items()},
                  "model_calls": out["model_calls"], "seconds_per_image": round(out["seconds"], 4),
                  "options": options, "pixels_per_step": plan.pixels_per_step,
                  "curve_points": int(out["curves"]["deletion"].shape[1]), "info": data["info"],
                  "wall_seconds": round(time.perf_counter() - began, 1)}
        if data["names"] is not None:
            record["per_image"] = {name: {key: round(float(v[i]), 4) for key, v in out["values"].items()}
                                   for i, name in enumerate(data["names"])}
            extras.setdefault("photo_maps", {})[method] = out["maps"]
        records.append(record)
        if progress:
            summary = ", ".join(f"{k} {v['mean']:.3f}" for k, v in record["metrics"].items())
            print(f"  {plan.name:>8} {method:>22}: {summary} | {record['seconds_per_image']:.3f} s/img", flush=True)
    return records


def _settings(suite: str, seed: int, dataset_seconds: dict) -> dict:
    return {
        "seed": seed,
        "plans": [{"dataset": p.name, "n": p.n, "oise_rise_budget": p.budget, "pixels_per_step": p.pixels_per_step,
                   "options": p.options} for p in SUITES[suite]],
        "dataset_seconds": dataset_seconds,
        "total_seconds": round(sum(dataset_seconds.values()), 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), Python "
                   f"{platform.python_version()}, torch {torch.__version__}",
        "notes": [
            "OISE n_steps == RISE n_masks (equal model calls); OISE uses the paper's defaults otherwise "
            "(8x8 grid, p_init 0.3, lr 0.02, one chain, unweighted sum); RISE uses p_keep 0.5, 8x8 grid.",
            "LIME runs with a modest n_samples (see options; LIME's default is 1000) on SLIC superpixels.",
            "Deletion replaces pixels by the dataset mean; insertion starts from a Gaussian blur (11, sigma 5).",
            "model_calls are forward passes per image; gradient methods add one backward pass per forward.",
            "95% CI: mean +- t(0.975, n-1) * sd / sqrt(n) over images (n = 4 photos: wide, by design honest).",
            "Photos: 4 curve steps of 12,544 pixels (RISE uses 224 px per step) and small budgets, set by "
            "EfficientNet-Lite0's cost on the shared CPU; with so few steps a scattered map (random, gradients) "
            "deletes fast - see notebook 04 on what deletion rewards.",
            "Timings are wall-clock on a shared 2-core machine under load from other jobs; parts of the suite ran "
            "concurrently (python -m saliency_lib evaluate --suite full --datasets ... merges records).",
        ],
    }


def _write(suite: str, out_dir: Path, records: list, seed: int) -> None:
    partial = {r["dataset"] for r in records} != {p.name for p in SUITES[suite]}
    payload = {"suite": suite, "command": f"python -m saliency_lib evaluate --suite {suite}", "partial": partial,
               "settings": _settings(suite, seed, _dataset_seconds(records)), "records": records}
    write_results(payload, evaluation_markdown(payload, DATASETS), f"{EXPERIMENT}_{suite}", out_dir)

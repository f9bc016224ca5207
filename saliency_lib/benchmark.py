"""The evaluation benchmark: every method on data with ground truth, with confidence intervals and costs.

``python -m saliency_lib benchmark --suite quick|full`` runs :func:`run_suite` and writes
``benchmarks/results/benchmark_<suite>.json`` and ``.md``. One JSON record per (dataset, method): metric means
with 95% confidence intervals (Student t on the per-image values), n, model calls and seconds per explanation.

Datasets (all ship with the repository, or are made from what ships):

=============  ===================================  =======================================================
name           model                                images and ground truth
=============  ===================================  =======================================================
``planted``    :class:`PlantedEvidence` (fixed      cluttered canvases with an 8 x 8 checkerboard pasted at
               weights: "is there a checkerboard?") a random place; the box is the checkerboard (the only
                                                    evidence the model can use, by construction)
``clutter``    ``data/clutter_cnn.pt``              cluttered 64 x 64 canvases made from the shipped test
                                                    sample (the classifier trained on the training set)
``fashion``    ``data/fashion_cnn.pt``              the shipped 28 x 28 test sample (no boxes)
``photos``     EfficientNet-Lite0                   the four ``skimage`` photographs with our boxes
                                                    (``data/photo_boxes.json``)
``sanity``     ``data/fashion_cnn.pt``              Adebayo et al.'s cascading randomisation on the sample
=============  ===================================  =======================================================

Targets: the true class on ``planted`` and ``clutter`` (the box belongs to it); the model's top-1 on
``fashion`` and ``photos`` (RISE's convention, and the class the photo boxes were drawn for). OISE and RISE get
exactly the same number of model calls (``n_steps == n_masks``). Nothing here is tuned toward any method: the
budgets are set by time, and every method uses its library's defaults except where stated in the suite.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import metrics as Mt
from .assets import Asset, checked_path, register
from .baselines import METHODS, explain

__all__ = [
    "PHOTO_BOXES",
    "PHOTO_BOXES_FILE",
    "photo_boxes",
    "PlantedEvidence",
    "planted_model",
    "planted_canvases",
    "DatasetPlan",
    "SUITES",
    "DATASETS",
    "load_dataset",
    "evaluate",
    "summarise",
    "run_suite",
    "markdown_table",
    "load_results",
    "records_table",
    "RESULTS_DIR",
]

RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"

# ---- photographs: our boxes ------------------------------------------------------------------------------------

PHOTO_BOXES_FILE = "photo_boxes.json"
# Drawn by us (by eye, on a 16-px grid over the 224 x 224 centre crop of saliency_lib.data.photographs) around the
# object of EfficientNet-Lite0's top-1 class. (x0, y0, x1, y1), end-exclusive pixels.
PHOTO_BOXES = {
    "cat": {"box": [16, 32, 224, 224], "top1": "Egyptian cat",
            "drawn_around": "the cat's head (it fills the frame, so the box covers most of the image)"},
    "coffee": {"box": [40, 0, 186, 126], "top1": "espresso",
               "drawn_around": "the cup with the coffee (saucer and spoon left out)"},
    "rocket": {"box": [96, 56, 128, 224], "top1": "missile",
               "drawn_around": "the rocket on its launch pad (towers left out)"},
    "astronaut": {"box": [8, 0, 200, 224], "top1": "bobsled",
                  "drawn_around": "the astronaut in her suit: the top-1 class (bobsled) is not in the picture, "
                                  "so this box marks the main object, not the class; read its scores with care"},
}


def _build_photo_boxes(path: Path, seed: int, progress: bool) -> dict:
    payload = {
        "how": "Boxes drawn by eye in code (saliency_lib.benchmark.PHOTO_BOXES) on a 16-px grid over the 224x224 "
               "centre crops of saliency_lib.data.photographs(), around the object of EfficientNet-Lite0's top-1 "
               "class; format (x0, y0, x1, y1), end-exclusive pixels.",
        "image_size": 224,
        "model": "efficientnet-lite0",
        "photos": PHOTO_BOXES,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return {"photos": len(PHOTO_BOXES)}


register(Asset(
    PHOTO_BOXES_FILE, _build_photo_boxes, licence="MIT (ours); the photographs are scikit-image's (public domain)",
    origin="boxes drawn by us in saliency_lib.benchmark.PHOTO_BOXES around the object of the top-1 class",
))


def photo_boxes() -> tuple[list[str], torch.Tensor, dict]:
    """Names, boxes int64 ``(4, 4)`` and the full record of ``data/photo_boxes.json`` (hash-checked)."""
    payload = json.loads(checked_path(PHOTO_BOXES_FILE).read_text())
    names = list(payload["photos"])
    boxes = torch.tensor([payload["photos"][name]["box"] for name in names], dtype=torch.long)
    return names, boxes, payload


# ---- planted evidence ------------------------------------------------------------------------------------------

PLANT_SIZE = 8


def checkerboard(size: int = PLANT_SIZE) -> torch.Tensor:
    """A ``(size, size)`` one-pixel checkerboard of 0 and 1."""
    index = torch.arange(size)
    return ((index.view(-1, 1) + index.view(1, -1)) % 2).float()


class PlantedEvidence(nn.Module):
    """A model whose only evidence is known: "is there an 8 x 8 checkerboard anywhere?" (ours).

    One fixed convolution matches the checkerboard (+1 on its bright pixels, -1 on its dark ones, scaled so a
    perfect match scores 1 and any flat patch scores 0), followed by a ReLU and a global max. Logits:
    ``(0, gain * (score - 0.5))`` for ("no checkerboard", "checkerboard"). A faithful map must point at the
    checkerboard, since nothing else can move the output.
    """

    def __init__(self, gain: float = 12.0):
        super().__init__()
        pattern = checkerboard()
        kernel = (2 * pattern - 1) / pattern.sum()
        self.detector = nn.Conv2d(1, 1, PLANT_SIZE, bias=False)
        self.detector.weight.data.copy_(kernel.view(1, 1, PLANT_SIZE, PLANT_SIZE))
        self.relu = nn.ReLU()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        response = self.relu(self.detector(x))                      # (B, 1, H-7, W-7)
        score = F.adaptive_max_pool2d(response, 1).flatten(1)        # (B, 1)
        return torch.cat([torch.zeros_like(score), self.gain * (score - 0.5)], dim=1)


def planted_model():
    """:class:`PlantedEvidence` as a ``Classifier`` (``(B, 1, H, W)`` in [0, 1]; reference = black)."""
    from .models import Classifier, InputSpec

    net = PlantedEvidence()
    spec = InputSpec(channels=1, size=(64, 64), mean=(0.0,), std=(1.0,))
    model = Classifier("planted-evidence", net, spec, ("no checkerboard", "checkerboard"), gradcam_layer=net.relu)
    return model.eval().requires_grad_(False)


def planted_canvases(items: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0):
    """Cluttered canvases (:func:`saliency_lib.clutter.make_canvases`) with a checkerboard pasted over a random
    place. Returns :class:`~saliency_lib.clutter.Canvases` whose labels are all 1 and boxes are the checkerboards.
    """
    from .clutter import Canvases, make_canvases

    base = make_canvases(items, labels, n, seed=seed)
    size = base.images.shape[-1]
    generator = torch.Generator().manual_seed(int(seed) + 1)
    top = torch.randint(0, size - PLANT_SIZE + 1, (n,), generator=generator)
    left = torch.randint(0, size - PLANT_SIZE + 1, (n,), generator=generator)
    rows = top.view(-1, 1) + torch.arange(PLANT_SIZE)
    cols = left.view(-1, 1) + torch.arange(PLANT_SIZE)
    images = base.images.clone()
    index = torch.arange(n).view(-1, 1, 1)
    images[index, 0, rows[:, :, None], cols[:, None, :]] = checkerboard().expand(n, -1, -1)
    boxes = torch.stack([left, top, left + PLANT_SIZE, top + PLANT_SIZE], dim=1)
    return Canvases(images, torch.ones(n, dtype=torch.long), boxes, base.source)


# ---- datasets and suites ---------------------------------------------------------------------------------------

DATASETS = ("planted", "clutter", "fashion", "photos", "sanity", "budget")
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
    common = {"lime": {"n_samples": 50 if quick else 100}, "integrated_gradients": {"n_steps": 16},
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
        photo = {"lime": {"n_samples": 30}, "integrated_gradients": {"n_steps": 4, "batch_size": 8},
                 "occlusion": {"window": 56, "stride": 56, "batch_size": 16}, "rise": {"batch_size": 25},
                 "oise": {"batch_size": 25}}
        plans.append(DatasetPlan("photos", 4, 150, pixels_per_step=224 * 56, options=photo, chunk=4,
                                 curve_batch=20))
    return plans


SUITES = {"quick": _suite("quick"), "full": _suite("full")}


def load_dataset(name: str, n: int, seed: int = 0) -> dict:
    """Model, images, targets and (when there are) boxes of one benchmark dataset.

    Returns a dict with ``model``, ``images`` ``(n, C, H, W)``, ``targets`` ``(n,)``, ``boxes`` ``(n, 4)`` or
    ``None``, ``names`` (photos) and ``info`` (what the JSON records about the data).
    """
    from .data import fashion_sample

    if name in ("fashion", "sanity", "budget"):
        from .models import load

        model = load("fashion-cnn")
        per_class = max(1, math.ceil(n / 10))
        images, labels = fashion_sample(n_per_class=per_class)
        # Class-balanced: interleave the classes so any prefix of n images is balanced too.
        rank = torch.empty_like(labels)
        for c in range(10):
            idx = torch.nonzero(labels == c).flatten()
            rank[idx] = torch.arange(len(idx)) * 10 + c
        keep = torch.argsort(rank)[:n]
        images, labels = images[keep], labels[keep]
        with torch.no_grad():
            targets = model(images).argmax(1)
        info = {"images": "shipped Fashion-MNIST test sample, class-balanced", "target": "model top-1",
                "model_accuracy_on_these": round((targets == labels).float().mean().item(), 4)}
        return {"model": model, "images": images, "targets": targets, "boxes": None, "names": None, "info": info}
    if name in ("clutter", "planted"):
        items, labels = fashion_sample()
        if name == "clutter":
            from .clutter import load_classifier, make_canvases

            model = load_classifier()
            data = make_canvases(items, labels, n, seed=seed + 11)
            with torch.no_grad():
                accuracy = (model(data.images).argmax(1) == data.labels).float().mean().item()
            info = {"images": "64x64 canvases from the shipped test sample (make_canvases, seed "
                              f"{seed + 11})", "target": "true class",
                    "model_accuracy_on_these": round(accuracy, 4)}
        else:
            model = planted_model()
            data = planted_canvases(items, labels, n, seed=seed + 23)
            with torch.no_grad():
                detected = (model(data.images).argmax(1) == 1).float().mean().item()
            info = {"images": "64x64 canvases with an 8x8 checkerboard planted (seed "
                              f"{seed + 23})", "target": "class 'checkerboard'",
                    "model_accuracy_on_these": round(detected, 4)}
        return {"model": model, "images": data.images, "targets": data.labels, "boxes": data.boxes,
                "names": None, "info": info}
    if name == "photos":
        from .data import photographs
        from .models import load

        # channels_last: same numbers, about 1.7x faster for the depthwise convolutions on a CPU.
        model = load("efficientnet-lite0").to(memory_format=torch.channels_last)
        names, boxes, payload = photo_boxes()
        images, _ = photographs(names)
        images, boxes, names = images[:n], boxes[:n], names[:n]
        with torch.no_grad():
            targets = model(images).argmax(1)
        info = {"images": f"skimage photographs {names}", "target": "model top-1",
                "top1": [model.class_names[t] for t in targets.tolist()], "boxes": PHOTO_BOXES_FILE}
        return {"model": model, "images": images, "targets": targets, "boxes": boxes, "names": names, "info": info}
    raise ValueError(f"name: unknown dataset {name!r}; choose from {list(DATASETS)}")


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
        maps = explain(method, model, batch, target, **options)
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


# Two-sided 95% Student t quantiles for 1..30 degrees of freedom; 1.96 beyond.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def summarise(values: torch.Tensor) -> dict:
    """Mean, standard deviation and 95% confidence interval (mean +- t * sd / sqrt(n)) of per-image values."""
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = values.numel()
    if n == 0:
        raise ValueError("values is empty")
    mean = values.mean().item()
    std = values.std().item() if n > 1 else 0.0
    t = _T975[n - 2] if 2 <= n <= 31 else 1.96
    half = t * std / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": round(mean, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)], "std": round(std, 4),
            "n": n}


def _sanity_records(plan: DatasetPlan, data: dict, seed: int, progress: bool) -> list[dict]:
    records = []
    model, images, targets = data["model"], data["images"][:plan.n], data["targets"][:plan.n]
    for method in plan.methods:
        options = _method_options(plan, method, seed)

        def explain_fn(m, x, t, _method=method, _options=options):
            return explain(_method, m, x, t, **_options)

        began = time.perf_counter()
        result = Mt.sanity_check(explain_fn, model, images, targets, seed=seed, progress=progress)
        seconds = time.perf_counter() - began
        # The yardstick for a random method: how similar are two of its maps on the *same* model with another seed?
        # A stochastic map that is noisy decorrelates under randomisation for that reason alone (ours).
        if "seed" in options:
            again = explain(method, model, images, targets, **{**options, "seed": options["seed"] + 1})
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
            print(f"  sanity {method:>22}: rho after all layers {records[-1]['metrics']['rank_corr_all_layers']['mean']:+.3f}",
                  flush=True)
    return records


def run_suite(suite: str = "quick", out_dir: Path | None = None, *, datasets: list[str] | None = None,
              methods: list[str] | None = None, seed: int = 0, progress: bool = True, write: bool = True) -> dict:
    """Run a suite and (``write=True``) save ``benchmark_<suite>.json`` and ``.md`` in ``out_dir``.

    Args:
        suite: ``"quick"`` (CI, a few minutes) or ``"full"`` (the committed results).
        out_dir: where to write (default: ``benchmarks/results``).
        datasets, methods: restrict to these (default: all of the suite).
        seed: seed of every random draw (canvases, OISE, RISE, LIME, random maps).

    Returns:
        ``{"suite", "settings", "records": [...], "photo_maps": {...} (full suite)}``; the JSON holds the same
        without the maps.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {sorted(SUITES)}, got {suite!r}")
    unknown = [m for m in (methods or []) if m not in METHODS]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; choose from {sorted(METHODS)}")
    out_dir = Path(out_dir or RESULTS_DIR)
    plans = [p for p in SUITES[suite] if datasets is None or p.name in datasets]
    # A run restricted to some datasets (and methods) replaces just those records in an existing result file and
    # keeps the rest, so a long suite can be run (and re-run) in parts. Each record keeps its own wall time.
    records = []
    existing = out_dir / f"benchmark_{suite}.json"
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
            print(f"[benchmark] {suite}/{plan.name}: n={plan.n}, OISE/RISE budget {plan.budget} calls, "
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
            again = explain(method, data["model"], images, targets, **{**options, "seed": seed + 1})
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
            "concurrently (python -m saliency_lib benchmark --suite full --datasets ... merges records).",
        ],
    }


def _write(suite: str, out_dir: Path, records: list, seed: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = {r["dataset"] for r in records} != {p.name for p in SUITES[suite]}
    payload = {"suite": suite, "command": f"python -m saliency_lib benchmark --suite {suite}", "partial": partial,
               "settings": _settings(suite, seed, _dataset_seconds(records)), "records": records}
    (out_dir / f"benchmark_{suite}.json").write_text(json.dumps(payload, indent=1) + "\n")
    (out_dir / f"benchmark_{suite}.md").write_text(markdown_table(payload) + "\n")


_LABELS = {"rank_corr_same_model_other_seed": "rank corr., same model, other seed (yardstick)",
           "deletion": "deletion AUC (lower better)", "insertion": "insertion AUC (higher better)",
           "pointing": "pointing game", "iou": "IoU with box", "energy": "energy in box",
           "rank_corr_other_seed": "rank corr. with another seed (stability)",
           "rank_corr_top_layer": "rank corr., top layer randomised (lower better)",
           "rank_corr_all_layers": "rank corr., all layers randomised (lower better)",
           "abs_rank_corr_all_layers": "rank corr. of abs(map), all layers (lower better)"}


def markdown_table(payload: dict) -> str:
    """One markdown table per dataset: rows = methods, columns = metrics (mean [95% CI]), calls, seconds."""
    records = sorted(payload["records"], key=lambda r: DATASETS.index(r["dataset"]))
    lines = [f"# Benchmark results: suite `{payload['suite']}` (ours, measured by this repository)", "",
             f"Command: `{payload.get('command', 'python -m saliency_lib benchmark')}`"
             f"{' (partial: not every dataset of the suite has run yet)' if payload.get('partial') else ''}. "
             f"Total {payload['settings']['total_seconds']} s (per dataset: "
             f"{payload['settings'].get('dataset_seconds')}) on {payload['settings']['machine']}.", ""]
    for dataset in DATASETS:
        rows = [r for r in records if r["dataset"] == dataset]
        if not rows:
            continue
        keys = list(rows[0]["metrics"])
        plan = next((p for p in payload["settings"]["plans"] if p["dataset"] == dataset), {})
        budgets = (plan.get("options") or {}).get("budgets")
        budget_text = (f"budgets {', '.join(map(str, budgets))} (in the method names)" if budgets
                       else f"{plan.get('oise_rise_budget')} model calls per image")
        lines += [f"## {dataset} (n = {rows[0]['n']}; OISE = RISE budget: {budget_text})", ""]
        if rows[0].get("info"):
            lines += ["Data: " + "; ".join(f"{k}: {v}" for k, v in rows[0]["info"].items()), ""]
        lines.append("| method | " + " | ".join(_LABELS.get(k, k) for k in keys) + " | model calls | s / image |")
        lines.append("|---" * (len(keys) + 3) + "|")
        for r in rows:
            cells = [f"{r['metrics'][k]['mean']:.3f} [{r['metrics'][k]['ci95'][0]:.3f}, "
                     f"{r['metrics'][k]['ci95'][1]:.3f}]" for k in keys]
            calls = "-" if r.get("model_calls") is None else str(r["model_calls"])
            lines.append(f"| {r['method']} | " + " | ".join(cells) + f" | {calls} | {r['seconds_per_image']:.3f} |")
        lines.append("")
        if dataset == "photos":
            lines += ["Per image (deletion / insertion / IoU):", "",
                      "| method | " + " | ".join(rows[0]["per_image"]) + " |",
                      "|---" * (len(rows[0]["per_image"]) + 1) + "|"]
            for r in rows:
                cells = [f"{v['deletion']:.3f} / {v['insertion']:.3f} / {v['iou']:.2f}" for v in r["per_image"].values()]
                lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["Notes:", ""] + [f"- {note}" for note in payload["settings"]["notes"]]
    return "\n".join(lines)


def load_results(suite: str = "full", results_dir: Path | None = None) -> dict:
    """The committed results ``benchmark_<suite>.json`` as a dict (``records``, ``settings``...)."""
    path = Path(results_dir or RESULTS_DIR) / f"benchmark_{suite}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run `python -m saliency_lib benchmark --suite {suite}`")
    return json.loads(path.read_text())


def records_table(payload: dict, dataset: str, metrics: tuple[str, ...] | None = None) -> list[dict]:
    """Flat rows ``{"method", metric: mean, ...}`` of one dataset (for notebooks)."""
    rows = []
    for r in payload["records"]:
        if r["dataset"] != dataset:
            continue
        keys = metrics or tuple(r["metrics"])
        rows.append({"method": r["method"], **{k: r["metrics"][k]["mean"] for k in keys if k in r["metrics"]},
                     "model_calls": r.get("model_calls"), "s/image": r["seconds_per_image"]})
    return rows


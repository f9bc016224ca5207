"""Would the authors' and RISE's own protocol choices change the verdict OISE vs RISE? (ours)

OISE and RISE explain the same images at the same budget (5,000 model calls per image), and every map is scored by
deletion and insertion AUC under each of the choices where our protocol and theirs differ or the paper is silent:

* which OISE map is scored (:data:`OISE_MAPS`): the raw sum ``S`` (scaled to max 1), ``max(S - 0.96 mean(S), 0)``
  (the authors' ``explainer.py``) or ``max(S - mean(S), 0)`` (their notebook, ``method.md``, the package), each
  scaled to max 1. One OISE run gives all three: the raw sum is read at the last step by a ``callback``
  (:class:`LastSum`), and the three maps are :func:`saliency_lib.method.masks.postprocess` with ``mean_fraction`` 0,
  0.96, 1;
* RISE's mask density and grid (:data:`RISE_VARIANTS`): p1 = 0.5, s = 8 (RISE's easy-start notebook, which the
  authors copied, and the package's default), p1 = 0.1 with s = 8 or 10 (RISE's saliency and evaluation notebooks);
* the metric (:data:`METRICS`): the package's :func:`saliency_lib.evaluation.metrics.deletion` / ``insertion`` at their
  defaults (one image row per step, insertion from :func:`saliency_lib.method.masks.blur`: torchvision's Gaussian blur,
  kernel 11, sigma 5, reflect padding; tied pixels in a seeded random order), RISE's ``evaluation.py``
  (:func:`rise_causal`: ``gkern(11, 5)`` blur with zero padding, one image row per step, pixels ordered by
  ``np.flip(np.argsort(map))``, so ties go in whatever order numpy's unstable sort leaves them), and the package's
  metric at the paper suite's step (``pixels_per_step`` 56 on Fashion-MNIST, 256 on the canvases: what the card's
  verdict uses).

Every difference is paired over images: OISE minus RISE, mean and 95% Student t interval
(:func:`saliency_research.reports.summarise`). The masked-pixel value is black (pixel 0, ``reference="black"``) for both
methods and for deletion's substrate, RISE's zero padding is padding with that same black, and the targets are the
evaluation's (Fashion-MNIST: the model's top-1; canvases: the true class) in every variant.

Runs in parts (one process each, any order; a part is a range of image indices aligned to ``--block``)::

    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    .venv/bin/python -m saliency_research.bench.protocol_choices run --dataset fashion --images 0:50
    .venv/bin/python -m saliency_research.bench.protocol_choices run --dataset clutter --images 0:50
    .venv/bin/python -m saliency_research.bench.protocol_choices merge

Each part writes its per-image scores (``.json``) and its maps (``.pt``) to
``benchmarks/results/protocol_choices.parts/``;
``run ... --rescore`` scores the saved maps again without recomputing them. ``merge`` writes
``benchmarks/results/protocol_choices.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]

from saliency_lib.evaluation import datasets  # noqa: E402
from saliency_lib.evaluation import metrics as Mt  # noqa: E402
from saliency_lib.io import models  # noqa: E402
from saliency_lib.method import core  # noqa: E402
from saliency_lib.method import masks as M  # noqa: E402
from saliency_lib.method.oise_method import OISEStep, oise  # noqa: E402
from saliency_lib.method.rise_method import rise  # noqa: E402
from saliency_research import suite_results, suites  # noqa: E402
from saliency_research.bench.authors_reference import gkern  # noqa: E402  (RISE's evaluation.py kernel, transcribed by authors_reference)
from saliency_research.distributed import block_seed  # noqa: E402
from saliency_research.reports import LOWER_IS_BETTER, RESULTS_DIR, paired_verdict, summarise, write_results  # noqa: E402

STEM = "protocol_choices"
PARTS_DIR = RESULTS_DIR / f"{STEM}.parts"
MODELS = {"fashion": "fashion-cnn", "clutter": "clutter-cnn"}
BUDGET = 5000
# OISE map -> the share of the mean subtracted before clipping at 0 and scaling to max 1 (0: the raw sum, scaled).
OISE_MAPS = {"oise_raw": 0.0, "oise_mean0.96": 0.96, "oise_mean1.0": 1.0}
OISE_LABELS = {
    "oise_raw": "raw sum S (ours: the evaluation's protocol, as RISE's raw map)",
    "oise_mean0.96": "S - 0.96 mean (explainer.py)",
    "oise_mean1.0": "S - 1.0 mean (the paper's map, method.md)",
}
# RISE variant -> (p1 = p_keep, grid s).
RISE_VARIANTS = {"rise_p0.5_s8": (0.5, 8), "rise_p0.1_s8": (0.1, 8), "rise_p0.1_s10": (0.1, 10)}
RISE_LABELS = {
    "rise_p0.5_s8": "p1 0.5, s 8 (ours; easy-start notebook)",
    "rise_p0.1_s8": "p1 0.1, s 8 (RISE's notebooks)",
    "rise_p0.1_s10": "p1 0.1, s 10 (RISE's notebooks)",
}
METRICS = ("ours", "rise", "suite")
METRIC_LABELS = {
    "ours": "ours (package defaults: 1 row/step, reflect blur, ties in a seeded random order)",
    "rise": "RISE's evaluation.py (1 row/step, gkern zero-padded blur, np.argsort ties)",
    "suite": "ours at the paper suite's step (56 / 256 px)",
}
MODES = ("deletion", "insertion")
# Ours: both methods' raw maps (the evaluation's protocol, saliency_research.suites.SCORING).
DEFAULT = ("oise_raw", "rise_p0.5_s8", "ours")
# The rows of the main table: the default pair, one choice changed at a time, then the choices together. The
# post-processing rows change OISE's map alone (RISE's stays raw, as RISE publishes it).
ROWS = (
    ("default (ours): raw maps for both", DEFAULT),
    ("post-processing: OISE S - 0.96 mean, clip (explainer.py)", ("oise_mean0.96", "rise_p0.5_s8", "ours")),
    ("post-processing: OISE S - mean, clip (the paper's)", ("oise_mean1.0", "rise_p0.5_s8", "ours")),
    ("RISE: p1 0.1, s 8", ("oise_raw", "rise_p0.1_s8", "ours")),
    ("RISE: p1 0.1, s 10", ("oise_raw", "rise_p0.1_s10", "ours")),
    ("metric: RISE's evaluation.py", ("oise_raw", "rise_p0.5_s8", "rise")),
    ("metric: ours at the suite's step", ("oise_raw", "rise_p0.5_s8", "suite")),
    ("together: authors' code (S - 0.96 mean, RISE 0.5/8, RISE's metric)", ("oise_mean0.96", "rise_p0.5_s8", "rise")),
    ("together: RISE's own (S - 0.96 mean, RISE 0.1/8, RISE's metric)", ("oise_mean0.96", "rise_p0.1_s8", "rise")),
    ("together: raw sum, RISE 0.1/10, RISE's metric", ("oise_raw", "rise_p0.1_s10", "rise")),
)


# ---- the pieces --------------------------------------------------------------------------------------------------


class LastSum:
    """An ``oise`` callback keeping a copy of the running sum ``S`` ``(B, H, W)`` after the last step (``total``)."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None

    def __call__(self, state: OISEStep) -> None:
        if state.step == state.n_steps:
            with torch.inference_mode(False):  # an ordinary tensor, usable after the loop
                self.total = state.saliency_sum.detach().cpu().clone()


def oise_map_variants(raw_sum: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three OISE maps of one raw sum ``(B, H, W)``: ``{name: (B, H, W)}`` in [0, 1] (:data:`OISE_MAPS`)."""
    return {name: M.postprocess(raw_sum, mean_fraction=fraction) for name, fraction in OISE_MAPS.items()}


def reference_value(reference, model, images: torch.Tensor) -> float:
    """The masked-pixel value as one pixel value (the RISE-style metric pads and fills with a number)."""
    resolved = core.resolve_reference(reference, model, images)
    values = torch.as_tensor(resolved).flatten()
    if values.numel() < 1 or not bool((values == values[0]).all()):
        raise ValueError(f"reference {reference!r} is not one value for every channel: {values.tolist()}")
    return float(values[0])


def rise_order(maps: torch.Tensor) -> np.ndarray:
    """Pixels by decreasing saliency as RISE's ``evaluation.py`` orders them: ``np.flip(np.argsort(map))``.

    ``maps`` ``(B, H, W)`` -> int64 ``(B, H*W)``. Ties come out in the reverse of the order numpy's default sort
    leaves them in; that sort is not stable (numpy 2.4: not even for 6 values), so it is not the pixel order.
    """
    flat = maps.detach().cpu().reshape(maps.shape[0], -1).numpy().astype(np.float32)
    return np.ascontiguousarray(np.flip(np.argsort(flat, axis=1), axis=-1))


def rise_blur(images: torch.Tensor, fill: float = 0.0, klen: int = 11, ksig: float = 5.0) -> torch.Tensor:
    """RISE's insertion start: ``conv2d(x, gkern(klen, ksig), padding=klen // 2)``, padded with ``fill``.

    ``images`` ``(B, C, H, W)`` -> ``(B, C, H, W)``. RISE pads with 0 of its normalised space (the ImageNet mean);
    here the padding is the run's reference, black (pixel 0), the data's own zero.
    """
    kernel = gkern(klen, ksig, images.shape[1]).to(images.device, images.dtype)
    pad = klen // 2
    return F.conv2d(F.pad(images, (pad, pad, pad, pad), value=fill), kernel)


def rise_causal(
    model,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    mode: str,
    *,
    fill: float = 0.0,
    step: int | None = None,
    images_per_call: int = 16,
) -> Mt.CurveResult:
    """RISE's ``CausalMetric`` (``evaluation.py``) for a batch: deletion or insertion curves and AUC.

    Deletion replaces pixels by ``fill``; insertion puts them back into :func:`rise_blur` (padded with ``fill``).
    ``step`` pixels change per point (default: one image row, ``W``; RISE: 224 at 224 x 224), ``ceil(HW / step) + 1``
    points, pixels in :func:`rise_order`, AUC by RISE's ``auc`` (the same formula as
    :func:`saliency_lib.evaluation.metrics.auc`).

    Args:
        images: ``(B, C, H, W)`` in the model's pixel space; maps ``(B, H, W)``; targets int64 ``(B,)``.
        images_per_call: images whose whole curves go into one model call.

    Returns:
        :class:`saliency_lib.evaluation.metrics.CurveResult` (``auc`` ``(B,)``, ``curve`` ``(B, T)``).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    batch, channels, height, width = images.shape
    n_pixels = height * width
    step = width if step is None else step
    n_points = math.ceil(n_pixels / step) + 1
    order = torch.from_numpy(rise_order(maps)).to(images.device)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n_pixels, device=images.device).expand_as(order))
    changed = torch.clamp(torch.arange(n_points, device=images.device) * step, max=n_pixels)  # (T,)
    if mode == "deletion":
        start, finish = images, torch.full_like(images, fill)
    else:
        start, finish = rise_blur(images, fill), images
    curve = torch.empty(batch, n_points)
    for first in range(0, batch, images_per_call):
        rows = slice(first, min(first + images_per_call, batch))
        hit = (ranks[rows, None, :] < changed.view(1, -1, 1)).view(-1, 1, height, width)  # (b*T, 1, H, W)
        mixed = torch.where(
            hit,
            finish[rows].repeat_interleave(n_points, dim=0),
            start[rows].repeat_interleave(n_points, dim=0),
        )
        probs = core.class_probabilities(model, mixed)
        chosen = targets[rows].repeat_interleave(n_points).view(-1, 1).to(probs.device)
        curve[rows] = probs.gather(1, chosen).view(-1, n_points).cpu()
    return Mt.CurveResult(Mt.auc(curve), curve, changed.float().cpu() / n_pixels, targets, n_points)


def explain_block(model, images: torch.Tensor, targets: torch.Tensor, *, budget: int, seed: int, reference) -> dict:
    """Every map of one block of images: one OISE run (three maps) and one RISE run per variant.

    Returns ``{"maps": {variant: (B, H, W)}, "oise_sum": (B, H, W), "seconds": {method: s}, "calls": {...}}``.
    """
    out: dict = {"maps": {}, "seconds": {}, "calls": {}}
    keeper = LastSum()
    began = time.perf_counter()
    final = oise(model, images, targets, n_steps=budget, seed=seed, reference=reference, callback=keeper)
    out["seconds"]["oise"] = time.perf_counter() - began
    out["calls"]["oise"] = final.model_calls
    if keeper.total is None or final.partial:
        raise RuntimeError("OISE stopped before its last step: no raw sum to score")
    variants = oise_map_variants(keeper.total)
    # The callback's sum must be the one oise post-processed: its own map is the 1.0 x mean variant.
    if not torch.equal(variants["oise_mean1.0"], final.maps.cpu()):
        raise RuntimeError("the raw sum read by the callback does not give oise's own map")
    out["maps"].update(variants)
    out["oise_sum"] = keeper.total
    for name, (p_keep, grid) in RISE_VARIANTS.items():
        began = time.perf_counter()
        result = rise(
            model, images, targets, n_masks=budget, grid_size=grid, p_keep=p_keep, seed=seed, reference=reference
        )
        out["seconds"][name] = time.perf_counter() - began
        out["calls"][name] = result.model_calls
        out["maps"][name] = result.maps.cpu()
    return out


def score_maps(
    model, images: torch.Tensor, targets: torch.Tensor, maps: dict, *, reference, suite_step: int
) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """Deletion and insertion AUC of every map under every metric: ``{variant: {metric: {mode: (B,)}}}``."""
    fill = reference_value(reference, model, images)
    scores: dict = {}
    for name, variant_maps in maps.items():
        scores[name] = {}
        for metric in METRICS:
            scores[name][metric] = {}
            for mode in MODES:
                if metric == "rise":
                    result = rise_causal(model, images, variant_maps, targets, mode, fill=fill)
                else:
                    step = suite_step if metric == "suite" else None
                    result = Mt.causal_curves(
                        model,
                        images,
                        variant_maps,
                        mode,
                        targets,
                        pixels_per_step=step,
                        reference=reference,
                        start="blur",
                    )
                scores[name][metric][mode] = result.auc.detach().cpu().double()
    return scores


# ---- parts -------------------------------------------------------------------------------------------------------


def _reference_setting():
    """``"black"`` when the package names it, else the same value as a number: pixel 0."""
    return "black" if "black" in getattr(core, "REFERENCES", ()) else 0.0


def _plan(dataset: str):
    return next(p for p in suites.SUITES["paper"] if p.name == dataset)


def part_stem(dataset: str, start: int, stop: int) -> str:
    return f"{dataset}_{start:04d}-{stop:04d}"


def image_record(dataset: str, index: int, target: int, scores: dict) -> dict:
    """One image's record in a part: ``scores[variant][metric][mode]`` is a float AUC."""
    return {"dataset": dataset, "index": index, "target": target, "scores": scores}


def run_part(
    dataset: str,
    start: int,
    stop: int,
    *,
    budget: int = BUDGET,
    seed: int = 0,
    block: int = 10,
    parts_dir: Path = PARTS_DIR,
    rescore: bool = False,
) -> Path:
    """Explain and score images ``start:stop`` of ``dataset`` (as the paper suite loads it); write the part."""
    plan = _plan(dataset)
    if not 0 <= start < stop <= plan.n:
        raise ValueError(f"--images must be a range inside 0:{plan.n}, got {start}:{stop}")
    if start % block or (stop % block and stop != plan.n):
        raise ValueError(
            f"--images must be aligned to --block {block} (the OISE seed is per block), got {start}:{stop}"
        )
    parts_dir = Path(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    stem = part_stem(dataset, start, stop)
    data = datasets.load_dataset(dataset, plan.n, seed=seed)  # the suite's images: canvases depend on n
    images, targets = data["images"][start:stop], data["targets"][start:stop]
    model = models.load(MODELS[dataset], runtime="onnx")
    reference = _reference_setting()
    began = time.perf_counter()
    maps_path = parts_dir / f"{stem}.pt"
    if rescore:
        saved = torch.load(maps_path)
        maps, seconds, calls, oise_sum = saved["maps"], saved["seconds"], saved["calls"], saved["oise_sum"]
        made = saved.get("made_with", {})  # parts saved before it was recorded say nothing
        asked = {"budget": budget, "seed": seed, "block": block}
        if any(made.get(k, v) != v for k, v in asked.items()):
            raise ValueError(f"{maps_path} holds maps made with {made}, not {asked}: pass the same settings")
    else:
        blocks = []
        for first in range(start, stop, block):
            last = min(first + block, stop)
            print(f"{dataset} images {first}:{last} ...", flush=True)
            blocks.append(
                explain_block(
                    model,
                    images[first - start : last - start],
                    targets[first - start : last - start],
                    budget=budget,
                    seed=block_seed(seed, first // block),
                    reference=reference,
                )
            )
        maps = {name: torch.cat([b["maps"][name] for b in blocks]) for name in blocks[0]["maps"]}
        oise_sum = torch.cat([b["oise_sum"] for b in blocks])
        seconds = {k: round(sum(b["seconds"][k] for b in blocks), 2) for k in blocks[0]["seconds"]}
        calls = blocks[0]["calls"]
        made_with = {"budget": budget, "seed": seed, "block": block, "reference": reference}
        saved = {"maps": maps, "oise_sum": oise_sum, "seconds": seconds, "calls": calls, "made_with": made_with}
        torch.save(saved, maps_path)
    explained = time.perf_counter() - began
    began = time.perf_counter()
    scores = score_maps(model, images, targets, maps, reference=reference, suite_step=plan.pixels_per_step)
    scored = time.perf_counter() - began
    top1 = core.class_probabilities(model, images).argmax(1).cpu()
    records = [
        image_record(
            dataset,
            start + i,
            int(targets[i]),
            {v: {m: {mode: float(scores[v][m][mode][i]) for mode in MODES} for m in METRICS} for v in scores},
        )
        for i in range(stop - start)
    ]
    resolved = core.resolve_reference(reference, model, images)
    spec = model.spec
    settings = {
        "dataset": dataset,
        "model": f"{MODELS[dataset]} ({getattr(model, 'runtime', 'torch')})",
        "images": [start, stop],
        "budget": budget,
        "calls_per_map": calls,
        "seed": seed,
        "block": block,
        "oise_seeds": {str(b): block_seed(seed, b) for b in range(start // block, math.ceil(stop / block))},
        "reference": reference if isinstance(reference, str) else f"pixel {reference}",
        "reference_pixel": torch.as_tensor(resolved).flatten().tolist(),
        "reference_normalised": [
            (float(v) - m) / s for v, m, s in zip(torch.as_tensor(resolved).flatten(), spec.mean, spec.std)
        ],
        "suite_pixels_per_step": plan.pixels_per_step,
        "data": data["info"],
        "targets_not_top1": int((top1 != targets.cpu()).sum()),
        "seconds": {"maps": seconds, "explain_total": round(explained, 1), "score_total": round(scored, 1)},
        "rescored": rescore,
        "machine": suite_results.machine(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "onnxruntime": _version("onnxruntime"),
        },
        "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    path = parts_dir / f"{stem}.json"
    path.write_text(json.dumps({"settings": settings, "records": records}, indent=1) + "\n")
    print(f"wrote {path} (maps {explained:.0f} s, scores {scored:.0f} s)", flush=True)
    return path


def _version(package: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:  # not installed: nothing to record
        return None


# ---- merge -------------------------------------------------------------------------------------------------------


def _load_parts(parts_dir: Path) -> dict[str, dict]:
    """``{dataset: {"records": [...] sorted by index, "settings": [part settings]}}``; refuses duplicates and parts
    with other budgets, seeds, blocks or references."""
    out: dict[str, dict] = {}
    for path in sorted(Path(parts_dir).glob("*.json")):
        part = json.loads(path.read_text())
        dataset = part["settings"]["dataset"]
        entry = out.setdefault(dataset, {"records": [], "settings": []})
        entry["records"] += part["records"]
        entry["settings"].append(part["settings"])
    for dataset, entry in out.items():
        indices = [r["index"] for r in entry["records"]]
        if len(indices) != len(set(indices)):
            raise ValueError(f"{dataset}: an image is in two parts; remove one of the overlapping parts")
        for key in ("budget", "seed", "block", "reference"):
            values = {json.dumps(s.get(key)) for s in entry["settings"]}
            if len(values) > 1:
                raise ValueError(f"{dataset}: parts differ in {key} ({sorted(values)}); rerun them with one setting")
        entry["records"].sort(key=lambda r: r["index"])
    order = list(MODELS)  # Fashion-MNIST first, as in the evaluation's tables
    return {d: out[d] for d in sorted(out, key=lambda d: order.index(d) if d in order else len(order))}


def paired_row(records: list[dict], oise_map: str, rise_variant: str, metric: str) -> dict:
    """n, OISE and RISE summaries and the paired difference OISE - RISE (mean, 95% CI) per mode."""
    row: dict = {"oise_map": oise_map, "rise": rise_variant, "metric": metric, "n": len(records)}
    for mode in MODES:
        a = torch.tensor([r["scores"][oise_map][metric][mode] for r in records], dtype=torch.float64)
        b = torch.tensor([r["scores"][rise_variant][metric][mode] for r in records], dtype=torch.float64)
        difference = summarise(a - b)
        row[mode] = {
            "oise": summarise(a),
            "rise": summarise(b),
            "oise_minus_rise": difference,
            "verdict": paired_verdict(mode, difference),
        }
    return row


def merge(parts_dir: Path = PARTS_DIR, out_dir: Path = RESULTS_DIR, stem: str = STEM) -> tuple[Path, Path]:
    """Merge the parts into ``<stem>.json`` and ``<stem>.md``: the main table, the full grid, per-image values."""
    parts = _load_parts(parts_dir)
    if not parts:
        raise FileNotFoundError(f"no parts in {parts_dir}; run `saliency_research/bench/protocol_choices.py run` first")
    payload: dict = {
        "experiment": STEM,
        "datasets": {},
        # the protocol of the "ours" metric rows (saliency_research.suites.SCORING); RISE's metric keeps its own
        "scoring": "ours: tied pixels in a seeded random order; default pair: OISE's raw sum against RISE's raw map",
    }
    for dataset, entry in parts.items():
        records = entry["records"]
        main = [{"row": label, **paired_row(records, *choice)} for label, choice in ROWS]
        grid = [paired_row(records, o, r, m) for o in OISE_MAPS for r in RISE_VARIANTS for m in METRICS]
        settings = entry["settings"]
        payload["datasets"][dataset] = {
            "n": len(records),
            "indices": _ranges([r["index"] for r in records]),
            "settings": {k: settings[0][k] for k in ("model", "budget", "calls_per_map", "seed", "block", "reference")}
            | {
                "reference_pixel": settings[0]["reference_pixel"],
                "reference_normalised": settings[0]["reference_normalised"],
                "suite_pixels_per_step": settings[0]["suite_pixels_per_step"],
                "data": settings[0]["data"],
                "targets_not_top1": sum(s["targets_not_top1"] for s in settings),
                "oise_seeds": {k: v for s in settings for k, v in s["oise_seeds"].items()},
                "seconds_maps": _sum_seconds(settings),
                "tied_at_minimum": tie_shares(parts_dir, dataset),
                "machines": [s["machine"] for s in settings],
                "versions": settings[0]["versions"],
            },
            "main": main,
            "grid": grid,
            "per_image": {
                "index": [r["index"] for r in records],
                "target": [r["target"] for r in records],
                "scores": {
                    v: {
                        m: {mode: [round(r["scores"][v][m][mode], 6) for r in records] for mode in MODES}
                        for m in METRICS
                    }
                    for v in records[0]["scores"]
                },
            },
        }
    payload["command"] = _command(payload)
    return write_results(payload, markdown(payload), stem, out_dir)


def tie_shares(parts_dir: Path, dataset: str) -> dict[str, float]:
    """Mean share of each map's pixels tied at its minimum (the metric's tie order decides where they go), from the
    parts' saved maps; ``{}`` when no maps are saved."""
    shares: dict[str, list[torch.Tensor]] = {}
    for path in sorted(Path(parts_dir).glob(f"{dataset}_*.pt")):
        for name, maps in torch.load(path)["maps"].items():
            flat = maps.reshape(len(maps), -1)
            shares.setdefault(name, []).append((flat == flat.amin(1, keepdim=True)).double().mean(1))
    return {name: round(float(torch.cat(values).mean()), 3) for name, values in shares.items()}


def _ranges(indices: list[int]) -> list[list[int]]:
    """Sorted indices as end-exclusive ranges: ``[0, 1, 2, 5]`` -> ``[[0, 3], [5, 6]]``."""
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def _sum_seconds(settings: list[dict]) -> dict:
    total: dict = {}
    for s in settings:
        for k, v in s["seconds"]["maps"].items():
            total[k] = round(total.get(k, 0.0) + v, 1)
    return total


def _command(payload: dict) -> list[str]:
    env = "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m saliency_research.bench.protocol_choices"
    lines = []
    for dataset, entry in payload["datasets"].items():
        for start, stop in entry["indices"]:
            lines.append(f"{env} run --dataset {dataset} --images {start}:{stop}")
    return lines + [".venv/bin/python -m saliency_research.bench.protocol_choices merge"]


def _cell(summary: dict, signed: bool = False) -> str:
    low, high = summary["ci95"]
    mean = f"{summary['mean']:+.3f}" if signed else f"{summary['mean']:.3f}"
    return f"{mean} [{low:+.3f}, {high:+.3f}]" if signed else mean


def _table(rows: list[dict], label) -> list[str]:
    lines = [
        "| choice | n | OISE del. | RISE del. | OISE - RISE del. [95% CI] | verdict del. "
        "| OISE ins. | RISE ins. | OISE - RISE ins. [95% CI] | verdict ins. |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in rows:
        d, i = row["deletion"], row["insertion"]
        lines.append(
            f"| {label(row)} | {row['n']} | {_cell(d['oise'])} | {_cell(d['rise'])} | "
            f"{_cell(d['oise_minus_rise'], True)} | {d['verdict']} | {_cell(i['oise'])} | {_cell(i['rise'])} | "
            f"{_cell(i['oise_minus_rise'], True)} | {i['verdict']} |"
        )
    return lines


def markdown(payload: dict) -> str:
    """The result file's tables (every number ours, measured by this repository)."""
    lines = [
        "# Would the authors' and RISE's own protocol choices change the verdict? (ours, measured by this repository)",
        "",
        "OISE and RISE at the same budget on the same images; deletion AUC (lower better) and insertion AUC (higher "
        "better); OISE - RISE paired over images, mean [95% Student t CI] (`saliency_research.reports.summarise`); "
        "verdict from that interval (`tie` when it contains 0). Every number here is ours, none is the paper's.",
        "",
        "Choices: OISE map = which post-processing of OISE's sum S is scored (each clipped at 0 and scaled to max 1); "
        "RISE = mask density p1 and grid s; metric = "
        + "; ".join(f"`{k}`: {v}" for k, v in METRIC_LABELS.items())
        + ".",
        "",
    ]
    for dataset, entry in payload["datasets"].items():
        s = entry["settings"]
        lines += [
            f"## {dataset} (n = {entry['n']}, images {entry['indices']} of the paper suite's set)",
            "",
            f"Model {s['model']}; {s['budget']} model calls per map ({s['calls_per_map']}); seed {s['seed']}, "
            f"OISE and RISE seeded per block of {s['block']} images (`block_seed(seed, block)`); reference "
            f"{s['reference']} (pixel {s['reference_pixel']}, normalised "
            f"{[round(v, 4) for v in s['reference_normalised']]}) "
            "for both methods, deletion's substrate and the padding of RISE's blur; targets: "
            f"{s['data'].get('target')} ({s['targets_not_top1']} of {entry['n']} differ from the model's top-1); "
            f"suite step {s['suite_pixels_per_step']} px. Map time (s, all images): {s['seconds_maps']}. Share of "
            f"a map's pixels tied at its minimum (ordered by the metric's tie rule): {s.get('tied_at_minimum')}.",
            "",
        ]
        lines += _table(entry["main"], lambda r: r["row"])
        lines += ["", f"<details><summary>{dataset}: every combination</summary>", ""]
        lines += _table(
            entry["grid"],
            lambda r: f"{OISE_LABELS[r['oise_map']]} / {RISE_LABELS[r['rise']]} / {r['metric']}",
        )
        lines += ["", "</details>", ""]
    first = next(iter(payload["datasets"].values()))["settings"]
    lines += [
        "Machine and runtime: "
        + "; ".join(
            f"{m['cpu']}, {m['logical_cores']} cores, torch threads {m['torch_threads']}, load {m['load_1min']}"
            for m in first["machines"][:1]
        )
        + f"; versions {first['versions']}. The tie order of `np.argsort` (RISE's metric) depends on numpy's sort "
        "and may differ on other numpy versions or CPUs.",
        "",
        "Reproduce:",
        "",
        "```",
        *payload["command"],
        "```",
        "",
        "Notes:",
        "",
        "- The targets are the evaluation's in every variant (RISE's evaluation.py takes the clean image's top-1; on "
        "Fashion-MNIST that is the target here, on the canvases the true class is, see the count above).",
        "- RISE's metric pads its blur with 0 of its normalised space (the ImageNet mean); here the padding and "
        "deletion's substrate are the run's reference, black, the data's own zero.",
        f"- Lower is better for {', '.join(LOWER_IS_BETTER)}; higher for insertion.",
        "",
        "## Text for the card and notebook 04",
        "",
        card_text(payload),
    ]
    return "\n".join(lines)


DATASET_NAMES = {"fashion": "Fashion-MNIST", "clutter": "the cluttered canvases"}
SHORT_VERDICT = {"OISE better": "OISE better", "RISE better": "RISE better", "tie": "no difference shown"}


def _changes(entry: dict, mode: str) -> dict[str, list[str]]:
    """The main rows whose verdict for ``mode`` differs from the default row's, by the verdict they reach."""
    default = entry["main"][0][mode]["verdict"]
    out: dict[str, list[str]] = {}
    for row in entry["main"][1:]:
        if row[mode]["verdict"] != default:
            out.setdefault(row[mode]["verdict"], []).append(row["row"])
    return out


def _grid_counts(entry: dict, mode: str) -> str:
    counts = {v: sum(r[mode]["verdict"] == v for r in entry["grid"]) for v in ("OISE better", "RISE better", "tie")}
    return ", ".join(f"{SHORT_VERDICT[v]} {k}" for v, k in counts.items())


def _oise_wins_text(datasets: dict) -> str:
    """Where OISE comes out better, what the other metric says in those same combinations, and a caveat."""
    parts = []
    for dataset, entry in datasets.items():
        for mode in MODES:
            other = MODES[1 - MODES.index(mode)]
            wins = [r for r in entry["grid"] if r[mode]["verdict"] == "OISE better"]
            if not wins:
                continue
            rises = sorted({RISE_LABELS[r["rise"]].split(" (")[0] for r in wins})
            others = sorted({SHORT_VERDICT[r[other]["verdict"]] for r in wins})
            parts.append(
                f"on {DATASET_NAMES.get(dataset, dataset)} OISE is better in {mode} in {len(wins)} of "
                f"{len(entry['grid'])} combinations (RISE at {', '.join(rises)}), and in those same combinations "
                f"{other} says: {', '.join(others)}"
            )
    both = sum(all(r[m]["verdict"] == "OISE better" for m in MODES) for e in datasets.values() for r in e["grid"])
    return (
        "; ".join(parts)
        + (
            ". No combination makes OISE better in both metrics."
            if both == 0
            else f". {both} combination(s) make OISE better in both metrics."
        )
        + " Each interval is uncorrected for the many "
        "comparisons (27 combinations x 2 metrics per dataset), so a lone verdict at the edge of its interval is "
        "weak evidence; read any verdict together with the protocol that produced it."
        if parts
        else "read any verdict together with the protocol that produced it."
    )


def _intro(payload: dict) -> str:
    """What the choices are and what was run (one paragraph)."""
    datasets = payload["datasets"]
    sizes = " and ".join(f"{e['n']} images of {DATASET_NAMES.get(d, d)}" for d, e in datasets.items())
    budget = next(iter(datasets.values()))["settings"]["budget"]
    return (
        "Our comparison of OISE with RISE makes choices where the authors' code, RISE's code and ours differ, or "
        "where the paper says nothing: which OISE map is scored (the raw sum S, S minus 0.96 x its mean as in the "
        "authors' `explainer.py`, or S minus its mean, as we do), how dense RISE's masks are (p1 = 0.5 on an 8 x 8 "
        "grid, as in the RISE notebook the authors copied and as we run it, or p1 = 0.1 on 8 x 8 or 10 x 10 cells, "
        "as in RISE's own notebooks), and how the deletion and insertion curves are computed (ours, or RISE's "
        "`evaluation.py`: a zero-padded blur and ties in the map broken by numpy's sort). We reran both methods at "
        f"{budget:,} model calls per image on {sizes} under each choice (masked pixels black throughout) and "
        "compared them image by image."
    )


def _conclusion(payload: dict) -> str:
    """The one-paragraph answer, written from the verdicts."""
    datasets = payload["datasets"]
    oise_wins = sum(r[mode]["verdict"] == "OISE better" for e in datasets.values() for r in e["grid"] for mode in MODES)
    return (
        (
            "So no choice of the authors or of RISE, alone or together, makes OISE better than RISE on these data; "
            "what the choices change is how large RISE's lead is and whether the interval still excludes 0."
            if oise_wins == 0
            else "So the choices matter: " + _oise_wins_text(datasets)
        )
        + " Intervals: 95% Student t intervals of the per-image difference; 'no difference shown' means the "
        "interval contains 0. Full tables: `benchmarks/results/protocol_choices.md`."
    )


def _summary_table(payload: dict) -> list[str]:
    """OISE minus RISE under each main choice, both datasets, both metrics (markdown lines)."""
    datasets = payload["datasets"]
    lines = [
        "| choice | " + " | ".join(f"{DATASET_NAMES.get(d, d)}: deletion | insertion" for d in datasets) + " |",
        "|---" + "|---:|---:" * len(datasets) + "|",
    ]
    for k, (label, _) in enumerate(ROWS):
        cells = []
        for entry in datasets.values():
            row = entry["main"][k]
            cells += [_cell(row[mode]["oise_minus_rise"], True) for mode in MODES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [
        "",
        "(OISE minus RISE, mean [95% CI]; deletion: below 0 favours OISE; insertion: above 0 favours OISE.)",
    ]


def card_text(payload: dict) -> str:
    """A plain-language section (markdown) for the saliency card, written from the numbers."""
    datasets = payload["datasets"]
    lines = [
        "### Would the authors' choices change the answer? (our measurements, not the paper's)",
        "",
        _intro(payload),
        "",
    ]
    for dataset, entry in datasets.items():
        d0, i0 = entry["main"][0]["deletion"], entry["main"][0]["insertion"]
        sentence = (
            f"- **{DATASET_NAMES.get(dataset, dataset)}** (n = {entry['n']}). With our choices OISE minus RISE is "
            f"{_cell(d0['oise_minus_rise'], True)} in deletion AUC ({SHORT_VERDICT[d0['verdict']]}) and "
            f"{_cell(i0['oise_minus_rise'], True)} in insertion AUC ({SHORT_VERDICT[i0['verdict']]})."
        )
        for mode in MODES:
            changed = _changes(entry, mode)
            if not changed:
                sentence += f" In {mode} no choice, alone or together, changes that verdict."
            else:
                sentence += "".join(
                    f" In {mode} the verdict becomes '{SHORT_VERDICT[verdict]}' under: {'; '.join(rows)}."
                    for verdict, rows in changed.items()
                )
            sentence += f" All {len(entry['grid'])} combinations, {mode}: {_grid_counts(entry, mode)}."
        lines.append(sentence)
    shares = [
        f"{100 * e['settings']['tied_at_minimum']['oise_mean1.0']:.0f}% on {DATASET_NAMES.get(d, d)}"
        for d, e in datasets.items()
        if "oise_mean1.0" in e["settings"].get("tied_at_minimum", {})
    ]
    if shares:
        lines.append(
            "- Why the OISE map and the metric matter: the paper's OISE map (S minus its mean, clipped at 0) leaves "
            f"many pixels tied at 0 ({' and '.join(shares)}), RISE's maps almost none; which map is scored and in "
            "which order a metric takes those ties (ours: a seeded random order; RISE's: numpy's sort order) move "
            "OISE's scores, not RISE's. RISE's mask density moves RISE's."
        )
    lines += ["", _conclusion(payload), "", *_summary_table(payload)]
    return "\n".join(lines)


def notebook_text(payload: dict) -> str:
    """The short version for notebook 04: what the choices are, the answer, the table."""
    return "\n".join(
        [
            "### Would the authors' choices change the answer? (ours, not the paper's)",
            "",
            _intro(payload),
            "",
            _conclusion(payload),
            "",
            *_summary_table(payload),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="explain and score one part")
    run.add_argument("--dataset", choices=sorted(MODELS), required=True)
    run.add_argument("--images", required=True, help="start:stop (end-exclusive), aligned to --block")
    run.add_argument("--budget", type=int, default=BUDGET, help="model calls per map (OISE steps = RISE masks)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--block", type=int, default=10, help="images per OISE/RISE call, each block seeded apart")
    run.add_argument("--parts-dir", type=Path, default=PARTS_DIR)
    run.add_argument("--rescore", action="store_true", help="score the part's saved maps again")
    joined = sub.add_parser("merge", help="merge the parts into the result files")
    joined.add_argument("--parts-dir", type=Path, default=PARTS_DIR)
    joined.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "run":
        start, stop = (int(v) for v in args.images.split(":"))
        run_part(
            args.dataset,
            start,
            stop,
            budget=args.budget,
            seed=args.seed,
            block=args.block,
            parts_dir=args.parts_dir,
            rescore=args.rescore,
        )
    else:
        for path in merge(args.parts_dir, args.out_dir):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""The budget curve and OISE's settings (the paper's budget); ``saliency_research/bench/paper.py`` is their command
line.

:func:`budget_curve` runs OISE (one chain and several) and RISE from 100 to 5,000 calls (``budget_curve.*``) and
:func:`oise_settings` sweeps OISE's settings and measures its seed-to-seed agreement (``paper_oise_settings.*``).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from saliency_lib.evaluation import metrics as Mt
from saliency_lib.evaluation.baselines import attribute
from saliency_lib.evaluation.datasets import DATASETS, load_dataset
from saliency_lib.method.checks import check_choice
from saliency_lib.method.core import REFERENCES
from saliency_research.budget_report import POSTPROCESSING, PUBLISHED, mean_fraction, postprocess_maps
from saliency_research.reports import RESULTS_DIR, summarise, write_results
from saliency_research.suite_results import locked, machine, reference_setting
from saliency_research.suites import FAITHFULNESS, PAPER_BUDGET, SCORING, SUITES, DatasetPlan, plan_runtime

__all__ = [
    "BUDGETS",
    "BUDGET_CURVE_CHAINS",
    "BUDGET_CURVE_STEM",
    "budget_maps",
    "budget_curve",
    "write_budget_curve",
    "render_budget_curve",
    "SETTINGS_STEM",
    "OISE_SETTINGS",
    "oise_settings",
]

BUDGETS = (100, 200, 500, 1000, 2000, 5000)
BUDGET_CURVE_CHAINS = 8  # "OISE, several chains": the chains run in the same model call and are summed
BUDGET_CURVE_STEM = "budget_curve"


def _curve_variants(chains: int, reference: str = "mean") -> dict[str, tuple[str, dict]]:
    return {
        "oise_1chain": ("oise", {"n_chains": 1, "reference": reference, "postprocess": False}),
        f"oise_{chains}chains": ("oise", {"n_chains": chains, "reference": reference, "postprocess": False}),
        "rise": ("rise", {"batch_size": 500, "reference": reference}),
    }


def _stem(base: str, reference: str | None) -> str:
    """``base`` (each dataset's own reference) or ``base_<reference>`` (one forced): as :func:`result_stem`."""
    return base + (f"_{reference}" if reference is not None else "")


def _score(
    model: nn.Module,
    images,
    targets,
    maps,
    boxes,
    pixels_per_step: int,
    curve_batch: int,
    reference="mean",
    insertion_start="blur",
) -> dict:
    """Per-image deletion and insertion AUCs (and pointing, IoU, energy when there are boxes) of ``maps``;
    deletion replaces pixels by ``reference``, insertion starts from ``insertion_start``."""
    values = {
        mode: Mt.causal_curves(
            model,
            images,
            maps,
            mode,
            targets,
            pixels_per_step=pixels_per_step,
            batch_size=curve_batch,
            reference=reference,
            start=insertion_start,
        ).auc.cpu()
        for mode in FAITHFULNESS
    }
    if boxes is not None:
        values.update(
            pointing=Mt.pointing_game(maps, boxes), iou=Mt.box_iou(maps, boxes), energy=Mt.energy_in_box(maps, boxes)
        )
    return values


def budget_maps(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    method: str,
    options: dict,
    budgets: tuple[int, ...],
    seed: int = 0,
) -> tuple[dict[int, torch.Tensor], dict[int, int], float]:
    """Maps of ``method`` at every budget of ``budgets`` (model calls per image).

    OISE runs once, at the largest budget, and records its running map at each smaller one: its random numbers
    are drawn so that a shorter run is a prefix of a longer one, so the map recorded after ``ceil(b / K)`` steps
    of ``K`` chains *is* the map of a run with ``n_steps = b`` (tested). RISE runs once per budget.

    Returns ``({budget: (B, H, W) maps}, {budget: model calls per image}, seconds)``.
    """
    began = time.perf_counter()
    if method == "oise":
        chains = options.get("n_chains", 1)
        steps = {b: -(-b // chains) for b in budgets}
        from saliency_lib.method.oise_method import oise  # the function itself: it returns the recorded history

        out = oise(
            model, images, targets, **options, n_steps=max(budgets), seed=seed, record_every=sorted(set(steps.values()))
        )
        history = dict(zip(out.history.steps, out.history.saliency))
        maps = {b: history[steps[b]] for b in budgets}
        calls = {b: steps[b] * chains for b in budgets}
    else:
        maps, calls = {}, {}
        for b in budgets:
            out = attribute(method, model, images, targets, **options, n_masks=b, seed=seed)
            maps[b], calls[b] = out.maps.cpu(), out.model_calls
    return maps, calls, time.perf_counter() - began


def budget_curve(
    dataset: str = "fashion",
    n: int = 100,
    budgets: tuple[int, ...] = BUDGETS,
    *,
    chains: int = BUDGET_CURVE_CHAINS,
    seed: int = 0,
    chunk: int = 100,
    runtime: str = "auto",
    out_dir: Path | None = None,
    write: bool = True,
    progress: bool = True,
    reference: str | None = None,
) -> dict:
    """OISE (1 chain and ``chains`` chains) and RISE at every budget on the first ``n`` images of ``dataset``.

    ``reference``: the masked-pixel value of OISE, RISE and deletion alike (``None``: the dataset's own,
    :data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`; a forced one writes ``budget_curve_<reference>.*``).

    OISE runs with ``postprocess=False`` and every map (OISE's and RISE's) is scored once per post-processing of
    :data:`saliency_research.budget_report.POSTPROCESSING` plus ``PUBLISHED``, applied the same way to both.
    One record per (dataset, method, post-processing, budget): deletion, insertion (and on datasets with boxes,
    e.g. ``clutter``, the pointing game, IoU and energy) summarised with :func:`saliency_research.reports.summarise`,
    plus the paired per-image difference OISE - RISE at the same budget (``vs_rise``: its mean and 95% CI say
    whether OISE has caught up). Written (``write=True``) into ``budget_curve.json``/``.md``/``.png`` in
    ``out_dir``; records of other datasets already in the file are kept (several datasets may run at once).
    """
    check_choice("dataset", dataset, DATASETS)
    if reference is not None:
        check_choice("reference", reference, REFERENCES)
    data = load_dataset(dataset, n, seed=seed)
    plan = next((p for p in SUITES["paper"] if p.name == dataset), DatasetPlan(dataset, n, max(budgets)))
    plan = replace(plan, reference=reference or plan.masked_value())
    fast, fast_runtime = plan_runtime(DatasetPlan(dataset, n, max(budgets), runtime=runtime), data["model"])
    images, targets = data["images"][:n], data["targets"][:n]
    boxes = data["boxes"][:n] if data["boxes"] is not None else None
    variants = _curve_variants(chains, plan.masked_value())
    posts = (*POSTPROCESSING, PUBLISHED)
    # values[post][method][budget][metric]: per-image values of each chunk
    values = {post: {name: {b: {} for b in budgets} for name in variants} for post in posts}
    calls: dict[str, dict[int, int]] = {}
    seconds = {name: 0.0 for name in variants}
    result = {}
    # Chunk by chunk, every method on the chunk, the file rewritten after each: a long run leaves a usable
    # curve on the images done so far (n grows), and a killed run loses at most one chunk.
    for start in range(0, len(images), chunk):
        stop = min(start + chunk, len(images))
        for name, (method, options) in variants.items():
            maps, calls[name], spent = budget_maps(
                fast, images[start:stop], targets[start:stop], method, options, budgets, seed=seed
            )
            seconds[name] += spent
            for b in budgets:
                # The raw maps, then each post-processing, scored the same way. Two names can be one
                # post-processing (as published: RISE raw, OISE S - mean): each distinct one is scored once.
                scored: dict[float | None, dict] = {}
                for post in posts:
                    fraction = mean_fraction(post, method)
                    if fraction not in scored:
                        scored[fraction] = _score(
                            fast,
                            images[start:stop],
                            targets[start:stop],
                            postprocess_maps(maps[b], post, method),
                            None if boxes is None else boxes[start:stop],
                            plan.pixels_per_step,
                            plan.curve_batch,
                            plan.masked_value(),
                            plan.insertion_start,
                        )
                    for key, v in scored[fraction].items():
                        values[post][name][b].setdefault(key, []).append(v)
        result = _budget_curve_result(
            dataset, values, calls, seconds, stop, budgets, chains, seed, plan, fast_runtime, data["info"], n
        )
        if progress:
            print(
                f"  budget curve {dataset}: {stop}/{len(images)} images, "
                + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()),
                flush=True,
            )
        if write:
            write_budget_curve(result, dataset, out_dir, reference)
    return result


def _budget_curve_result(
    dataset, values, calls, seconds, done, budgets, chains, seed, plan, runtime, info, planned
) -> dict:
    records = []
    for post, by_method in values.items():
        for name in by_method:
            for b in budgets:
                per_image = {k: torch.cat(v).double() for k, v in by_method[name][b].items()}
                # OISE's smaller budgets are prefixes of one run: their time is the run's time pro rata; RISE's
                # runs at all budgets are timed together: pro rata too (ours, an estimate).
                share = calls[name][b] / max(budgets) if name.startswith("oise") else b / sum(budgets)
                record = {
                    "dataset": dataset,
                    "method": name,
                    "postprocess": post,
                    "budget": b,
                    "model_calls": calls[name][b],
                    "n": done,
                    "metrics": {k: summarise(v) for k, v in per_image.items()},
                    "seconds_per_image": round(seconds[name] / done * share, 4),
                    "reference": plan.masked_value(),
                    "insertion_start": plan.insertion_start,
                    "runtime": runtime,
                    "machine": machine(),
                }
                if name != "rise":
                    rise_values = {k: torch.cat(v).double() for k, v in by_method["rise"][b].items()}
                    record["vs_rise"] = {k: summarise(per_image[k] - rise_values[k]) for k in per_image}
                records.append(record)
    return {
        "records": records,
        "settings": {
            "budgets": list(budgets),
            "chains": chains,
            "seed": seed,
            "pixels_per_step": plan.pixels_per_step,
            "reference": plan.masked_value(),
            "insertion_start": plan.insertion_start,
            "runtime": runtime,
            "info": info,
            "images_done": done,
            "images_planned": planned,
            "seconds": {name: round(s, 1) for name, s in seconds.items()},
        },
    }


def write_budget_curve(
    result: dict | None, dataset: str | None = None, out_dir: Path | None = None, reference: str | None = None
) -> dict:
    """Merge ``result``'s records of ``dataset`` into ``budget_curve.json`` (``budget_curve_<reference>.json``
    for a forced reference; under a lock) and rewrite the ``.md`` and ``.png`` from the merged file
    (``result=None``: just rewrite them). Returns the merged payload.

    Raises:
        ValueError: the file holds results of another reference setting (they never share a file).
    """
    from saliency_research.budget_report import budget_curve_figure, budget_curve_markdown

    out_dir = Path(out_dir or RESULTS_DIR)
    stem = _stem(BUDGET_CURVE_STEM, reference)
    with locked(out_dir / f".{stem}.lock"):
        path = out_dir / f"{stem}.json"
        payload = json.loads(path.read_text()) if path.exists() else {"records": [], "settings": {}}
        setting = reference_setting(reference)
        if result is not None and payload["records"] and payload.get("reference") != setting:
            raise ValueError(
                f"{path} holds results made with reference {payload.get('reference') or 'mean (not recorded)'}, "
                f"this run uses {setting}: move that file to {_stem(BUDGET_CURVE_STEM, 'mean')}.json or delete it"
            )
        if result is not None:
            payload["reference"] = setting
            payload["records"] = [r for r in payload["records"] if r["dataset"] != dataset] + result["records"]
            payload["settings"][dataset] = result["settings"]
        payload["command"] = (
            "python -m saliency_research.bench.paper budget-curve --dataset <fashion|clutter> --n 100"
            + (f" --reference {reference}" if reference is not None else "")
            + " (one process per dataset)"
        )
        write_results(payload, budget_curve_markdown(payload), stem, out_dir)
        figure = budget_curve_figure(payload)
        figure.savefig(out_dir / f"{stem}.png", dpi=90, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)
    return payload


def render_budget_curve(out_dir: Path | None = None, reference: str | None = None) -> dict:
    """Rewrite ``budget_curve.md`` and ``.png`` from ``budget_curve.json`` (``budget_curve_<reference>.*``)."""
    return write_budget_curve(None, None, out_dir, reference)


SETTINGS_STEM = "paper_oise_settings"
# One setting changed at a time from the paper's defaults (8x8 grid, p_init 0.3, step size 0.02, 1 chain,
# unweighted sum) at the run's reference (the dataset's own unless forced); RISE at the same budget and reference is
# the yardstick. The reference rows set OISE's alone: the metric keeps the run's.
OISE_SETTINGS = {
    "paper defaults": {},
    "grid 4": {"grid_size": 4},
    "grid 16": {"grid_size": 16},
    "p_init 0.1": {"p_init": 0.1},
    "p_init 0.5": {"p_init": 0.5},
    "step size 0.005": {"step_size": 0.005},
    "step size 0.1": {"step_size": 0.1},
    "reference blur": {"reference": "blur"},
    "reference mean (the paper's)": {"reference": "mean"},
    "reference black": {"reference": "black"},
    "8 chains": {"n_chains": 8},
    "weighted by score": {"weight_by_score": True},
}


def oise_settings(
    dataset: str = "fashion",
    n: int = 50,
    budget: int = 1000,
    *,
    agreement_budget: int = PAPER_BUDGET,
    agreement_n: int = 20,
    seed: int = 0,
    runtime: str = "auto",
    out_dir: Path | None = None,
    write: bool = True,
    progress: bool = True,
    settings: dict | None = None,
    reference: str | None = None,
) -> dict:
    """OISE's sensitivity to its settings, and its seed-to-seed agreement (the saliency card's numbers, ours).

    Each setting of ``settings`` (default :data:`OISE_SETTINGS`, one change at a time from the paper's) runs on
    the first ``n`` images of ``dataset`` at ``budget`` calls per image, with seeds ``seed`` and ``seed + 1``:
    deletion and insertion AUC, their paired difference to the paper's defaults, the rank correlation of the two
    seeds' maps (:func:`saliency_lib.evaluation.metrics.spearman`) and seconds per map. RISE at the same budget is the
    yardstick. Then seed-to-seed agreement at ``agreement_budget`` calls on the first ``agreement_n`` images for
    OISE (1 and 8 chains) and RISE. OISE's maps are its raw sums, as RISE's (the evaluation's protocol,
    :data:`saliency_research.suites.SCORING`). Writes ``paper_oise_settings.json``/``.md``.

    ``reference``: the masked-pixel value of every map (unless a setting changes OISE's) and of deletion
    (``None``: the dataset's own, :data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`; a forced one writes
    ``paper_oise_settings_<reference>.*``).
    """
    check_choice("dataset", dataset, DATASETS)
    if reference is not None:
        check_choice("reference", reference, REFERENCES)
    data = load_dataset(dataset, max(n, agreement_n), seed=seed)
    plan = next((p for p in SUITES["paper"] if p.name == dataset), DatasetPlan(dataset, n, budget))
    plan = replace(plan, reference=reference or plan.masked_value())
    ref = plan.masked_value()
    fast, fast_runtime = plan_runtime(DatasetPlan(dataset, n, budget, runtime=runtime), data["model"])
    images, targets = data["images"][:n], data["targets"][:n]
    rows, defaults = [], None
    runs = {**(settings if settings is not None else OISE_SETTINGS), "RISE (yardstick)": None}
    for name, change in runs.items():
        method, options = (
            ("rise", {"n_masks": budget, "batch_size": 500, "reference": ref})
            if change is None
            else ("oise", {"reference": ref, "postprocess": False, **change, "n_steps": budget})
        )
        began = time.perf_counter()
        maps = attribute(method, fast, images, targets, **options, seed=seed).maps.cpu()
        seconds = (time.perf_counter() - began) / len(images)
        again = attribute(method, fast, images, targets, **options, seed=seed + 1).maps.cpu()
        values = _score(
            fast, images, targets, maps, None, plan.pixels_per_step, plan.curve_batch, ref, plan.insertion_start
        )
        if name == "paper defaults":
            defaults = values
        row = {
            "setting": name,
            "method": method,
            "options": options,
            "n": len(images),
            "metrics": {k: summarise(v) for k, v in values.items()},
            "rank_corr_other_seed": summarise(Mt.spearman(maps, again)),
            "seconds_per_map": round(seconds, 4),
        }
        if defaults is not None and name != "paper defaults":
            row["vs_defaults"] = {k: summarise(values[k].double() - defaults[k].double()) for k in values}
        rows.append(row)
        if progress:
            print(
                f"  settings {name}: "
                + ", ".join(f"{k} {v['mean']:.3f}" for k, v in row["metrics"].items())
                + f", seed agreement {row['rank_corr_other_seed']['mean']:.3f}, {seconds:.2f} s/map",
                flush=True,
            )
    agreement = []
    few, few_targets = data["images"][:agreement_n], data["targets"][:agreement_n]
    for name, method, options in (
        ("oise, 1 chain", "oise", {"n_steps": agreement_budget, "reference": ref, "postprocess": False}),
        (
            "oise, 8 chains",
            "oise",
            {"n_steps": agreement_budget, "n_chains": 8, "reference": ref, "postprocess": False},
        ),
        ("rise", "rise", {"n_masks": agreement_budget, "batch_size": 500, "reference": ref}),
    ):
        began = time.perf_counter()
        first = attribute(method, fast, few, few_targets, **options, seed=seed)
        seconds = (time.perf_counter() - began) / len(few)
        calls, first = first.model_calls, first.maps.cpu()
        second = attribute(method, fast, few, few_targets, **options, seed=seed + 1).maps.cpu()
        agreement.append(
            {
                "method": name,
                "model_calls": calls,
                "n": len(few),
                "rank_corr_other_seed": summarise(Mt.spearman(first, second)),
                "seconds_per_map": round(seconds, 4),
            }
        )
        if progress:
            print(
                f"  seed agreement at {agreement_budget}: {name} {agreement[-1]['rank_corr_other_seed']['mean']:.3f}",
                flush=True,
            )
    result = {
        "dataset": dataset,
        "budget": budget,
        "agreement_budget": agreement_budget,
        "seed": seed,
        "reference": ref,
        "insertion_start": plan.insertion_start,
        "runtime": fast_runtime,
        "machine": machine(),
        "scoring": SCORING,
        "info": data["info"],
        "settings": rows,
        "seed_agreement": agreement,
        "command": f"python -m saliency_research.bench.paper sensitivity --n {n} --budget {budget} "
        f"--agreement-budget {agreement_budget} --agreement-n {agreement_n}"
        + (f" --reference {reference}" if reference is not None else ""),
    }
    if write:
        from saliency_research.reports import oise_settings_markdown

        write_results(result, oise_settings_markdown(result), _stem(SETTINGS_STEM, reference), out_dir)
    return result

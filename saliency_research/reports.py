"""Summary statistics, tables and result files: how every experiment of the package reports its numbers.

One summary with one meaning everywhere: :func:`summarise` gives the mean, the standard deviation and a 95%
confidence interval ``ci95 = [low, high]`` for the mean (Student t, from ``scipy.stats``). Results are written
as a JSON file (every number) plus a markdown file (the tables) in :data:`RESULTS_DIR`, named
``<experiment>_<suite>`` (:func:`write_results`, :func:`load_results`); :func:`evaluation_markdown` makes the
tables of :mod:`saliency_lib.evaluation`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from saliency_lib.io import paths

__all__ = [
    "summarise",
    "RESULTS_DIR",
    "METRIC_LABELS",
    "evaluation_markdown",
    "write_results",
    "load_results",
    "LOWER_IS_BETTER",
    "paired_verdict",
    "ci_cell",
    "reference_line",
    "OLD_SCORING",
    "oise_settings_markdown",
    "ranking",
    "budget_comparison_markdown",
]

# What a result file without a "scoring" setting was scored with: files made before suites.SCORING.
OLD_SCORING = (
    "OLD PROTOCOL (not comparable with files that state a scoring): OISE's mean-subtracted, clipped map against "
    "RISE's raw map; energy on the positive mass without min-max; ties in deletion, insertion and Spearman taken "
    "in pixel order"
)

RESULTS_DIR = paths.RESULTS_DIR
# The command that makes each experiment's result files (named in messages when one is missing).
COMMANDS = {
    "evaluation": "python -m saliency_research evaluate",
    "reconstruction": "python -m saliency_research reconstruct",
}


def summarise(values) -> dict:
    """Mean, standard deviation and 95% confidence interval of per-image values.

    Args:
        values: ``(n,)`` numbers (any shape is flattened), n >= 1.

    Returns:
        ``{"mean", "ci95": [low, high], "std", "n"}``, rounded to 4 decimals. ``ci95`` is the two-sided Student t
        interval ``mean +- t(0.975, n - 1) * std / sqrt(n)``; with n = 1 it is ``[nan, nan]`` (no spread known).
    """
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = values.numel()
    if n == 0:
        raise ValueError("values is empty: nothing to summarise")
    mean = values.mean().item()
    std = values.std().item() if n > 1 else 0.0
    from scipy import stats  # here: scipy costs 64 MB at import, and most notebooks never summarise

    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else float("nan")
    return {
        "mean": round(mean, 4),
        "ci95": [round(mean - half, 4), round(mean + half, 4)],
        "std": round(std, 4),
        "n": n,
    }


METRIC_LABELS = {
    "rank_corr_same_model_other_seed": "rank corr., same model, other seed (yardstick)",
    "deletion": "deletion AUC (lower better)",
    "insertion": "insertion AUC (higher better)",
    "pointing": "pointing game",
    "iou": "IoU with box",
    "energy": "energy in box",
    "rank_corr_other_seed": "rank corr. with another seed (stability)",
    "rank_corr_top_layer": "rank corr., top layer randomised (lower better)",
    "rank_corr_all_layers": "rank corr., all layers randomised (lower better)",
    "abs_rank_corr_all_layers": "rank corr. of abs(map), all layers (lower better)",
}


def evaluation_markdown(payload: dict, order: tuple[str, ...] | None = None) -> str:
    """The evaluation's results (:func:`saliency_research.runner.run_suite`) as markdown: one table per dataset,
    rows = methods, columns = metrics (mean [95% CI]), model calls and seconds per image.

    Args:
        payload: the result file's contents (``suite``, ``settings``, ``records``...).
        order: the datasets' order (default: the order their records come in).
    """
    order = order or tuple(dict.fromkeys(r["dataset"] for r in payload["records"]))
    records = sorted(payload["records"], key=lambda r: order.index(r["dataset"]))
    lines = [
        f"# Evaluation results: suite `{payload['suite']}` (ours, measured by this repository)",
        "",
        f"Command: `{payload.get('command', 'python -m saliency_research evaluate')}`"
        f"{' (partial: not every dataset of the suite has run yet)' if payload.get('partial') else ''}. "
        f"Total {payload['settings']['total_seconds']} s (per dataset: "
        f"{payload['settings'].get('dataset_seconds')}) on {payload['settings']['machine']}.",
        "",
        f"Scoring: {payload['settings'].get('scoring', OLD_SCORING)}.",
        "",
    ]
    for dataset in order:
        rows = [r for r in records if r["dataset"] == dataset]
        if not rows:
            continue
        keys = list(rows[0]["metrics"])
        plan = next((p for p in payload["settings"]["plans"] if p["dataset"] == dataset), {})
        budgets = (plan.get("options") or {}).get("budgets")
        budget_text = (
            f"budgets {', '.join(map(str, budgets))} (in the method names)"
            if budgets
            else f"{plan.get('oise_rise_budget')} model calls per image"
        )
        lines += [f"## {dataset} (n = {rows[0]['n']}; OISE = RISE budget: {budget_text})", ""]
        if rows[0].get("info"):
            lines += ["Data: " + "; ".join(f"{k}: {v}" for k, v in rows[0]["info"].items()), ""]
        lines += [reference_line(rows), ""]
        agreement = any("seed_agreement" in r for r in rows)
        lines.append(
            "| method | "
            + " | ".join(METRIC_LABELS.get(k, k) for k in keys)
            + (f" | {SEED_AGREEMENT_LABEL}" if agreement else "")
            + " | model calls | s / image |"
        )
        lines.append("|---" * (len(keys) + 3 + agreement) + "|")
        for r in rows:
            cells = [ci_cell(r["metrics"][k]) for k in keys]
            if agreement:
                cells.append(ci_cell(r["seed_agreement"]) if "seed_agreement" in r else "-")
            calls = "-" if r.get("model_calls") is None else str(r["model_calls"])
            lines.append(f"| {r['method']} | " + " | ".join(cells) + f" | {calls} | {r['seconds_per_image']:.3f} |")
        lines.append("")
        lines += _agreement_lines(rows)
        lines += _paired_lines(rows, keys)
        if dataset == "photos":
            lines += [
                "Per image (deletion / insertion / IoU):",
                "",
                "| method | " + " | ".join(rows[0]["per_image"]) + " |",
                "|---" * (len(rows[0]["per_image"]) + 1) + "|",
            ]
            for r in rows:
                cells = [
                    f"{v['deletion']:.3f} / {v['insertion']:.3f} / {v['iou']:.2f}" for v in r["per_image"].values()
                ]
                lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["Notes:", ""] + [f"- {note}" for note in payload["settings"]["notes"]]
    return "\n".join(lines)


SEED_AGREEMENT_LABEL = "seed agreement (Spearman, seed 0 vs 1)"
AGREEMENT_FLOOR = 0.5  # a method whose maps agree less than this across seeds has not converged on the dataset


def reference_line(rows: list[dict]) -> str:
    """Which reference the records of one dataset used (older records do not say: the mean)."""
    used = sorted({r.get("reference", "mean (not recorded: an older file)") for r in rows})
    starts = sorted({r.get("insertion_start", "blur") for r in rows})
    return (
        f"Reference (masked pixels in the methods that mask and in deletion): {', '.join(used)}; "
        f"insertion starts from: {', '.join(starts)}."
    )


def _agreement_lines(rows: list[dict]) -> list[str]:
    """A warning for each seeded method whose maps do not agree across seeds (the control, random, excepted)."""
    loose = [
        f"{r['method']} ({r['seed_agreement']['mean']:.2f})"
        for r in rows
        if r["method"] != "random" and r.get("seed_agreement", {}).get("mean", 1.0) < AGREEMENT_FLOOR
    ]
    if not loose:
        return []
    return [
        f"Not converged here: the maps of {', '.join(loose)} agree less than {AGREEMENT_FLOOR} (Spearman) between "
        "seeds 0 and 1 on this dataset, so their scores and ranking here are one draw of a noisy map, not a "
        "property of the method.",
        "",
    ]


def _paired_lines(rows: list[dict], keys: list[str]) -> list[str]:
    """The paired per-image difference method - RISE (mean [95% CI]) of each method that has one."""
    paired = [r for r in rows if "vs_rise" in r]
    if not paired:
        return []
    shown = [k for k in keys if k in paired[0]["vs_rise"]]
    lines = [
        "Paired per-image difference method - RISE, mean [95% CI] (deletion: below 0 = better than RISE; "
        "the others: above 0 = better):",
        "",
        "| method - rise | " + " | ".join(METRIC_LABELS.get(k, k) for k in shown) + " |",
        "|---" * (len(shown) + 1) + "|",
    ]
    for r in paired:
        lines.append(
            f"| {r['method']} | "
            + " | ".join(ci_cell(r["vs_rise"][k], signed=True) for k in shown if k in r["vs_rise"])
            + " |"
        )
    return lines + [""]


def write_results(payload: dict, markdown: str, stem: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (``payload``, indented) and ``<stem>.md`` (``markdown``) in ``out_dir``.

    Returns the two paths. ``out_dir`` defaults to :data:`RESULTS_DIR` and is created when missing.
    """
    out_dir = Path(out_dir or RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=1) + "\n")
    md_path.write_text(markdown + "\n")
    return json_path, md_path


def load_results(suite: str = "full", results_dir: Path | None = None, experiment: str = "evaluation") -> dict:
    """The result file ``<experiment>_<suite>.json`` (e.g. the committed ``evaluation_full.json``) as a dict."""
    path = Path(results_dir or RESULTS_DIR) / f"{experiment}_{suite}.json"
    if not path.exists():
        command = COMMANDS.get(experiment, f"the {experiment} command")
        raise FileNotFoundError(f"{path} does not exist; run `{command} --suite {suite}`")
    return json.loads(path.read_text())


LOWER_IS_BETTER = ("deletion",)  # every other metric of the evaluation: higher is better


def paired_verdict(metric: str, difference: dict) -> str:
    """``"OISE better"``, ``"RISE better"`` or ``"tie"`` from the 95% CI of the paired difference OISE - RISE."""
    low, high = difference["ci95"]
    if low != low:  # nan: one image
        return "tie"
    if metric in LOWER_IS_BETTER:
        return "OISE better" if high < 0 else "RISE better" if low > 0 else "tie"
    return "OISE better" if low > 0 else "RISE better" if high < 0 else "tie"


def ranking(records: list[dict], dataset: str, metric: str) -> list[str]:
    """The methods of ``dataset`` best first by their mean ``metric`` (lower first for :data:`LOWER_IS_BETTER`)."""
    scored = [
        (r["metrics"][metric]["mean"], r["method"])
        for r in records
        if r["dataset"] == dataset and metric in r.get("metrics", {})
    ]
    return [method for _, method in sorted(scored, reverse=metric not in LOWER_IS_BETTER)]


def oise_place(records: list[dict], dataset: str, metric: str) -> tuple[str, list[str], dict[str, float]]:
    """OISE's place among the methods of ``dataset`` on ``metric``: its rank as ``"r of n"`` (methods equal to 3
    decimals, as tables show them, share a rank; ``""`` without OISE), the best methods (tied at 3 decimals, by name)
    and every method's mean rounded to 3 decimals."""
    order = ranking(records, dataset, metric)
    mean = {
        r["method"]: round(r["metrics"][metric]["mean"], 3)
        for r in records
        if r["dataset"] == dataset and metric in r.get("metrics", {})
    }
    rank = ""
    if "oise" in order:
        better = [m for m in order if mean[m] != mean["oise"] and order.index(m) < order.index("oise")]
        rank = f"{len(better) + 1} of {len(order)}"
    best = sorted(m for m in order if mean[m] == mean[order[0]]) if order else []
    return rank, best, mean


def budget_comparison_markdown(
    low: dict, high: dict, metrics: tuple[str, ...] = ("deletion", "insertion", "pointing", "iou", "energy")
) -> str:
    """OISE and RISE of two evaluation suites side by side (e.g. ``full`` at 300 calls and ``paper`` at 5,000),
    per dataset of ``high`` and metric: each one's mean [95% CI] at both budgets, OISE's rank among every method
    of ``high`` on that dataset, and the best method there. Unpaired CIs (the suites' records keep summaries)."""

    def budget(payload, dataset):
        plan = next((p for p in payload["settings"]["plans"] if p["dataset"] == dataset), None)
        return None if plan is None else plan["oise_rise_budget"]

    def find(payload, dataset, method):
        return next((r for r in payload["records"] if r["dataset"] == dataset and r["method"] == method), None)

    reference = high["settings"].get("reference", "mean")
    forced = f"_{reference}" if " " not in reference else ""  # a reference forced on every dataset names the files
    lines = [
        f"# OISE and RISE at two budgets: suite `{low['suite']}` against suite `{high['suite']}` (ours)",
        "",
        "Made by `python -m saliency_research.bench.paper "
        f"compare{f' --reference {reference}' if forced else ''}` from "
        f"`evaluation_{low['suite']}{forced}.json` and `evaluation_{high['suite']}{forced}.json`; reference: "
        f"{reference}. Mean [95% CI] over the images; the rank is OISE's place among "
        "every method of the second suite on that dataset and metric (1 = best; methods equal to 3 decimals share a "
        "rank and are all named best); a blank: not measured.",
        "",
        "| dataset | metric | OISE, low | OISE, high | RISE, low | RISE, high | OISE's rank, high | best, high |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in high["records"]):
        if find(high, dataset, "oise") is None:
            continue
        lo, hi = budget(low, dataset), budget(high, dataset)
        for metric in metrics:
            cells = []
            for method in ("oise", "rise"):
                for payload in (low, high):
                    record = find(payload, dataset, method)
                    cells.append(ci_cell(record["metrics"][metric]) if record and metric in record["metrics"] else "")
            if not any(cells):
                continue
            rank, tied_best, _ = oise_place(high["records"], dataset, metric)
            best = " = ".join(tied_best)
            lines.append(
                f"| {dataset} ({lo} -> {hi} calls) | {metric} | " + " | ".join(cells) + f" | {rank} | {best} |"
            )
    lines.append("")
    return "\n".join(lines)


def ci_cell(summary: dict, signed: bool = False) -> str:
    """``0.110 [0.097, 0.123]`` (``signed``: ``+0.013 [+0.009, +0.017]``): a summary as results tables write it."""
    fmt = "+.3f" if signed else ".3f"
    return f"{summary['mean']:{fmt}} [{summary['ci95'][0]:{fmt}}, {summary['ci95'][1]:{fmt}}]"


def oise_settings_markdown(result: dict) -> str:
    """The tables of :func:`saliency_research.budget_study.oise_settings`: OISE's settings one at a time, and the
    seed-to-seed agreement at the paper's budget."""
    first = result["settings"][0]
    keys = list(first["metrics"])
    lines = [
        "# OISE's settings and determinism (ours, measured by this repository)",
        "",
        f"Command: `{result['command']}`. {result['dataset']}, n = {first['n']} images, {result['budget']} "
        f"model calls per map, runtime {result['runtime']}, machine {result['machine']}. One setting changed at "
        "a time from the paper's defaults (8x8 grid, p_init 0.3, step size 0.02, one chain) at reference "
        f"{result.get('reference', 'mean (not recorded: an older file)')} for OISE (unless the row changes it), "
        "RISE and deletion alike. "
        "'vs defaults' is the paired per-image difference with its 95% CI; 'seed agreement' is the Spearman "
        "rank correlation of the maps of seeds 0 and 1.",
        "",
        f"Scoring: {result.get('scoring', OLD_SCORING)}.",
        "",
        "| setting | "
        + " | ".join(METRIC_LABELS.get(k, k) for k in keys)
        + " | "
        + " | ".join(f"{k} vs defaults" for k in keys)
        + " | seed agreement | s / map |",
        "|---" * (2 * len(keys) + 3) + "|",
    ]
    for row in result["settings"]:
        cells = [ci_cell(row["metrics"][k]) for k in keys]
        cells += [ci_cell(row["vs_defaults"][k], signed=True) if "vs_defaults" in row else "-" for k in keys]
        lines.append(
            f"| {row['setting']} | " + " | ".join(cells) + f" | {ci_cell(row['rank_corr_other_seed'])} | "
            f"{row['seconds_per_map']:.3f} |"
        )
    lines += [
        "",
        f"## Seed-to-seed agreement at {result['agreement_budget']} model calls "
        f"(n = {result['seed_agreement'][0]['n']} images)",
        "",
        "| method | model calls | rank corr., seed 0 vs 1 | s / map |",
        "|---|---|---|---|",
    ]
    for row in result["seed_agreement"]:
        lines.append(
            f"| {row['method']} | {row['model_calls']} | {ci_cell(row['rank_corr_other_seed'])} | "
            f"{row['seconds_per_map']:.3f} |"
        )
    lines.append("")
    return "\n".join(lines)

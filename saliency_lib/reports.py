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
from scipy import stats

__all__ = ["summarise", "RESULTS_DIR", "METRIC_LABELS", "evaluation_markdown", "write_results", "load_results"]

RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
# The command that makes each experiment's result files (named in messages when one is missing).
COMMANDS = {"evaluation": "python -m saliency_lib evaluate", "reconstruction": "python -m saliency_lib reconstruct"}


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
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": round(mean, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)], "std": round(std, 4),
            "n": n}


METRIC_LABELS = {
    "rank_corr_same_model_other_seed": "rank corr., same model, other seed (yardstick)",
    "deletion": "deletion AUC (lower better)", "insertion": "insertion AUC (higher better)",
    "pointing": "pointing game", "iou": "IoU with box", "energy": "energy in box",
    "rank_corr_other_seed": "rank corr. with another seed (stability)",
    "rank_corr_top_layer": "rank corr., top layer randomised (lower better)",
    "rank_corr_all_layers": "rank corr., all layers randomised (lower better)",
    "abs_rank_corr_all_layers": "rank corr. of abs(map), all layers (lower better)",
}


def evaluation_markdown(payload: dict, order: tuple[str, ...] | None = None) -> str:
    """The evaluation's results (:func:`saliency_lib.evaluation.run_suite`) as markdown: one table per dataset,
    rows = methods, columns = metrics (mean [95% CI]), model calls and seconds per image.

    Args:
        payload: the result file's contents (``suite``, ``settings``, ``records``...).
        order: the datasets' order (default: the order their records come in).
    """
    order = order or tuple(dict.fromkeys(r["dataset"] for r in payload["records"]))
    records = sorted(payload["records"], key=lambda r: order.index(r["dataset"]))
    lines = [f"# Evaluation results: suite `{payload['suite']}` (ours, measured by this repository)", "",
             f"Command: `{payload.get('command', 'python -m saliency_lib evaluate')}`"
             f"{' (partial: not every dataset of the suite has run yet)' if payload.get('partial') else ''}. "
             f"Total {payload['settings']['total_seconds']} s (per dataset: "
             f"{payload['settings'].get('dataset_seconds')}) on {payload['settings']['machine']}.", ""]
    for dataset in order:
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
        lines.append("| method | " + " | ".join(METRIC_LABELS.get(k, k) for k in keys) + " | model calls | s / image |")
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
                cells = [f"{v['deletion']:.3f} / {v['insertion']:.3f} / {v['iou']:.2f}"
                         for v in r["per_image"].values()]
                lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["Notes:", ""] + [f"- {note}" for note in payload["settings"]["notes"]]
    return "\n".join(lines)


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

"""The budget curve's report: its tables, its figure and where OISE catches up, per post-processing.

A budget-curve record is one (dataset, method, post-processing, budget): ``postprocess`` names how the maps were
post-processed before scoring (:data:`POSTPROCESSING`; records without the key are older files, scored as
each method publishes its map). :data:`HEADLINE` is the row the README and the card quote.
"""

from __future__ import annotations

import torch

from saliency_lib.method import masks as M
from saliency_research.reports import (
    LOWER_IS_BETTER,
    METRIC_LABELS,
    OLD_SCORING,
    ci_cell,
    paired_verdict,
    reference_line,
)

__all__ = [
    "POSTPROCESSING",
    "HEADLINE",
    "PUBLISHED",
    "mean_fraction",
    "postprocess_maps",
    "catch_up",
    "budget_curve_markdown",
    "budget_curve_figure",
]

# How the maps are post-processed before they are scored, the same for OISE and RISE (the share of the mean
# subtracted before clipping at 0 and scaling to max 1; None: the raw map, OISE's sum S and RISE's expectation).
# PUBLISHED is each method as it publishes its map: OISE mean-subtracted and clipped, RISE raw (what the
# evaluation scored before the protocol was made the same for every method).
POSTPROCESSING = {"raw": None, "S - 0.96 mean, clip": 0.96, "S - mean, clip": 1.0}
PUBLISHED = "as each method publishes it"
HEADLINE = "raw"


def mean_fraction(name: str, method: str) -> float | None:
    """The share of the mean that post-processing ``name`` (a key of :data:`POSTPROCESSING` or :data:`PUBLISHED`)
    subtracts from ``method``'s (``"oise..."`` or ``"rise"``) raw maps before clipping; ``None``: kept raw."""
    if name == PUBLISHED:
        return 1.0 if method.startswith("oise") else None
    if name in POSTPROCESSING:
        return POSTPROCESSING[name]
    raise ValueError(f"name must be one of {[*POSTPROCESSING, PUBLISHED]}, got {name!r}")


def postprocess_maps(maps: torch.Tensor, name: str, method: str) -> torch.Tensor:
    """``maps`` ``(B, H, W)`` (a method's raw maps) post-processed as ``name`` (a key of :data:`POSTPROCESSING`
    or :data:`PUBLISHED`) for ``method`` (``"oise..."`` or ``"rise"``). Returns float ``(B, H, W)``."""
    fraction = mean_fraction(name, method)
    maps = maps.float()
    return maps if fraction is None else M.postprocess(maps, mean_fraction=fraction)


def _post(record: dict) -> str:
    return record.get("postprocess", PUBLISHED)


def catch_up(payload: dict, postprocess: str | None = HEADLINE) -> list[dict]:
    """For each dataset, OISE variant and metric of a budget curve under one post-processing (``None``: every
    one): the verdict at every budget and the smallest budget from which OISE is never worse than RISE (paired
    95% CI), or ``None`` if it never catches up."""
    rows = []
    records = [r for r in payload["records"] if postprocess is None or _post(r) == postprocess]
    keys = dict.fromkeys((r["dataset"], _post(r), r["method"]) for r in records if "vs_rise" in r)
    for dataset, post, method in keys:
        mine = sorted(
            (r for r in records if (r["dataset"], _post(r), r["method"]) == (dataset, post, method)),
            key=lambda r: r["budget"],
        )
        for metric in mine[0]["vs_rise"]:
            verdicts = [(r["budget"], paired_verdict(metric, r["vs_rise"][metric])) for r in mine]
            from_budget = None
            for i, (budget, _) in enumerate(verdicts):
                if all(v != "RISE better" for _, v in verdicts[i:]):
                    from_budget = budget
                    break
            rows.append(
                {
                    "dataset": dataset,
                    "postprocess": post,
                    "method": method,
                    "metric": metric,
                    "verdicts": verdicts,
                    "never_worse_from": from_budget,
                }
            )
    return rows


def _metric_tables(rows: list[dict]) -> list[str]:
    lines = []
    methods = list(dict.fromkeys(r["method"] for r in rows))
    budgets = sorted({r["budget"] for r in rows})
    for metric in rows[0]["metrics"]:
        lines += [f"#### {METRIC_LABELS.get(metric, metric)}", ""]
        diffs = [m for m in methods if m != "rise"]
        lines.append("| budget | " + " | ".join(methods) + " | " + " | ".join(f"{m} - rise" for m in diffs) + " |")
        lines.append("|---" * (1 + len(methods) + len(diffs)) + "|")
        for b in budgets:
            by = {r["method"]: r for r in rows if r["budget"] == b}
            cells = [ci_cell(by[m]["metrics"][metric]) if m in by else "-" for m in methods]
            cells += [ci_cell(by[m]["vs_rise"][metric], signed=True) if m in by else "-" for m in diffs]
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def budget_curve_markdown(payload: dict) -> str:
    """The budget curve's tables: per dataset, post-processing and metric, each method's mean [95% CI] at every
    budget and the paired difference OISE - RISE; then where (if anywhere) OISE catches up."""
    records = payload["records"]
    lines = [
        "# Budget curve: OISE (1 chain, several chains) and RISE from 100 to 5,000 model calls per image "
        "(ours, measured by this repository)",
        "",
        f"Command: `{payload.get('command', '')}`. Same images, same seed for every budget; OISE's maps at "
        "smaller budgets are the prefixes of its 5,000-call run (identical to separate runs, by construction "
        "of its random numbers); RISE runs once per budget. 'OISE - RISE' is the paired per-image difference "
        "with its 95% CI (Student t).",
        "",
        (
            "Scoring (the same for both methods, `saliency_lib.evaluation.metrics`): energy in the box and IoU's "
            "threshold on min-max scaled maps; deletion and insertion take tied pixels in a seeded random order. "
            "Each post-processing is its own section: `raw` (OISE's sum S, RISE's expectation map; the headline), "
            "the authors' `S - 0.96 mean, clip`, the paper's `S - mean, clip` (both applied to OISE and RISE "
            f"alike), and `{PUBLISHED}` (OISE clipped, RISE raw: how earlier results scored them)."
            if all("postprocess" in r for r in records)
            else f"Scoring: {OLD_SCORING}."
        ),
        "",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        rows = [r for r in records if r["dataset"] == dataset]
        settings = payload.get("settings", {}).get(dataset, {})
        planned = settings.get("images_planned", rows[0]["n"])
        partial = f" of {planned} planned: a partial run" if planned != rows[0]["n"] else ""
        lines += [
            f"## {dataset} (n = {rows[0]['n']}{partial}"
            + f"; runtime {settings.get('runtime', '?')}; seconds per method: {settings.get('seconds')})",
            "",
            reference_line(rows),
            "",
        ]
        for post in dict.fromkeys(_post(r) for r in rows):
            lines += [f"### {dataset}, post-processing: {post}", ""]
            lines += _metric_tables([r for r in rows if _post(r) == post])
    lines += [
        "## Where does OISE catch up? (paired 95% CI of OISE - RISE at the same budget)",
        "",
        "| dataset | post-processing | OISE | metric | verdict at each budget | never worse than RISE from |",
        "|---|---|---|---|---|---|",
    ]
    for row in catch_up(payload, postprocess=None):
        verdicts = ", ".join(f"{b}: {v}" for b, v in row["verdicts"])
        lines.append(
            f"| {row['dataset']} | {row['postprocess']} | {row['method']} | {row['metric']} | {verdicts} | "
            f"{row['never_worse_from'] if row['never_worse_from'] is not None else 'never (up to 5000)'} |"
        )
    lines.append("")
    return "\n".join(lines)


def budget_curve_figure(payload: dict, postprocess: str = HEADLINE):
    """Per dataset, two rows against model calls per image (log x): the metric (mean, 95% CI bars) for each
    method, and the paired difference OISE - RISE (mean, 95% CI; OISE has caught up where the bar reaches 0).
    One column each for deletion, insertion and the pointing game; the records of ``postprocess`` (older files
    without post-processing rows: all of them)."""
    import matplotlib.pyplot as plt

    records = [r for r in payload["records"] if _post(r) == postprocess] or payload["records"]
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    metrics = ["deletion", "insertion", "pointing"]
    figure, axes = plt.subplots(2 * len(datasets), 3, figsize=(13, 6.4 * len(datasets)), squeeze=False)
    styles = {"rise": ("tab:orange", "s"), "oise_1chain": ("tab:blue", "o")}
    for row, dataset in enumerate(datasets):
        rows = [r for r in records if r["dataset"] == dataset]
        for col, metric in enumerate(metrics):
            axis, below = axes[2 * row][col], axes[2 * row + 1][col]
            if metric not in rows[0]["metrics"]:
                for a in (axis, below):
                    a.text(
                        0.5, 0.5, f"{dataset}: no boxes,\nno pointing game", ha="center", va="center",
                        transform=a.transAxes,
                    )  # fmt: skip
                    a.set_axis_off()
                continue
            for method in dict.fromkeys(r["method"] for r in rows):
                mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["budget"])
                colour, marker = styles.get(method, ("tab:green", "^"))
                for a, key in ((axis, "metrics"), (below, "vs_rise")):
                    if key not in mine[0]:
                        continue
                    xs = [r["model_calls"] for r in mine]
                    means = [r[key][metric]["mean"] for r in mine]
                    errors = [
                        [m - r[key][metric]["ci95"][0] for m, r in zip(means, mine)],
                        [r[key][metric]["ci95"][1] - m for m, r in zip(means, mine)],
                    ]
                    label = method if key == "metrics" else f"{method} - rise"
                    a.errorbar(xs, means, yerr=errors, label=label, color=colour, marker=marker, capsize=3)
            below.axhline(0, color="black", linewidth=0.8)
            for a, title in (
                (axis, METRIC_LABELS.get(metric, metric)),
                (below, f"OISE - RISE, paired ({'below' if metric in LOWER_IS_BETTER else 'above'} 0: OISE better)"),
            ):
                a.set_xscale("log")
                a.set_xlabel("model calls per image")
                a.set_title(f"{dataset} (n = {rows[0]['n']}): {title}", fontsize=9)
                a.legend(fontsize=7)
    figure.suptitle(f"Budget curve (ours), maps post-processed: {postprocess}; mean and 95% CI", fontsize=10)
    figure.tight_layout()
    return figure

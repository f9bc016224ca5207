"""The numbers that the README, the docs and notebook 04's markdown quote from the results files, written by cog
(https://cog.readthedocs.io, the ``test`` extra).

Each generated block sits between cog's markers, inside HTML comments so that the rendered page hides them::

    <!-- [[[cog from saliency_research.bench import sync_docs; sync_docs.block('NAME')]]] -->
    ...text written by BLOCKS[NAME] from benchmarks/results...
    <!-- [[[end]]] -->

Usage (``make docs`` runs the first, then rewrites the notebooks' index)::

    python -m cogapp -n utf-8 -r README.md docs/*.md notebooks/*.ipynb       # rewrite every block
    python -m cogapp -n utf-8 --check README.md docs/*.md notebooks/*.ipynb  # fail if one is stale

``make test`` runs the check (``tests/test_sync_docs.py``), so a re-run of an experiment cannot leave a stale copy of
its numbers behind: re-run, then ``make docs``, then read the diff.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from saliency_lib.course import tutorial
from saliency_lib.io import paths
from saliency_lib.io.assets import manifest_table
from saliency_lib.plots import agreement_table
from saliency_research.bench import protocol_choices, threads
from saliency_research.reports import ci_cell, oise_place, paired_verdict

REPO = paths.REPO_ROOT
RESULTS = paths.RESULTS_DIR


def _results(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _ci(summary: dict, signed: bool = True) -> str:
    """``+0.013 [+0.009, +0.017]``: :func:`ci_cell`, signed by default (most quotes are differences)."""
    return ci_cell(summary, signed)


def _pct(summary: dict) -> str:
    """``+2.5% [-6.1%, +11.1%]``: a difference of shares, as the Part B tables write it."""
    low, high = summary["ci95"]
    return f"{summary['mean']:+.1%} [{low:+.1%}, {high:+.1%}]"


def _record(payload: dict, dataset: str, method: str) -> dict:
    return next(r for r in payload["records"] if r["dataset"] == dataset and r["method"] == method)


def _top(payload: dict, dataset: str, method: str, post: str = "raw") -> dict:
    """The budget-curve record of ``method`` on ``dataset`` at the largest budget, maps post-processed ``post``."""
    mine = [
        r
        for r in payload["records"]
        if r["dataset"] == dataset and r["method"] == method and r.get("postprocess", "raw") == post
    ]
    return max(mine, key=lambda r: r["budget"])


VERDICT_WORDS = {"OISE better": "OISE better", "RISE better": "RISE better", "tie": "no difference shown"}


def _verdict(metric: str, record: dict) -> str:
    return VERDICT_WORDS[paired_verdict(metric, record["vs_rise"][metric])]


def _diff(metric: str, record: dict) -> str:
    return f"{_ci(record['vs_rise'][metric])} ({_verdict(metric, record)})"


def readme_finding() -> str:
    """The README's finding, from the budget curve (re-scored: every method's raw map, ties explicit), the
    paper suite's pointing game, the protocol choices, the cross-check against the authors' loop and Part B."""
    import torch

    from saliency_research.budget_report import PUBLISHED, catch_up
    from saliency_research.reports import summarise

    paper, grey = _results("evaluation_paper.json"), _results("evaluation_paper_mean.json")
    curve = _results("budget_curve.json")
    cross = next(
        t
        for t in _results("authors_crosscheck.json")["tables"]
        if t["reference"] == "black" and t["rule"] == "authors" and t["budget"] == 5000 and t["n"] >= 50
    )
    oise_cross = cross["OISE"]
    clutter = _record(paper, "clutter", "oise")
    lines = [
        f"- **Our OISE is the authors' OISE.** Against a reference written step by step from the authors' code "
        f"(Fashion-MNIST, {cross['n']} images, {cross['budget']:,} calls), its maps agree with theirs as well as "
        f"either agrees with itself across seeds (Spearman, cross minus within: "
        f"{_ci(oise_cross['spearman']['cross_minus_within'])}), and deletion AUC differs by "
        f"{_ci(oise_cross['deletion']['package_minus_reference'])}, read against the package's own seed-to-seed "
        f"difference ({_ci(oise_cross['deletion']['package_seed0_minus_seed1'])}) "
        "([authors_crosscheck.md](benchmarks/results/authors_crosscheck.md)"
        + (
            ""
            if _rescored("authors_crosscheck.json")
            else "; scored before the scoring protocol of docs/results.md, with ties in pixel order on both sides and "
            "the same "
            "post-processing for both, so like with like"
        )
        + ").",
        f"- **The masked-pixel value decides what a black-box map shows.** On black cluttered canvases the authors' "
        f"grey made OISE point at the item in {_record(grey, 'clutter', 'oise')['metrics']['pointing']['mean']:.0%} "
        f"of the canvases (a random map: {_record(grey, 'clutter', 'random')['metrics']['pointing']['mean']:.0%}; "
        "[evaluation_paper_mean.md](benchmarks/results/evaluation_paper_mean.md)); "
        f"with black, the canvas's own background, in {clutter['metrics']['pointing']['mean']:.0%} "
        f"(RISE {_record(paper, 'clutter', 'rise')['metrics']['pointing']['mean']:.0%}; 500 canvases, 5,000 calls, "
        "[evaluation_paper.md](benchmarks/results/evaluation_paper.md); the pointing game reads only a map's "
        "maximum, which OISE's post-processing and the order of ties do not move).",
    ]
    one = {d: _top(curve, d, "oise_1chain") for d in ("clutter", "fashion")}
    eight = {d: _top(curve, d, "oise_8chains") for d in ("clutter", "fashion")}
    n = {d: one[d]["n"] for d in one}
    lines.append(
        f"- **Scored the same way, RISE is as faithful as OISE or more at the paper's budget.** Every method's raw "
        f"map, ties in a seeded random order, OISE (one chain, as the paper) minus RISE at "
        f"{one['clutter']['budget']:,} calls, paired over {n['clutter']} images per dataset, black: deletion "
        f"{_diff('deletion', one['clutter'])} and insertion {_diff('insertion', one['clutter'])} on the cluttered "
        f"canvases, {_diff('deletion', one['fashion'])} and {_diff('insertion', one['fashion'])} on Fashion-MNIST "
        f"(deletion: lower is better). With 8 chains: {_diff('deletion', eight['clutter'])}, "
        f"{_diff('insertion', eight['clutter'])}, {_diff('deletion', eight['fashion'])}, "
        f"{_diff('insertion', eight['fashion'])} ([budget_curve.md](benchmarks/results/budget_curve.md)).",
    )
    published = _top(curve, "clutter", "oise_1chain", PUBLISHED)
    clipped = _top(curve, "clutter", "oise_1chain", "S - mean, clip")
    raw = one["clutter"]
    lines.append(
        "- **OISE's lead in the box was its post-processing.** Energy in the box on the cluttered canvases, OISE "
        f"(one chain) minus RISE at {raw['budget']:,} calls: {_ci(published['vs_rise']['energy'])} when OISE's "
        f"map is mean-subtracted and clipped and RISE's is not (as each method publishes its map, and as our "
        f"earlier results scored them), {_ci(raw['vs_rise']['energy'])} with both raw and "
        f"{_ci(clipped['vs_rise']['energy'])} with both clipped. IoU with the box moves the other way: "
        f"{_ci(published['vs_rise']['iou'])} as published, {_ci(raw['vs_rise']['iou'])} raw, "
        f"{_ci(clipped['vs_rise']['iou'])} both clipped; the pointing game: {_diff('pointing', raw)} "
        "(budget_curve.md has every post-processing).",
    )
    rows = catch_up(curve)
    wins: dict[str, list[str]] = {}
    losses = []
    metric_names = {"iou": "IoU", "energy": "energy in the box", "pointing": "pointing"}
    for row in rows:
        chains = "1 chain" if row["method"] == "oise_1chain" else "8 chains"
        where = (
            f"{metric_names.get(row['metric'], row['metric'])} on {DATASET_NAMES.get(row['dataset'], row['dataset'])}"
        )
        better = [budget for budget, verdict in row["verdicts"] if verdict == "OISE better"]
        if better:
            span = "every budget" if len(better) == len(row["verdicts"]) else ", ".join(f"{b:,}" for b in better)
            wins.setdefault(where, []).append(f"{chains}: {span}")
        if row["method"] == "oise_1chain" and row["verdicts"][-1][1] == "RISE better":
            losses.append(where)
    wins_text = "; ".join(f"{where} ({', '.join(spans)})" for where, spans in wins.items()) or "no metric"
    lines.append(
        f"- **Budget.** From 100 to 5,000 calls ({n['clutter']} images per dataset, black, raw maps), OISE is better "
        "than RISE (paired 95% CI) on "
        + wins_text
        + ". At 5,000 calls RISE is better on "
        + (", ".join(losses) or "no metric")
        + " ([budget_curve.md](benchmarks/results/budget_curve.md)).",
    )
    choices = _results("protocol_choices.json")["datasets"]
    counts = []
    for dataset, entry in choices.items():
        for mode in ("deletion", "insertion"):
            verdicts = [r[mode]["verdict"] for r in entry["grid"]]
            counts.append(
                f"{DATASET_NAMES.get(dataset, dataset)} {mode}: RISE better in {verdicts.count('RISE better')}, "
                f"OISE better in {verdicts.count('OISE better')}, no difference shown in {verdicts.count('tie')}"
            )
    combos = {len(e["grid"]) for e in choices.values()}
    lines.append(
        f"- **The authors' and RISE's own protocol choices** (which OISE map, RISE's mask density, RISE's metric; "
        f"{' / '.join(map(str, sorted(combos)))} combinations per dataset, 5,000 calls): " + "; ".join(counts) + " "
        "([protocol_choices.md](benchmarks/results/protocol_choices.md)).",
    )
    part_b, part_b_grey = _results("reconstruction_paper.json"), _results("reconstruction_paper_mean.json")
    fractions = ("0.5", "0.6", "0.7")

    def gan_minus_classical(result: dict, f: str) -> dict:
        per_image = result["per_image_agreement"]
        return summarise(torch.tensor(per_image["oise_generated"][f]) - torch.tensor(per_image["oise_biharmonic"][f]))

    agreement = {name: part_b["conditions"][name]["0.5"]["agreement"]["mean"] for name in part_b["conditions"]}
    lines.append(
        "- **Part B: whether the generator matters depends on the map that chose the region.** Regenerating half "
        f"of OISE's region with our DCGAN keeps the class in {agreement['oise_generated']:.1%} of the variations, "
        f"a classical inpainting of the same pixels in {agreement['oise_biharmonic']:.1%}, a random region "
        f"regenerated in {agreement['random_generated']:.1%}. GAN minus inpainting, paired, at "
        + ", ".join(f"{float(f):.0%}" for f in fractions)
        + " of the region: "
        + ", ".join(_pct(gan_minus_classical(part_b, f)) for f in fractions)
        + "; with the regions of the grey-reference maps: "
        + ", ".join(_pct(gan_minus_classical(part_b_grey, f)) for f in fractions)
        + f" ({part_b['images']} images, raw maps at {part_b['settings']['saliency_calls']:,} calls; "
        "[reconstruction_paper.md](benchmarks/results/reconstruction_paper.md), [reconstruction_paper_mean.md]"
        "(benchmarks/results/reconstruction_paper_mean.md)).",
    )
    box = {m: _verdict(m, raw) for m in ("pointing", "iou", "energy")}
    lines.append(
        "- So the paper's claim that OISE localises better than existing methods is **not reproduced** on the data "
        f"that ships here: against RISE, scored the same way at {raw['budget']:,} calls (pointing game: "
        f"{box['pointing']}; IoU: {box['iou']}; energy in the box: {box['energy']}), the localisation verdict depends "
        "on the metric. What we cannot test offline is "
        "the paper's exact setting (ImageNet, ResNet50), for which `evaluate --suite boxes` is ready "
        "([docs/scale-out.md](docs/scale-out.md))."
    )
    return "\n".join(lines)


def _rescored(name: str) -> bool:
    """Whether the results file ``name`` was scored under the protocol of issue 29 (each kind says so its way)."""
    payload = _results(name)
    if name.startswith("evaluation_"):
        return "scoring" in payload.get("settings", {})
    if name.startswith("budget_curve"):
        return all("postprocess" in r for r in payload["records"])
    if name.startswith("reconstruction_"):
        return "oise_map" in payload.get("settings", {})
    return "scoring" in payload  # paper_oise_settings, protocol_choices, authors_crosscheck


SCORED_FILES = (
    "budget_curve.json",
    "budget_curve_mean.json",
    "evaluation_full.json",
    "evaluation_full_mean.json",
    "evaluation_paper.json",
    "evaluation_paper_mean.json",
    "protocol_choices.json",
    "paper_oise_settings.json",
    "paper_oise_settings_mean.json",
    "reconstruction_paper.json",
    "reconstruction_paper_mean.json",
    "reconstruction_full.json",
    "reconstruction_full_mean.json",
    "authors_crosscheck.json",
)


def scoring_status() -> str:
    """The scoring protocol (one home: ``saliency_research.suites.SCORING``) and which results files were
    scored under it, read from the files themselves."""
    from saliency_research.suites import SCORING

    done = [name for name in SCORED_FILES if _rescored(name)]
    old = [name for name in SCORED_FILES if name not in done]
    return "\n".join(
        [
            f"**The scoring protocol** (ours, the same for every method): {SCORING}.",
            "",
            "- Scored under it: " + (", ".join(f"`{n[:-5]}`" for n in done) or "none yet") + ".",
            "- Scored before it (OISE's clipped map against RISE's raw map, energy without min-max, ties in pixel "
            "order; read their deletion, insertion, energy, IoU and seed-agreement numbers as superseded, their "
            "pointing game as valid: it reads only the maximum): "
            + (", ".join(f"`{n[:-5]}`" for n in old) or "none")
            + ".",
        ]
    )


def part_b_paper() -> str:
    """Part B at 5,000 calls: OISE's region regenerated, inpainted, filled; a random region; both references."""
    import torch

    from saliency_research.reports import summarise

    fractions = ("0.5", "0.7", "0.9")
    lines = [
        "| maps' masked pixels | region, fill | " + " | ".join(f"{float(f):.0%}" for f in fractions) + " |",
        "|---|---|" + "---|" * len(fractions),
    ]
    for stem in ("reconstruction_paper", "reconstruction_paper_mean"):
        result = _results(f"{stem}.json")
        reference = result.get("reference", "mean")
        per_image = result["per_image_agreement"]
        rows = [
            ("OISE region, GAN latent search", "oise_generated"),
            ("OISE region, biharmonic inpainting", "oise_biharmonic"),
            (f"OISE region, filled with {'black' if reference == 'black' else 'the mean'}", f"oise_{reference}"),
            ("random region, GAN latent search", "random_generated"),
            ("random region, biharmonic inpainting", "random_biharmonic"),
        ]
        for label, name in rows:
            cells = []
            for f in fractions:
                a = result["conditions"][name][f]["agreement"]
                cells.append(f"{a['mean']:.1%} [{a['ci95'][0]:.1%}, {a['ci95'][1]:.1%}]")
            lines.append(f"| {reference} | {label} | " + " | ".join(cells) + " |")
        cells = [
            _pct(
                summarise(torch.tensor(per_image["oise_generated"][f]) - torch.tensor(per_image["oise_biharmonic"][f]))
            )
            for f in fractions
        ]
        lines.append(f"| {reference} | OISE region, GAN - biharmonic (paired) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "(`reconstruction_paper.md` and `reconstruction_paper_mean.md` hold every fraction, RISE's region and the "
        "blur control.)",
    ]
    return "\n".join(lines)


DATASET_NAMES = {"fashion": "Fashion-MNIST", "clutter": "cluttered canvases", "planted": "planted canvases"}


def budget_catch_up() -> str:
    """From the black budget curve: OISE and RISE at 5,000 calls, the paired gap, and from which budget OISE is
    no worse than RISE (paired 95% CI), per dataset and metric."""
    from saliency_research.budget_report import HEADLINE, catch_up

    payload = _results("budget_curve.json")
    rows = catch_up(payload)
    # the headline's records: every method's raw map (older files without post-processing rows: all)
    records = [r for r in payload["records"] if r.get("postprocess", HEADLINE) == HEADLINE]
    lines = [
        "| data | metric | OISE 1 chain @5000 | OISE 8 chains @5000 | RISE @5000 | OISE 1 chain - RISE, paired "
        "| OISE no worse than RISE from (1 chain / 8 chains) |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        top = max(r["budget"] for r in records if r["dataset"] == dataset)
        at = {r["method"]: r for r in records if r["dataset"] == dataset and r["budget"] == top}
        for metric in at["rise"]["metrics"]:
            starts = []
            for method in ("oise_1chain", "oise_8chains"):
                row = next(
                    r for r in rows if r["dataset"] == dataset and r["method"] == method and r["metric"] == metric
                )
                starts.append(f"{row['never_worse_from']:,}" if row["never_worse_from"] is not None else "never")
            lines.append(
                f"| {DATASET_NAMES.get(dataset, dataset)} | {metric} | "
                f"{_ci(at['oise_1chain']['metrics'][metric], False)} | "
                f"{_ci(at['oise_8chains']['metrics'][metric], False)} | "
                f"{_ci(at['rise']['metrics'][metric], False)} | {_ci(at['oise_1chain']['vs_rise'][metric])} | "
                f"{' / '.join(starts)} |"
            )
    settings = payload["settings"]
    n = {d: next(r["n"] for r in records if r["dataset"] == d) for d in settings}
    lines += [
        "",
        "("
        + "; ".join(
            f"{DATASET_NAMES.get(d, d)}: n = {n[d]}, masked pixels {s['reference']}" for d, s in settings.items()
        )
        + f"; budgets {', '.join(f'{b:,}' for b in next(iter(settings.values()))['budgets'])}; `budget_curve.md` has "
        "every budget and every post-processing. Each method's raw map, ties in a seeded random order. Deletion: "
        "lower is better. 'never': at some budget up to 5,000 RISE is still better.)",
    ]
    return "\n".join(lines)


def oise_settings() -> str:
    """OISE's settings one at a time (black reference) and its seed agreement at 5,000 calls, from
    ``paper_oise_settings.json``: the rows of :func:`saliency_research.reports.oise_settings_markdown`'s tables."""
    from saliency_research.reports import oise_settings_markdown

    text = oise_settings_markdown(_results("paper_oise_settings.json"))
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    result = _results("paper_oise_settings.json")
    return "\n".join(
        [
            *tables[0],
            "",
            f"Seed-to-seed agreement at {result['agreement_budget']:,} calls (n = "
            f"{result['seed_agreement'][0]['n']} images):",
            "",
            *tables[1],
        ]
    )


def _box(record: dict) -> str:
    metrics = record["metrics"]
    return f"{metrics['pointing']['mean']:.3f} / {metrics['iou']['mean']:.3f}" if "pointing" in metrics else "no boxes"


def reference_table() -> str:
    """OISE (one chain) and RISE at 5,000 calls under black (each dataset's own) and the authors' grey, per
    dataset, from the budget curves (every method's raw map, ties explicit): pointing and IoU, the paired
    OISE - RISE differences."""
    files = (
        ("black (default)", "budget_curve.json"),
        ("dataset mean, grey (the authors')", "budget_curve_mean.json"),
    )
    lines = [
        "| data | masked pixels become | n | OISE pointing / IoU | RISE pointing / IoU | OISE - RISE deletion, "
        "paired | OISE - RISE insertion, paired |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in ("clutter", "fashion"):
        for label, name in files:
            payload = _results(name)
            oise, rise = _top(payload, dataset, "oise_1chain"), _top(payload, dataset, "rise")
            lines.append(
                f"| {DATASET_NAMES.get(dataset, dataset)} | {label} | {oise['n']} | {_box(oise)} | {_box(rise)} | "
                f"{_ci(oise['vs_rise']['deletion'])} | {_ci(oise['vs_rise']['insertion'])} |"
            )
    return "\n".join(lines)


METHOD_NAMES = {
    "oise": "OISE",
    "rise": "RISE",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
    "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency",
    "lime": "LIME",
    "random": "random",
}
PAPER_ROWS = (
    ("clutter", ("deletion", "insertion", "pointing", "iou", "energy")),
    ("fashion", ("deletion", "insertion")),
)
PAPER_METRICS = {
    "deletion": "deletion (lower better)",
    "insertion": "insertion",
    "pointing": "pointing game",
    "iou": "IoU with box",
    "energy": "energy in box",
}


def paper_suite(name: str = "evaluation_paper.json") -> str:
    """OISE and RISE at 5,000 calls on 500 images per dataset (the paper suite): mean [95% CI], the paired
    difference, OISE's rank among the suite's methods and the best of them, per dataset and metric."""
    payload = _results(name)
    records = payload["records"]
    lines = [
        "| data (n) | metric | OISE | RISE | OISE - RISE, paired | OISE's rank | best |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, metrics in PAPER_ROWS:
        oise, rise = _record(payload, dataset, "oise"), _record(payload, dataset, "rise")
        for metric in metrics:
            rank, best, mean = oise_place(records, dataset, metric)
            best_text = " = ".join(
                name if name in ("OISE", "RISE") else f"{name} {mean[m]:.3f}"
                for m, name in ((m, METHOD_NAMES[m]) for m in best)
            )
            lines.append(
                f"| {DATASET_NAMES.get(dataset, dataset)} ({oise['n']}) | {PAPER_METRICS[metric]} | "
                f"{_ci(oise['metrics'][metric], signed=False)} | {_ci(rise['metrics'][metric], signed=False)} | "
                f"{_ci(oise['vs_rise'][metric])} | {rank} | {best_text} |"
            )
    return "\n".join(lines)


def paper_suite_findings(name: str = "evaluation_paper.json") -> str:
    """What the paper suite says, from its file: how it was run, who each paired difference favours, and the
    seed-to-seed agreements."""
    payload = _results(name)
    records = payload["records"]
    seconds = sum(r["wall_seconds"] for r in records)
    lines = [
        f"- **How it ran:** {len(records)} parts (dataset x method), {seconds:,.0f} s of one-thread record time in "
        f"all; {'under the scoring protocol above' if _rescored(name) else 'under the old scoring (superseded)'}."
    ]
    for dataset, metrics in PAPER_ROWS:
        oise = _record(payload, dataset, "oise")
        sides: dict[str, list[str]] = {"OISE better": [], "RISE better": [], "tie": []}
        for metric in metrics:
            summary = oise["vs_rise"][metric]
            sides[paired_verdict(metric, summary)].append(f"{PAPER_METRICS[metric]} {_ci(summary)}")
        parts = [f"{who[:4]} ahead on {', '.join(what)}" for who, what in sides.items() if what and who != "tie"]
        if sides["tie"]:
            parts.append(f"no difference shown on {', '.join(sides['tie'])}")
        lines.append(f"- **{DATASET_NAMES.get(dataset, dataset)}** (OISE - RISE, paired): {'; '.join(parts)}.")
    agreements = []
    for dataset in ("clutter", "fashion", "planted"):
        pair = [_record(payload, dataset, m).get("seed_agreement") for m in ("oise", "rise")]
        if all(pair):
            agreements.append(
                f"{DATASET_NAMES.get(dataset, dataset)} OISE {pair[0]['mean']:.3f}, RISE {pair[1]['mean']:.3f}"
            )
    n = _record(payload, "clutter", "oise")["seed_agreement"]["n"]
    lines.append(
        f"- **Seed-to-seed agreement** (Spearman, "
        f"{'tied pixels at their average rank' if _rescored(name) else 'ties in pixel order'}, seeds 0 and 1, "
        f"{n} images): " + "; ".join(agreements) + "."
    )
    return "\n".join(lines)


def threads_speed(prefix: str = "benchmarks/results/") -> str:
    """The black box's speed at the default threads, from ``threads.json`` (``python -m
    saliency_research.bench.threads``)."""
    result = _results("threads.json")
    photo_map, conditions = result["photo_map"], result["conditions"]

    def row(phase: str, workload: str) -> dict:
        rows = result["phases"][phase]["models"]["efficientnet-lite0"]["workloads"]
        return next(r for r in rows if r["workload"] == workload)

    quiet, busy = row("quiet", "oise, 1 chain"), row("busy", "oise, 1 chain")
    per_call = photo_map["default"] / photo_map["steps"] * 1e3
    return (
        f"One {photo_map['steps']:,}-call OISE map of a 224 px photograph (EfficientNet-Lite0 in ONNX Runtime, one "
        f"chain) takes **{photo_map['default']:.1f} s** at the default threads and "
        f"{photo_map['one thread']:.1f} s with one thread ({conditions['cpu']}, {conditions['cores']} cores, "
        f"PyTorch's default of {conditions['default_threads']} threads, no other job; load average "
        f"{photo_map['load_before']} at the start, the busy phase just ended; {conditions['date'][:10]}). "
        f"That is {per_call:.2f} ms per model call, {photo_map['default ratio']:.2f}x the best bare ONNX Runtime "
        f"call timed just before each run (median of {photo_map['rounds']}). In the benchmark's shorter runs "
        f"({quiet['images']} calls, {len(quiet['default']['all_ms'])} rounds) the loop took "
        f"{quiet['default']['ratio']:.2f}x the best bare call on a quiet machine (load average "
        f"{result['phases']['quiet']['load_before']}; the configuration it replaced: "
        f"{quiet['before']['ratio']:.2f}x) and, with another process holding one core, "
        f"{threads.paired_ratio(busy, 'default'):.2f}x the time of one thread "
        f"(before: {threads.paired_ratio(busy, 'before'):.2f}x; medians of the rounds' ratios) "
        f"([threads.md]({prefix}threads.md), `python -m saliency_research.bench.threads`)."
    )


# name -> the text of the block, written from the results files (one function per block, no number typed here)
BLOCKS: dict[str, Callable[[], str]] = {
    "readme-finding": readme_finding,
    "scoring-status": scoring_status,
    "part-b-paper": part_b_paper,
    "budget-catch-up": budget_catch_up,
    "oise-settings": oise_settings,
    "reference-table": reference_table,
    "paper-suite": paper_suite,
    "paper-suite-findings": paper_suite_findings,
    "paper-suite-mean": lambda: paper_suite("evaluation_paper_mean.json"),
    "paper-suite-mean-findings": lambda: paper_suite_findings("evaluation_paper_mean.json"),
    "threads-speed-readme": threads_speed,
    "threads-speed-docs": lambda: threads_speed("../benchmarks/results/"),
    "part-b-full": lambda: agreement_table(_results("reconstruction_full.json")),
    "asset-table": lambda: manifest_table().rstrip("\n"),
    "protocol-choices-card": lambda: protocol_choices.card_text(_results("protocol_choices.json")),
    "protocol-choices-notebook": lambda: protocol_choices.notebook_text(_results("protocol_choices.json")),
    # The one table of times (learner and computer, from benchmarks/results/notebooks.json).
    "notebook-times-readme": lambda: tutorial.index_table("notebooks/", machine=True),
    "notebook-times-docs": lambda: tutorial.index_table("../notebooks/", machine=True),
}


def block(name: str) -> None:
    """Write block ``name`` as cog's output (called from the marker ``[[[cog import sync_docs;
    sync_docs.block('NAME')]]]``). In a notebook, whose file is JSON, the marker and the block are lines of a markdown
    cell's ``source`` list, so each line is written as nbformat writes it: a JSON string ending in a newline and a
    comma (cog indents them as the marker)."""
    import cog

    text = BLOCKS[name]()
    if cog.inFile.endswith(".ipynb"):
        text = "\n".join(json.dumps(line + "\n", ensure_ascii=False) + "," for line in text.split("\n"))
    cog.out(text)

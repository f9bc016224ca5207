"""Write the numbers that the README, the docs and the notebooks' markdown quote from the results files, or check
that they are current.

A generated block sits between two markers, in a markdown file or in a notebook's markdown cell::

    <!-- generated:NAME (python benchmarks/sync_docs.py) -->
    ...text written by BLOCKS[NAME] from benchmarks/results...
    <!-- /generated:NAME -->

Usage::

    python benchmarks/sync_docs.py           # rewrite every block from the results files
    python benchmarks/sync_docs.py --check   # exit 1 and name each block whose text is stale

``make test`` runs the check (``tests/test_sync_docs.py``), so a re-run of an experiment cannot leave a stale copy of
its numbers behind: re-run, then ``python benchmarks/sync_docs.py``, then read the diff.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

import protocol_choices  # noqa: E402

from saliency_lib.course import schedule, tutorial  # noqa: E402
from saliency_lib.evaluation.reports import ci_cell  # noqa: E402
from saliency_lib.generative.reconstruction_experiment import markdown_table  # noqa: E402
from saliency_lib.io.assets import manifest_table  # noqa: E402


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


def readme_finding() -> str:
    """The README's five-line finding, from the paper suite, the budget curve, the protocol choices, the
    cross-check against the authors' loop and Part B."""
    import torch

    from saliency_lib.evaluation.reports import catch_up, summarise

    paper, grey = _results("evaluation_paper.json"), _results("evaluation_paper_mean.json")
    cross = next(
        t
        for t in _results("authors_crosscheck.json")["tables"]
        if t["reference"] == "black" and t["rule"] == "authors" and t["budget"] == 5000 and t["n"] >= 50
    )
    oise_cross = cross["OISE"]
    clutter, fashion = _record(paper, "clutter", "oise"), _record(paper, "fashion", "oise")
    lines = [
        f"- **Our OISE is the authors' OISE.** Against a reference written step by step from the authors' code "
        f"(Fashion-MNIST, {cross['n']} images, {cross['budget']:,} calls), its maps agree with theirs as well as "
        f"either agrees with itself across seeds (Spearman, cross minus within: "
        f"{_ci(oise_cross['spearman']['cross_minus_within'])}), and deletion AUC differs by "
        f"{_ci(oise_cross['deletion']['package_minus_reference'])} "
        "([authors_crosscheck.md](benchmarks/results/authors_crosscheck.md)).",
        f"- **The masked-pixel value decides what a black-box map shows.** On black cluttered canvases the authors' "
        f"grey made OISE point at the item in {_record(grey, 'clutter', 'oise')['metrics']['pointing']['mean']:.0%} "
        f"of the canvases (a random map: {_record(grey, 'clutter', 'random')['metrics']['pointing']['mean']:.0%}); "
        f"with black, the canvas's own background, in {clutter['metrics']['pointing']['mean']:.0%} "
        f"(RISE {_record(paper, 'clutter', 'rise')['metrics']['pointing']['mean']:.0%}; 500 canvases, 5,000 calls, "
        "[evaluation_paper.md](benchmarks/results/evaluation_paper.md)).",
        "- **At the paper's budget RISE stays more faithful than OISE.** OISE minus RISE, paired over 500 images at "
        f"5,000 calls, black: deletion {_ci(clutter['vs_rise']['deletion'])} and insertion "
        f"{_ci(clutter['vs_rise']['insertion'])} on the canvases, {_ci(fashion['vs_rise']['deletion'])} and "
        f"{_ci(fashion['vs_rise']['insertion'])} on Fashion-MNIST (deletion: lower is better).",
    ]
    rows = catch_up(_results("budget_curve.json"))
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
    wins_text = "; ".join(f"{where} ({', '.join(spans)})" for where, spans in wins.items())
    lines.append(
        "- **Budget: OISE wins early and in the box, RISE wins at the paper's budget.** From 100 to 5,000 calls "
        "(100 images per dataset, black), OISE is better than RISE (paired 95% CI) on " + wins_text + ". "
        "At 5,000 calls RISE is better on " + ", ".join(losses) + " "
        "([budget_curve.md](benchmarks/results/budget_curve.md)).",
    )
    choices = _results("protocol_choices.json")["datasets"]
    both = sum(
        all(r[m]["verdict"] == "OISE better" for m in ("deletion", "insertion"))
        for e in choices.values()
        for r in e["grid"]
    )
    combos = sum(len(e["grid"]) for e in choices.values())
    lines.append(
        f"- **The authors' and RISE's own protocol choices** (which OISE map, RISE's mask density, RISE's metric; "
        f"{combos} combinations on two datasets) change the size of RISE's lead, and in some combinations the "
        f"insertion verdict; {'none' if both == 0 else both} makes OISE better on both metrics "
        "([protocol_choices.md](benchmarks/results/protocol_choices.md)).",
    )
    part_b, part_b_grey = _results("reconstruction_paper.json"), _results("reconstruction_paper_mean.json")

    def gan_minus_classical(result: dict) -> dict:
        per_image = result["per_image_agreement"]
        return summarise(
            torch.tensor(per_image["oise_generated"]["0.5"]) - torch.tensor(per_image["oise_biharmonic"]["0.5"])
        )

    agreement = {name: part_b["conditions"][name]["0.5"]["agreement"]["mean"] for name in part_b["conditions"]}
    lines.append(
        "- **Part B: whether the generator matters depends on the map that chose the region.** Regenerating half "
        f"of OISE's region with our DCGAN keeps the class in {agreement['oise_generated']:.1%} of the variations, "
        f"a classical inpainting of the same pixels in {agreement['oise_biharmonic']:.1%} (paired difference "
        f"{_pct(gan_minus_classical(part_b))}; with the regions of the grey-reference maps it was "
        f"{_pct(gan_minus_classical(part_b_grey))}), a random region regenerated in "
        f"{agreement['random_generated']:.1%} ({part_b['images']} images, maps at "
        f"{part_b['settings']['saliency_calls']:,} calls; [reconstruction_paper.md]"
        "(benchmarks/results/reconstruction_paper.md), [reconstruction_paper_mean.md]"
        "(benchmarks/results/reconstruction_paper_mean.md)).",
    )
    lines.append(
        "- So the paper's claim that OISE localises better than existing methods is **not reproduced** on the data "
        "that ships here; what we cannot test offline is its exact setting (ImageNet, ResNet50), for which "
        "`evaluate --suite boxes` is ready ([docs/scale-out.md](docs/scale-out.md))."
    )
    return "\n".join(lines)


def part_b_paper() -> str:
    """Part B at 5,000 calls: OISE's region regenerated, inpainted, filled; a random region; both references."""
    import torch

    from saliency_lib.evaluation.reports import summarise

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
    from saliency_lib.evaluation.reports import catch_up

    payload = _results("budget_curve.json")
    rows = catch_up(payload)
    lines = [
        "| data | metric | OISE 1 chain @5000 | OISE 8 chains @5000 | RISE @5000 | OISE 1 chain - RISE, paired "
        "| OISE no worse than RISE from (1 chain / 8 chains) |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in payload["records"]):
        top = max(r["budget"] for r in payload["records"] if r["dataset"] == dataset)
        at = {r["method"]: r for r in payload["records"] if r["dataset"] == dataset and r["budget"] == top}
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
    n = {d: next(r["n"] for r in payload["records"] if r["dataset"] == d) for d in settings}
    lines += [
        "",
        "("
        + "; ".join(
            f"{DATASET_NAMES.get(d, d)}: n = {n[d]}, masked pixels {s['reference']}" for d, s in settings.items()
        )
        + f"; budgets {', '.join(f'{b:,}' for b in next(iter(settings.values()))['budgets'])}; `budget_curve.md` has "
        "every budget. Deletion: lower is better. 'never': at some budget up to 5,000 RISE is still better.)",
    ]
    return "\n".join(lines)


def oise_settings() -> str:
    """OISE's settings one at a time (black reference) and its seed agreement at 5,000 calls, from
    ``paper_oise_settings.json``: the rows of :func:`saliency_lib.reports.oise_settings_markdown`'s tables."""
    from saliency_lib.evaluation.reports import oise_settings_markdown

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


def _paired(oise: dict, rise: dict, metric: str) -> str:
    if metric in oise.get("vs_rise", {}):
        return _ci(oise["vs_rise"][metric])
    return f"not paired: OISE {oise['metrics'][metric]['mean']:.3f}, RISE {rise['metrics'][metric]['mean']:.3f}"


def reference_table() -> str:
    """OISE and RISE at 5,000 calls under black (each dataset's own) and the authors' grey, per dataset: pointing
    and IoU, the paired OISE - RISE differences, seed agreement."""
    files = (
        ("black (default)", "evaluation_paper.json"),
        ("dataset mean, grey (the authors')", "evaluation_paper_mean.json"),
    )
    lines = [
        "| data | masked pixels become | OISE pointing / IoU | RISE pointing / IoU | OISE - RISE deletion, paired "
        "| OISE - RISE insertion, paired | seed agreement OISE / RISE |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in ("clutter", "fashion"):
        for label, name in files:
            payload = _results(name)
            oise, rise = _record(payload, dataset, "oise"), _record(payload, dataset, "rise")

            agreement = " / ".join(
                f"{r['seed_agreement']['mean']:.2f}" if "seed_agreement" in r else "-" for r in (oise, rise)
            )
            lines.append(
                f"| {DATASET_NAMES.get(dataset, dataset)} | {label} | {_box(oise)} | {_box(rise)} | "
                f"{_paired(oise, rise, 'deletion')} | {_paired(oise, rise, 'insertion')} | {agreement} |"
            )
    return "\n".join(lines)


def threads_speed(prefix: str = "benchmarks/results/") -> str:
    """The black box's speed at the default threads, from ``threads.json`` (``python benchmarks/threads.py``)."""
    result = _results("threads.json")
    photo_map, conditions = result["photo_map"], result["conditions"]

    def row(phase: str, workload: str) -> dict:
        rows = result["phases"][phase]["models"]["efficientnet-lite0"]["workloads"]
        return next(r for r in rows if r["workload"] == workload)

    quiet, busy = row("quiet", "oise, 1 chain"), row("busy", "oise, 1 chain")
    one = busy["one thread"]["ms_per_image"]
    return (
        f"One {photo_map['steps']:,}-call OISE map of a 224 px photograph (EfficientNet-Lite0 in ONNX Runtime, one "
        f"chain) takes **{photo_map['default']:.1f} s** at the default threads and "
        f"{photo_map['one thread']:.1f} s with one thread ({conditions['cpu']}, {conditions['cores']} cores, "
        f"PyTorch's default of {conditions['default_threads']} threads, no other job; load average "
        f"{photo_map['load_before']} at the start, the busy phase just ended; {conditions['date'][:10]}). "
        f"Per model call the loop takes {quiet['default']['ratio']:.2f}x the best bare ONNX Runtime call on a quiet "
        f"machine (load average {result['phases']['quiet']['load_before']}; the configuration it replaced: "
        f"{quiet['before']['ratio']:.2f}x) and, with another process holding one core, "
        f"{busy['default']['ms_per_image'] / one:.2f}x the time of one thread "
        f"(before: {busy['before']['ms_per_image'] / one:.2f}x) "
        f"([threads.md]({prefix}threads.md), `python benchmarks/threads.py`)."
    )


# name -> the text of the block, written from the results files (one function per block, no number typed here)
BLOCKS: dict[str, Callable[[], str]] = {
    "readme-finding": readme_finding,
    "part-b-paper": part_b_paper,
    "budget-catch-up": budget_catch_up,
    "oise-settings": oise_settings,
    "reference-table": reference_table,
    "threads-speed-readme": threads_speed,
    "threads-speed-docs": lambda: threads_speed("../benchmarks/results/"),
    "part-b-full": lambda: markdown_table(_results("reconstruction_full.json")),
    "asset-table": lambda: manifest_table().rstrip("\n"),
    "protocol-choices-card": lambda: protocol_choices.card_text(_results("protocol_choices.json")),
    "protocol-choices-notebook": lambda: protocol_choices.notebook_text(_results("protocol_choices.json")),
    # The one table of times (learner and computer, from benchmarks/results/notebooks.json) and the workshop plans.
    "notebook-times-readme": lambda: tutorial.index_table("notebooks/", machine=True),
    "notebook-times-docs": lambda: tutorial.index_table("../notebooks/", machine=True),
    "plan-90": lambda: schedule.plan_table(schedule.PLAN_90),
    "plan-180": lambda: schedule.plan_table(schedule.PLAN_180),
}

BLOCK = re.compile(
    r"(?P<open><!-- generated:(?P<name>[\w-]+) \(python benchmarks/sync_docs\.py\) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close>\n<!-- /generated:(?P=name) -->)",
    re.DOTALL,
)


def documents(repo: Path = REPO) -> list[Path]:
    """The files that may hold generated blocks: README, docs, notebooks and their README."""
    return [
        repo / "README.md",
        *sorted((repo / "docs").glob("*.md")),
        *sorted((repo / "notebooks").glob("*.md")),
        *sorted((repo / "notebooks").glob("*.ipynb")),
    ]


def _rewrite(text: str, texts: dict[str, str], stale: list[str], where: str) -> str:
    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in texts:
            raise KeyError(f"{where}: unknown generated block {name!r}; known: {', '.join(sorted(texts))}")
        if match["body"] != texts[name]:
            stale.append(f"{where}: {name}")
        return match["open"] + texts[name] + match["close"]

    return BLOCK.sub(replace, text)


def sync(paths: list[Path] | None = None, *, check: bool = False, blocks: dict | None = None) -> list[str]:
    """Rewrite (or, with ``check``, only compare) every generated block of ``paths``; returns the stale ones as
    ``"<file>: <block>"`` (with ``check=False`` they are rewritten)."""
    texts = {name: make() for name, make in (blocks or BLOCKS).items()}
    stale: list[str] = []
    for path in paths if paths is not None else documents():
        if not path.exists():
            continue
        where = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        raw = path.read_text()
        if path.suffix == ".ipynb":
            notebook = json.loads(raw)
            changed = False
            for index, cell in enumerate(notebook["cells"]):
                if cell["cell_type"] != "markdown":
                    continue
                source = "".join(cell["source"])
                new = _rewrite(source, texts, stale, f"{where} cell {index}")
                if new != source:
                    lines = new.split("\n")
                    cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
                    changed = True
            if changed and not check:
                path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        else:
            new = _rewrite(raw, texts, stale, where)
            if new != raw and not check:
                path.write_text(new)
    return stale


def blocks_in(paths: list[Path] | None = None) -> dict[str, list[str]]:
    """Block name -> the files that hold it."""
    found: dict[str, list[str]] = {}
    for path in paths if paths is not None else documents():
        if not path.exists():
            continue
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            texts = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        else:
            texts = [path.read_text()]
        for text in texts:
            for match in BLOCK.finditer(text):
                found.setdefault(match["name"], []).append(path.name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    args = parser.parse_args(argv)
    stale = sync(check=args.check)
    for entry in stale:
        print(("stale: " if args.check else "rewrote: ") + entry)
    if args.check and stale:
        print("run: python benchmarks/sync_docs.py (then read the diff)")
        return 1
    print(f"{len(BLOCKS)} blocks, {'all current' if not stale else f'{len(stale)} changed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

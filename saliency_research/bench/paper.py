"""The paper's budget: the budget curve and OISE's settings card, as commands (ours).

    python -m saliency_research.bench.paper budget-curve --dataset fashion --n 100  # -> results/budget_curve.*
    python -m saliency_research.bench.paper budget-curve --dataset clutter --n 100  # (adds the pointing game)
    python -m saliency_research.bench.paper sensitivity --n 50 --budget 1000        # -> results/paper_oise_settings.*
    python -m saliency_research.bench.paper render                                  # budget_curve.md/.png from .json
    python -m saliency_research.bench.paper compare                                 # -> results/paper_vs_full.md

(``results/``: ``benchmarks/results/``.)

Every command takes ``--reference mean|black|blur``: the masked-pixel value of the maps and of deletion forced on
every dataset (default: each dataset's own, ``saliency_lib.evaluation.datasets.DATASET_REFERENCES``); its results go to
``<stem>_<reference>.*`` (e.g. ``budget_curve_mean.md``: the authors' dataset mean), never into the default files.

The 5,000-call evaluation itself is ``python -m saliency_research evaluate --suite paper`` (or
``saliency_research.runner.run_suite("paper", datasets=[...], methods=[...])`` in parts that merge), and Part B
at that budget is ``python -m saliency_research reconstruct --suite paper``. Single-thread runs:
``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from saliency_research import budget_study, suites  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    curve = commands.add_parser("budget-curve", help="OISE (1 and several chains) and RISE from 100 to 5000 calls")
    curve.add_argument("--dataset", default="fashion", choices=["fashion", "clutter", "planted"])
    curve.add_argument("--n", type=int, default=100)
    curve.add_argument("--budgets", type=int, nargs="+", default=list(budget_study.BUDGETS))
    curve.add_argument("--chains", type=int, default=budget_study.BUDGET_CURVE_CHAINS)
    curve.add_argument("--chunk", type=int, default=100)
    curve.add_argument("--out", type=Path, default=None)
    sweep = commands.add_parser("sensitivity", help="OISE's settings one at a time, and seed-to-seed agreement")
    sweep.add_argument("--n", type=int, default=50)
    sweep.add_argument("--budget", type=int, default=1000)
    sweep.add_argument("--agreement-budget", type=int, default=suites.PAPER_BUDGET)
    sweep.add_argument("--agreement-n", type=int, default=20, help="images for the seed agreement at that budget")
    sweep.add_argument("--out", type=Path, default=None)
    render = commands.add_parser("render", help="rewrite budget_curve.md and .png from budget_curve.json")
    render.add_argument("--out", type=Path, default=None)
    compare = commands.add_parser(
        "compare",
        help="OISE and RISE in the full suite (300 calls) against the paper suite (5000 calls): paper_vs_full.md",
    )
    compare.add_argument("--out", type=Path, default=None)
    for command in (curve, sweep, render, compare):
        command.add_argument(
            "--reference",
            default=None,
            help="mean, black or blur on every dataset (default: each dataset's own); writes <stem>_<reference>.*",
        )
    args = parser.parse_args(argv)
    if args.command == "compare":
        from saliency_research import reports

        out = args.out or reports.RESULTS_DIR
        suffix = f"_{args.reference}" if args.reference else ""
        text = reports.budget_comparison_markdown(
            reports.load_results(f"full{suffix}", out), reports.load_results(f"paper{suffix}", out)
        )
        (out / f"paper_vs_full{suffix}.md").write_text(text)
        print(text)
    elif args.command == "render":
        budget_study.render_budget_curve(args.out, args.reference)
    elif args.command == "budget-curve":
        budget_study.budget_curve(
            args.dataset,
            args.n,
            tuple(args.budgets),
            chains=args.chains,
            chunk=args.chunk,
            out_dir=args.out,
            reference=args.reference,
        )
    else:
        budget_study.oise_settings(
            n=args.n,
            budget=args.budget,
            agreement_budget=args.agreement_budget,
            agreement_n=args.agreement_n,
            out_dir=args.out,
            reference=args.reference,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

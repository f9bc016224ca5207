"""``python -m saliency_lib evaluate --suite quick|full``: run the evaluation, write JSON and markdown."""

from __future__ import annotations

import sys
from pathlib import Path


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate every saliency method on data with ground truth (writes benchmarks/results/)")
    parser.add_argument("--suite", choices=["quick", "full"], default="quick",
                        help="quick: CI-sized, a few minutes; full: the committed results (about half an hour)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results)")
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="only these datasets (planted, clutter, fashion, photos, sanity, budget)")
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from .datasets import DATASETS
    from .evaluation import EXPERIMENT, run_suite
    from .reports import RESULTS_DIR

    if args.datasets and any(d not in DATASETS for d in args.datasets):
        print(f"--datasets: choose from {list(DATASETS)}", file=sys.stderr)
        return 2
    try:
        run_suite(args.suite, args.out, datasets=args.datasets, methods=args.methods, seed=args.seed,
                  progress=not args.no_progress)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"evaluate failed: {error}", file=sys.stderr)
        return 1
    stem = (args.out or RESULTS_DIR) / f"{EXPERIMENT}_{args.suite}"
    print(f"wrote {stem}.json and {stem}.md")
    return 0

"""``python -m saliency_lib evaluate --suite quick|full``: run the evaluation, write JSON and markdown.

Ctrl+C keeps the datasets already finished (``run_suite`` writes after each) and prints the command to resume.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate every saliency method on data with ground truth (writes benchmarks/results/)")
    parser.add_argument("--suite", choices=["quick", "full", "paper"], default="quick",
                        help="quick: CI-sized, a few minutes; full: the committed results (about half an hour); paper: 5,000 calls per image on 500 images per dataset (hours; run it in parts with --datasets/--methods)")
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
    stem = (args.out or RESULTS_DIR) / f"{EXPERIMENT}_{args.suite}"
    before = stem.with_suffix(".json").read_bytes() if stem.with_suffix(".json").exists() else None
    try:
        run_suite(args.suite, args.out, datasets=args.datasets, methods=args.methods, seed=args.seed,
                  progress=not args.no_progress)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"evaluate failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(_interrupted(args, stem.with_suffix(".json"), before), file=sys.stderr)
        return 130
    print(f"wrote {stem}.json and {stem}.md")
    return 0


def _interrupted(args, path: Path, before: bytes | None) -> str:
    """What Ctrl+C kept and the command that runs the rest (restricted runs merge into the file)."""
    from .evaluation import SUITES

    wanted = args.datasets or [plan.name for plan in SUITES[args.suite]]
    after = path.read_bytes() if path.exists() else None
    # The first write of a run drops the file's old records of the datasets x methods it runs: present ones are new.
    done = set() if after is None or after == before else {
        r["dataset"] for r in json.loads(after)["records"] if args.methods is None or r["method"] in args.methods}
    rest = [name for name in wanted if name not in done]
    command = ["python -m saliency_lib evaluate --suite", args.suite, *(["--out", str(args.out)] if args.out else []),
               "--datasets", *rest, *(["--methods", *args.methods] if args.methods else []), "--seed", str(args.seed),
               *(["--no-progress"] if args.no_progress else [])]
    kept = [name for name in wanted if name in done]
    kept = f"kept the finished datasets {kept} in {path}" if kept else "no dataset had finished, nothing was kept"
    return f"interrupted: {kept}; " + (f"resume with: {' '.join(command)}" if rest else "nothing left to run")

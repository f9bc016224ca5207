"""``python -m saliency_research evaluate --suite quick|full|paper``: run the evaluation, write JSON and markdown.

Runs under ``torchrun --nproc-per-node N -m saliency_research evaluate ...`` too (ranks share the images; rank 0
writes). Ctrl+C keeps the datasets already finished (``run_suite`` writes after each) and the finished blocks of
the others, and prints the command to resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

from saliency_research.cli import evaluate_boxes


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate every saliency method on data with ground truth (writes benchmarks/results/)"
    )
    parser.add_argument(
        "--suite",
        choices=["quick", "full", "paper", "boxes"],
        default="quick",
        help=(
            "quick: CI-sized, a few minutes; full: the committed results (about half an hour); "
            "paper: 5,000 calls per image on 500 images per dataset (hours; run it in parts with --datasets/--methods);"
            " boxes: your images with object boxes (ImageNet VOC XML, Open Images CSV), the paper's setting"
        ),
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        help="only these datasets (planted, clutter, fashion, photos, sanity, budget)",
    )
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument(
        "--reference",
        default=None,  # checked by run_suite against saliency_lib.method.core.REFERENCES (one list, no copy here)
        help=(
            "the value masked pixels take, in the methods and in the deletion metric alike (default: each "
            "dataset's own: black on Fashion-MNIST and the canvases, the dataset mean on photos); mean: the "
            "authors' dataset mean everywhere (also black, blur); writes evaluation_<suite>_<reference>.json instead"
        ),
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: every model on the GPU (each torchrun rank its own), PyTorch runtime",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate_boxes.add_arguments(parser)
    parser.set_defaults(func=_run)


def _run(args) -> int:
    if args.suite == "boxes":
        return evaluate_boxes.run(args)
    from saliency_lib.evaluation.datasets import DATASETS
    from saliency_research.distributed import finish
    from saliency_research.reports import RESULTS_DIR
    from saliency_research.runner import interrupted, run_suite
    from saliency_research.suites import result_stem

    if args.datasets and any(d not in DATASETS for d in args.datasets):
        print(f"--datasets: choose from {list(DATASETS)}", file=sys.stderr)
        return 2
    stem = (args.out or RESULTS_DIR) / result_stem(args.suite, args.reference)
    before = stem.with_suffix(".json").read_bytes() if stem.with_suffix(".json").exists() else None
    try:
        run_suite(
            args.suite,
            args.out,
            datasets=args.datasets,
            methods=args.methods,
            seed=args.seed,
            progress=not args.no_progress,
            device=args.device,
            reference=args.reference,
        )
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"evaluate failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        options = [
            *(["--out", str(args.out)] if args.out else []),
            "--seed",
            str(args.seed),
            "--device",
            args.device,
            *(["--reference", args.reference] if args.reference else []),
            *(["--no-progress"] if args.no_progress else []),
        ]
        print(
            interrupted(args.suite, stem.with_suffix(".json"), before, args.datasets, args.methods, options),
            file=sys.stderr,
        )
        return 130
    finally:
        finish()  # leave torchrun's process group, if any
    print(f"wrote {stem}.json and {stem}.md")
    return 0

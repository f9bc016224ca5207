"""``python -m saliency_research reconstruct --suite quick|full``: the acceptable-variations experiment over a test set.

A thin shim: the experiment, its suites and its writers live in :mod:`saliency_research.reconstruction_experiment`.
Ctrl+C: the experiment writes its results only at the end; the maps cache (``--maps-cache``) is all it keeps.
"""

from __future__ import annotations

import sys
from pathlib import Path

from saliency_lib.plots import agreement_table
from saliency_research import reconstruction_experiment as experiment

__all__ = ["add_command"]


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "reconstruct", help="the acceptable-variations experiment (Part B)", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--suite",
        choices=sorted(experiment.SUITES),
        default="quick",
        help="quick: 10 images, tiny budgets (tests); full: 200 images (the committed results)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the results (default benchmarks/results)")
    parser.add_argument(
        "--maps-cache",
        type=Path,
        default=None,
        help="reuse/save the OISE and RISE maps here (a .pt file), e.g. to compute them in advance",
    )
    parser.add_argument("--maps-only", action="store_true", help="compute (and cache) the maps, then stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--reference",
        default=None,  # checked by run_experiment against saliency_lib.method.core.REFERENCES
        help="the masked-pixel value of the maps and of the 'filled' control (default: Fashion-MNIST's own, black); "
        "mean: the authors' dataset mean; writes reconstruction_<suite>_<reference>.* instead",
    )
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from saliency_lib.io.paths import RESULTS_DIR

    out = args.out or RESULTS_DIR
    try:
        result = experiment.run_experiment(
            args.suite,
            out=out,
            maps_cache=args.maps_cache,
            maps_only=args.maps_only,
            progress=not args.no_progress,
            reference=args.reference,
        )
    except KeyboardInterrupt:
        cache = args.maps_cache or Path(out) / f"reconstruction_{args.suite}_maps.pt"
        kept = (
            f"the saliency maps are kept in {cache} (the reconstructions start again)"
            if args.maps_cache and Path(args.maps_cache).exists()
            else "nothing was kept (results are written only at the end; --maps-cache keeps the maps next time)"
        )
        command = " ".join(
            [
                "python -m saliency_research reconstruct --suite",
                args.suite,
                *(["--out", str(args.out)] if args.out else []),
                "--maps-cache",
                str(cache),
                *(["--maps-only"] if args.maps_only else []),
                *(["--reference", args.reference] if args.reference else []),
                *(["--no-progress"] if args.no_progress else []),
            ]
        )
        print(f"interrupted: {kept}; resume with: {command}", file=sys.stderr)
        return 130
    if result is not None:
        print(agreement_table(result))
    return 0

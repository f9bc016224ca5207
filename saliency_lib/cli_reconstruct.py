"""``python -m saliency_lib reconstruct --suite quick|full``: the acceptable-variations experiment over a test set.

A thin shim: the experiment, its suites and its writers live in :mod:`saliency_lib.reconstruction_experiment`.
"""

from __future__ import annotations

from pathlib import Path

from . import reconstruction_experiment as experiment

__all__ = ["add_command"]


def add_command(subparsers) -> None:
    parser = subparsers.add_parser("reconstruct", help="the acceptable-variations experiment (Part B)",
                                   description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=sorted(experiment.SUITES), default="quick",
                        help="quick: 10 images, tiny budgets (tests); full: 200 images (the committed results)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results (default benchmarks/results)")
    parser.add_argument("--maps-cache", type=Path, default=None,
                        help="reuse/save the OISE and RISE maps here (a .pt file), e.g. to compute them in advance")
    parser.add_argument("--maps-only", action="store_true", help="compute (and cache) the maps, then stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from .tutorial import REPO_ROOT

    out = args.out or REPO_ROOT / "benchmarks" / "results"
    result = experiment.run_experiment(args.suite, out=out, maps_cache=args.maps_cache, maps_only=args.maps_only,
                                       progress=not args.no_progress)
    if result is not None:
        print(experiment.markdown_table(result))
    return 0

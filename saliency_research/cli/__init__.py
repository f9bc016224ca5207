"""Command line of the research bench: ``python -m saliency_research COMMAND`` (``--help`` after any command).

Commands:
    evaluate --suite quick|full|paper|boxes   every method on data with ground truth; writes
                                              benchmarks/results/evaluation_<suite>.json and .md
    reconstruct --suite quick|full            Part B over a test set: regenerate the salient region with the GAN;
                                              writes benchmarks/results/reconstruction_<suite>.json, .md and .png
    explain-folder DIR --out OUT              maps of every image in a folder; runs under torchrun too (resumable)

Each command lives in a thin module of this package (:data:`COMMANDS`) that parses its arguments and calls the
bench. The tutorial's own commands (``explain`` one image, ``assets``) are ``python -m saliency_lib COMMAND``.
"""

from __future__ import annotations

import argparse

from saliency_lib import cli

# Each entry: a module with `add_command(subparsers)`; the subparser sets `func(args) -> int`.
COMMANDS = [
    "saliency_research.cli.evaluate",
    "saliency_research.cli.reconstruct",
    "saliency_research.cli.explain_folder",
]


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(
        COMMANDS,
        prog="python -m saliency_research",
        doc=__doc__,
        epilog=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser(), argv)

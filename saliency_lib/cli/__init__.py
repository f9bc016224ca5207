"""Command line: ``python -m saliency_lib COMMAND`` (``--help`` after any command lists its options).

Commands:
    assets build [--only FILE ...]   re-make the shipped files in data/ (seeded; needs Fashion-MNIST)
    assets verify                    check data/ against data/MANIFEST.json; non-zero naming each bad file
    assets list                      print the manifest as a markdown table (the asset table of docs/install.md)
    explain IMAGE ...                a saliency map of one image file (OISE or RISE) saved as a figure
    trust [NOTEBOOK_OR_FOLDER ...]   trust the tutorial's notebooks for this user, so JupyterLab draws their saved
                                     panels (default: notebooks/ and work/ in the current folder)

The research bench's commands (evaluation suites, Part B's experiment, folders under torchrun) are
``python -m saliency_research COMMAND``.

Each command lives in a thin module of this package (:data:`COMMANDS`) that parses its arguments and calls the library.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Each entry: a module with `add_command(subparsers)`; the subparser sets `func(args) -> int`.
COMMANDS = [
    "saliency_lib.cli.assets",
    "saliency_lib.cli.explain",
    "saliency_lib.cli.trust",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m saliency_lib", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(module).add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

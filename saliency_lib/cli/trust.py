"""``python -m saliency_lib trust [NOTEBOOK_OR_FOLDER ...]``: the one command, the same on every OS, that trusts the
tutorial's notebooks for this user (JupyterLab then draws their saved panels); docs/install.md's every way in."""

from __future__ import annotations

import sys
from pathlib import Path


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "trust", help="trust the tutorial's notebooks, so JupyterLab draws their saved panels before they are run"
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="NOTEBOOK_OR_FOLDER",
        help="default: notebooks/ and work/ in the current folder",
    )
    parser.set_defaults(func=_trust)


def _trust(args) -> int:
    from ..course import tutorial

    try:
        signed = tutorial.trust(tutorial.notebooks_to_trust(args.paths))
    except (ValueError, OSError) as error:  # nbformat's "not JSON" is a ValueError
        print(f"trust: {error}", file=sys.stderr)
        return 1
    folders = sorted({str(path.parent) for path in signed})
    print(f"trusted {len(signed)} notebook(s) in {', '.join(folders)}: JupyterLab shows their saved panels")
    return 0

"""``python -m saliency_lib explain IMAGE``: a saliency map for one image file, from the command line.

E.g. ``python -m saliency_lib explain cat.jpg --model efficientnet-lite0 --method oise --steps 5000 --out map.png``.
Prints the top-5 classes, the target and the time; writes a figure. A problem the user can fix (missing or
unreadable image, unknown or unavailable model, bad option) is one line on stderr, exit code 2. The work is done
by :mod:`saliency_lib.io.image_files`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..io import image_files

__all__ = ["add_command"]


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="saliency map of one image file (OISE or RISE)", description=__doc__.split("\n")[0]
    )
    parser.add_argument("image", metavar="IMAGE", help="a PNG or JPEG file")
    parser.add_argument(
        "--model",
        default="efficientnet-lite0",
        help="fashion-cnn, efficientnet-lite0, resnet50 or vgg16 (default: efficientnet-lite0)",
    )
    parser.add_argument("--method", default="oise", help="oise (default) or rise")
    parser.add_argument(
        "--steps", type=int, default=5000, help="model calls: OISE steps or RISE masks (default 5000, the paper's)"
    )
    parser.add_argument("--chains", type=int, default=1, help="OISE chains run together (ours; default 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="largest batch per model call")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--target", type=int, default=None, help="class index to explain (default: the top-1)")
    parser.add_argument("--out", default="map.png", help="figure file to write (default map.png)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _fail(message: str, code: int) -> int:
    print(f"explain: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return code


def _run(args) -> int:
    if Path(args.out).suffix.lower() not in image_files.FIGURE_SUFFIXES:
        return _fail(f"--out must end in .png, .jpg, .pdf or .svg, got {args.out!r}", 2)
    try:
        result = image_files.explain_file(
            args.image,
            args.model,
            args.method,
            steps=args.steps,
            chains=args.chains,
            batch_size=args.batch_size,
            seed=args.seed,
            target=args.target,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError, TypeError, RuntimeError) as error:  # problems the user can fix
        return _fail(str(error), 2)
    print(f"model {result['model']}, image {args.image}")
    print("\n".join(image_files.describe(result)))
    try:
        written = image_files.write_figure(result, args.out)
    except OSError as error:  # e.g. the figure cannot be written
        return _fail(str(error), 1)
    print(f"figure written to {written}")
    return 0

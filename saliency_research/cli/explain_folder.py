"""``python -m saliency_research explain-folder DIR --out OUTDIR``: saliency maps of every image in a folder.

One process, or many: ``torchrun --nproc-per-node 2 -m saliency_research explain-folder DIR --out OUTDIR`` (and
``--nnodes``/``--rdzv-endpoint`` across machines, OUTDIR on a shared disk). Same maps however many processes;
run it again to resume. The work is :func:`saliency_research.image_folders.explain_folder`.
"""

from __future__ import annotations

import sys

from saliency_research import image_folders

__all__ = ["add_command"]


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain-folder",
        help="saliency maps of a folder of images (torchrun-ready)",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("folder", metavar="DIR", help="folder of PNG/JPEG/... files (not searched recursively)")
    parser.add_argument("--out", required=True, help="output folder: explain.json and maps/<file>.npz")
    parser.add_argument("--model", default="efficientnet-lite0", help="a name of saliency_lib.io.models.MODEL_NAMES")
    parser.add_argument("--method", default="oise", help="oise (default) or rise")
    parser.add_argument("--steps", type=int, default=5000, help="model calls per image (default 5000)")
    parser.add_argument("--chains", type=int, default=1, help="OISE chains run together (default 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="largest batch per model call")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--block-size", type=int, default=4, help="images per block (fixes the results)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu (default) or cuda")
    parser.add_argument(
        "--runtime",
        default="auto",
        choices=("auto", "onnx", "torch"),
        help="model runtime on the CPU (default auto: ONNX Runtime when installed)",
    )
    parser.add_argument("--max-blocks", type=int, default=None, help="stop after this many blocks per process")
    parser.add_argument("--no-progress", action="store_true", help="no line per block")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    try:
        run = image_folders.explain_folder(
            args.folder,
            args.out,
            args.model,
            args.method,
            steps=args.steps,
            chains=args.chains,
            batch_size=args.batch_size,
            seed=args.seed,
            block_size=args.block_size,
            device=args.device,
            runtime=args.runtime,
            max_blocks=args.max_blocks,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError, TypeError, RuntimeError) as error:  # problems the user can fix
        print(f"explain-folder: error: {str(error).splitlines()[0] if str(error) else 'failed'}", file=sys.stderr)
        return 2
    if run.rank == 0:
        done = (
            f"records in {run.path}"
            if run.complete
            else f"{len(run.missing)} of {run.n_blocks} blocks still to do: run the same command again to resume"
        )
        print(f"explain-folder: {len(run.computed)} block(s) computed, {len(run.skipped)} found done; {done}")
    return 0

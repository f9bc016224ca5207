"""The options of ``python -m saliency_research evaluate --suite boxes`` (:mod:`saliency_research.boxes_suite` runs it).

The paper's experiment on your images and boxes::

    python -m saliency_research evaluate --suite boxes --images val/ --boxes val_xml/ --model resnet50
    python -m saliency_research evaluate --suite boxes --images oi/ --boxes validation-annotations-bbox.csv
    python -m saliency_research evaluate --suite boxes --images shipped --runtime onnx     # our photographs

Runs under ``torchrun --nproc-per-node N -m saliency_research evaluate --suite boxes ...`` too, and resumes.
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    """Add the boxes suite's options to ``evaluate``'s parser (they are ignored by the other suites)."""
    group = parser.add_argument_group("--suite boxes (your images with object boxes, the paper's setting)")
    group.add_argument("--images", default=None, help="folder of images, or 'shipped' (our photographs, our boxes)")
    group.add_argument(
        "--boxes", type=Path, default=None, help="a folder of Pascal VOC .xml (ImageNet val) or an Open Images .csv"
    )
    group.add_argument(
        "--model",
        default="efficientnet-lite0",
        help="resnet50, vgg16 (torchvision's cache), efficientnet-lite0, or a weights file (state dict) of one",
    )
    group.add_argument("--arch", default=None, help="the architecture of a --model weights file (default: guessed)")
    group.add_argument("--sha256", default=None, help="the sha256 a --model weights file must have")
    group.add_argument(
        "--target",
        choices=["top1", "annotated"],
        default="top1",
        help="top1: the model's top-1 (the paper's); annotated: the box's class (WNIDs need --classes)",
    )
    group.add_argument("--classes", type=Path, default=None, help="label -> class file (LOC_synset_mapping.txt)")
    group.add_argument(
        "--n", type=int, default=None, help="the first N images with a box (by name; held in memory, 0.6 MB each)"
    )
    group.add_argument("--budget", type=int, default=None, help="OISE steps = RISE masks (default 5000, the paper's)")
    group.add_argument("--block-size", type=int, default=4, help="images per block (resumable unit, per rank)")
    group.add_argument(
        "--runtime", choices=["auto", "onnx", "torch"], default="auto", help="black-box methods' runtime on a CPU"
    )


def run(args) -> int:
    """Run the boxes suite with the parsed arguments; the exit status."""
    from saliency_research.boxes_suite import run_command

    if args.images is None:
        print("evaluate --suite boxes: --images is required (a folder of images, or 'shipped')")
        return 2
    return run_command(args)

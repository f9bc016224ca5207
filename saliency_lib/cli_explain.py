"""``python -m saliency_lib explain IMAGE``: a saliency map for one image file, from the command line.

Example::

    python -m saliency_lib explain cat.jpg --model efficientnet-lite0 --method oise --steps 5000 --out map.png

Prints the model's top-5 classes, the target class and the time taken; writes a figure (image, map, overlay);
shows a progress bar. Exits non-zero with a one-line message on a missing or unreadable image, an unknown or
unavailable model, or a bad option.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

__all__ = ["add_command", "load_image_file", "explain_file", "write_figure"]


class CommandError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def add_command(subparsers) -> None:
    parser = subparsers.add_parser("explain", help="saliency map of one image file (OISE or RISE)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("image", metavar="IMAGE", help="a PNG or JPEG file")
    parser.add_argument("--model", default="efficientnet-lite0",
                        help="fashion-cnn, efficientnet-lite0, resnet50 or vgg16 (default: efficientnet-lite0)")
    parser.add_argument("--method", default="oise", help="oise (default) or rise")
    parser.add_argument("--steps", type=int, default=5000,
                        help="model calls: OISE steps or RISE masks (default 5000, the paper's)")
    parser.add_argument("--chains", type=int, default=1, help="OISE chains run together (ours; default 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="largest batch per model call")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--target", type=int, default=None, help="class index to explain (default: the top-1)")
    parser.add_argument("--out", default="map.png", help="figure file to write (default map.png)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def load_image_file(path: str | Path, model) -> torch.Tensor:
    """An image file as the model's input: float32 ``(1, C, H, W)`` in [0, 1].

    One-channel models (the Fashion CNN) get a grey image; three-channel models an RGB one. The shorter side
    is resized to the model's input size and the centre cropped, as :func:`saliency_lib.data.photographs`
    does. (Fashion-MNIST items are light on black: a photo of a shirt on white looks nothing like them.)

    Raises:
        FileNotFoundError: no such file. ValueError: the file is not an image PIL can read.
    """
    from PIL import Image, UnidentifiedImageError
    import torchvision.transforms.functional as TF

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    spec = model.spec
    try:
        with Image.open(path) as opened:
            picture = opened.convert("L" if spec.channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"cannot read {path} as an image ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'unreadable'})") from None
    image = TF.pil_to_tensor(picture).float().div(255.0)                     # (C, H, W)
    height, width = spec.size
    image = TF.resize(image, min(height, width), antialias=True)
    return TF.center_crop(image, [height, width]).clamp(0, 1).unsqueeze(0)


def _check_readable(path) -> None:
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise CommandError(f"image not found: {path}")
    try:
        with Image.open(path) as opened:
            opened.verify()
    except Exception as error:  # noqa: BLE001 - PIL raises many kinds; all mean "not an image we can read"
        raise CommandError(f"cannot read {path} as an image ({type(error).__name__})") from None


def explain_file(path, model_name: str = "efficientnet-lite0", method: str = "oise", *, steps: int = 5000,
                 chains: int = 1, batch_size: int | None = None, seed: int = 0, target: int | None = None,
                 progress: bool = True) -> dict:
    """Load a model and an image file, compute the saliency map; returns a dict with everything to report.

    Keys: ``image`` (1, C, H, W), ``saliency`` (H, W), ``probabilities`` (n_classes,), ``target`` (int),
    ``class_names``, ``seconds`` (the method's time), ``partial``.
    """
    from . import models
    from .oise import oise
    from .rise import rise

    if method not in ("oise", "rise"):
        raise CommandError(f"unknown method {method!r}; choose oise or rise")
    if model_name not in models.MODEL_NAMES:
        raise CommandError(f"unknown model {model_name!r}; choose from {', '.join(models.MODEL_NAMES)}")
    if steps < 1:
        raise CommandError(f"--steps must be >= 1, got {steps}")
    _check_readable(path)  # before loading the model: a typo in the path fails at once
    try:
        model = models.load(model_name)
    except Exception as error:  # noqa: BLE001 - missing weights, offline download: one line to the user
        raise CommandError(f"model {model_name!r} is unavailable: {str(error).splitlines()[0]}") from None
    try:
        image = load_image_file(path, model)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    with torch.inference_mode():
        probabilities = model(image).softmax(dim=1)[0]
    if target is not None and not 0 <= target < model.n_classes:
        raise CommandError(f"--target must be a class index in [0, {model.n_classes - 1}], got {target}")
    start = time.perf_counter()
    try:
        if method == "oise":
            saliency = oise(model, image, target, n_steps=steps, n_chains=chains, batch_size=batch_size,
                            seed=seed, progress=progress)
        else:
            saliency = rise(model, image, target, n_masks=steps, batch_size=batch_size, seed=seed,
                            progress=progress)
    except (TypeError, ValueError) as error:
        raise CommandError(str(error).splitlines()[0]) from None
    return {"image": image, "saliency": saliency[0], "probabilities": probabilities,
            "target": int(saliency.target[0]), "class_names": model.class_names, "model": model_name,
            "method": method, "seconds": time.perf_counter() - start, "partial": bool(saliency.partial),
            "model_calls": int(saliency.model_calls)}


def write_figure(result: dict, out: str | Path, dpi: int = 100) -> Path:
    """Image, saliency map and overlay side by side, saved to ``out`` (format from the suffix, e.g. .png)."""
    from matplotlib.figure import Figure  # no pyplot: nothing global, works on any backend

    from . import plots

    out = Path(out)
    name = result["class_names"][result["target"]]
    probability = float(result["probabilities"][result["target"]])
    figure = Figure(figsize=(10.5, 3.6), dpi=dpi, layout="constrained")
    axes = figure.subplots(1, 3)
    plots.show_image(axes[0], result["image"][0], "image")
    plots.show_map(axes[1], result["saliency"], f"{result['method'].upper()} map", cmap="jet")
    plots.overlay(axes[2], result["image"][0], result["saliency"], alpha=0.5, title="overlay")
    partial = " (partial)" if result["partial"] else ""
    figure.suptitle(f"{result['model']}: target '{name}' (p = {probability:.2f}), {result['method'].upper()} "
                    f"with {result['model_calls']} model calls{partial}")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return out


def _run(args) -> int:
    try:
        if args.out and Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg"):
            raise CommandError(f"--out must end in .png, .jpg, .pdf or .svg, got {args.out!r}")
        result = explain_file(args.image, args.model, args.method, steps=args.steps, chains=args.chains,
                              batch_size=args.batch_size, seed=args.seed, target=args.target,
                              progress=not args.no_progress)
        names, probabilities = result["class_names"], result["probabilities"]
        top = probabilities.topk(min(5, len(names)))
        print(f"model {result['model']}, image {args.image}")
        print("top-5 classes:")
        for rank, (p, index) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
            print(f"  {rank}. {names[index]} (class {index}): {p:.3f}")
        target = result["target"]
        print(f"target: {names[target]} (class {target}), p = {float(probabilities[target]):.3f}")
        status = " - stopped early, partial map" if result["partial"] else ""
        print(f"{result['method'].upper()}: {result['model_calls']} model calls in {result['seconds']:.1f} s{status}")
        written = write_figure(result, args.out)
        print(f"figure written to {written}")
    except CommandError as error:
        print(f"explain: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. the figure cannot be written
        print(f"explain: error: {error}", file=sys.stderr)
        return 1
    return 0

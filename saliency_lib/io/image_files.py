"""A saliency map for one image file: read the file as a model's input, explain it, write a figure.

What ``python -m saliency_lib explain IMAGE`` does (``saliency_lib.cli.explain`` only parses its options)::

    result = explain_file("cat.jpg", "efficientnet-lite0", "oise", steps=5000)
    print("\\n".join(describe(result)))       # top-5 classes, target, model calls and time
    write_figure(result, "map.png")           # image, map and overlay side by side

The folder version, sharded over torchrun's processes, is :mod:`saliency_research.image_folders`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..method.checks import check_choice, check_int
from ..method.core import class_probabilities, resolve_target
from . import uploads

__all__ = [
    "FIGURE_SUFFIXES",
    "IMAGE_SUFFIXES",
    "METHODS",
    "load_image_file",
    "explain_file",
    "describe",
    "write_figure",
]

FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
METHODS = ("oise", "rise")
#: Files of a folder that :func:`explain_folder` explains (by suffix, any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def load_image_file(path: str | Path, model) -> torch.Tensor:
    """An image file as the model's input: float32 ``(1, C, H, W)`` in [0, 1].

    One-channel models (the Fashion CNN) get a grey image; three-channel models an RGB one. The shorter side
    is resized to the model's input size and the centre cropped, as :func:`saliency_lib.io.data.photographs`
    does. (Fashion-MNIST items are light on black: a photo of a shirt on white looks nothing like them.)
    Decoding and its checks (formats, size, decompression bombs, EXIF rotation, transparency) are
    :func:`saliency_lib.io.uploads.image_tensor`'s, the one home of image-file decoding.

    Raises:
        FileNotFoundError: no such file. ValueError: the file is not an image we can read (the message says why).
    """
    return uploads.image_tensor(Path(path), model)


def _check_readable(path) -> None:
    """Fail fast (before a model is loaded) on a missing file or one that is not an image (header only)."""
    uploads.check_image(Path(path))


def explain_file(
    path,
    model_name: str = "efficientnet-lite0",
    method: str = "oise",
    *,
    steps: int = 5000,
    chains: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    target: int | None = None,
    progress: bool = True,
) -> dict:
    """Load a model and an image file, compute the saliency map; returns a dict with everything to report.

    Args:
        steps: model calls: OISE steps (the paper's N) or RISE masks.
        chains: OISE chains run together (ours). Other arguments as for :func:`saliency_lib.oise`.

    Returns:
        Keys ``image`` (1, C, H, W), ``saliency`` (H, W), ``probabilities`` (n_classes,), ``target`` (int),
        ``class_names``, ``model``, ``method``, ``seconds`` (the method's time), ``partial``, ``model_calls``.

    Raises:
        FileNotFoundError: no such image. ValueError: unknown method or model, bad numbers, an unreadable image
        or a target outside the model's classes. RuntimeError: the model is unavailable (missing weights,
        offline download).
    """
    from ..method.oise_method import oise
    from ..method.rise_method import rise
    from . import models

    check_choice("method", method, METHODS)
    check_choice("model", model_name, models.MODEL_NAMES)
    check_int("steps", steps, 1)
    _check_readable(path)  # before loading the model: a typo in the path fails at once
    try:
        model = models.load(model_name)
    except Exception as error:  # noqa: BLE001 - missing weights, offline download: one line to the user
        raise RuntimeError(f"model {model_name!r} is unavailable: {str(error).splitlines()[0]}") from None
    image = load_image_file(path, model)
    probabilities = class_probabilities(model, image)
    if target is not None:
        resolve_target(target, probabilities)  # a class index of this model, or ValueError
    probabilities = probabilities[0]
    if method == "oise":
        saliency = oise(
            model, image, target, n_steps=steps, n_chains=chains, batch_size=batch_size, seed=seed, progress=progress
        )
    else:
        saliency = rise(model, image, target, n_masks=steps, batch_size=batch_size, seed=seed, progress=progress)
    return {
        "image": image,
        "saliency": saliency.maps[0],
        "probabilities": probabilities,
        "target": int(saliency.target[0]),
        "class_names": model.class_names,
        "model": model_name,
        "method": method,
        "seconds": saliency.seconds,
        "partial": saliency.partial,
        "model_calls": saliency.model_calls,
    }


def describe(result: dict, top_k: int = 5) -> list[str]:
    """The report lines of :func:`explain_file`'s result: top-k classes, the target, model calls and time."""
    names, probabilities = result["class_names"], result["probabilities"]
    top = probabilities.topk(min(top_k, len(names)))
    lines = [f"top-{top_k} classes:"]
    for rank, (p, index) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
        lines.append(f"  {rank}. {names[index]} (class {index}): {p:.3f}")
    target = result["target"]
    lines.append(f"target: {names[target]} (class {target}), p = {float(probabilities[target]):.3f}")
    status = " - stopped early, partial map" if result["partial"] else ""
    lines.append(
        f"{result['method'].upper()}: {result['model_calls']} model calls in {result['seconds']:.1f} s{status}"
    )
    return lines


def write_figure(result: dict, out: str | Path, dpi: int = 100) -> Path:
    """Image, saliency map and overlay side by side, saved to ``out`` (format from the suffix, e.g. .png)."""
    from matplotlib.figure import Figure  # no pyplot: nothing global, works on any backend

    from .. import plots

    out = Path(out)
    name = result["class_names"][result["target"]]
    probability = float(result["probabilities"][result["target"]])
    figure = Figure(figsize=(10.5, 3.6), dpi=dpi, layout="constrained")
    axes = figure.subplots(1, 3)
    plots.show_image(axes[0], result["image"][0], "image")
    plots.show_map(axes[1], result["saliency"], f"{result['method'].upper()} map", cmap="jet")
    plots.overlay(axes[2], result["image"][0], result["saliency"], alpha=0.5, title="overlay")
    partial = " (partial)" if result["partial"] else ""
    figure.suptitle(
        f"{result['model']}: target '{name}' (p = {probability:.2f}), {result['method'].upper()} "
        f"with {result['model_calls']} model calls{partial}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return out

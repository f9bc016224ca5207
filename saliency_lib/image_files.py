"""A saliency map for one image file: read the file as a model's input, explain it, write a figure.

What ``python -m saliency_lib explain IMAGE`` does (:mod:`saliency_lib.cli_explain` only parses its options)::

    result = explain_file("cat.jpg", "efficientnet-lite0", "oise", steps=5000)
    print("\\n".join(describe(result)))       # top-5 classes, target, model calls and time
    write_figure(result, "map.png")           # image, map and overlay side by side
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ._checks import check_int
from .core import class_probabilities, resolve_target

__all__ = ["FIGURE_SUFFIXES", "METHODS", "load_image_file", "explain_file", "describe", "write_figure"]

FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
METHODS = ("oise", "rise")


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
    """Fail fast (before a model is loaded) on a missing file or one that is not an image."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as opened:
            opened.verify()
    except Exception as error:  # noqa: BLE001 - PIL raises many kinds; all mean "not an image we can read"
        raise ValueError(f"cannot read {path} as an image ({type(error).__name__})") from None


def explain_file(path, model_name: str = "efficientnet-lite0", method: str = "oise", *, steps: int = 5000,
                 chains: int = 1, batch_size: int | None = None, seed: int = 0, target: int | None = None,
                 progress: bool = True) -> dict:
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
    from . import models
    from .oise_method import oise
    from .rise_method import rise

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose oise or rise")
    if model_name not in models.MODEL_NAMES:
        raise ValueError(f"unknown model {model_name!r}; choose from {', '.join(models.MODEL_NAMES)}")
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
    start = time.perf_counter()
    if method == "oise":
        saliency = oise(model, image, target, n_steps=steps, n_chains=chains, batch_size=batch_size, seed=seed,
                        progress=progress)
    else:
        saliency = rise(model, image, target, n_masks=steps, batch_size=batch_size, seed=seed, progress=progress)
    return {"image": image, "saliency": saliency[0], "probabilities": probabilities,
            "target": int(saliency.target[0]), "class_names": model.class_names, "model": model_name,
            "method": method, "seconds": time.perf_counter() - start, "partial": bool(saliency.partial),
            "model_calls": int(saliency.model_calls)}


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
    lines.append(f"{result['method'].upper()}: {result['model_calls']} model calls in {result['seconds']:.1f} s"
                 f"{status}")
    return lines


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

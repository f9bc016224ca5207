"""A saliency map for one image file: read the file as a model's input, explain it, write a figure.

What ``python -m saliency_lib explain IMAGE`` does (:mod:`saliency_lib.cli_explain` only parses its options)::

    result = explain_file("cat.jpg", "efficientnet-lite0", "oise", steps=5000)
    print("\\n".join(describe(result)))       # top-5 classes, target, model calls and time
    write_figure(result, "map.png")           # image, map and overlay side by side

and what ``python -m saliency_lib explain-folder DIR`` does, on one process or many under ``torchrun``
(:mod:`saliency_lib.cli_explain_folder` only parses; :mod:`saliency_lib.distributed` splits the work)::

    run = explain_folder("photos/", "maps/", "efficientnet-lite0", "oise", steps=5000, block_size=4)
    # maps/explain.json: one record per image (file, target, class, probability, map); maps/maps/<file>.npz
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from ..method._checks import check_choice, check_int
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
    "folder_images",
    "explain_folder",
]

FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
METHODS = ("oise", "rise")
#: Files of a folder that :func:`explain_folder` explains (by suffix, any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def load_image_file(path: str | Path, model) -> torch.Tensor:
    """An image file as the model's input: float32 ``(1, C, H, W)`` in [0, 1].

    One-channel models (the Fashion CNN) get a grey image; three-channel models an RGB one. The shorter side
    is resized to the model's input size and the centre cropped, as :func:`saliency_lib.data.photographs`
    does. (Fashion-MNIST items are light on black: a photo of a shirt on white looks nothing like them.)
    Decoding and its checks (formats, size, decompression bombs, EXIF rotation, transparency) are
    :func:`saliency_lib.uploads.image_tensor`'s, the one home of image-file decoding.

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


def folder_images(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder`` (by :data:`IMAGE_SUFFIXES`), sorted by name: item i is the i-th.

    Raises:
        FileNotFoundError: no such folder. ValueError: no image file in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def explain_folder(
    folder,
    out_dir,
    model_name: str = "efficientnet-lite0",
    method: str = "oise",
    *,
    steps: int = 5000,
    chains: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    block_size: int = 4,
    device: str = "cpu",
    runtime: str = "auto",
    max_blocks: int | None = None,
    progress: bool = True,
):
    """Saliency maps of every image of a folder, split over torchrun's processes (or one process without it).

    The images (:func:`folder_images`, sorted by name) are explained in blocks of ``block_size``, each block in
    one call of :func:`saliency_lib.oise` / :func:`saliency_lib.rise` with its own seed
    (:func:`saliency_lib.distributed.block_seed` of ``seed`` and the block's number), so the maps do not depend
    on how many processes ran. Files are read by :func:`saliency_lib.uploads.image_tensor` (checked, resized and
    centre-cropped to the model's input); a file it refuses gets a record with ``error`` and no map.

    Writes, in ``out_dir``: ``maps/<file name>.npz`` (``saliency`` (H, W) float32, ``probabilities``,
    ``target``), ``explain.rank<r>.jsonl`` while running, and ``explain.json`` once every block is done (one
    record per image: ``index``, ``file``, ``target``, ``class``, ``probability``, ``map``, ``model_calls``).
    A run stopped part-way resumes from the blocks already written when started again with the same options.

    Args:
        device: ``"cpu"`` (the model in ONNX Runtime when ``runtime`` allows it) or ``"cuda"`` (this rank's GPU,
            PyTorch); ``"cuda"`` without a GPU raises RuntimeError with one line.
        runtime: ``"auto"``, ``"onnx"`` or ``"torch"``, as for :func:`saliency_lib.runtime.fast_model`.
        max_blocks: compute at most this many blocks in this process, then stop (run again to go on).
        Others: as for :func:`explain_file`.

    Returns:
        The :class:`saliency_lib.distributed.ShardedRun` (``records`` on rank 0 once complete).
    """
    import numpy as np

    from ..method.oise_method import oise
    from ..method.rise_method import rise
    from . import distributed, models, uploads

    check_choice("method", method, METHODS)
    check_choice("model", model_name, models.MODEL_NAMES)
    check_int("steps", steps, 1)
    check_int("chains", chains, 1)
    files = folder_images(folder)
    out_dir = Path(out_dir)
    device = distributed.init(device)  # joins torchrun's process group; one-line error for a missing GPU
    try:
        model = models.load(model_name, device=device, runtime=runtime)
    except Exception as error:  # noqa: BLE001 - missing weights, offline download: one line to the user
        raise RuntimeError(f"model {model_name!r} is unavailable: {str(error).splitlines()[0]}") from None
    maps_dir = out_dir / "maps"

    def job(block) -> list[dict]:
        images, records = [], []
        for path in files[block.start : block.stop]:
            try:
                images.append(uploads.image_tensor(path, model))
                records.append({"file": path.name})
            except (FileNotFoundError, ValueError) as error:  # this file only; the others go on
                # The same words on every machine: no folder path, no object address.
                message = str(error).splitlines()[0].replace(str(path), path.name)
                records.append({"file": path.name, "error": re.sub(r" at 0x[0-9a-fA-F]+", "", message)})
        if images:
            batch = torch.cat(images).to(device)
            probabilities = class_probabilities(model, batch).cpu()
            if method == "oise":
                saliency = oise(
                    model, batch, None, n_steps=steps, n_chains=chains, batch_size=batch_size, seed=block.seed
                )
            else:
                saliency = rise(model, batch, None, n_masks=steps, batch_size=batch_size, seed=block.seed)
            good = [r for r in records if "error" not in r]
            for i, record in enumerate(good):
                target = int(saliency.target[i])
                map_file = maps_dir / f"{record['file']}.npz"
                distributed.save_arrays(
                    map_file,
                    saliency=saliency.maps[i].cpu(),
                    probabilities=probabilities[i],
                    target=np.int64(target),
                )
                record.update(
                    target=target,
                    **{"class": model.class_names[target]},
                    probability=float(probabilities[i, target]),
                    map=str(map_file.relative_to(out_dir)),
                    model_calls=saliency.model_calls,
                )
        block.info["device"] = str(device)
        return records

    names = hashlib.sha256("\n".join(p.name for p in files).encode()).hexdigest()[:16]  # same folder on resume
    settings = {
        "images": len(files),
        "names_sha256": names,
        "model": model_name,
        "method": method,
        "steps": steps,
        "chains": chains,
        "runtime": getattr(model, "runtime", "torch"),
        "device": device.type,
    }
    try:
        return distributed.run_sharded(
            job,
            len(files),
            out_dir,
            "explain",
            seed=seed,
            block_size=block_size,
            settings=settings,
            max_blocks=max_blocks,
            progress=progress,
        )
    finally:
        distributed.finish()

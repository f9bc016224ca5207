"""Saliency maps of every image in a folder, split over torchrun's processes (or one process without it).

What ``python -m saliency_research explain-folder DIR`` does (:mod:`saliency_research.cli.explain_folder` only
parses; :mod:`saliency_research.distributed` splits the work)::

    run = explain_folder("photos/", "maps/", "efficientnet-lite0", "oise", steps=5000, block_size=4)
    # maps/explain.json: one record per image (file, target, class, probability, map); maps/maps/<file>.npz

One image at a time is :func:`saliency_lib.io.image_files.explain_file`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import torch

from saliency_lib.io import models, uploads
from saliency_lib.io.image_files import IMAGE_SUFFIXES, METHODS
from saliency_lib.method.checks import check_choice, check_int
from saliency_lib.method.core import class_probabilities
from saliency_lib.method.oise_method import oise
from saliency_lib.method.rise_method import rise

from . import distributed

__all__ = ["folder_images", "explain_folder"]


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
    (:func:`saliency_research.distributed.block_seed` of ``seed`` and the block's number), so the maps do not depend
    on how many processes ran. Files are read by :func:`saliency_lib.io.uploads.image_tensor` (checked, resized and
    centre-cropped to the model's input); a file it refuses gets a record with ``error`` and no map.

    Writes, in ``out_dir``: ``maps/<file name>.npz`` (``saliency`` (H, W) float32, ``probabilities``,
    ``target``), ``explain.rank<r>.jsonl`` while running, and ``explain.json`` once every block is done (one
    record per image: ``index``, ``file``, ``target``, ``class``, ``probability``, ``map``, ``model_calls``).
    A run stopped part-way resumes from the blocks already written when started again with the same options.

    Args:
        device: ``"cpu"`` (the model in ONNX Runtime when ``runtime`` allows it) or ``"cuda"`` (this rank's GPU,
            PyTorch); ``"cuda"`` without a GPU raises RuntimeError with one line.
        runtime: ``"auto"``, ``"onnx"`` or ``"torch"``, as for :func:`saliency_lib.io.runtime.fast_model`.
        max_blocks: compute at most this many blocks in this process, then stop (run again to go on).
        Others: as for :func:`saliency_lib.io.image_files.explain_file`.

    Returns:
        The :class:`saliency_research.distributed.ShardedRun` (``records`` on rank 0 once complete).
    """
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

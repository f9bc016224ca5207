"""One method on one dataset: its maps and every metric, per image (:func:`evaluate`), or the same numbers
computed in seeded blocks shared between torchrun processes and resumable (:func:`evaluate_sharded`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from saliency_lib.evaluation import metrics as Mt
from saliency_lib.evaluation.baselines import attribute
from saliency_lib.evaluation.datasets import load_dataset
from saliency_lib.method.progress import progress_bar
from saliency_research.distributed import Block, run_sharded, save_arrays
from saliency_research.suites import FAITHFULNESS, LOCALIZATION

__all__ = ["evaluate", "evaluate_sharded"]


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    method: str,
    options: dict,
    *,
    boxes: torch.Tensor | None = None,
    pixels_per_step: int = 28,
    chunk: int = 50,
    curve_batch: int = 256,
    progress: bool = False,
    curve_model: nn.Module | None = None,
    reference="mean",
    insertion_start="blur",
) -> dict:
    """Explain ``images`` with one method and score every map. Returns per-image metric tensors and costs.

    ``curve_model`` (default ``model``) runs the deletion/insertion curves: the same classifier in another
    runtime (e.g. ONNX Runtime while ``model`` is the PyTorch one a gradient method needs). ``reference`` is
    deletion's replacement and ``insertion_start`` insertion's starting image
    (:func:`saliency_lib.evaluation.metrics.causal_curves`; the suites pass the plan's, the same as the methods').

    Returns:
        ``{"values": {metric: (n,) tensor}, "maps": (n, H, W), "seconds": explanation time per image,
        "model_calls": per image, "curves": {"deletion": (n, T), "insertion": (n, T)}, "fraction": (T,)}``.
    """
    values: dict[str, list] = {key: [] for key in FAITHFULNESS + (LOCALIZATION if boxes is not None else ())}
    curves: dict[str, list] = {"deletion": [], "insertion": []}
    all_maps, seconds, calls, fraction = [], 0.0, 0, None
    starts = range(0, len(images), chunk)
    for start in progress_bar(starts, desc=method, enabled=progress):
        batch, target = images[start : start + chunk], targets[start : start + chunk]
        began = time.perf_counter()
        explained = attribute(method, model, batch, target, **options)
        seconds += time.perf_counter() - began
        calls, maps = explained.model_calls, explained.maps.cpu()
        all_maps.append(maps)
        scorer = model if curve_model is None else curve_model
        for mode in FAITHFULNESS:
            result = Mt.causal_curves(
                scorer,
                batch,
                maps,
                mode,
                target,
                pixels_per_step=pixels_per_step,
                batch_size=curve_batch,
                reference=reference,
                start=insertion_start,
            )
            values[mode].append(result.auc.cpu())
            curves[mode].append(result.curve.cpu())
            fraction = result.fraction
        if boxes is not None:
            box = boxes[start : start + chunk]
            values["pointing"].append(Mt.pointing_game(maps, box))
            values["iou"].append(Mt.box_iou(maps, box))
            values["energy"].append(Mt.energy_in_box(maps, box))
    return {
        "values": {key: torch.cat(v) for key, v in values.items()},
        "maps": torch.cat(all_maps),
        "seconds": seconds / len(images),
        "model_calls": calls,
        "curves": {key: torch.cat(v) for key, v in curves.items()},
        "fraction": fraction,
    }


def evaluate_sharded(
    dataset: str,
    method: str,
    n: int,
    out_dir: str | Path,
    *,
    options: dict | None = None,
    seed: int = 0,
    block_size: int = 50,
    same_seed: bool = False,
    data: dict | None = None,
    model: nn.Module | None = None,
    max_blocks: int | None = None,
    rank_world: tuple[int, int] | None = None,
    progress: bool = False,
    **evaluate_options,
) -> dict | None:
    """:func:`evaluate` of one method on a dataset, in blocks over torchrun's ranks, resumable.

    :func:`saliency_research.distributed.run_sharded` does the splitting: each rank has the dataset (``data``, or
    :func:`~saliency_lib.evaluation.datasets.load_dataset` ``(dataset, n, seed)``: the same on every rank) and
    evaluates its
    blocks of ``block_size`` images, with ``options["seed"]`` (when the options have one: OISE, RISE, LIME,
    random) replaced by the block's seed, :func:`~saliency_research.distributed.block_seed` ``(seed, block)``. Maps,
    curves and metric values go to ``out_dir/evaluation-<dataset>-<method>.blocks/block<k>.npz``, the per-image
    metric values to the records of ``evaluation-<dataset>-<method>.json``. Blocks already in ``out_dir`` (a run
    killed part-way) are not computed again.

    Args:
        same_seed: give every block ``options["seed"]`` itself, as :func:`evaluate` gives every chunk: with
            ``block_size == chunk`` the numbers are exactly ``evaluate``'s, still independent of the split
            (:func:`run_suite` runs this way).
        data: the dataset as :func:`~saliency_lib.evaluation.datasets.load_dataset` gave it (default: loaded here).
        model: the model that explains (default ``data["model"]``; e.g. its ONNX Runtime twin).
        max_blocks, rank_world, progress: as :func:`~saliency_research.distributed.run_sharded`.
        evaluate_options: ``pixels_per_step``, ``curve_batch``, ``curve_model``, ... passed to ``evaluate``.

    Returns:
        On rank 0 once every block is done: ``evaluate``'s dict (``values``, ``maps``, ``seconds``,
        ``model_calls``, ``curves``, ``fraction``) plus ``path`` (the merged JSON), ``block_seconds`` (the
        blocks' summed wall time, whichever run computed them) and ``reused`` (blocks found done). Else None.
    """
    options = dict(options or {})
    data = data if data is not None else load_dataset(dataset, n, seed=seed)
    model = model if model is not None else data["model"]
    images, targets, boxes = data["images"][:n], data["targets"][:n], data["boxes"]
    name = f"evaluation-{dataset}-{method}"
    arrays_dir = Path(out_dir) / f"{name}.blocks"

    def job(block: Block) -> list[dict]:
        block_options = options if same_seed or "seed" not in options else {**options, "seed": block.seed}
        part = slice(block.start, block.stop)
        out = evaluate(
            model,
            images[part],
            targets[part],
            method,
            block_options,
            boxes=None if boxes is None else boxes[part],
            chunk=len(block),
            **evaluate_options,
        )
        block.info["explain_seconds"] = out["seconds"] * len(block)  # a time: kept apart from the records
        save_arrays(
            arrays_dir / f"block{block.index:06d}.npz",
            maps=out["maps"],
            fraction=out["fraction"],
            **{f"curve_{mode}": curve for mode, curve in out["curves"].items()},
            **{f"value_{metric}": v for metric, v in out["values"].items()},
        )
        return [
            {
                "target": int(targets[i]),
                "model_calls": int(out["model_calls"]),
                **{metric: float(v[i - block.start]) for metric, v in out["values"].items()},
            }
            for i in block.items
        ]

    def runtime(m) -> str:
        return f"{getattr(m, 'name', type(m).__name__)} ({getattr(m, 'runtime', 'torch')})"

    settings = {
        "dataset": dataset,
        "method": method,
        "options": options,
        "same_seed": same_seed,
        "model": runtime(model),
        **{k: runtime(v) if isinstance(v, nn.Module) else v for k, v in evaluate_options.items()},
    }
    run = run_sharded(
        job,
        len(images),
        out_dir,
        name,
        seed=seed,
        block_size=block_size,
        settings=settings,
        max_blocks=max_blocks,
        rank_world=rank_world,
        progress=progress,
    )
    if run.records is None:
        return None
    parts = []
    for k in range(run.n_blocks):
        with np.load(arrays_dir / f"block{k:06d}.npz") as arrays:
            parts.append(dict(arrays))
    blocks = json.loads(run.path.read_text())["blocks"]

    def joined(key: str) -> torch.Tensor:  # the blocks' arrays end to end, dtypes as evaluate gave them
        return torch.from_numpy(np.concatenate([p[key] for p in parts]))

    return {
        "values": {key[len("value_") :]: joined(key) for key in parts[0] if key.startswith("value_")},
        "maps": joined("maps"),
        "curves": {mode: joined(f"curve_{mode}") for mode in ("deletion", "insertion")},
        "fraction": torch.from_numpy(parts[-1]["fraction"]),
        "model_calls": run.records[-1]["model_calls"],
        "seconds": sum(b["info"]["explain_seconds"] for b in blocks) / len(images),
        "path": run.path,
        "block_seconds": sum(b["info"]["seconds"] for b in blocks),
        "reused": len(run.skipped),
    }

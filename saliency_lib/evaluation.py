"""The evaluation: every method on data with ground truth, with confidence intervals and costs.

``python -m saliency_lib evaluate --suite quick|full`` runs :func:`run_suite` and writes
``benchmarks/results/evaluation_<suite>.json`` and ``.md`` (:mod:`saliency_lib.reports`). One JSON record per
(dataset, method): metric means with 95% confidence intervals (:func:`saliency_lib.reports.summarise`: Student t
on the per-image values), n, model calls and seconds per explanation. The datasets (planted evidence, cluttered
Fashion-MNIST, the Fashion-MNIST sample, the photographs with our boxes) are :mod:`saliency_lib.datasets`;
``sanity`` runs Adebayo et al.'s cascading randomisation on the sample, ``budget`` runs OISE and RISE at several
equal budgets (full suite only).

The ``paper`` suite runs OISE and RISE at the paper's budget, 5,000 model calls per image, on 500
images per dataset plus the photographs, with the black-box parts in ONNX Runtime (:mod:`saliency_lib.runtime`;
:data:`BLACK_BOX`) and the gradient baselines in PyTorch. It is long: run it in parts
(``run_suite("paper", datasets=[...], methods=[...])``, one process each); parts running at the same time merge
their records into one file under a lock. :func:`budget_curve` runs OISE (one chain and several) and RISE from 100
to 5,000 calls (``budget_curve.*``) and :func:`oise_settings` sweeps OISE's settings and measures its seed-to-seed
agreement (``paper_oise_settings.*``); ``benchmarks/paper.py`` is their command line.

OISE and RISE get exactly the same number of model calls (``n_steps == n_masks``). Nothing here is tuned toward
any method: the budgets are set by time, and every method uses its library's defaults except where stated in the
suite (:data:`SUITES`).

The reference: the value masked pixels take is one setting per dataset, used by every method that
masks (OISE, RISE, Occlusion, LIME, Integrated Gradients' baseline) *and* by the deletion metric, because a
black-box method's maps and the metric's substrate must agree. By default it is the dataset's own "absent" value
(:data:`saliency_lib.datasets.DATASET_REFERENCES`: black on the black-background data, the dataset mean on
photographs); ``run_suite(..., reference="mean")`` (``evaluate --reference mean``) runs the authors' dataset
mean everywhere and writes ``evaluation_<suite>_mean.*`` instead, so the two never share a file. Every record
says its ``reference`` and its insertion start (``insertion_start``, RISE's blur throughout), and the
``seed_agreement`` of each seeded method (:data:`AGREEMENT_METHODS`): the Spearman rank correlation of its maps
under seeds ``seed`` and ``seed + 1``; a method whose maps do not agree is flagged in the markdown.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import metrics as Mt
from ._checks import check_choice
from .baselines import METHODS, attribute
from .core import REFERENCES, model_device
from .datasets import DATASET_REFERENCES, DATASETS, load_dataset
from .distributed import Block, init, run_sharded, save_arrays, world
from .reports import AGREEMENT_FLOOR, RESULTS_DIR, evaluation_markdown, summarise, write_results

__all__ = [
    "DatasetPlan",
    "SUITES",
    "evaluate",
    "evaluate_sharded",
    "plan_records",
    "run_suite",
    "interrupted",
    "EXPERIMENT",
    "result_stem",
    "BLACK_BOX",
    "REFERENCE_METHODS",
    "AGREEMENT_METHODS",
    "PAPER_BUDGET",
    "BUDGETS",
    "budget_maps",
    "budget_curve",
    "write_budget_curve",
    "render_budget_curve",
    "OISE_SETTINGS",
    "oise_settings",
    "machine",
]

EXPERIMENT = "evaluation"  # result files are named evaluation_<suite>.json and .md
LOCALIZATION = ("pointing", "iou", "energy")
FAITHFULNESS = ("deletion", "insertion")


@dataclass
class DatasetPlan:
    """How one dataset is run within a suite.

    Attributes:
        name: one of :data:`DATASETS`.
        n: images (canvases) evaluated.
        budget: model calls per image for OISE (``n_steps``) and RISE (``n_masks``), always equal.
        pixels_per_step: pixels deleted/inserted per step of the curves.
        methods: which of :data:`saliency_lib.baselines.METHODS` run.
        options: per-method options beyond the budget (e.g. LIME's ``n_samples``).
        chunk: images explained per batch.
        curve_batch: masked images per model call in the deletion/insertion curves.
        runtime: ``"torch"``, or ``"auto"``/``"onnx"``: the black-box methods (:data:`BLACK_BOX`) and every
            method's curves run in ONNX Runtime (:func:`saliency_lib.runtime.fast_model`), gradients in PyTorch.
        record_runtime: each record says its runtime and the machine (CPU, cores, load) it ran on.
        reference: the masked-pixel value of the methods (:data:`REFERENCE_METHODS`) and of the deletion metric,
            a name of :data:`saliency_lib.core.REFERENCES`; ``None``: the dataset's own
            (:data:`saliency_lib.datasets.DATASET_REFERENCES`).
        insertion_start: the insertion metric's starting image (RISE's ``"blur"``).
        agreement_n: seed-to-seed agreement of the seeded methods is measured on the first ``agreement_n`` images.
    """

    name: str
    n: int
    budget: int
    pixels_per_step: int = 28
    methods: tuple[str, ...] = tuple(METHODS)
    options: dict = field(default_factory=dict)
    chunk: int = 50
    curve_batch: int = 256
    runtime: str = "torch"
    record_runtime: bool = False
    reference: str | None = None
    insertion_start: str = "blur"
    agreement_n: int = 50

    def masked_value(self) -> str:
        """The reference this plan runs with: its own, else the dataset's default."""
        return self.reference if self.reference is not None else DATASET_REFERENCES[self.name]


# Methods that only call the model (no gradients): a plan with ``runtime`` "auto"/"onnx" runs them, and every
# method's deletion/insertion curves, on the fast runtime (saliency_lib.runtime). Captum's Occlusion and LIME call
# the model under ``torch.no_grad``; Grad-CAM, Integrated Gradients and Saliency differentiate: PyTorch.
BLACK_BOX = ("oise", "rise", "random", "occlusion", "lime")
PAPER_BUDGET = 5000  # the paper's N: model calls per image for OISE and RISE
# Methods that replace pixels by a reference (Integrated Gradients: its baseline): they get the plan's reference.
REFERENCE_METHODS = ("oise", "rise", "occlusion", "lime", "integrated_gradients")
# Seeded methods whose seed-to-seed agreement is recorded (random: the control, ~0); Occlusion is deterministic.
AGREEMENT_METHODS = ("oise", "rise", "lime", "random")


def result_stem(suite: str, reference: str | None = None) -> str:
    """``evaluation_<suite>`` (each dataset's own reference) or ``evaluation_<suite>_<reference>`` (one
    reference forced on every dataset, e.g. the authors' ``mean``): results of two references never share a file."""
    return f"{EXPERIMENT}_{suite}" + (f"_{reference}" if reference is not None else "")


def _suite(scale: str) -> list[DatasetPlan]:
    quick = scale == "quick"
    # Budgets are set by the time the suite may take on a shared 2-core CPU (full: <= 35 min), never per method.
    common = {
        "lime": {"n_samples": 50 if quick else 100},
        "integrated_gradients": {"n_path_points": 16},
        "rise": {"batch_size": 500},
    }
    plans = [
        DatasetPlan(
            "planted",
            16 if quick else 100,
            300,
            pixels_per_step=256,
            options={**common, "occlusion": {"window": 8, "stride": 4}},
        ),
        DatasetPlan(
            "clutter",
            20 if quick else 500,
            300,
            pixels_per_step=256,
            options={**common, "occlusion": {"window": 8, "stride": 8}},
        ),
        DatasetPlan(
            "fashion",
            20 if quick else 500,
            300,
            pixels_per_step=56,
            options={**common, "occlusion": {"window": 4, "stride": 4}},
        ),
        DatasetPlan(
            "sanity",
            4 if quick else 10,
            300,
            methods=tuple(m for m in METHODS if m != "random"),
            options={**common, "occlusion": {"window": 4, "stride": 4}},
            chunk=16,
        ),
    ]
    if not quick:
        # How OISE and RISE change with the budget (the paper runs 5000 steps): a few images, three budgets.
        plans.append(
            DatasetPlan(
                "budget",
                20,
                3000,
                pixels_per_step=56,
                methods=("oise", "rise"),
                options={"rise": {"batch_size": 500}, "budgets": (300, 1000, 3000)},
                chunk=20,
            )
        )
        # EfficientNet-Lite0 costs ~0.1-0.5 s per image on the shared CPU: small budgets, coarse curves (stated).
        photo = {
            "lime": {"n_samples": 30},
            "integrated_gradients": {"n_path_points": 4, "batch_size": 8},
            "occlusion": {"window": 56, "stride": 56, "batch_size": 16},
            "rise": {"batch_size": 25},
            "oise": {"batch_size": 25},
        }
        plans.append(DatasetPlan("photos", 4, 150, pixels_per_step=224 * 56, options=photo, chunk=4, curve_batch=20))
    return plans


def _paper_suite() -> list[DatasetPlan]:
    """The paper's budget (5,000 calls per image for OISE and RISE), 500 images per dataset, baselines as in the
    full suite. Black-box methods and all curves run in ONNX Runtime (same logits; ``runtime="auto"``), except on
    the planted-evidence model, a tiny PyTorch module that is cheap as it is."""
    common = {"lime": {"n_samples": 100}, "integrated_gradients": {"n_path_points": 16}, "rise": {"batch_size": 500}}
    photo = {
        "lime": {"n_samples": 30},
        "integrated_gradients": {"n_path_points": 4, "batch_size": 8},
        "occlusion": {"window": 56, "stride": 56, "batch_size": 16},
        "rise": {"batch_size": 50},
        "oise": {"batch_size": 50},
    }
    paper = {"record_runtime": True}
    return [
        DatasetPlan(
            "planted",
            500,
            PAPER_BUDGET,
            pixels_per_step=256,
            chunk=250,
            **paper,
            options={**common, "occlusion": {"window": 8, "stride": 4}},
        ),
        DatasetPlan(
            "clutter",
            500,
            PAPER_BUDGET,
            pixels_per_step=256,
            chunk=250,
            runtime="auto",
            **paper,
            options={**common, "occlusion": {"window": 8, "stride": 8}},
        ),
        DatasetPlan(
            "fashion",
            500,
            PAPER_BUDGET,
            pixels_per_step=56,
            chunk=250,
            runtime="auto",
            **paper,
            options={**common, "occlusion": {"window": 4, "stride": 4}},
        ),
        DatasetPlan(
            "photos",
            4,
            PAPER_BUDGET,
            pixels_per_step=224 * 56,
            options=photo,
            chunk=4,
            curve_batch=50,
            runtime="auto",
            **paper,
        ),
    ]


SUITES = {"quick": _suite("quick"), "full": _suite("full"), "paper": _paper_suite()}


def _method_options(plan: DatasetPlan, method: str, seed: int) -> dict:
    options = dict(plan.options.get(method, {}))
    if method in REFERENCE_METHODS:
        options.setdefault("reference", plan.masked_value())
    if method == "oise":
        options.setdefault("n_steps", plan.budget)
    elif method == "rise":
        options.setdefault("n_masks", plan.budget)
    if method in ("oise", "rise", "random", "lime"):
        options.setdefault("seed", seed)
    return options


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
    (:func:`saliency_lib.metrics.causal_curves`; the suites pass the plan's, the same as the methods').

    Returns:
        ``{"values": {metric: (n,) tensor}, "maps": (n, H, W), "seconds": explanation time per image,
        "model_calls": per image, "curves": {"deletion": (n, T), "insertion": (n, T)}, "fraction": (T,)}``.
    """
    values: dict[str, list] = {key: [] for key in FAITHFULNESS + (LOCALIZATION if boxes is not None else ())}
    curves: dict[str, list] = {"deletion": [], "insertion": []}
    all_maps, seconds, calls, fraction = [], 0.0, 0, None
    starts = range(0, len(images), chunk)
    for start in tqdm(starts, desc=method, disable=not progress, leave=False):
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

    :func:`saliency_lib.distributed.run_sharded` does the splitting: each rank has the dataset (``data``, or
    :func:`~saliency_lib.datasets.load_dataset` ``(dataset, n, seed)``: the same on every rank) and evaluates its
    blocks of ``block_size`` images, with ``options["seed"]`` (when the options have one: OISE, RISE, LIME,
    random) replaced by the block's seed, :func:`~saliency_lib.distributed.block_seed` ``(seed, block)``. Maps,
    curves and metric values go to ``out_dir/evaluation-<dataset>-<method>.blocks/block<k>.npz``, the per-image
    metric values to the records of ``evaluation-<dataset>-<method>.json``. Blocks already in ``out_dir`` (a run
    killed part-way) are not computed again.

    Args:
        same_seed: give every block ``options["seed"]`` itself, as :func:`evaluate` gives every chunk: with
            ``block_size == chunk`` the numbers are exactly ``evaluate``'s, still independent of the split
            (:func:`run_suite` runs this way).
        data: the dataset as :func:`~saliency_lib.datasets.load_dataset` gave it (default: loaded here).
        model: the model that explains (default ``data["model"]``; e.g. its ONNX Runtime twin).
        max_blocks, rank_world, progress: as :func:`~saliency_lib.distributed.run_sharded`.
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


def _sanity_records(plan: DatasetPlan, data: dict, seed: int, progress: bool) -> list[dict]:
    records = []
    model, images, targets = data["model"], data["images"][: plan.n], data["targets"][: plan.n]
    for method in plan.methods:
        options = _method_options(plan, method, seed)

        def explain_fn(m, x, t, _method=method, _options=options):
            return attribute(_method, m, x, t, **_options)

        began = time.perf_counter()
        result = Mt.sanity_check(explain_fn, model, images, targets, seed=seed, progress=progress)
        seconds = time.perf_counter() - began
        # The yardstick for a random method: how similar are two of its maps on the *same* model with another seed?
        # A stochastic map that is noisy decorrelates under randomisation for that reason alone (ours).
        if "seed" in options:
            again = attribute(method, model, images, targets, **{**options, "seed": options["seed"] + 1})
            same_model = Mt.spearman(result.maps[0], again.maps.float().cpu())
        else:
            same_model = torch.ones(len(images))
        records.append(
            {
                "dataset": "sanity",
                "method": method,
                "n": len(images),
                "metrics": {
                    "rank_corr_same_model_other_seed": summarise(same_model),
                    "rank_corr_top_layer": summarise(result.correlation[0]),
                    "rank_corr_all_layers": summarise(result.correlation[-1]),
                    "abs_rank_corr_all_layers": summarise(result.correlation_abs[-1]),
                },
                "per_layer_mean": [round(v, 4) for v in result.correlation.mean(dim=1).tolist()],
                "layers": result.layers,
                "options": options,
                "reference": plan.masked_value(),
                "seconds_per_image": round(seconds / len(images) / (len(result.layers) + 1), 4),
                "model_calls": None,
                "info": data["info"],
                "wall_seconds": round(seconds, 1),
            }
        )
        if progress:
            rho = records[-1]["metrics"]["rank_corr_all_layers"]["mean"]
            print(f"  sanity {method:>22}: rho after all layers {rho:+.3f}", flush=True)
    return records


def run_suite(
    suite: str = "quick",
    out_dir: Path | None = None,
    *,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
    seed: int = 0,
    progress: bool = True,
    write: bool = True,
    device: str | torch.device = "cpu",
    reference: str | None = None,
) -> dict:
    """Run a suite and (``write=True``) save ``evaluation_<suite>.json`` and ``.md`` in ``out_dir``.

    Args:
        suite: ``"quick"`` (CI, a few minutes) or ``"full"`` (the committed results).
        out_dir: where to write (default: ``benchmarks/results``).
        datasets, methods: restrict to these (default: all of the suite).
        seed: seed of every random draw (canvases, OISE, RISE, LIME, random maps).
        device: ``"cpu"``, or ``"cuda"``: every model on this rank's GPU in PyTorch (no ONNX Runtime);
            RuntimeError in one line when PyTorch sees no GPU.
        reference: ``None``: each dataset's own reference (:data:`saliency_lib.datasets.DATASET_REFERENCES`);
            a name of :data:`saliency_lib.core.REFERENCES` (e.g. ``"mean"``, the authors'): that one for the
            methods and the deletion metric on every dataset, written to ``evaluation_<suite>_<reference>.*``
            (:func:`result_stem`).

    Under ``torchrun --nproc-per-node N`` (or several machines) the ranks share each dataset's images in blocks of
    ``plan.chunk`` (:func:`evaluate_sharded`; the same numbers as one process) and rank 0 writes the files; the
    small ``sanity`` and ``budget`` plans run on rank 0 alone. Finished blocks are kept in
    ``out_dir/evaluation_<suite>.parts/``: a run killed part-way and started again (the same command) computes
    only the missing blocks; delete that folder to recompute everything.

    Returns:
        ``{"suite", "settings", "records": [...], "photo_maps": {...} (full suite)}``; the JSON holds the same
        without the maps.
    """
    check_choice("suite", suite, SUITES)
    if reference is not None:
        check_choice("reference", reference, REFERENCES)
    for name in datasets or []:
        check_choice("datasets", name, DATASETS)
    for name in methods or []:
        check_choice("methods", name, METHODS)
    out_dir = Path(out_dir or RESULTS_DIR)
    plans = [
        p if reference is None else replace(p, reference=reference)
        for p in SUITES[suite]
        if datasets is None or p.name in datasets
    ]
    stem = result_stem(suite, reference)
    # A run restricted to some datasets (and methods) replaces just those records in an existing result file and
    # keeps the rest, so a long suite can be run (and re-run) in parts. Each record keeps its own wall time.
    records = []
    existing = out_dir / f"{stem}.json"
    if (datasets is not None or methods is not None) and write and existing.exists():
        previous = json.loads(existing.read_text())
        records = [
            r
            for r in previous["records"]
            if not ((datasets is None or r["dataset"] in datasets) and (methods is None or r["method"] in methods))
        ]
    extras = {}
    device = init(device)  # joins torchrun's process group when there is one; checks the GPU
    rank, _ = world()
    parts_dir = out_dir / f"{stem}.parts"
    for plan in plans:
        sharded = plan.name not in ("sanity", "budget")
        if not sharded and rank != 0:
            continue
        data = load_dataset(plan.name, plan.n, seed=seed)
        data["model"] = data["model"].to(device)  # the library moves the images to the model's device
        chosen = [m for m in plan.methods if methods is None or m in methods]
        if progress and rank == 0:
            print(
                f"[evaluate] {suite}/{plan.name}: n={plan.n}, OISE/RISE budget {plan.budget} calls, methods {chosen}",
                flush=True,
            )
        if plan.name == "sanity":
            records += _sanity_records(DatasetPlan(**{**plan.__dict__, "methods": tuple(chosen)}), data, seed, progress)
        elif plan.name == "budget":
            records += _budget_records(plan, data, chosen, seed, progress)
        else:
            records += _dataset_records(plan, data, chosen, seed, progress, extras, parts_dir)
        if write and rank == 0:  # after every dataset, so a long run leaves usable partial results
            _write(
                suite,
                out_dir,
                records,
                seed,
                replace=None if datasets is None and methods is None else (datasets, methods),
                reference=reference,
            )
    result = {"suite": suite, "records": records, **extras}
    result["settings"] = _settings(suite, seed, _dataset_seconds(records), reference)
    return result


def interrupted(
    suite: str,
    path: Path,
    before: bytes | None,
    datasets: list[str] | None,
    methods: list[str] | None,
    options: list[str],
) -> str:
    """One line after Ctrl+C in ``evaluate``: what was kept (finished datasets in ``path``, finished blocks in
    its ``.parts`` folder) and the command that runs the rest (``options``: the run's other arguments).
    ``before``: the bytes of ``path`` before the run (None: there was no file)."""
    wanted = datasets or [plan.name for plan in SUITES[suite]]
    after = path.read_bytes() if path.exists() else None
    # The first write of a run drops the file's old records of the datasets x methods it runs: present ones are new.
    done = (
        set()
        if after is None or after == before
        else {r["dataset"] for r in json.loads(after)["records"] if methods is None or r["method"] in methods}
    )
    rest = [name for name in wanted if name not in done]
    command = [
        "python -m saliency_lib evaluate --suite",
        suite,
        "--datasets",
        *rest,
        *(["--methods", *methods] if methods else []),
        *options,
    ]
    kept = [name for name in wanted if name in done]
    kept = f"kept the finished datasets {kept} in {path}" if kept else "no dataset had finished"
    parts = path.with_suffix(".parts")
    blocks = f" and the finished blocks in {parts}" if parts.is_dir() and any(parts.glob("*.jsonl")) else ""
    return f"interrupted: {kept}{blocks}; " + (f"resume with: {' '.join(command)}" if rest else "nothing left to run")


def _budget_records(plan: DatasetPlan, data: dict, chosen: list[str], seed: int, progress: bool) -> list[dict]:
    """OISE and RISE at several equal budgets on the same images: faithfulness and seed-to-seed stability."""
    records = []
    images, targets = data["images"][: plan.n], data["targets"][: plan.n]
    for budget in plan.options["budgets"]:
        for method in chosen:
            key = "n_steps" if method == "oise" else "n_masks"
            options = {**plan.options.get(method, {}), key: budget, "seed": seed, "reference": plan.masked_value()}
            began = time.perf_counter()
            out = evaluate(
                data["model"],
                images,
                targets,
                method,
                options,
                pixels_per_step=plan.pixels_per_step,
                chunk=plan.chunk,
                curve_batch=plan.curve_batch,
                reference=plan.masked_value(),
                insertion_start=plan.insertion_start,
            )
            again = attribute(method, data["model"], images, targets, **{**options, "seed": seed + 1})
            stability = Mt.spearman(out["maps"], again.maps.float().cpu())
            records.append(
                {
                    "dataset": "budget",
                    "method": f"{method}@{budget}",
                    "n": len(images),
                    "metrics": {
                        **{k: summarise(v) for k, v in out["values"].items()},
                        "rank_corr_other_seed": summarise(stability),
                    },
                    "model_calls": out["model_calls"],
                    "seconds_per_image": round(out["seconds"], 4),
                    "options": options,
                    "reference": plan.masked_value(),
                    "insertion_start": plan.insertion_start,
                    "pixels_per_step": plan.pixels_per_step,
                    "info": data["info"],
                    "wall_seconds": round(time.perf_counter() - began, 1),
                }
            )
            if progress:
                summary = ", ".join(f"{k} {v['mean']:.3f}" for k, v in records[-1]["metrics"].items())
                print(f"  budget {method}@{budget}: {summary}", flush=True)
    return records


def _dataset_seconds(records: list[dict]) -> dict:
    """Wall time per dataset: the sum of its records' times (explanations plus metrics)."""
    seconds: dict[str, float] = {}
    for r in records:
        seconds[r["dataset"]] = round(seconds.get(r["dataset"], 0.0) + r.get("wall_seconds", 0.0), 1)
    return seconds


def _runtimes(plan: DatasetPlan, model: nn.Module) -> tuple[nn.Module, str]:
    """The model black-box methods and curves use under ``plan.runtime``, and that runtime's name (a model on a
    GPU stays in PyTorch)."""
    if plan.runtime == "torch" or model_device(model, torch.device("cpu")).type != "cpu":
        return model, "torch"
    from .runtime import fast_model  # imported here: only the paper suite needs ONNX Runtime

    fast = fast_model(model, runtime=plan.runtime)
    return fast, getattr(fast, "runtime", "torch")


def _dataset_records(
    plan: DatasetPlan, data: dict, chosen: list[str], seed: int, progress: bool, extras: dict, parts_dir: Path
) -> list[dict]:
    """One record per method, each method run by :func:`evaluate_sharded` in blocks of ``plan.chunk`` images
    (every block seeded ``seed``, as :func:`evaluate`'s chunks: the same numbers however the work is split).
    Returns no records on a rank other than 0."""
    records = []
    fast, fast_runtime = _runtimes(plan, data["model"])
    for method in chosen:
        options = _method_options(plan, method, seed)
        explainer = fast if method in BLACK_BOX else data["model"]
        out = evaluate_sharded(
            plan.name,
            method,
            plan.n,
            parts_dir,
            options=options,
            seed=seed,
            block_size=plan.chunk,
            same_seed=True,
            data=data,
            model=explainer,
            progress=progress,
            pixels_per_step=plan.pixels_per_step,
            curve_batch=plan.curve_batch,
            curve_model=fast,
            reference=plan.masked_value(),
            insertion_start=plan.insertion_start,
        )
        if out is None:  # another rank: rank 0 writes the record
            continue
        if progress and out["reused"]:
            print(f"  {plan.name:>8} {method:>22}: {out['reused']} block(s) reused from {parts_dir}", flush=True)
        record = {
            "dataset": plan.name,
            "method": method,
            "n": int(out["maps"].shape[0]),
            "metrics": {key: summarise(v) for key, v in out["values"].items()},
            "model_calls": out["model_calls"],
            "seconds_per_image": round(out["seconds"], 4),
            "options": options,
            "reference": plan.masked_value(),
            "insertion_start": plan.insertion_start,
            "pixels_per_step": plan.pixels_per_step,
            "curve_points": int(out["curves"]["deletion"].shape[1]),
            "info": data["info"],
            "wall_seconds": round(out["block_seconds"], 1),
        }
        if method in AGREEMENT_METHODS and "seed" in options and plan.agreement_n > 0:
            began = time.perf_counter()
            record["seed_agreement"] = _seed_agreement(
                method, explainer, data, options, out["maps"], min(plan.agreement_n, plan.n)
            )
            record["wall_seconds"] = round(record["wall_seconds"] + time.perf_counter() - began, 1)
        if plan.record_runtime:
            record["runtime"] = {
                "explanation": fast_runtime if method in BLACK_BOX else "torch",
                "curves": fast_runtime,
            }
            record["machine"] = machine()
        if data["names"] is not None:
            record["per_image"] = {
                name: {key: round(float(v[i]), 4) for key, v in out["values"].items()}
                for i, name in enumerate(data["names"])
            }
            extras.setdefault("photo_maps", {})[method] = out["maps"]
        records.append(record)
        if progress:
            summary = ", ".join(f"{k} {v['mean']:.3f}" for k, v in record["metrics"].items())
            print(f"  {plan.name:>8} {method:>22}: {summary} | {record['seconds_per_image']:.3f} s/img", flush=True)
    return records


def plan_records(
    plan: DatasetPlan,
    data: dict,
    parts_dir: str | Path,
    *,
    methods: list[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """What :func:`run_suite` does for one dataset, on data the caller brings (the hook of
    :mod:`saliency_lib.boxes_suite`: a user's images with boxes). ``data`` as :func:`load_dataset` returns it;
    finished blocks in ``parts_dir`` are reused (torchrun-ready, resumable). Returns ``(records, extras)`` on rank
    0, records with ``vs_rise`` (``extras``: ``photo_maps`` when ``data["names"]`` is set); ``([], {})`` elsewhere."""
    extras: dict = {}
    chosen = [m for m in plan.methods if methods is None or m in methods]
    records = _dataset_records(plan, data, chosen, seed, progress, extras, Path(parts_dir))
    _paired_vs_rise(records, Path(parts_dir))
    return records, extras


def _seed_agreement(method: str, model: nn.Module, data: dict, options: dict, maps: torch.Tensor, n: int) -> dict:
    """Spearman rank correlation between the maps of seed ``options["seed"]`` (``maps``, the evaluation's own)
    and seed ``options["seed"] + 1`` on the first ``n`` images: does the method converge on this dataset?"""
    again = attribute(
        method, model, data["images"][:n], data["targets"][:n], **{**options, "seed": options["seed"] + 1}
    )
    return {
        **summarise(Mt.spearman(maps[:n].float(), again.maps.float().cpu())),
        "seeds": [options["seed"], options["seed"] + 1],
    }


def _settings(suite: str, seed: int, dataset_seconds: dict, reference: str | None = None) -> dict:
    return {
        "seed": seed,
        "reference": _reference_setting(reference),
        "plans": [
            {
                "dataset": p.name,
                "n": p.n,
                "oise_rise_budget": p.budget,
                "pixels_per_step": p.pixels_per_step,
                "options": p.options,
                "reference": reference or p.masked_value(),
                "insertion_start": p.insertion_start,
                **({"runtime": p.runtime} if p.runtime != "torch" else {}),
            }
            for p in SUITES[suite]
        ],
        "dataset_seconds": dataset_seconds,
        "total_seconds": round(sum(dataset_seconds.values()), 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), Python "
        f"{platform.python_version()}, torch {torch.__version__}",
        "notes": [
            "OISE n_steps == RISE n_masks (equal model calls); OISE uses the paper's defaults otherwise "
            "(8x8 grid, p_init 0.3, lr 0.02, one chain, unweighted sum); RISE uses p_keep 0.5, 8x8 grid.",
            "LIME runs with a modest n_samples (see options; LIME's default is 1000) on SLIC superpixels.",
            "Reference: masked pixels take the record's `reference` in the methods that mask (OISE, "
            "RISE, Occlusion, LIME, Integrated Gradients' baseline) and in deletion alike: by default the data's own "
            "absent value (black on Fashion-MNIST and the canvases; the dataset mean on photos); "
            "`--reference mean` forces the authors' dataset mean everywhere (files `evaluation_<suite>_mean.*`). "
            "Insertion starts from a Gaussian blur (11, sigma 5) throughout.",
            f"Seed agreement: Spearman rank correlation of a seeded method's maps under seeds 0 and 1 on the first "
            f"images of each dataset (random: the control); below {AGREEMENT_FLOOR} the method's maps have not "
            "converged there and its ranking on that dataset is a draw.",
            "model_calls are forward passes per image; gradient methods add one backward pass per forward.",
            "95% CI: mean +- t(0.975, n-1) * sd / sqrt(n) over images (n = 4 photos: wide, by design honest).",
            "Photos: 4 curve steps of 12,544 pixels (RISE uses 224 px per step) and small budgets, set by "
            "EfficientNet-Lite0's cost on the shared CPU; with so few steps a scattered map (random, gradients) "
            "deletes fast - see notebook 04 on what deletion rewards.",
            "Timings are wall-clock on a shared 2-core machine under load from other jobs; parts of the suite ran "
            "concurrently (python -m saliency_lib evaluate --suite full --datasets ... merges records).",
        ]
        + (PAPER_NOTES if suite == "paper" else []),
    }


PAPER_NOTES = [
    "Paper suite: OISE n_steps = RISE n_masks = 5000 (the paper's N). OISE, RISE, Occlusion, LIME, random and "
    "every deletion/insertion curve ran in ONNX Runtime on the CPU (saliency_lib.runtime, same logits within "
    "1e-5); Grad-CAM, Integrated Gradients and Saliency in PyTorch (gradients); the planted-evidence model in "
    "PyTorch throughout. Each record says its runtime and the machine (CPU, cores, 1-minute load) it ran on.",
    "Parts ran as separate processes (--datasets/--methods) writing into one file under a lock; wall_seconds "
    "are per record, and the load average says how busy the shared machine was.",
]


def machine() -> dict:
    """The CPU a record was measured on: model name, logical cores, torch threads and the 1-minute load average
    when the record was written (other jobs share the machine: the load says how much)."""
    name = platform.processor() or platform.machine()
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout.splitlines()
        name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), name)
    except (OSError, subprocess.SubprocessError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": name,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_1min": None if load is None else round(load, 2),
    }


@contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (POSIX ``flock``; no lock where there is none): parts of a suite that run
    at the same time into one result file then merge their records instead of overwriting each other's."""
    try:
        import fcntl
    except ImportError:  # Windows: run the parts one after another
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reference_setting(reference: str | None) -> str:
    """What a result file says about its reference: one forced on every dataset, or each dataset's own."""
    return reference if reference is not None else "per dataset (saliency_lib.datasets.DATASET_REFERENCES)"


def _paired_vs_rise(records: list[dict], parts_dir: Path) -> None:
    """Add ``vs_rise`` to every record whose method and RISE both have per-image values in ``parts_dir`` (the
    merged files of :func:`evaluate_sharded`): the paired per-image difference method - RISE of each metric,
    summarised (mean, 95% CI). Records without them (another rank, a legacy file) are left as they are."""

    def per_image(dataset: str, method: str) -> list[dict] | None:
        path = parts_dir / f"{EXPERIMENT}-{dataset}-{method}.json"
        return json.loads(path.read_text())["records"] if path.exists() else None

    for dataset in dict.fromkeys(r["dataset"] for r in records):
        rise = per_image(dataset, "rise")
        if rise is None:
            continue
        for record in records:
            if record["dataset"] != dataset or record["method"] == "rise":
                continue
            mine = per_image(dataset, record["method"])
            if mine is None or len(mine) != len(rise) or len(mine) != record["n"]:
                continue
            record["vs_rise"] = {
                key: summarise(torch.tensor([a[key] - b[key] for a, b in zip(mine, rise)], dtype=torch.float64))
                for key in record["metrics"]
                if all(key in a for a in mine) and all(key in b for b in rise)
            }


def _write(
    suite: str, out_dir: Path, records: list, seed: int, replace: tuple | None = None, reference: str | None = None
) -> None:
    """Write the result file. ``replace = (datasets, methods)`` of a restricted run: its records replace the
    file's records of those datasets x methods, read again under a lock now, so concurrent parts all survive.

    Raises:
        ValueError: the file holds results of another reference (or of before the reference was recorded):
            records of two references never merge into one file.
    """
    stem = result_stem(suite, reference)
    setting = _reference_setting(reference)
    with _locked(Path(out_dir) / f".{stem}.lock"):
        existing = Path(out_dir) / f"{stem}.json"
        if replace is not None and existing.exists():
            datasets, methods = replace
            previous = json.loads(existing.read_text())
            theirs = previous.get("settings", {}).get("reference")
            if theirs != setting:
                raise ValueError(
                    f"{existing} holds results made with reference {theirs or 'mean (not recorded: an older file)'}"
                    f", this run uses {setting}: records of two references must not share a file; move that file "
                    f"to {result_stem(suite, 'mean')}.json (the authors' mean) or delete it, then run again"
                )

            def selected(r):
                return (datasets is None or r["dataset"] in datasets) and (methods is None or r["method"] in methods)

            ours = [r for r in records if selected(r)]
            done = {(r["dataset"], r["method"]) for r in ours}
            others = [r for r in previous["records"] if not selected(r) and (r["dataset"], r["method"]) not in done]
            records = others + ours
        records = [dict(r) for r in records]
        _paired_vs_rise(records, Path(out_dir) / f"{stem}.parts")
        partial = {r["dataset"] for r in records} != {p.name for p in SUITES[suite]}
        payload = {
            "suite": suite,
            "command": f"python -m saliency_lib evaluate --suite {suite}"
            + (f" --reference {reference}" if reference is not None else ""),
            "partial": partial,
            "settings": _settings(suite, seed, _dataset_seconds(records), reference),
            "records": records,
        }
        write_results(payload, evaluation_markdown(payload, DATASETS), stem, out_dir)


# --- The budget curve and OISE's settings (the paper's budget) --------------------------------------------------

BUDGETS = (100, 200, 500, 1000, 2000, 5000)
BUDGET_CURVE_CHAINS = 8  # "OISE, several chains": the chains run in the same model call and are summed
BUDGET_CURVE_STEM = "budget_curve"


def _curve_variants(chains: int, reference: str = "mean") -> dict[str, tuple[str, dict]]:
    return {
        "oise_1chain": ("oise", {"n_chains": 1, "reference": reference}),
        f"oise_{chains}chains": ("oise", {"n_chains": chains, "reference": reference}),
        "rise": ("rise", {"batch_size": 500, "reference": reference}),
    }


def _stem(base: str, reference: str | None) -> str:
    """``base`` (each dataset's own reference) or ``base_<reference>`` (one forced): as :func:`result_stem`."""
    return base + (f"_{reference}" if reference is not None else "")


def _score(
    model: nn.Module,
    images,
    targets,
    maps,
    boxes,
    pixels_per_step: int,
    curve_batch: int,
    reference="mean",
    insertion_start="blur",
) -> dict:
    """Per-image deletion and insertion AUCs (and pointing, IoU, energy when there are boxes) of ``maps``;
    deletion replaces pixels by ``reference``, insertion starts from ``insertion_start``."""
    values = {
        mode: Mt.causal_curves(
            model,
            images,
            maps,
            mode,
            targets,
            pixels_per_step=pixels_per_step,
            batch_size=curve_batch,
            reference=reference,
            start=insertion_start,
        ).auc.cpu()
        for mode in FAITHFULNESS
    }
    if boxes is not None:
        values.update(
            pointing=Mt.pointing_game(maps, boxes), iou=Mt.box_iou(maps, boxes), energy=Mt.energy_in_box(maps, boxes)
        )
    return values


def budget_maps(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    method: str,
    options: dict,
    budgets: tuple[int, ...],
    seed: int = 0,
) -> tuple[dict[int, torch.Tensor], dict[int, int], float]:
    """Maps of ``method`` at every budget of ``budgets`` (model calls per image).

    OISE runs once, at the largest budget, and records its running map at each smaller one: its random numbers
    are drawn so that a shorter run is a prefix of a longer one, so the map recorded after ``ceil(b / K)`` steps
    of ``K`` chains *is* the map of a run with ``n_steps = b`` (tested). RISE runs once per budget.

    Returns ``({budget: (B, H, W) maps}, {budget: model calls per image}, seconds)``.
    """
    began = time.perf_counter()
    if method == "oise":
        chains = options.get("n_chains", 1)
        steps = {b: -(-b // chains) for b in budgets}
        from .oise_method import oise  # the function itself: it returns the recorded history

        out = oise(
            model, images, targets, **options, n_steps=max(budgets), seed=seed, record_every=sorted(set(steps.values()))
        )
        history = dict(zip(out.history.steps, out.history.saliency))
        maps = {b: history[steps[b]] for b in budgets}
        calls = {b: steps[b] * chains for b in budgets}
    else:
        maps, calls = {}, {}
        for b in budgets:
            out = attribute(method, model, images, targets, **options, n_masks=b, seed=seed)
            maps[b], calls[b] = out.maps.cpu(), out.model_calls
    return maps, calls, time.perf_counter() - began


def budget_curve(
    dataset: str = "fashion",
    n: int = 100,
    budgets: tuple[int, ...] = BUDGETS,
    *,
    chains: int = BUDGET_CURVE_CHAINS,
    seed: int = 0,
    chunk: int = 100,
    runtime: str = "auto",
    out_dir: Path | None = None,
    write: bool = True,
    progress: bool = True,
    reference: str | None = None,
) -> dict:
    """OISE (1 chain and ``chains`` chains) and RISE at every budget on the first ``n`` images of ``dataset``.

    ``reference``: the masked-pixel value of OISE, RISE and deletion alike (``None``: the dataset's own,
    :data:`saliency_lib.datasets.DATASET_REFERENCES`; a forced one writes ``budget_curve_<reference>.*``).

    One record per (dataset, method, budget): deletion, insertion (and on datasets with boxes, e.g. ``clutter``,
    the pointing game, IoU and energy) summarised with :func:`saliency_lib.reports.summarise`, plus the paired
    per-image difference OISE - RISE at the same budget (``vs_rise``: its mean and 95% CI say whether OISE has
    caught up). Written (``write=True``) into ``budget_curve.json``/``.md``/``.png`` in ``out_dir``; records of
    other datasets already in the file are kept (runs of several datasets may go at the same time).
    """
    check_choice("dataset", dataset, DATASETS)
    if reference is not None:
        check_choice("reference", reference, REFERENCES)
    data = load_dataset(dataset, n, seed=seed)
    plan = next((p for p in SUITES["paper"] if p.name == dataset), DatasetPlan(dataset, n, max(budgets)))
    plan = replace(plan, reference=reference or plan.masked_value())
    fast, fast_runtime = _runtimes(DatasetPlan(dataset, n, max(budgets), runtime=runtime), data["model"])
    images, targets = data["images"][:n], data["targets"][:n]
    boxes = data["boxes"][:n] if data["boxes"] is not None else None
    variants = _curve_variants(chains, plan.masked_value())
    values: dict[str, dict[int, dict[str, list]]] = {name: {b: {} for b in budgets} for name in variants}
    calls: dict[str, dict[int, int]] = {}
    seconds = {name: 0.0 for name in variants}
    result = {}
    # Chunk by chunk, every method on the chunk, the file rewritten after each: a long run leaves a usable
    # curve on the images done so far (n grows), and a killed run loses at most one chunk.
    for start in range(0, len(images), chunk):
        stop = min(start + chunk, len(images))
        for name, (method, options) in variants.items():
            maps, calls[name], spent = budget_maps(
                fast, images[start:stop], targets[start:stop], method, options, budgets, seed=seed
            )
            seconds[name] += spent
            for b in budgets:
                scores = _score(
                    fast,
                    images[start:stop],
                    targets[start:stop],
                    maps[b],
                    None if boxes is None else boxes[start:stop],
                    plan.pixels_per_step,
                    plan.curve_batch,
                    plan.masked_value(),
                    plan.insertion_start,
                )
                for key, v in scores.items():
                    values[name][b].setdefault(key, []).append(v)
        result = _budget_curve_result(
            dataset, values, calls, seconds, stop, budgets, chains, seed, plan, fast_runtime, data["info"], n
        )
        if progress:
            print(
                f"  budget curve {dataset}: {stop}/{len(images)} images, "
                + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()),
                flush=True,
            )
        if write:
            write_budget_curve(result, dataset, out_dir, reference)
    return result


def _budget_curve_result(
    dataset, values, calls, seconds, done, budgets, chains, seed, plan, runtime, info, planned
) -> dict:
    records = []
    for name in values:
        for b in budgets:
            per_image = {k: torch.cat(v).double() for k, v in values[name][b].items()}
            # OISE's smaller budgets are prefixes of one run: their time is the run's time pro rata; RISE's runs
            # at all budgets are timed together: pro rata too (ours, an estimate).
            share = calls[name][b] / max(budgets) if name.startswith("oise") else b / sum(budgets)
            record = {
                "dataset": dataset,
                "method": name,
                "budget": b,
                "model_calls": calls[name][b],
                "n": done,
                "metrics": {k: summarise(v) for k, v in per_image.items()},
                "seconds_per_image": round(seconds[name] / done * share, 4),
                "reference": plan.masked_value(),
                "insertion_start": plan.insertion_start,
                "runtime": runtime,
                "machine": machine(),
            }
            if name != "rise":
                rise_values = {k: torch.cat(v).double() for k, v in values["rise"][b].items()}
                record["vs_rise"] = {k: summarise(per_image[k] - rise_values[k]) for k in per_image}
            records.append(record)
    return {
        "records": records,
        "settings": {
            "budgets": list(budgets),
            "chains": chains,
            "seed": seed,
            "pixels_per_step": plan.pixels_per_step,
            "reference": plan.masked_value(),
            "insertion_start": plan.insertion_start,
            "runtime": runtime,
            "info": info,
            "images_done": done,
            "images_planned": planned,
            "seconds": {name: round(s, 1) for name, s in seconds.items()},
        },
    }


def write_budget_curve(
    result: dict | None, dataset: str | None = None, out_dir: Path | None = None, reference: str | None = None
) -> dict:
    """Merge ``result``'s records of ``dataset`` into ``budget_curve.json`` (``budget_curve_<reference>.json``
    for a forced reference; under a lock) and rewrite the ``.md`` and ``.png`` from the merged file
    (``result=None``: just rewrite them). Returns the merged payload.

    Raises:
        ValueError: the file holds results of another reference setting (they never share a file).
    """
    from .reports import budget_curve_figure, budget_curve_markdown

    out_dir = Path(out_dir or RESULTS_DIR)
    stem = _stem(BUDGET_CURVE_STEM, reference)
    with _locked(out_dir / f".{stem}.lock"):
        path = out_dir / f"{stem}.json"
        payload = json.loads(path.read_text()) if path.exists() else {"records": [], "settings": {}}
        setting = _reference_setting(reference)
        if result is not None and payload["records"] and payload.get("reference") != setting:
            raise ValueError(
                f"{path} holds results made with reference {payload.get('reference') or 'mean (not recorded)'}, "
                f"this run uses {setting}: move that file to {_stem(BUDGET_CURVE_STEM, 'mean')}.json or delete it"
            )
        if result is not None:
            payload["reference"] = setting
            payload["records"] = [r for r in payload["records"] if r["dataset"] != dataset] + result["records"]
            payload["settings"][dataset] = result["settings"]
        payload["command"] = (
            "python benchmarks/paper.py budget-curve --dataset <fashion|clutter> --n 100"
            + (f" --reference {reference}" if reference is not None else "")
            + " (one process per dataset)"
        )
        write_results(payload, budget_curve_markdown(payload), stem, out_dir)
        figure = budget_curve_figure(payload)
        figure.savefig(out_dir / f"{stem}.png", dpi=90, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)
    return payload


def render_budget_curve(out_dir: Path | None = None, reference: str | None = None) -> dict:
    """Rewrite ``budget_curve.md`` and ``.png`` from ``budget_curve.json`` (``budget_curve_<reference>.*``)."""
    return write_budget_curve(None, None, out_dir, reference)


SETTINGS_STEM = "paper_oise_settings"
# One setting changed at a time from the paper's defaults (8x8 grid, p_init 0.3, step size 0.02, 1 chain,
# unweighted sum) at the run's reference (the dataset's own unless forced); RISE at the same budget and reference is
# the yardstick. The reference rows set OISE's alone: the metric keeps the run's.
OISE_SETTINGS = {
    "paper defaults": {},
    "grid 4": {"grid_size": 4},
    "grid 16": {"grid_size": 16},
    "p_init 0.1": {"p_init": 0.1},
    "p_init 0.5": {"p_init": 0.5},
    "step size 0.005": {"step_size": 0.005},
    "step size 0.1": {"step_size": 0.1},
    "reference blur": {"reference": "blur"},
    "reference mean (the paper's)": {"reference": "mean"},
    "reference black": {"reference": "black"},
    "8 chains": {"n_chains": 8},
    "weighted by score": {"weight_by_score": True},
}


def oise_settings(
    dataset: str = "fashion",
    n: int = 50,
    budget: int = 1000,
    *,
    agreement_budget: int = PAPER_BUDGET,
    agreement_n: int = 20,
    seed: int = 0,
    runtime: str = "auto",
    out_dir: Path | None = None,
    write: bool = True,
    progress: bool = True,
    settings: dict | None = None,
    reference: str | None = None,
) -> dict:
    """OISE's sensitivity to its settings, and its seed-to-seed agreement (the saliency card's numbers, ours).

    Each setting of ``settings`` (default :data:`OISE_SETTINGS`, one change at a time from the paper's) runs on
    the first ``n`` images of ``dataset`` at ``budget`` calls per image, with seeds ``seed`` and ``seed + 1``:
    deletion and insertion AUC, their paired difference to the paper's defaults, the rank correlation of the two
    seeds' maps (:func:`saliency_lib.metrics.spearman`) and seconds per map. RISE at the same budget is the
    yardstick. Then seed-to-seed agreement at ``agreement_budget`` calls on the first ``agreement_n`` images for
    OISE (1 and 8 chains) and RISE. Writes ``paper_oise_settings.json``/``.md``.

    ``reference``: the masked-pixel value of every map (unless a setting changes OISE's) and of deletion
    (``None``: the dataset's own, :data:`saliency_lib.datasets.DATASET_REFERENCES`; a forced one writes
    ``paper_oise_settings_<reference>.*``).
    """
    check_choice("dataset", dataset, DATASETS)
    if reference is not None:
        check_choice("reference", reference, REFERENCES)
    data = load_dataset(dataset, max(n, agreement_n), seed=seed)
    plan = next((p for p in SUITES["paper"] if p.name == dataset), DatasetPlan(dataset, n, budget))
    plan = replace(plan, reference=reference or plan.masked_value())
    ref = plan.masked_value()
    fast, fast_runtime = _runtimes(DatasetPlan(dataset, n, budget, runtime=runtime), data["model"])
    images, targets = data["images"][:n], data["targets"][:n]
    rows, defaults = [], None
    runs = {**(settings if settings is not None else OISE_SETTINGS), "RISE (yardstick)": None}
    for name, change in runs.items():
        method, options = (
            ("rise", {"n_masks": budget, "batch_size": 500, "reference": ref})
            if change is None
            else ("oise", {"reference": ref, **change, "n_steps": budget})
        )
        began = time.perf_counter()
        maps = attribute(method, fast, images, targets, **options, seed=seed).maps.cpu()
        seconds = (time.perf_counter() - began) / len(images)
        again = attribute(method, fast, images, targets, **options, seed=seed + 1).maps.cpu()
        values = _score(
            fast, images, targets, maps, None, plan.pixels_per_step, plan.curve_batch, ref, plan.insertion_start
        )
        if name == "paper defaults":
            defaults = values
        row = {
            "setting": name,
            "method": method,
            "options": options,
            "n": len(images),
            "metrics": {k: summarise(v) for k, v in values.items()},
            "rank_corr_other_seed": summarise(Mt.spearman(maps, again)),
            "seconds_per_map": round(seconds, 4),
        }
        if defaults is not None and name != "paper defaults":
            row["vs_defaults"] = {k: summarise(values[k].double() - defaults[k].double()) for k in values}
        rows.append(row)
        if progress:
            print(
                f"  settings {name}: "
                + ", ".join(f"{k} {v['mean']:.3f}" for k, v in row["metrics"].items())
                + f", seed agreement {row['rank_corr_other_seed']['mean']:.3f}, {seconds:.2f} s/map",
                flush=True,
            )
    agreement = []
    few, few_targets = data["images"][:agreement_n], data["targets"][:agreement_n]
    for name, method, options in (
        ("oise, 1 chain", "oise", {"n_steps": agreement_budget, "reference": ref}),
        ("oise, 8 chains", "oise", {"n_steps": agreement_budget, "n_chains": 8, "reference": ref}),
        ("rise", "rise", {"n_masks": agreement_budget, "batch_size": 500, "reference": ref}),
    ):
        began = time.perf_counter()
        first = attribute(method, fast, few, few_targets, **options, seed=seed)
        seconds = (time.perf_counter() - began) / len(few)
        calls, first = first.model_calls, first.maps.cpu()
        second = attribute(method, fast, few, few_targets, **options, seed=seed + 1).maps.cpu()
        agreement.append(
            {
                "method": name,
                "model_calls": calls,
                "n": len(few),
                "rank_corr_other_seed": summarise(Mt.spearman(first, second)),
                "seconds_per_map": round(seconds, 4),
            }
        )
        if progress:
            print(
                f"  seed agreement at {agreement_budget}: {name} {agreement[-1]['rank_corr_other_seed']['mean']:.3f}",
                flush=True,
            )
    result = {
        "dataset": dataset,
        "budget": budget,
        "agreement_budget": agreement_budget,
        "seed": seed,
        "reference": ref,
        "insertion_start": plan.insertion_start,
        "runtime": fast_runtime,
        "machine": machine(),
        "info": data["info"],
        "settings": rows,
        "seed_agreement": agreement,
        "command": f"python benchmarks/paper.py sensitivity --n {n} --budget {budget} "
        f"--agreement-budget {agreement_budget} --agreement-n {agreement_n}"
        + (f" --reference {reference}" if reference is not None else ""),
    }
    if write:
        from .reports import oise_settings_markdown

        write_results(result, oise_settings_markdown(result), _stem(SETTINGS_STEM, reference), out_dir)
    return result

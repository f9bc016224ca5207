"""The evaluation: every method on data with ground truth, with confidence intervals and costs.

``python -m saliency_research evaluate --suite quick|full`` runs :func:`run_suite` and writes
``benchmarks/results/evaluation_<suite>.json`` and ``.md`` (:mod:`.reports`). One JSON record per
(dataset, method): metric means with 95% confidence intervals (:func:`saliency_research.reports.summarise`: Student t
on the per-image values), n, model calls and seconds per explanation. The datasets (planted evidence, cluttered
Fashion-MNIST, the Fashion-MNIST sample, the photographs with our boxes) are :mod:`saliency_lib.evaluation.datasets`;
``sanity`` runs Adebayo et al.'s cascading randomisation on the sample, ``budget`` runs OISE and RISE at several
equal budgets (full suite only).

The ``paper`` suite runs OISE and RISE at the paper's budget, 5,000 model calls per image, on 500
images per dataset plus the photographs, with the black-box parts in ONNX Runtime (:mod:`saliency_lib.io.runtime`;
:data:`BLACK_BOX`) and the gradient baselines in PyTorch. It is long: run it in parts
(``run_suite("paper", datasets=[...], methods=[...])``, one process each); parts running at the same time merge
their records into one file under a lock (:mod:`.suite_results`). The budget curve and OISE's settings sweep
are :mod:`.budget_study`; ``saliency_research/bench/paper.py`` is their command line.

OISE and RISE get exactly the same number of model calls (``n_steps == n_masks``). Nothing here is tuned toward
any method: the budgets are set by time, and every method uses its library's defaults except where stated in the
suite (:data:`.suites.SUITES`). One method on one dataset is :mod:`.scoring`.

The reference: the value masked pixels take is one setting per dataset, used by every method that
masks (OISE, RISE, Occlusion, LIME, Integrated Gradients' baseline) *and* by the deletion metric, because a
black-box method's maps and the metric's substrate must agree. By default it is the dataset's own "absent" value
(:data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`: black on the black-background data, the dataset mean on
photographs); ``run_suite(..., reference="mean")`` (``evaluate --reference mean``) runs the authors' dataset
mean everywhere and writes ``evaluation_<suite>_mean.*`` instead, so the two never share a file. Every record
says its ``reference`` and its insertion start (``insertion_start``, RISE's blur throughout), and the
``seed_agreement`` of each seeded method (:data:`AGREEMENT_METHODS`): the Spearman rank correlation of its maps
under seeds ``seed`` and ``seed + 1``; a method whose maps do not agree is flagged in the markdown.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from saliency_lib.evaluation import metrics as Mt
from saliency_lib.evaluation.baselines import METHODS, attribute
from saliency_lib.evaluation.datasets import DATASETS, load_dataset
from saliency_lib.method.checks import check_choice
from saliency_lib.method.core import REFERENCES
from saliency_research.distributed import init, world
from saliency_research.reports import RESULTS_DIR, summarise
from saliency_research.scoring import evaluate, evaluate_sharded
from saliency_research.suite_results import dataset_seconds, machine, paired_vs_rise, suite_settings, write_suite
from saliency_research.suites import (
    AGREEMENT_METHODS,
    BLACK_BOX,
    SUITES,
    DatasetPlan,
    method_options,
    plan_runtime,
    result_stem,
)

__all__ = ["run_suite", "interrupted", "plan_records"]


def _sanity_records(plan: DatasetPlan, data: dict, seed: int, progress: bool) -> list[dict]:
    records = []
    model, images, targets = data["model"], data["images"][: plan.n], data["targets"][: plan.n]
    for method in plan.methods:
        options = method_options(plan, method, seed)

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
        reference: ``None``: each dataset's own reference (:data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`);
            a name of :data:`saliency_lib.method.core.REFERENCES` (e.g. ``"mean"``, the authors'): that one for the
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
            write_suite(
                suite,
                out_dir,
                records,
                seed,
                replace=None if datasets is None and methods is None else (datasets, methods),
                reference=reference,
            )
    result = {"suite": suite, "records": records, **extras}
    result["settings"] = suite_settings(suite, seed, dataset_seconds(records), reference)
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
        "python -m saliency_research evaluate --suite",
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


def _dataset_records(
    plan: DatasetPlan, data: dict, chosen: list[str], seed: int, progress: bool, extras: dict, parts_dir: Path
) -> list[dict]:
    """One record per method, each method run by :func:`evaluate_sharded` in blocks of ``plan.chunk`` images
    (every block seeded ``seed``, as :func:`evaluate`'s chunks: the same numbers however the work is split).
    Returns no records on a rank other than 0."""
    records = []
    fast, fast_runtime = plan_runtime(plan, data["model"])
    for method in chosen:
        options = method_options(plan, method, seed)
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
    :mod:`saliency_research.boxes_suite`: a user's images with boxes). ``data`` as :func:`load_dataset` returns it;
    finished blocks in ``parts_dir`` are reused (torchrun-ready, resumable). Returns ``(records, extras)`` on rank
    0, records with ``vs_rise`` (``extras``: ``photo_maps`` when ``data["names"]`` is set); ``([], {})`` elsewhere."""
    extras: dict = {}
    chosen = [m for m in plan.methods if methods is None or m in methods]
    records = _dataset_records(plan, data, chosen, seed, progress, extras, Path(parts_dir))
    paired_vs_rise(records, Path(parts_dir))
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

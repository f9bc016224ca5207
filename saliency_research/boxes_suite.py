"""The paper's experiment on your data: ImageNet or Open Images photographs with their object boxes.

``python -m saliency_research evaluate --suite boxes --images DIR --boxes FILE_OR_DIR --model resnet50`` runs every
method (OISE and RISE at the paper's 5,000 model calls per image) and every metric (deletion, insertion, pointing
game, IoU, energy in the box) on a folder of images with boxes, with the records and 95% CIs of the other suites
(:func:`.runner.plan_records`: sharded over torchrun's ranks, resumable), and writes
``evaluation_boxes.json`` and ``.md`` (``evaluation_boxes_<reference>.*`` with a forced ``--reference``)::

    data = load_box_data("val/", "val_xml/", models.load("resnet50"))     # images, boxes, targets, what was skipped
    result = run_boxes("val/", "val_xml/", "resnet50", device="cuda")     # every method, every metric, written

The model and the photographs with boxes are :mod:`.boxes_data`, where the choices (resize, target, several
boxes, images without a box) are described.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

from saliency_lib.method.checks import check_choice
from saliency_research import box_annotations as BA
from saliency_research.boxes_data import load_box_data, resolve_model

__all__ = ["SUITE", "BOX_OPTIONS", "boxes_plan", "run_boxes", "run_command", "IMAGENET_COMMAND"]

SUITE = "boxes"  # result files evaluation_boxes.json / .md; records' dataset
PER_IMAGE_MAX = 100  # records keep per-image values (by name) up to this many images; the parts folder has all
PER_IMAGE_COLUMNS = 12  # the markdown's per-image table up to this many images (the JSON keeps them all)
# Baselines' settings: ours, set by their cost on a CPU at 224 px (OISE and RISE: the paper's budget and defaults).
BOX_OPTIONS = {
    "lime": {"n_samples": 100},
    "integrated_gradients": {"n_path_points": 16, "batch_size": 8},
    "occlusion": {"window": 32, "stride": 16, "batch_size": 32},
    "rise": {"batch_size": 50},
    "oise": {"batch_size": 50},
}
IMAGENET_COMMAND = (
    "python -m saliency_research evaluate --suite boxes --images ILSVRC2012_img_val/ --boxes ILSVRC2012_bbox_val/ "
    "--model resnet50 --classes LOC_synset_mapping.txt --n 2000 --device cuda"
)


def boxes_plan(
    model: nn.Module,
    n: int,
    *,
    budget: int | None = None,
    reference: str | None = None,
    runtime: str = "auto",
    block_size: int = 4,
    methods: tuple[str, ...] | None = None,
):
    """The :class:`.suites.DatasetPlan` of the boxes suite: OISE = RISE = ``budget`` calls (default
    the paper's 5,000), :data:`BOX_OPTIONS` for the baselines, curves of ``W`` pixels per step (RISE's 224 at
    224 x 224), the photographs' reference (:data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`) unless
    forced."""
    from saliency_lib.evaluation.baselines import METHODS
    from saliency_lib.evaluation.datasets import DATASET_REFERENCES
    from saliency_research.suites import PAPER_BUDGET, DatasetPlan

    return DatasetPlan(
        SUITE,
        n,
        PAPER_BUDGET if budget is None else budget,
        pixels_per_step=int(model.spec.size[1]),
        methods=tuple(methods or METHODS),
        options=BOX_OPTIONS,
        chunk=block_size,
        curve_batch=50,
        runtime=runtime,
        record_runtime=True,
        reference=reference or DATASET_REFERENCES["photos"],
    )


def _fingerprint(data: dict, weights: dict, plan) -> str:
    """Sixteen hex digits naming these images, boxes, targets and model: finished blocks are reused only for them."""
    digest = hashlib.sha256()
    digest.update(json.dumps([data["names"], weights, plan.budget, plan.pixels_per_step]).encode())
    for tensor in (data["boxes"], data["targets"], data["images"].double().sum(dim=(1, 2, 3))):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def run_boxes(
    images: str | Path,
    boxes: str | Path | None = None,
    model: str | Path | nn.Module = "efficientnet-lite0",
    *,
    out_dir: str | Path | None = None,
    target: str = "top1",
    classes: str | Path | None = None,
    arch: str | None = None,
    sha256: str | None = None,
    n: int | None = None,
    methods: list[str] | None = None,
    seed: int = 0,
    device: str = "cpu",
    runtime: str = "auto",
    reference: str | None = None,
    budget: int | None = None,
    block_size: int = 4,
    progress: bool = True,
    write: bool = True,
    command: str | None = None,
) -> dict:
    """Every method and metric on images with boxes; writes ``evaluation_boxes.json``/``.md`` in ``out_dir``.

    Args:
        images, boxes, target, classes, n: as :func:`load_box_data`.
        model, arch, sha256: as :func:`resolve_model` (its weights' file and sha256 are printed and recorded).
        methods: a subset of :data:`saliency_lib.evaluation.baselines.METHODS` (default all).
        device: ``"cpu"`` (black-box methods and curves in ONNX Runtime under ``runtime="auto"``/``"onnx"``) or
            ``"cuda"`` (this rank's GPU, PyTorch).
        reference: the masked-pixel value (default: the photographs',
        :data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`);
            a forced one writes ``evaluation_boxes_<reference>.*``.
        budget: OISE steps = RISE masks (default 5,000, the paper's). block_size: images per block (per rank).
        command: the command line recorded in the file (default: this call's, as the CLI would spell it).

    Under ``torchrun`` the ranks share the blocks and rank 0 writes; finished blocks are kept in
    ``out_dir/evaluation_boxes.parts/<fingerprint>/`` and a run started again with the same arguments computes
    only what is missing.

    Returns:
        ``{"suite", "records", "info", "weights", "photo_maps"}`` (records empty on ranks other than 0).
    """
    from saliency_lib.evaluation.baselines import METHODS
    from saliency_lib.method.core import REFERENCES
    from saliency_research.distributed import init, world
    from saliency_research.reports import RESULTS_DIR, evaluation_markdown, write_results
    from saliency_research.runner import plan_records
    from saliency_research.suite_results import machine
    from saliency_research.suites import result_stem

    for name in methods or []:
        check_choice("methods", name, METHODS)
    if reference is not None:
        check_choice("reference", reference, REFERENCES)
    check_choice("runtime", runtime, ("auto", "onnx", "torch"))
    device = init(device)  # joins torchrun's process group; one line when --device cuda finds no GPU
    rank, _ = world()
    classifier, weights = resolve_model(model, arch=arch, sha256=sha256, device=device)
    say = print if rank == 0 else (lambda *a, **k: None)  # what was read and skipped: always, on one rank
    say(f"[boxes] model {weights['model']}: weights {weights['weights']}, sha256 {weights.get('sha256', '-')}")
    data = load_box_data(images, boxes, classifier, target=target, classes=classes, n=n)
    info = data["info"]
    say(f"[boxes] {info['images']}; boxes {info['boxes']}; labels -> classes: {info['labels_to_classes']}")
    for key in ("without_box", "annotations_without_image", "unreadable"):
        if info[key]["count"]:
            say(f"[boxes] {key.replace('_', ' ')}: {info[key]['count']} (not evaluated): {info[key]['names']}")
    if info["counts"]:
        say(f"[boxes] counts: {info['counts']}")
    if len(data["names"]) > PER_IMAGE_MAX:
        data["names"] = None  # per-image values stay in the parts folder, not in every record
    plan = boxes_plan(
        classifier,
        len(data["targets"]),
        budget=budget,
        reference=reference,
        runtime=runtime,
        block_size=block_size,
        methods=tuple(methods) if methods else None,
    )
    out_dir = Path(out_dir or RESULTS_DIR)
    stem = result_stem(SUITE, reference)
    parts = out_dir / f"{stem}.parts" / _fingerprint(data, weights, plan)
    began = time.perf_counter()
    records, extras = plan_records(plan, data, parts, methods=methods, seed=seed, progress=progress)
    for record in records:
        record["info"] = {**record["info"], "model": weights}
    result = {"suite": SUITE, "records": records, "info": info, "weights": weights, **extras}
    if write and rank == 0:
        payload = _payload(records, plan, weights, seed, reference, command, time.perf_counter() - began, machine())
        write_results(payload, _markdown(payload, evaluation_markdown(payload)), stem, out_dir)
        say(f"[boxes] wrote {out_dir / stem}.json and .md")
    return result


def _payload(records, plan, weights, seed, reference, command, seconds, where) -> dict:
    n = records[0]["n"] if records else 0
    return {
        "suite": SUITE,
        "command": command or f"python -m saliency_research evaluate --suite {SUITE} ...",
        "partial": False,
        "imagenet_command": IMAGENET_COMMAND,
        "model": weights,
        "settings": {
            "seed": seed,
            "reference": reference or f"{plan.masked_value()} (the photographs' own)",
            "plans": [
                {
                    "dataset": SUITE,
                    "n": n,
                    "oise_rise_budget": plan.budget,
                    "pixels_per_step": plan.pixels_per_step,
                    "options": plan.options,
                    "reference": plan.masked_value(),
                    "insertion_start": plan.insertion_start,
                    "runtime": plan.runtime,
                }
            ],
            "dataset_seconds": {SUITE: round(seconds, 1)},
            "total_seconds": round(seconds, 1),
            "machine": f"{where['cpu']}, {where['torch_threads']} torch thread(s), Python "
            f"{platform.python_version()}, torch {torch.__version__}",
            "notes": [
                f"n = {n}: "
                + ("far too few images to decide anything; the CIs say how little is known. " if n < 100 else "")
                + "The paper's setting runs on ImageNet's validation images: the command is at the top.",
                "Resize: every image stretched to the model's input (no crop), boxes scaled alike; target: the "
                "model's top-1 unless --target annotated; one box per image: the target class's (its largest "
                "instance), else the image's largest (counted in the Data line). Images without a box are not "
                "evaluated and are named in the Data line.",
                "OISE n_steps = RISE n_masks (equal model calls) with the paper's defaults otherwise; baselines with "
                "the plan's options (settings.plans in the JSON; ours, set by cost). Curves change W pixels per "
                "step (RISE's 224 at 224 x 224).",
                "95% CI: mean +- t(0.975, n-1) * sd / sqrt(n) over images. Timings are wall-clock on a shared CPU.",
            ],
        },
        "records": records,
    }


def _markdown(payload: dict, body: str) -> str:
    """The suite's markdown: a header (what n means, the ImageNet command), the tables, per-image values."""
    records = payload["records"]
    lines = [
        f"> **n = {records[0]['n'] if records else 0} images: this decides nothing.** It shows the suite runs end "
        "to end and what its records hold. The paper's experiment is the same command on ImageNet's validation "
        f"images and boxes: `{payload['imagenet_command']}` (under `torchrun --nproc-per-node N` to share it).",
        "",
        f"Model: {payload['model']['model']}, weights `{Path(str(payload['model']['weights'])).name}`, sha256 "
        f"`{payload['model'].get('sha256', '-')}`.",
        "",
    ]
    table = []
    if records and 0 < len(records[0].get("per_image", {})) <= PER_IMAGE_COLUMNS:
        names = list(records[0]["per_image"])
        table = ["Per image (deletion / insertion / pointing / IoU):", ""]
        table += ["| method | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for r in records:
            cells = [
                f"{v['deletion']:.3f} / {v['insertion']:.3f} / {v['pointing']:.2f} / {v['iou']:.2f}"
                for v in r["per_image"].values()
            ]
            table.append(f"| {r['method']} | " + " | ".join(cells) + " |")
        table.append("")
    body_lines = body.split("\n")
    notes = body_lines.index("Notes:") if "Notes:" in body_lines else len(body_lines)
    return "\n".join(body_lines[:1] + [""] + lines + body_lines[1:notes] + table + body_lines[notes:])


def run_command(args) -> int:
    """``evaluate --suite boxes``: :func:`run_boxes` with the parsed arguments; one line per error (exit 1)."""
    from saliency_lib.io.assets import AssetError
    from saliency_lib.io.models import ModelUnavailableError
    from saliency_research.distributed import finish

    # The command as a user would type it again (the options that differ from their defaults), for the file.
    flags = {"boxes": None, "target": "top1", "classes": None, "arch": None, "n": None, "methods": None, "seed": 0}
    flags |= {"device": "cpu", "runtime": "auto", "reference": None, "budget": None, "block_size": 4}
    command = f"python -m saliency_research evaluate --suite boxes --images {args.images} --model {args.model}"
    for name, default in flags.items():
        value = getattr(args, name)
        if value != default:
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            command += f" --{name.replace('_', '-')} {shown}"
    try:
        run_boxes(
            args.images,
            args.boxes,
            args.model,
            out_dir=args.out,
            target=args.target,
            classes=args.classes,
            arch=args.arch,
            sha256=args.sha256,
            n=args.n,
            methods=args.methods,
            seed=args.seed,
            device=args.device,
            runtime=args.runtime,
            reference=args.reference,
            budget=args.budget,
            block_size=args.block_size,
            progress=not args.no_progress,
            command=command,
        )
    except BA.AnnotationError as error:
        print(f"evaluate --suite boxes: {len(error.problems)} problem(s) in the boxes:\n{error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, RuntimeError, AssetError, ModelUnavailableError) as error:
        hint = (
            " Or give a weights file you have: --model resnet50-0676ba61.pth (a state dict; --sha256 checks it)."
            if isinstance(error, ModelUnavailableError)
            else ""
        )
        print(f"evaluate --suite boxes failed: {str(error).splitlines()[0]}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted: the finished blocks are kept in <out>/evaluation_boxes.parts/; run the same command "
            "again to compute only the rest",
            file=sys.stderr,
        )
        return 130
    finally:
        finish()  # leave torchrun's process group, if any
    return 0

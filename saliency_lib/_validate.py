"""Input checks and model calls shared by every black-box method (OISE, RISE, metrics, reconstruction).

Each check raises ``ValueError``/``TypeError`` naming the argument and what was expected.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
from torch import nn

from . import masks as M

__all__ = [
    "check_images",
    "check_int",
    "model_device",
    "n_classes_of",
    "resolve_target",
    "resolve_reference",
    "class_probabilities",
    "target_probability",
    "seeded_generator",
]


def check_int(name: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]`` or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value}")
    return value


def check_images(images, model: nn.Module | None = None, name: str = "images") -> tuple[torch.Tensor, bool]:
    """A float ``(B, C, H, W)`` batch (a single ``(C, H, W)`` image gets a batch axis).

    Returns the batch and whether a batch axis was added. When the model carries an input convention
    (``model.spec``), the channel count and the [0, 1] value range are checked too.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a float tensor with values in [0, 1], got dtype {images.dtype} "
                        f"(convert with images.float() / 255 for 8-bit images)")
    added = images.dim() == 3
    if added:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    spec = getattr(model, "spec", None)
    if spec is not None:
        if images.shape[1] != spec.channels:
            raise ValueError(f"{name} has {images.shape[1]} channels but model {getattr(model, 'name', '')!r} "
                             f"expects {spec.channels} (shape (B, {spec.channels}, H, W))")
        low, high = spec.value_range
        if images.min() < low - 1e-4 or images.max() > high + 1e-4:
            raise ValueError(f"{name} must have values in [{low}, {high}] (the model normalises them itself), "
                             f"got [{images.min().item():.3g}, {images.max().item():.3g}]")
    return images, added


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device of the model's parameters (or ``fallback`` for a parameter-free model)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return fallback


def n_classes_of(model: nn.Module) -> int | None:
    """The number of classes a :class:`~saliency_lib.models.Classifier` declares, else ``None``."""
    names = getattr(model, "class_names", None)
    return len(names) if names is not None else None


def class_probabilities(model: nn.Module, images: torch.Tensor, *, output: str = "logits",
                        batch_size: int | None = None, expected_batch: int | None = None) -> torch.Tensor:
    """All class probabilities ``(B, n_classes)`` of ``images`` ``(B, C, H, W)``, in chunks of ``batch_size``.

    Args:
        output: ``"logits"`` (softmax applied here) or ``"probabilities"`` (the model already returns them).

    Raises:
        ValueError: the model's output is not ``(B, n_classes)`` or not finite, or the model rejects the input.
    """
    if output not in ("logits", "probabilities"):
        raise ValueError(f"output must be 'logits' or 'probabilities', got {output!r}")
    chunks = []
    step = batch_size or len(images)
    with torch.no_grad():
        for start in range(0, len(images), step):
            batch = images[start:start + step]
            try:
                raw = model(batch)
            except RuntimeError as error:
                raise ValueError(f"the model rejected images of shape {tuple(batch.shape)}: "
                                 f"{str(error).splitlines()[0]}") from None
            if not isinstance(raw, torch.Tensor) or raw.dim() != 2 or raw.shape[0] != len(batch):
                shape = tuple(raw.shape) if isinstance(raw, torch.Tensor) else type(raw).__name__
                raise ValueError(f"the model must return a tensor of shape (B, n_classes) = ({len(batch)}, n); "
                                 f"it returned {shape}")
            if not torch.isfinite(raw).all():
                raise ValueError("the model returned NaN or infinite values")
            if output == "logits":
                chunks.append(raw.float().softmax(dim=1))
            else:
                if raw.min() < -1e-5 or raw.max() > 1 + 1e-5 or not torch.allclose(raw.sum(1), raw.new_ones(1), atol=1e-3):
                    raise ValueError("output='probabilities' but the model's rows are not probabilities "
                                     "(each in [0, 1], summing to 1); use output='logits'")
                chunks.append(raw.float())
    return torch.cat(chunks)


def target_probability(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, *, output: str = "logits",
                       batch_size: int | None = None) -> torch.Tensor:
    """Probability of ``targets[b]`` for each image: ``(B,)``."""
    probs = class_probabilities(model, images, output=output, batch_size=batch_size)
    return probs.gather(1, targets.view(-1, 1).to(probs.device)).squeeze(1)


def resolve_target(target, clean_probs: torch.Tensor) -> torch.Tensor:
    """int64 ``(B,)`` targets from ``None`` (top-1 of the clean image), an int, or one int per image."""
    batch, n_classes = clean_probs.shape
    if target is None:
        return clean_probs.argmax(dim=1)
    if isinstance(target, bool):
        raise TypeError("target must be None, an int or one int per image, got a bool")
    if isinstance(target, torch.Tensor) and target.dim() == 0 and not target.is_floating_point():
        target = int(target)
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        values = torch.full((batch,), int(target), dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            if target.is_floating_point():
                raise TypeError(f"target must hold integers, got dtype {target.dtype}")
            values = target.reshape(-1).long().cpu()
        elif isinstance(target, Sequence) or hasattr(target, "__array__"):
            items = list(target.tolist() if hasattr(target, "tolist") else target)
            if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in items):
                raise TypeError("target must be None, an int or a sequence of ints")
            values = torch.tensor([int(t) for t in items], dtype=torch.long)
        else:
            raise TypeError(f"target must be None, an int or one int per image, got {type(target).__name__}")
        if values.numel() != batch:
            raise ValueError(f"target has {values.numel()} entries but there are {batch} images")
    if values.min() < 0 or values.max() >= n_classes:
        raise ValueError(f"target must be a class index in [0, {n_classes - 1}], got {values.tolist()}")
    return values.to(clean_probs.device)


def resolve_reference(reference, model: nn.Module, images: torch.Tensor):
    """The masked-pixel value: a number, a ``(C, 1, 1)`` tensor or a ``(B, C, H, W)`` batch.

    ``"mean"`` (the authors' choice): the dataset mean of the model's convention, i.e. 0 after normalisation
    (0 when the model declares no convention: the authors multiply the model's input by the mask).
    ``"blur"`` (ours, RISE's insertion start): a Gaussian-blurred copy. A number is a pixel value.
    """
    if isinstance(reference, str):
        if reference == "mean":
            spec = getattr(model, "spec", None)
            return spec.reference().to(images.device) if spec is not None else 0.0
        if reference == "blur":
            return M.blur(images)
        raise ValueError(f"reference must be 'mean', 'blur', a number or a tensor, got {reference!r}")
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        if not math.isfinite(reference):
            raise ValueError(f"reference must be finite, got {reference}")
        return float(reference)
    if isinstance(reference, torch.Tensor):
        if reference.dim() == 4 and reference.shape != images.shape:
            raise ValueError(f"reference images must match images {tuple(images.shape)}, got {tuple(reference.shape)}")
        return reference.to(images.device, images.dtype)
    raise TypeError(f"reference must be 'mean', 'blur', a number or a tensor, got {type(reference).__name__}")


def seeded_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A private random generator on ``device``: seeded with ``seed``, or from the OS when ``None``.

    The library's functions draw only from such generators, so the global random state is never touched.
    """
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()  # a fresh seed from the OS
    else:
        generator.manual_seed(int(seed))
    return generator

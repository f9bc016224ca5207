"""The black-box contract: everything a method that only *calls* the model needs, in one place.

OISE, RISE, the metrics, the reconstruction and the notebooks call a model the same way through these:

- :func:`call_model`: the model's raw output for a batch, in chunks of ``batch_size`` (the fast, unchecked path);
- :func:`class_probabilities`: the checked path: shape, finiteness, softmax of logits (:func:`to_probabilities`);
- :func:`resolve_target`: the class each image is explained for;
- :func:`resolve_reference` / :func:`broadcast_reference`: the value a masked pixel takes;
- :func:`seeded_generator`: the one private random generator every seeded function draws from;
- :func:`model_device`: where the model lives;
- :func:`default_batch_size`: how many images go into one model call when the caller does not say, chosen from
  the input size so that memory stays bounded (:data:`CALL_BUDGET`).

Argument checks (a number in [0, 1], an int, the image batch) live in the private ``_checks`` module.
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
import weakref
from collections.abc import Sequence

import torch
from torch import nn

from . import masks as M
from .checks import check_choice, check_int, check_seed, user_stacklevel

__all__ = [
    "OUTPUTS",
    "CALL_BUDGET",
    "GRADIENT_SHARE",
    "default_batch_size",
    "model_device",
    "call_model",
    "to_probabilities",
    "class_probabilities",
    "resolve_target",
    "REFERENCES",
    "resolve_reference",
    "broadcast_reference",
    "seeded_generator",
]

# What a model returns: logits (softmax applied by the library) or probabilities (used as they are).
OUTPUTS = ("logits", "probabilities")

# The named masked-pixel values of resolve_reference: the dataset mean (the authors'), black (the data's own
# "absent" value on black-background data), a blurred copy (RISE's insertion start).
REFERENCES = ("mean", "black", "blur")

# Input values (channels x height x width, summed over the images) per model call when a function chooses its own
# batch size: 8 photographs of 3 x 224 x 224 (EfficientNet-Lite0 needs about 0.15 GB for them) or 1,536
# Fashion-MNIST images of 1 x 28 x 28 (about 0.3 GB in fashion-cnn). Measured, with the notebooks' peak memory, by
# ``saliency_research/bench/notebooks.py``; read at call time, so ``saliency_lib.method.core.CALL_BUDGET = ...``
# changes every default.
CALL_BUDGET = 8 * 3 * 224 * 224
# A call that also runs a backward pass (the gradient baselines) keeps every activation: about 4 times the memory
# of a forward pass (EfficientNet-Lite0: 55 MB against 16 MB per photograph), so it gets this share of the budget.
GRADIENT_SHARE = 0.25


def default_batch_size(
    images, budget: int | None = None, *, at_most: int | None = None, gradients: bool = False
) -> int:
    """Images per model call that keep one call's input within ``budget`` values: the library's default batch size.

    Every function whose ``batch_size`` defaults to ``None`` calls this, so memory stays bounded by the input size
    rather than growing with the number of images, masks or steps: ``budget // (C * H * W)`` images, at least one.

    Args:
        images: the ``(B, C, H, W)`` batch (or one ``(C, H, W)`` image, or its shape).
        budget: input values per call (default: :data:`CALL_BUDGET`, e.g. 8 images of 3 x 224 x 224, 1,536 of
            1 x 28 x 28).
        at_most: a cap (e.g. a function's historical default), so small inputs keep the batches they had.
        gradients: the call also runs a backward pass: :data:`GRADIENT_SHARE` of the budget.

    Returns:
        An int >= 1. The batch size never changes the random numbers a method draws.
    """
    shape = tuple(images.shape) if isinstance(images, torch.Tensor) else tuple(images)
    per_image = math.prod(shape[-3:]) if len(shape) >= 3 else math.prod(shape)
    budget = CALL_BUDGET if budget is None else check_int("budget", budget, 1)
    if gradients:
        budget = budget * GRADIENT_SHARE
    size = max(1, int(budget // max(per_image, 1)))
    return min(size, at_most) if at_most is not None else size


def model_device(model, fallback: torch.device) -> torch.device:
    """The device of the model's parameters, or ``fallback`` for a parameter-free model or a plain function.

    A function (Captum accepts any forward function; so does the library) has no parameters to ask: the images
    stay where they are.
    """
    if isinstance(model, nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            return tensor.device
    return fallback


def call_model(model, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """The model's raw output for ``images`` ``(B, C, H, W)``, in slices of ``batch_size`` (``None``: one call;
    callers pass :func:`default_batch_size` for theirs).

    The fast, unchecked path for loops whose first call went through :func:`class_probabilities`.
    """
    if batch_size is None or len(images) <= batch_size:
        return model(images)
    return torch.cat([model(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])


def to_probabilities(raw: torch.Tensor, output: str = "logits") -> torch.Tensor:
    """Class probabilities ``(B, n_classes)`` from a model's raw output: softmax of logits, or as they are."""
    return raw.softmax(dim=1) if output == "logits" else raw


# Models already warned that they seem to return probabilities (one warning per model).
_warned_probabilities: weakref.WeakSet = weakref.WeakSet()


def _looks_like_probabilities(raw: torch.Tensor) -> bool:
    """Every row in [0, 1] and summing to 1: a model returning probabilities (logits almost never do)."""
    return (
        raw.shape[1] >= 2
        and bool(raw.min() >= 0)
        and bool(raw.max() <= 1)
        and bool(torch.allclose(raw.sum(1), raw.new_ones(1), atol=1e-4))
    )


def _warn_probabilities(model) -> None:
    try:
        if model in _warned_probabilities:
            return
        _warned_probabilities.add(model)
    except TypeError:  # a callable that cannot be weakly referenced: warn every time
        pass
    warnings.warn(
        "model seems to return probabilities (every row is in [0, 1] and sums to 1) but "
        "output='logits': a second softmax flattens them and the maps lose contrast; pass "
        "output='probabilities' (oise, rise, the metrics) or make the model return logits.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _model_error(error: RuntimeError, batch: torch.Tensor) -> ValueError:
    """A one-line ``ValueError`` for an exception raised inside the model."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "device" in first.lower() and ("same device" in first.lower() or "expected" in first.lower()):
        return ValueError(
            f"model and images are on different devices (images on {batch.device}): {first}; "
            f"move both to one device, e.g. images.to(device) with "
            f"device = next(model.parameters()).device"
        )
    return ValueError(f"model rejected images of shape {tuple(batch.shape)}: {first}")


def class_probabilities(
    model, images: torch.Tensor, *, output: str = "logits", batch_size: int | None = None
) -> torch.Tensor:
    """All class probabilities ``(B, n_classes)`` of ``images`` ``(B, C, H, W)``, in chunks of ``batch_size``
    (default: :func:`default_batch_size`, so 3,000 images never go into one call).

    The checked path: every chunk's output must be a finite ``(b, n_classes)`` tensor. With ``output="logits"``
    a model whose rows are all probabilities already (in [0, 1], summing to 1) gets one warning.

    Args:
        output: ``"logits"`` (softmax applied here) or ``"probabilities"`` (the model already returns them).

    Raises:
        ValueError: the model's output is not ``(B, n_classes)`` or not finite, or the model rejects the input
            (wrong channels or size, model and images on different devices).
    """
    check_choice("output", output, OUTPUTS)
    chunks = []
    step = batch_size or default_batch_size(images)
    with torch.no_grad():
        for start in range(0, len(images), step):
            batch = images[start : start + step]
            try:
                raw = model(batch)
            except RuntimeError as error:
                raise _model_error(error, batch) from None
            if not isinstance(raw, torch.Tensor) or raw.dim() != 2 or raw.shape[0] != len(batch):
                shape = tuple(raw.shape) if isinstance(raw, torch.Tensor) else type(raw).__name__
                raise ValueError(
                    f"model must return a tensor of shape (B, n_classes) = ({len(batch)}, n); it returned {shape}"
                )
            if not raw.is_floating_point():
                raise ValueError(f"model must return floating logits (B, n_classes); it returned dtype {raw.dtype}")
            finite = torch.isfinite(raw)
            if not finite.all():
                rows = int((~finite).any(1).sum())
                raise ValueError(
                    f"model returned NaN or infinite values (for {rows} of {len(batch)} images "
                    f"of shape {tuple(batch.shape[1:])})"
                )
            if output == "probabilities" and (
                raw.min() < -1e-5 or raw.max() > 1 + 1e-5 or not torch.allclose(raw.sum(1), raw.new_ones(1), atol=1e-3)
            ):
                raise ValueError(
                    "output='probabilities' but the model's rows are not probabilities "
                    "(each in [0, 1], summing to 1); use output='logits'"
                )
            if output == "logits" and _looks_like_probabilities(raw):
                _warn_probabilities(model)
            chunks.append(to_probabilities(raw.float(), output))
    return torch.cat(chunks)


def _class_name_hint(target) -> str:
    if isinstance(target, str):
        return (
            f"target must be a class index (an int), got the class name {target!r}; "
            f"use model.class_names.index({target!r})"
        )
    return (
        f"target must be class indices (ints), got the class names {list(target)!r}; "
        f"use [model.class_names.index(name) for name in names]"
    )


def resolve_target(target, clean_probs: torch.Tensor) -> torch.Tensor:
    """int64 ``(B,)`` targets from ``None`` (top-1 of the clean image), an int, or one int per image.

    Raises:
        TypeError: not an int (a float, a bool, a class name: the message says ``model.class_names.index``).
        ValueError: a class index outside ``[0, n_classes)``, or not one per image.
    """
    batch, n_classes = clean_probs.shape
    if target is None:
        return clean_probs.argmax(dim=1)
    if isinstance(target, bool):
        raise TypeError("target must be None, an int or one int per image, got a bool")
    if isinstance(target, str):
        raise TypeError(_class_name_hint(target))
    if (
        isinstance(target, torch.Tensor)
        and target.dim() == 0
        and not target.is_floating_point()
        and target.dtype != torch.bool
    ):
        target = int(target)
    if isinstance(target, numbers.Integral):
        values = torch.full((batch,), int(target), dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
                raise TypeError(f"target must hold integers, got dtype {target.dtype}")
            values = target.reshape(-1).long().cpu()
        elif isinstance(target, Sequence) or hasattr(target, "__array__"):
            items = target.tolist() if hasattr(target, "tolist") else list(target)
            if not isinstance(items, list):  # a 0-d array or a numpy scalar such as np.float64(1.0)
                raise TypeError(f"target must be None, an int or one int per image, got {type(target).__name__}")
            if items and all(isinstance(t, str) for t in items):
                raise TypeError(_class_name_hint(items))
            if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in items):
                raise TypeError("target must be None, an int or a sequence of ints")
            values = torch.tensor([int(t) for t in items], dtype=torch.long)
        else:
            raise TypeError(f"target must be None, an int or one int per image, got {type(target).__name__}")
        if values.numel() != batch:
            raise ValueError(f"target has {values.numel()} entries but there are {batch} images")
    bad = (values < 0) | (values >= n_classes)
    if bad.any():
        wrong = sorted(set(values[bad].tolist()))
        raise ValueError(
            f"target must be a class index in [0, {n_classes - 1}], got {wrong[0] if len(wrong) == 1 else wrong[:5]}"
        )
    return values.to(clean_probs.device)


def resolve_reference(reference, model: nn.Module, images: torch.Tensor, *, name: str = "reference"):
    """The masked-pixel value: a number, a ``(C, 1, 1)`` tensor or a ``(B, C, H, W)`` batch.

    Images are in the model's pixel space (``InputSpec.value_range``, [0, 1]); the model normalises them itself.

    ``"mean"`` (the authors' choice): the dataset mean of the model's convention, i.e. 0 after normalisation
    (0 when the model declares no convention: the authors multiply the model's input by the mask).
    ``"black"`` (ours: the data's own "absent" value where its background is black, e.g. Fashion-MNIST and the
    cluttered canvases): the lowest pixel value of the model's ``InputSpec.value_range`` (0 in [0, 1] space,
    ``-mean / std`` after normalisation); 0 when the model declares no convention.
    ``"blur"`` (ours, RISE's insertion start): a Gaussian-blurred copy. A number is a pixel value.
    ``name``: the caller's argument, as the error messages call it (e.g. ``"start"`` for insertion's).

    Raises:
        ValueError: an unknown name (the message lists :data:`REFERENCES`) or a non-finite number.
        TypeError: neither a name, a number nor a tensor.
    """
    if isinstance(reference, str):
        spec = getattr(model, "spec", None)
        if reference == "mean":
            return spec.reference().to(images.device) if spec is not None else 0.0
        if reference == "black":
            if spec is None:
                return 0.0
            return torch.full((spec.channels, 1, 1), float(spec.value_range[0]), device=images.device)
        if reference == "blur":
            return M.blur(images)
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, REFERENCES))}, a number or a tensor, got {reference!r}; "
            "use 'black' for data on a black background (Fashion-MNIST, the cluttered canvases), 'mean' for the "
            "authors' dataset mean"
        )
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        if not math.isfinite(reference):
            raise ValueError(f"{name} must be finite, got {reference}")
        return float(reference)
    if isinstance(reference, torch.Tensor):
        if reference.dim() == 4 and reference.shape != images.shape:
            raise ValueError(f"{name} images must match images {tuple(images.shape)}, got {tuple(reference.shape)}")
        return reference.to(images.device, images.dtype)
    raise TypeError(
        f"{name} must be one of {', '.join(map(repr, REFERENCES))}, a number or a tensor, "
        f"got {type(reference).__name__}"
    )


def broadcast_reference(reference, images: torch.Tensor, *, repeats: int = 1) -> torch.Tensor:
    """A resolved reference (:func:`resolve_reference`) as a tensor on the images' device.

    A number becomes a 0-d tensor of the images' dtype, a ``(C, 1, 1)`` tensor is kept, a ``(B, C, H, W)`` batch is
    repeated ``repeats`` times per image (image-major, as ``images.repeat_interleave(repeats, 0)``), so the result
    broadcasts against the ``B * repeats`` masked images of a step.
    """
    reference = M.reference_tensor(reference, images)
    if reference.dim() == 4 and repeats > 1:
        return reference.repeat_interleave(repeats, dim=0)
    return reference


def seeded_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A private random generator on ``device``: seeded with ``seed``, or from the OS when ``None``.

    The library's functions draw only from such generators, so the global random state is never touched.
    ``seed`` must be ``None`` or an int (``1.5`` is refused, not truncated).
    """
    check_seed(seed)
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()  # a fresh seed from the OS
    else:
        generator.manual_seed(int(seed))
    return generator

"""Argument checks shared by every module (private: the library calls them, learners never need to).

Each check returns the value it accepted (converted where stated) or raises ``TypeError`` / ``ValueError``
whose message starts with the argument's name, says what was expected and what was given.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import warnings
import weakref
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "LIBRARY_DIR",
    "user_stacklevel",
    "check_int",
    "check_number",
    "check_fraction",
    "check_seed",
    "check_images",
    "check_maps",
    "check_choice",
    "check_callable",
    "check_model",
]


# The library's folder: a warning names the first line outside it (the learner's cell, the user's script).
LIBRARY_DIR = str(Path(__file__).resolve().parents[1]) + os.sep  # with the separator: not a sibling "saliency_lib_x"


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` that points at the first caller outside ``saliency_lib``, however
    deep inside the library the warning is raised (a check called by ``oise`` or by a metric called by a suite), so
    the message names the learner's line. Call it from the function that calls ``warnings.warn``."""
    frame, level = inspect.currentframe().f_back, 1  # level 1: the function that warns
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(LIBRARY_DIR):
        frame, level = frame.f_back, level + 1
    return level


def check_int(name: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; ``TypeError`` for a non-int (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value}")
    return value


def check_number(name: str, value, minimum: float | None = None) -> float:
    """A finite real number (not a bool), ``>= minimum`` when given; returned as a float."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def check_fraction(name: str, value, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (``open_low``: excluding 0, ``open_high``: excluding 1); returned as a float."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (0 < value if open_low else 0 <= value) and (value < 1 if open_high else value <= 1)
    if not ok:
        interval = ("(0" if open_low else "[0") + ", " + ("1)" if open_high else "1]")
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def check_seed(value, name: str = "seed") -> int | None:
    """``None`` or an int (a float such as 1.5 is refused rather than silently truncated)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be None or an int, got {type(value).__name__}")
    return value


def check_choice(name: str, value, choices) -> str:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_callable(name: str, value):
    """``value`` can be called."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def _conversion(value, name: str) -> str:
    """What to write to turn ``value`` (not a tensor) into the float ``(C, H, W)`` / ``(B, C, H, W)`` tensor."""
    kind = type(value).__name__
    if type(value).__module__.split(".")[0] == "PIL":
        return (
            f"{name} must be a torch.Tensor of shape (B, C, H, W) in [0, 1], got a PIL image; convert it with "
            f"torchvision.transforms.functional.to_tensor(picture) (gives (C, H, W) in [0, 1])"
        )
    if type(value).__module__ == "numpy" and hasattr(value, "shape"):
        shape = tuple(value.shape)
        permute = ""
        if len(shape) == 3 and shape[0] > 4 and shape[-1] in (1, 3, 4):
            permute = ".permute(2, 0, 1)"
        elif len(shape) == 4 and shape[1] > 4 and shape[-1] in (1, 3, 4):
            permute = ".permute(0, 3, 1, 2)"
        scale = " / 255" if str(value.dtype) == "uint8" else ""
        return (
            f"{name} must be a torch.Tensor of shape (B, C, H, W) in [0, 1], got a numpy array of shape "
            f"{shape} and dtype {value.dtype}; convert it with torch.from_numpy(x){permute}.float(){scale}"
        )
    return (
        f"{name} must be a torch.Tensor of shape (B, C, H, W), got {kind}"
        f"{'; convert it with torch.tensor(x, dtype=torch.float32)' if isinstance(value, (list, tuple)) else ''}"
    )


def _channel_last(images: torch.Tensor, channels: int | None) -> bool:
    """Whether ``images`` ``(C, H, W)`` / ``(B, C, H, W)`` look like ``(H, W, C)`` / ``(B, H, W, C)``."""
    axis = 0 if images.dim() == 3 else 1
    if channels is not None:
        return images.shape[axis] != channels and images.shape[-1] == channels
    return images.shape[axis] > 4 and images.shape[-1] in (1, 3, 4)


def _floating_dtype(model) -> torch.dtype:
    """The dtype the model computes in: that of its first floating parameter or buffer, else float32."""
    if isinstance(model, nn.Module):
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
    return torch.float32


# Modules whose output depends on ``.training``: with them in training mode the same seed gives different maps.
_TRAINING_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
_TRAINING_DEPENDENT_NAMES = ("StochasticDepth", "DropPath")
_warned_training: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def check_model(model, name: str = "model"):
    """A callable model: an ``nn.Module`` or any function ``(B, C, H, W) -> (B, n_classes)`` (as Captum accepts).

    A module in training mode whose output depends on it (dropout, batch norm, stochastic depth) gets one
    warning per model: the maps would change from call to call. The model is never changed.
    """
    if not callable(model):
        raise TypeError(
            f"{name} must be an nn.Module or a function from images (B, C, H, W) to logits "
            f"(B, n_classes), got {type(model).__name__}"
        )
    if isinstance(model, nn.Module) and model.training and model not in _warned_training:
        layers = [
            (path, type(module).__name__)
            for path, module in model.named_modules()
            if module.training
            and (isinstance(module, _TRAINING_DEPENDENT) or type(module).__name__ in _TRAINING_DEPENDENT_NAMES)
        ]
        if layers:
            _warned_training.add(model)
            shown = ", ".join(f"{path or 'model'} ({kind})" for path, kind in layers[:3])
            more = f" and {len(layers) - 3} more" if len(layers) > 3 else ""
            warnings.warn(
                f"{name} is in training mode and its layers {shown}{more} act randomly (dropout) or mix "
                f"the images of a batch (batch norm): the same seed gives different maps. Call "
                f"{name}.eval() first (torchvision builds models in training mode); the library does "
                f"not change your model.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    return model


def check_images(
    images, model=None, name: str = "images", *, value_range: tuple[float, float] | None = None
) -> tuple[torch.Tensor, bool]:
    """A floating ``(B, C, H, W)`` batch (a single ``(C, H, W)`` image gets a batch axis).

    Returns the batch and whether a batch axis was added. The images passed in are never changed: other
    floating dtypes (float64 from numpy, float16) are converted to the model's dtype (float32 for a function
    or a parameter-free model) as a copy. A ``model`` is checked with :func:`check_model`. When the model
    carries an input convention (``model.spec``), the channel count and the value range are checked too;
    ``value_range`` checks a range without one. Without either, non-negative values above 1 (8-bit pixels?)
    give a warning.

    Raises:
        TypeError: not a tensor (numpy arrays and PIL images: the message says how to convert), not floating.
        ValueError: wrong shape, channel-last layout, empty, NaN or infinite values, channels or range the
            model does not accept.
    """
    if model is not None:
        check_model(model)
    if not isinstance(images, torch.Tensor):
        raise TypeError(_conversion(images, name))
    if not images.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor with values in [0, 1], got dtype {images.dtype} "
            f"(convert with images.float() / 255 for 8-bit images)"
        )
    if images.dim() not in (3, 4):
        hint = f" (one grey (H, W) image: {name}[None] gives (1, H, W))" if images.dim() == 2 else ""
        raise ValueError(f"{name} must have shape (B, C, H, W) or (C, H, W), got {tuple(images.shape)}{hint}")
    spec = getattr(model, "spec", None)
    channels = getattr(spec, "channels", None)
    if images.numel() and _channel_last(images, channels):
        order = "(2, 0, 1)" if images.dim() == 3 else "(0, 3, 1, 2)"
        layout = "(H, W, C)" if images.dim() == 3 else "(B, H, W, C)"
        raise ValueError(
            f"{name} looks channel-last {layout}, shape {tuple(images.shape)}; the library wants "
            f"channels first: use {name}.permute{order}"
        )
    added = images.dim() == 3
    if added:
        images = images.unsqueeze(0)
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch, shape {tuple(images.shape)}; pass at least one image")
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name} has no pixels, shape {tuple(images.shape)}")
    if images.shape[1] == 0:
        raise ValueError(f"{name} has no channels, shape {tuple(images.shape)}; expected (B, C, H, W) with C >= 1")
    finite = torch.isfinite(images)
    if not finite.all():
        raise ValueError(
            f"{name} contains NaN or infinite values ({int((~finite).sum())} of {images.numel()}); "
            f"replace them, e.g. torch.nan_to_num({name})"
        )
    dtype = _floating_dtype(model)
    if images.dtype != dtype:
        images = images.to(dtype)  # a copy: the caller's tensor is untouched
    if spec is not None:
        if images.shape[1] != spec.channels:
            raise ValueError(
                f"{name} has {images.shape[1]} channels but model {getattr(model, 'name', '')!r} "
                f"expects {spec.channels} (shape (B, {spec.channels}, H, W))"
            )
        value_range, why = spec.value_range, " (the model normalises them itself)"
    else:
        why = ""
    low_seen, high_seen = images.min().item(), images.max().item()
    eight_bit = low_seen >= -1e-4 and 1 + 1e-4 < high_seen <= 255 + 1e-4
    hint = f"; 8-bit pixels (0-255)? use {name} / 255" if eight_bit else ""
    if value_range is not None:
        low, high = value_range
        if low_seen < low - 1e-4 or high_seen > high + 1e-4:
            raise ValueError(
                f"{name} must have values in [{low}, {high}]{why}, got [{low_seen:.3g}, {high_seen:.3g}]{hint}"
            )
    elif eight_bit:
        warnings.warn(
            f"{name} has values up to {high_seen:.3g}, all >= 0: 8-bit pixels (0-255)? The library's "
            f"models expect [0, 1]: use {name} / 255. (A model of yours that wants this range: ignore "
            f"this.)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return images, added


def check_maps(maps, images: torch.Tensor | None = None, name: str = "maps") -> torch.Tensor:
    """Maps ``(B, H, W)`` (an ``(H, W)`` map gets a batch axis, a ``(B, 1, H, W)`` batch loses its channel).

    With ``images`` ``(B, C, H, W)`` the shape must be ``(B, H, W)`` to match them. Float maps must be finite.
    The dtype is kept (bool regions stay bool).
    """
    if not isinstance(maps, torch.Tensor):
        hint = f"; pass its maps: {name}=result.maps" if isinstance(getattr(maps, "maps", None), torch.Tensor) else ""
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, H, W), got {type(maps).__name__}{hint}")
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() == 2:
        maps = maps.unsqueeze(0)
    if images is not None:
        expected = (images.shape[0], images.shape[2], images.shape[3])
        if maps.dim() != 3 or tuple(maps.shape) != expected:
            raise ValueError(
                f"{name} must have shape (B, H, W) = {expected} to match the images, got {tuple(maps.shape)}"
            )
    elif maps.dim() != 3:
        raise ValueError(f"{name} must have shape (B, H, W) or (H, W), got {tuple(maps.shape)}")
    if maps.is_floating_point() and not torch.isfinite(maps).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return maps

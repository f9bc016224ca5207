"""The saliency methods a practitioner would otherwise use, from Captum (not re-written), plus RISE and OISE.

Every method has the same call shape (Captum's ``attribute`` turned into a function)::

    result = method(model, images, target=None, **options)   # images (B, C, H, W) -> result.maps (B, H, W)

and returns a :class:`~saliency_lib.method.results.SaliencyResult`: the maps with ``model_calls`` (forward passes per
image; the gradient methods also run one backward pass per forward), ``target`` and ``seconds``. :data:`METHODS`
maps names to functions; :func:`attribute` calls one by name. How a Captum attribution ``(B, C, H, W)`` becomes
one ``(B, H, W)`` map is our choice, stated per method.

==========================  ===================================  ==============================================
name                        Captum class / library function      map (B, H, W)
==========================  ===================================  ==============================================
``"gradcam"``               ``LayerGradCam`` on                  ReLU'd class-weighted activations, bilinearly
                            ``model.gradcam_layer``              upsampled (``LayerAttribution.interpolate``)
``"occlusion"``             ``Occlusion``                        mean over channels of the score drop
``"integrated_gradients"``  ``IntegratedGradients``              sum over channels (signed), reference baseline
``"saliency"``              ``Saliency`` (plain gradients)       max over channels of ``|gradient|`` (Simonyan)
``"lime"``                  ``Lime`` on SLIC superpixels         the superpixel's weight (weighted ridge, as LIME)
``"rise"``                  :func:`saliency_lib.rise`            RISE's map
``"oise"``                  :func:`saliency_lib.oise`            the paper's map
``"random"``                :func:`saliency_lib.evaluation.metrics.random_maps`  uniform noise: the floor to beat
==========================  ===================================  ==============================================

Perturbation baselines (Occlusion, IG, LIME) replace pixels by a ``reference``
(:func:`saliency_lib.method.core.resolve_reference`), by default the dataset mean (``model.spec.reference()``, 0 after
normalisation) as OISE, RISE and the deletion metric; the evaluation gives all of them each dataset's own
(:data:`saliency_lib.evaluation.datasets.DATASET_REFERENCES`, e.g. ``"black"``).

Memory: every ``batch_size`` defaults to :func:`saliency_lib.method.core.default_batch_size` (capped at the method's
former default, so small images keep their batches); Grad-CAM and plain gradients go through the images in
chunks of the gradient budget. Bounded on a 224 px photo by ``tests/test_memory.py``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..method.checks import check_choice, check_images, check_int
from ..method.core import (
    broadcast_reference,
    class_probabilities,
    default_batch_size,
    model_device,
    resolve_reference,
    resolve_target,
)
from ..method.oise_method import oise
from ..method.results import SaliencyResult
from ..method.rise_method import rise
from ..method.threads import runs_black_box
from .metrics import random_maps

__all__ = [
    "METHODS",
    "attribute",
    "gradcam",
    "occlusion",
    "integrated_gradients",
    "saliency",
    "lime",
    "superpixels",
]


def _prepare(model: nn.Module, images, target):
    images, _ = check_images(images, model)
    device = model_device(model, images.device)
    images = images.to(device)
    clean = class_probabilities(model, images)
    return images, resolve_target(target, clean)


def _reference_images(model: nn.Module, images: torch.Tensor, reference) -> torch.Tensor:
    """The reference as a full ``(B, C, H, W)`` batch (Captum's ``baselines``)."""
    ref = broadcast_reference(resolve_reference(reference, model, images), images)
    return ref if ref.dim() == 4 else ref.expand_as(images).contiguous()


def _by_chunks(attribution: Callable[[slice], torch.Tensor], images: torch.Tensor, size: int | None = None):
    """``attribution(part)`` for the slices ``part`` of ``size`` images (default: the gradient budget),
    concatenated: one slice of every image when they fit.

    For the gradient methods, whose map of an image depends on that image only: the chunking changes no value.
    """
    size = size or default_batch_size(images, gradients=True)
    return torch.cat([attribution(slice(start, start + size)) for start in range(0, len(images), size)])


def _without_gradients(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` as a forward function that keeps no autograd graph: the perturbation methods (Occlusion, LIME)
    only call the model, and a graph per batch of a 224 px network costs hundreds of MB."""

    def forward(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(images)

    return forward


def _finish(maps: torch.Tensor, calls: int, targets: torch.Tensor, began: float) -> SaliencyResult:
    """The result of a method that started at ``time.perf_counter() == began``."""
    return SaliencyResult(maps.detach().float(), int(calls), targets, seconds=time.perf_counter() - began)


def gradcam(model: nn.Module, images: torch.Tensor, target=None, *, layer: nn.Module | None = None) -> SaliencyResult:
    """Grad-CAM (Selvaraju et al. 2017) via Captum's ``LayerGradCam``; ``(B, H, W)``, >= 0.

    Args:
        layer: the convolutional layer (default: ``model.gradcam_layer``, the last conv block).
    """
    from captum.attr import LayerAttribution, LayerGradCam

    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    layer = layer if layer is not None else getattr(model, "gradcam_layer", None)
    if layer is None:
        raise ValueError("layer: the model has no gradcam_layer; pass the convolutional layer to use")
    explainer = LayerGradCam(model, layer)

    def part_maps(part: slice) -> torch.Tensor:
        with torch.enable_grad():
            attribution = explainer.attribute(images[part], target=targets[part], relu_attributions=True)
        upsampled = LayerAttribution.interpolate(attribution, tuple(images.shape[-2:]), interpolate_mode="bilinear")
        return upsampled.sum(dim=1).detach()

    return _finish(_by_chunks(part_maps, images), 1, targets, began)


@runs_black_box
def occlusion(
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    window: int | None = None,
    stride: int | None = None,
    reference="mean",
    batch_size: int | None = None,
) -> SaliencyResult:
    """Occlusion (Zeiler & Fergus 2014) via Captum's ``Occlusion``: score drop when a square is replaced.

    Args:
        window: side of the occluding square (default: ``H // 7``, e.g. 4 px at 28, 9 at 64, 32 at 224).
        stride: step between squares (default: ``window // 2``).
        reference: what the square is replaced by (default: the dataset mean, as the deletion metric).
        batch_size: occluded copies of each image per model call (Captum's ``perturbations_per_eval``; one call
            holds ``B`` times as many images). Default: :func:`saliency_lib.method.core.default_batch_size` shared by
            the
            ``B`` images, at most 64.
    """
    from captum.attr import Occlusion

    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    channels, height = images.shape[1], images.shape[2]
    window = check_int("window", window if window is not None else max(2, height // 7), 1, height)
    stride = check_int("stride", stride if stride is not None else max(1, window // 2), 1, height)
    if batch_size is None:
        batch_size = max(1, default_batch_size(images, at_most=64 * len(images)) // len(images))
    check_int("batch_size", batch_size, 1)
    baselines = _reference_images(model, images, reference)
    attribution = Occlusion(_without_gradients(model)).attribute(
        images,
        sliding_window_shapes=(channels, window, window),
        strides=(channels, stride, stride),
        baselines=baselines,
        target=targets,
        perturbations_per_eval=batch_size,
    )
    positions = ((images.shape[2] - window) // stride + 1) * ((images.shape[3] - window) // stride + 1)
    return _finish(attribution.mean(dim=1), positions + 1, targets, began)


def integrated_gradients(
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    n_path_points: int = 32,
    reference="mean",
    batch_size: int | None = None,
) -> SaliencyResult:
    """Integrated Gradients (Sundararajan et al. 2017) via Captum, from the reference image; signed, summed
    over channels (positive = evidence for the target).

    Args:
        n_path_points: points on the path from the reference to the image (Captum's ``n_steps``;
            Gauss-Legendre, Captum's default method).
        batch_size: images on the path per forward/backward, over all images (Captum's ``internal_batch_size``;
            default: :func:`saliency_lib.method.core.default_batch_size` with the gradient budget, at most 64). More
            images than that are explained ``batch_size`` at a time (Captum needs every image in each call).
    """
    from captum.attr import IntegratedGradients

    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    check_int("n_path_points", n_path_points, 1)
    if batch_size is None:
        batch_size = default_batch_size(images, at_most=64, gradients=True)
    check_int("batch_size", batch_size, 1)
    baselines = _reference_images(model, images, reference)
    explainer = IntegratedGradients(model)

    def part_maps(part: slice) -> torch.Tensor:
        with torch.enable_grad():
            attribution = explainer.attribute(
                images[part],
                baselines=baselines[part],
                target=targets[part],
                n_steps=n_path_points,
                internal_batch_size=batch_size,
            )
        return attribution.sum(dim=1).detach()

    return _finish(_by_chunks(part_maps, images, batch_size), n_path_points, targets, began)


def saliency(model: nn.Module, images: torch.Tensor, target=None) -> SaliencyResult:
    """Plain gradients (Simonyan et al. 2014) via Captum's ``Saliency``: max over channels of ``|d f_c / d x|``."""
    from captum.attr import Saliency

    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    explainer = Saliency(model)

    def part_maps(part: slice) -> torch.Tensor:
        inputs = images[part].clone().requires_grad_(True)  # Captum would set it (with a warning) on our tensor
        with torch.enable_grad():
            attribution = explainer.attribute(inputs, target=targets[part], abs=True)
        return attribution.amax(dim=1).detach()

    return _finish(_by_chunks(part_maps, images), 1, targets, began)


def superpixels(images: torch.Tensor, n_segments: int = 50, compactness: float | None = None) -> torch.Tensor:
    """SLIC superpixels (scikit-image) of each image: int64 ``(B, H, W)`` labels from 0.

    Args:
        n_segments: approximate number of superpixels (LIME's own default segmenter is quickshift; SLIC is ours,
            because it lets us set the count).
        compactness: SLIC's shape/colour trade-off (default: 10 for colour, 0.1 for grey images in [0, 1]).
    """
    from skimage.segmentation import slic

    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    colour = images.shape[1] == 3
    compactness = compactness if compactness is not None else (10.0 if colour else 0.1)
    labels = []
    for image in images.detach().cpu().numpy():  # one image at a time: scikit-image segments single images
        array = np.moveaxis(image, 0, -1) if colour else image[0]
        segments = slic(
            array.astype(np.float64),
            n_segments=n_segments,
            compactness=compactness,
            channel_axis=-1 if colour else None,
            start_label=0,
            enforce_connectivity=True,
        )
        labels.append(torch.from_numpy(np.unique(segments, return_inverse=True)[1].reshape(segments.shape)))
    return torch.stack(labels).long()


def _weighted_ridge(alpha: float):
    """A Captum ``LinearModel`` train function: closed-form weighted ridge regression with intercept.

    LIME's own default regressor is ``Ridge(alpha=1)`` on weighted samples; Captum's default (scikit-learn's Lasso)
    needs scikit-learn, which this project does not install. Same model, solved in torch (ours).
    """

    def train(model, dataloader, construct_kwargs, **_):
        xs, ys, ws = [], [], []
        for batch in dataloader:
            xs.append(batch[0].double())
            ys.append(batch[1].double().reshape(len(batch[0]), -1))
            ws.append(
                batch[2].double().reshape(-1) if len(batch) == 3 else torch.ones(len(batch[0]), dtype=torch.double)
            )
        x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
        w = w / w.sum().clamp_min(1e-12)
        x_mean, y_mean = (w[:, None] * x).sum(0), (w[:, None] * y).sum(0)
        xc, yc = x - x_mean, y - y_mean
        gram = xc.T @ (w[:, None] * xc) + alpha / len(x) * torch.eye(x.shape[1], dtype=torch.double)
        coef = torch.linalg.solve(gram, xc.T @ (w[:, None] * yc))  # (features, outputs)
        bias = y_mean - x_mean @ coef
        model._construct_model_params(
            in_features=x.shape[1],
            out_features=coef.shape[1],
            bias=True,
            weight_values=coef.T.float(),
            bias_value=bias.float(),
            **construct_kwargs,
        )
        return {}

    return train


@runs_black_box
def lime(
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    n_samples: int = 200,
    n_segments: int = 50,
    compactness: float | None = None,
    alpha: float = 1.0,
    reference="mean",
    batch_size: int | None = None,
    seed: int = 0,
) -> SaliencyResult:
    """LIME (Ribeiro et al. 2016) via Captum's ``Lime`` on SLIC superpixels; each pixel gets its superpixel's
    weight (signed).

    Args:
        n_samples: perturbed images per explanation (LIME's default is 1000; we use fewer to keep the benchmark
            affordable, and say so in the results).
        n_segments, compactness: see :func:`superpixels`.
        alpha: ridge penalty of the surrogate (LIME's default 1).
        reference: value of switched-off superpixels (default: the dataset mean).
        batch_size: perturbations per model call (Captum explains the images one at a time). Default:
            :func:`saliency_lib.method.core.default_batch_size` of one image, at most 100.
        seed: Captum's LIME samples with the global generator; it is seeded here and restored after (ours).
    """
    from captum._utils.models.linear_model import LinearModel
    from captum.attr import Lime

    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    check_int("n_samples", n_samples, 2)
    if batch_size is None:
        batch_size = default_batch_size(images, at_most=100)
    check_int("batch_size", batch_size, 1)
    segments = superpixels(images, n_segments, compactness).to(images.device)
    feature_mask = segments.unsqueeze(1).expand_as(images).contiguous()
    baselines = _reference_images(model, images, reference)
    explainer = Lime(_without_gradients(model), interpretable_model=LinearModel(train_fn=_weighted_ridge(alpha)))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with warnings.catch_warnings():
            # Captum warns that a batch trains one surrogate per image: that is what LIME does.
            warnings.filterwarnings("ignore", message="You are providing multiple inputs for Lime")
            attribution = explainer.attribute(
                images,
                baselines=baselines,
                target=targets,
                feature_mask=feature_mask,
                n_samples=n_samples,
                perturbations_per_eval=batch_size,
            )
    finally:
        torch.random.set_rng_state(state)
    return _finish(attribution[:, 0], n_samples, targets, began)


def _rise(
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    n_masks: int = 1000,
    seed: int = 0,
    batch_size: int | None = None,
    **options,
) -> SaliencyResult:
    """:func:`saliency_lib.rise` with this module's call shape (``n_masks`` = model calls per image)."""
    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    result = rise(model, images, targets, n_masks=n_masks, seed=seed, batch_size=batch_size, **options)
    return replace(result, seconds=time.perf_counter() - began)


def _oise(
    model: nn.Module,
    images: torch.Tensor,
    target=None,
    *,
    n_steps: int = 1000,
    seed: int = 0,
    batch_size: int | None = None,
    **options,
) -> SaliencyResult:
    """:func:`saliency_lib.oise` with this module's call shape (``n_steps`` = model calls per image)."""
    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    result = oise(model, images, targets, n_steps=n_steps, seed=seed, batch_size=batch_size, **options)
    return replace(result, seconds=time.perf_counter() - began)


def _random(model: nn.Module, images: torch.Tensor, target=None, *, seed: int = 0) -> SaliencyResult:
    """Uniform random maps (no model call beyond resolving the target): the floor every method must beat."""
    began = time.perf_counter()
    images, targets = _prepare(model, images, target)
    maps = random_maps(images.shape[0], tuple(images.shape[-2:]), seed=seed, device=images.device)
    return _finish(maps, 0, targets, began)


METHODS: dict[str, Callable[..., SaliencyResult]] = {
    "oise": _oise,
    "rise": _rise,
    "gradcam": gradcam,
    "occlusion": occlusion,
    "integrated_gradients": integrated_gradients,
    "saliency": saliency,
    "lime": lime,
    "random": _random,
}


def attribute(method: str, model: nn.Module, images: torch.Tensor, target=None, **options) -> SaliencyResult:
    """Saliency maps ``(B, H, W)`` of ``images`` ``(B, C, H, W)`` by the method called ``method``, in a
    :class:`~saliency_lib.method.results.SaliencyResult` (``result.maps``, ``result.model_calls``, ...).

    Args:
        method: a key of :data:`METHODS` (``"oise"``, ``"rise"``, ``"gradcam"``, ...).
        options: that method's keyword arguments (e.g. ``n_steps`` for OISE, ``n_masks`` for RISE).
    """
    check_choice("method", method, METHODS)
    return METHODS[method](model, images, target, **options)

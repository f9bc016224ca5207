# Solution to notebook 04's exercise: RISE's deletion AUC for one image, written from scratch.
import math

import torch

from saliency_lib.method.core import class_probabilities


def my_deletion_auc(model, image, saliency_map, target, pixels_per_step):
    """``image`` ``(1, C, H, W)``, ``saliency_map`` ``(H, W)`` -> the normalised area under the deletion curve."""
    height, width = saliency_map.shape
    n_pixels = height * width
    order = torch.argsort(-saliency_map.flatten(), stable=True)  # most salient first (ties: pixel order)
    reference = model.spec.reference()  # the dataset mean: 0 after normalisation
    n_steps = math.ceil(n_pixels / pixels_per_step)
    curve = []
    for step in range(n_steps + 1):
        keep = torch.ones(n_pixels)
        keep[order[: step * pixels_per_step]] = 0  # delete the most salient pixels so far
        keep = keep.view(1, 1, height, width)
        deleted = image * keep + reference * (1 - keep)
        curve.append(class_probabilities(model, deleted)[0, target].item())
    # Trapezoid rule on equally spaced points, divided by the number of steps: an area in [0, 1].
    return (sum(curve) - curve[0] / 2 - curve[-1] / 2) / n_steps

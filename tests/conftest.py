"""Generic fixtures shared by the test files (keep this small: one fixture per reusable need)."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class PlantedModel(nn.Module):
    """A two-class "model" whose evidence for class 0 is known: the mean brightness of ``region``.

    logits = (gain * (mean of x[..., region]) - bias, 0), so the true salient region is ``region`` (rows, cols
    slices). Input ``(B, C, H, W)`` in [0, 1]. ``calls`` counts the images evaluated; ``delay`` (seconds per
    call) makes it slow on purpose (for Stop buttons and progress).
    """

    def __init__(self, region=(slice(4, 14), slice(4, 14)), gain: float = 12.0, bias: float = 3.0, delay: float = 0.0):
        super().__init__()
        self.region = region
        self.gain, self.bias, self.delay = gain, bias, delay
        self.calls = 0
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the model a device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        import time

        if self.delay:
            time.sleep(self.delay)
        self.calls += len(images)
        evidence = images[:, :, self.region[0], self.region[1]].mean(dim=(1, 2, 3))
        return torch.stack([self.gain * evidence - self.bias, torch.zeros_like(evidence)], dim=1)


@pytest.fixture
def planted_model() -> PlantedModel:
    """A fresh :class:`PlantedModel` (class 0 lives in rows 4-13, columns 4-13 of a 28 x 28 image)."""
    return PlantedModel()


@pytest.fixture
def planted_images() -> torch.Tensor:
    """Three 1 x 28 x 28 images in [0, 1] that the planted model calls class 0 (bright in its region)."""
    generator = torch.Generator().manual_seed(0)
    images = 0.3 * torch.rand(3, 1, 28, 28, generator=generator)
    images[:, :, 4:14, 4:14] += 0.6
    return images.clamp(0, 1)

"""Generic fixtures shared by the test files (keep this small: one fixture per reusable need)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_stub_left_over(monkeypatch):
    """An exercise check remembers an untouched stub until the next check cell; a test is a check cell of its own."""
    from saliency_lib.course import exercises

    monkeypatch.setattr(exercises, "_STUB_IN_PLACE", None)


def make_dry_run(*arguments: str, env: dict | None = None) -> str:
    """What ``make ARGUMENTS`` would run in the repository (``make -n``), as text: the Makefile tests read it.
    ``env``: the environment make sees (default: this process's)."""
    return subprocess.run(
        ["make", "-n", *arguments], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout


class PlantedModel(nn.Module):
    """A two-class "model" whose evidence is known: the mean brightness of ``region``. The one planted-region model
    of the tests.

    ``region``: ``(rows, cols)`` slices or ``(r0, r1, c0, c1)`` (end-exclusive). The evidence class
    (``evidence_class``, 0 or 1) gets the logit ``gain * evidence - bias`` (or ``gain * (evidence - threshold)``
    when ``threshold`` is given), the other class 0, so the true salient region is ``region``. Input
    ``(B, C, H, W)`` in [0, 1]. ``calls`` counts the images evaluated; ``delay`` (seconds per call) makes it slow on
    purpose (for Stop buttons and progress).
    """

    def __init__(
        self,
        region=(slice(4, 14), slice(4, 14)),
        gain: float = 12.0,
        bias: float = 3.0,
        delay: float = 0.0,
        *,
        threshold: float | None = None,
        evidence_class: int = 0,
    ):
        super().__init__()
        if len(region) == 4:
            region = (slice(region[0], region[1]), slice(region[2], region[3]))
        self.region = region
        self.gain, self.bias, self.delay, self.threshold = gain, bias, delay, threshold
        self.evidence_class = evidence_class
        self.calls = 0
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the model a device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        import time

        if self.delay:
            time.sleep(self.delay)
        self.calls += len(images)
        evidence = images[:, :, self.region[0], self.region[1]].mean(dim=(1, 2, 3))
        if self.threshold is None:
            logit = self.gain * evidence - self.bias
        else:
            logit = self.gain * (evidence - self.threshold)
        other = torch.zeros_like(evidence)
        return torch.stack([logit, other] if self.evidence_class == 0 else [other, logit], dim=1)


def region_model(region) -> PlantedModel:
    """:class:`PlantedModel` with class 1 living in ``region`` ``(r0, r1, c0, c1)``, sure on
    :func:`bright_region_images` (the OISE and RISE tests' model)."""
    return PlantedModel(region, threshold=0.45, evidence_class=1)


def bright_region_images(batch: int, channels: int, height: int, width: int, region, seed: int = 0) -> torch.Tensor:
    """``(batch, channels, height, width)`` images in [0, 1]: a dim noisy background and a bright ``region``
    ``(r0, r1, c0, c1)``, the input :class:`PlantedModel` with ``threshold=0.45, evidence_class=1`` is sure of."""
    gen = torch.Generator().manual_seed(seed)
    images = 0.25 * torch.rand(batch, channels, height, width, generator=gen)
    r0, r1, c0, c1 = region
    images[:, :, r0:r1, c0:c1] = 0.7 + 0.3 * torch.rand(batch, channels, r1 - r0, c1 - c0, generator=gen)
    return images


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

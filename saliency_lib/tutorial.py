"""The one setup cell every notebook starts with: fast mode, seed, device, paths, versions.

``SALIENCY_FAST=1`` (set by ``make test``) shrinks loops so nbval runs each notebook in seconds to a minute,
while the notebook's assert cells still check real results.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["fast_mode", "Setup", "setup", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def fast_mode() -> bool:
    """True when ``SALIENCY_FAST`` is set to 1/true/yes (tests and CI)."""
    return os.environ.get("SALIENCY_FAST", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Setup:
    """What a notebook needs to know about where it runs."""

    fast: bool
    seed: int
    device: torch.device
    repo: Path
    data: Path
    results: Path

    def steps(self, full: int, fast: int) -> int:
        """``fast`` under test, ``full`` otherwise (e.g. ``cfg.steps(5000, 300)``)."""
        return fast if self.fast else full


def setup(seed: int = 0, threads: int | None = None, quiet: bool = False) -> Setup:
    """Seed torch, pick the device (CUDA when present, else CPU), cap threads, print versions.

    Args:
        seed: seed of torch's global generator (notebook-level code; the library takes ``seed=`` itself).
        threads: CPU threads for torch (default: leave as set by ``OMP_NUM_THREADS``/torch).
        quiet: print nothing.
    """
    from . import __version__
    from .assets import DATA_DIR

    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = Setup(fast=fast_mode(), seed=seed, device=device, repo=REPO_ROOT, data=DATA_DIR,
                   results=REPO_ROOT / "benchmarks" / "results")
    if not quiet:
        print(f"saliency_lib {__version__} | torch {torch.__version__} | Python {platform.python_version()} | "
              f"device {device} | {torch.get_num_threads()} threads | fast mode {'ON' if config.fast else 'off'}")
    return config

"""Where the checkout's folders are: the one place that knows the package's depth in the repository.

A checkout holds ``saliency_lib/`` beside ``data/``, ``notebooks/``, ``benchmarks/results/`` and
``pyproject.toml``; every module that needs one of them imports it from here instead of counting ``parent``
steps from its own file. In an installed wheel these paths point beside ``site-packages`` and do not exist;
:func:`saliency_lib.io.assets.find_data_dir` then looks inside the package (:data:`PACKAGE_DIR`).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # saliency_lib/
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = REPO_ROOT / "data"
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
PYPROJECT = REPO_ROOT / "pyproject.toml"

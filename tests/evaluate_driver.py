"""A tiny evaluation suite for tests/test_distributed.py, run as a script (under torchrun or alone).

``python tests/evaluate_driver.py OUT`` runs :func:`saliency_research.runner.run_suite` on the ``tiny`` suite
(:data:`TINY`: 6 planted canvases in blocks of 2, so 2 ranks share 3 blocks) and writes ``OUT/evaluation_tiny.*``.
"""

from __future__ import annotations

import sys

from saliency_research import distributed, runner, suites

TINY = [
    suites.DatasetPlan(
        "planted",
        6,
        20,
        pixels_per_step=256,
        methods=("oise", "rise", "random", "gradcam"),
        chunk=2,
        options={"rise": {"batch_size": 8}},
    )
]

if __name__ == "__main__":
    suites.SUITES["tiny"] = TINY
    try:
        runner.run_suite("tiny", sys.argv[1], progress=False)
    finally:
        distributed.finish()

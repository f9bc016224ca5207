"""The golden, runtime and quick-suite checks hold under other CPU kernels too, not only this machine's.

A learner's laptop runs other float kernels than ours (AVX2 or AVX-512, oneDNN's ISA, another thread count): a
tolerance that holds for one instruction set only must fail here, not there. This test recomputes everything
``tests/test_golden.py`` records (:func:`test_golden.measure`) in a fresh process under PyTorch's portable
``ATEN_CPU_CAPABILITY=default`` kernels, and checks it with the same tolerances.
``saliency_research/bench/kernel_spread.py`` does the same for every setting and writes the spreads the tolerances
rest on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_golden import GOLDEN, check_numbers, check_outputs
from test_runtime import check_runtime

pytestmark = pytest.mark.slow(reason="the golden outputs and the quick suite again under other CPU kernels (2-3 min)")
PORTABLE = {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("portable") / "measured.pt"
    script = Path(__file__).with_name("test_golden.py")
    result = subprocess.run(
        [sys.executable, str(script), "--measure", str(out)],
        env={**os.environ, **PORTABLE},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out, weights_only=True)


def test_the_subprocess_really_ran_the_portable_kernels(measured):
    assert measured["capability"] == "DEFAULT" and measured["threads"] == 1


def test_golden_outputs_hold_under_the_portable_kernels(measured):
    problems = check_outputs(measured["outputs"], torch.load(GOLDEN, weights_only=True)["outputs"])
    assert not problems, "\n".join(problems)


def test_quick_suite_numbers_hold_under_the_portable_kernels(measured):
    problems = check_numbers(measured["benchmark"], torch.load(GOLDEN, weights_only=True)["benchmark"])
    assert not problems, "\n".join(problems)


def test_onnx_runtime_agrees_with_the_portable_pytorch(measured):
    problems = check_runtime(measured["runtime"])
    assert not problems, "\n".join(problems)

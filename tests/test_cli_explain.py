"""``python -m saliency_lib explain``: output, figure, and one-line errors with a non-zero exit code."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_lib import cli
from saliency_lib.io.image_files import load_image_file
from saliency_lib.io.models import InputSpec


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import skimage.data

    path = tmp_path_factory.mktemp("images") / "cat.jpg"
    Image.fromarray(skimage.data.chelsea()).save(path)  # 300 x 451 RGB
    return path


class _Spec:
    def __init__(self, channels, size):
        self.spec = InputSpec(channels=channels, size=size, mean=(0.5,) * channels, std=(0.5,) * channels)


def test_load_image_file_converts_resizes_and_crops(photo, tmp_path):
    rgb = load_image_file(photo, _Spec(3, (224, 224)))
    assert rgb.shape == (1, 3, 224, 224) and rgb.dtype == torch.float32 and 0 <= rgb.min() and rgb.max() <= 1
    gray = load_image_file(photo, _Spec(1, (28, 28)))
    assert gray.shape == (1, 1, 28, 28)
    # A left-dark, right-bright wide image: the centre crop keeps the middle, so both halves stay visible.
    array = np.zeros((40, 120), dtype=np.uint8)
    array[:, 60:] = 255
    Image.fromarray(array).save(tmp_path / "wide.png")
    crop = load_image_file(tmp_path / "wide.png", _Spec(1, (20, 20)))[0, 0]
    assert crop[:, :8].max() < 0.1 and crop[:, -8:].min() > 0.9


def test_explain_prints_top5_target_time_and_writes_the_figure(photo, tmp_path, capsys):
    out = tmp_path / "map.png"
    code = cli.main(
        [
            "explain",
            str(photo),
            "--model",
            "efficientnet-lite0",
            "--method",
            "oise",
            "--steps",
            "6",
            "--seed",
            "1",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "top-5 classes:" in captured.out and "1. Egyptian cat (class 285)" in captured.out
    assert "target: Egyptian cat (class 285)" in captured.out and "6 model calls in" in captured.out
    assert "OISE" in captured.err  # the progress bar
    with Image.open(out) as figure:
        assert figure.size[0] > 2 * figure.size[1]  # three panels side by side


def test_explain_with_rise_and_a_chosen_target(photo, tmp_path, capsys):
    out = tmp_path / "rise.png"
    code = cli.main(
        [
            "explain",
            str(photo),
            "--method",
            "rise",
            "--steps",
            "10",
            "--target",
            "282",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "target: tiger cat (class 282)" in captured.out and "RISE: 10 model calls" in captured.out
    assert out.stat().st_size > 10_000 and captured.err == ""


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["{missing}"], "image not found"),
        (["{broken}"], "cannot read"),
        (["{photo}", "--model", "alexnet"], "model must be one of"),
        (["{photo}", "--method", "lime"], "method must be one of"),
        (["{photo}", "--steps", "0"], "steps must be >= 1"),
        (["{photo}", "--out", "map.txt"], "--out must end in"),
        (["{photo}", "--target", "1000", "--steps", "1"], "target must be a class index in [0, 999]"),
    ],
)
def test_errors_exit_non_zero_with_one_line(photo, tmp_path, capsys, arguments, message):
    broken = tmp_path / "broken.png"
    broken.write_text("not a PNG")
    values = {"missing": tmp_path / "nope.jpg", "broken": broken, "photo": photo}
    argv = ["explain"] + [a.format(**values) for a in arguments]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "never.png")]
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("explain: error:"), captured.err
    assert not (tmp_path / "never.png").exists()


def test_error_from_a_real_process_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "saliency_lib", "explain", str(tmp_path / "missing.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"explain: error: image not found: {tmp_path / 'missing.png'}"
    assert "Traceback" not in result.stderr

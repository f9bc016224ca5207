"""A regular install works: the wheel carries every subpackage and the shipped data, and runs outside the checkout.

Every other test imports the editable install (``pip install -e .``), which reads the checkout's files in place; a
learner who runs ``pip install .`` gets the wheel. Here it is built from this checkout, installed into a fresh
virtual environment in a temporary folder (its dependencies come from this environment's site-packages through a
``.pth`` line, so nothing is downloaded), and used from there with the checkout out of sight.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow(reason="builds the wheel and installs it in a fresh environment (about 20 s)")

USE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import saliency_lib
    import saliency_lib.course.widgets  # every subpackage is in the wheel
    from saliency_lib import oise
    from saliency_lib.io import assets, data, models

    here = Path(saliency_lib.__file__).resolve().parent
    assert str(here).startswith(sys.argv[1]), f"imported from {here}, not the installed wheel"
    assert assets.DATA_DIR == here / "shipped_data", assets.DATA_DIR
    assert assets.verify() == [], assets.verify()  # sizes and sha256 of every shipped file
    fashion = models.load("fashion-cnn")  # hash-checked, torch.load(weights_only=True)
    clutter = models.load("clutter-cnn")
    images, labels = data.fashion_sample(n_per_class=1)
    maps = oise(fashion, images[:2], labels[:2], n_steps=30, seed=0).maps
    print(json.dumps({"maps": list(maps.shape), "max": float(maps.max()), "clutter": type(clutter).__name__}))
    """
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        cwd=out,
    )
    (path,) = out.glob("saliency_tutorial-*.whl")
    return path


def test_the_wheel_holds_every_subpackage_and_the_shipped_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        str(p.relative_to(REPO)) for p in (REPO / "saliency_lib").rglob("*.py") if "shipped_data" not in p.parts
    }
    assert packages <= names, sorted(packages - names)
    shipped = {f"saliency_lib/shipped_data/{p.name}" for p in (REPO / "data").iterdir() if p.is_file()}
    assert shipped <= names, sorted(shipped - names)


def bare_environment(folder: Path) -> tuple[Path, Path]:
    """A virtual environment in ``folder`` without pip or this package, whose dependencies (torch, ...) come from
    this environment through a ``.pth`` line (its editable finder, a ``.pth`` in there, is not run); returns its
    Python and its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site


def test_the_installed_wheel_loads_both_classifiers_and_makes_a_map_outside_the_checkout(wheel, tmp_path):
    python, site = bare_environment(tmp_path / "env")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SALIENCY_DATA_DIR", "PYTHONPATH")}
    env["HOME"] = str(tmp_path)  # the ONNX/torch caches of this run stay in the temporary folder
    result = subprocess.run(
        [str(python), "-c", USE, str(site.resolve())], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"maps": [2, 28, 28]' in result.stdout and '"clutter": "Classifier"' in result.stdout, result.stdout

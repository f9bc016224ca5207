"""The shipped files: manifest, hash checks, safe loading and the verify command."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from saliency_lib.io import assets

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of data/ to damage."""
    target = tmp_path / "data"
    shutil.copytree(assets.DATA_DIR, target)
    return target


def test_every_shipped_file_matches_the_manifest():
    assert assets.verify() == []


def test_manifest_entries_say_size_hash_licence_origin_and_command():
    files = assets.read_manifest()["files"]
    assert {"fashion_sample.npz", "fashion_cnn.pt"} <= set(files)
    for name, entry in files.items():
        assert (assets.DATA_DIR / name).stat().st_size == entry["size"], name
        assert len(entry["sha256"]) == 64, name
        assert entry["licence"] and entry["origin"], name
        assert entry["command"].startswith("python -m saliency_lib assets build"), name


def test_manifest_records_the_classifier_accuracy_on_the_full_test_set():
    measured = assets.read_manifest()["files"]["fashion_cnn.pt"]["measured"]
    assert measured["test_images"] == 10_000
    assert measured["test_accuracy"] >= 0.91


def test_every_recipe_is_registered_and_the_table_lists_every_file():
    assets._load_recipes()
    assert set(assets.ASSETS) == set(assets.read_manifest()["files"])
    table = assets.manifest_table()
    assert all(f"`{name}`" in table for name in assets.ASSETS)


def test_checked_path_accepts_an_intact_file(data_copy):
    assert assets.checked_path("fashion_cnn.pt", data_copy) == data_copy / "fashion_cnn.pt"


def test_a_tampered_file_is_refused_with_its_name_and_the_fix(data_copy):
    path = data_copy / "fashion_cnn.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(raw))
    with pytest.raises(assets.AssetError, match=r"fashion_cnn\.pt.*sha256.*assets build"):
        assets.load_weights("fashion_cnn.pt", data_copy)


def test_a_truncated_file_is_refused(data_copy):
    path = data_copy / "fashion_cnn.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(assets.AssetError, match=r"fashion_cnn\.pt.*bytes.*truncated"):
        assets.load_weights("fashion_cnn.pt", data_copy)


def test_a_missing_or_unlisted_file_is_refused(data_copy):
    (data_copy / "fashion_cnn.pt").unlink()
    with pytest.raises(assets.AssetError, match="missing"):
        assets.checked_path("fashion_cnn.pt", data_copy)
    with pytest.raises(assets.AssetError, match="not listed"):
        assets.checked_path("no_such_file.pt", data_copy)


class _Payload:
    """Unpickling this would create a file: weights_only loading must never run it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_with_code_is_refused_without_running_it(data_copy, tmp_path):
    marker = tmp_path / "code-ran"
    evil = data_copy / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"weight": _Payload(str(marker))}, handle, protocol=2)
    manifest = json.loads((data_copy / assets.MANIFEST_NAME).read_text())
    manifest["files"]["evil.pt"] = {"size": evil.stat().st_size, "sha256": assets.sha256_file(evil)}
    (data_copy / assets.MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(assets.AssetError, match=r"evil\.pt could not be read as weights"):
        assets.load_weights("evil.pt", data_copy)
    assert not marker.exists()


def test_load_weights_gives_tensors():
    state = assets.load_weights("fashion_cnn.pt")
    assert state and all(isinstance(value, torch.Tensor) for value in state.values())


def _verify_cli(data_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SALIENCY_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "saliency_lib", "assets", "verify"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_verify_command_passes_on_intact_data(data_copy):
    result = _verify_cli(data_copy)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_verify_command_names_every_bad_file(data_copy):
    (data_copy / "fashion_sample.npz").write_bytes(b"not an archive")
    (data_copy / "fashion_cnn.pt").unlink()
    result = _verify_cli(data_copy)
    assert result.returncode == 1
    assert "fashion_sample.npz" in result.stderr and "fashion_cnn.pt" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
)
def test_rebuilding_the_sample_gives_the_same_bytes(tmp_path):
    shutil.copy(assets.DATA_DIR / assets.MANIFEST_NAME, tmp_path / assets.MANIFEST_NAME)
    entry = assets.build(only=["fashion_sample.npz"], data_dir=tmp_path, progress=False)["fashion_sample.npz"]
    assert entry["sha256"] == assets.read_manifest()["files"]["fashion_sample.npz"]["sha256"]


def test_the_data_folder_is_found_in_the_documented_order(tmp_path, monkeypatch):
    checkout, packaged = tmp_path / "checkout", tmp_path / "packaged"
    for folder in (checkout, packaged):
        folder.mkdir()
    monkeypatch.setattr(assets, "CHECKOUT_DATA", checkout)
    monkeypatch.setattr(assets, "PACKAGED_DATA", packaged)
    monkeypatch.delenv("SALIENCY_DATA_DIR", raising=False)
    assert assets.find_data_dir() == checkout  # nothing anywhere: the error will name the checkout's folder
    (packaged / assets.MANIFEST_NAME).write_text("{}")
    assert assets.find_data_dir() == packaged  # an installed wheel without a checkout
    (checkout / assets.MANIFEST_NAME).write_text("{}")
    assert assets.find_data_dir() == checkout  # a checkout wins over the wheel's copy
    monkeypatch.setenv("SALIENCY_DATA_DIR", str(tmp_path / "elsewhere"))
    assert assets.find_data_dir() == tmp_path / "elsewhere"

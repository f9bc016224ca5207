"""Sharded runs (:mod:`saliency_research.distributed`): the same records however the work is split, and after a resume.

One real ``torchrun`` with 2 ranks (gloo, CPU, localhost) runs ``explain-folder``; the other splits are played in
this process with ``rank_world`` (each rank run in turn, no process group), which exercises the same block,
seed, skip and merge logic in a fraction of the time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_lib import oise
from saliency_research import cli, distributed, image_folders
from saliency_research.distributed import block_seed, run_sharded

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def one_thread():
    """One torch (and ONNX Runtime) thread, as in the torchrun workers: the same kernels, the same floats."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _images(n: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    images = 0.3 * torch.rand(n, 1, 28, 28, generator=generator)
    images[:, :, 4:14, 4:14] += 0.6
    return images.clamp(0, 1)


def _oise_job(model, images, out_dir: Path, calls: list):
    """OISE on each block with the block's seed; the maps go to npz files, their sums to the records."""

    def job(block):
        calls.append(block.index)
        result = oise(model, images[block.start : block.stop], n_steps=12, seed=block.seed)
        distributed.save_arrays(out_dir / f"block{block.index}.npz", maps=result.maps)
        return [{"sum": float(m.sum()), "target": int(t)} for m, t in zip(result.maps, result.target)]

    return job


def _maps(out_dir: Path, n_blocks: int) -> torch.Tensor:
    return torch.cat([torch.from_numpy(np.load(out_dir / f"block{k}.npz")["maps"]) for k in range(n_blocks)])


def test_block_seeds_depend_on_seed_and_block_only():
    assert block_seed(0, 3) == block_seed(0, 3)
    seeds = {block_seed(0, k) for k in range(100)} | {block_seed(1, k) for k in range(100)}
    assert len(seeds) == 200 and all(0 <= s < 2**32 for s in seeds)
    with pytest.raises(TypeError):
        block_seed(1.5, 0)


def test_world_from_torchrun_environment(monkeypatch):
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.world() == (0, 1)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert distributed.world() == (2, 4)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK"):
        distributed.world()


def test_any_split_and_a_resume_give_the_same_records(planted_model, tmp_path):
    images, calls = _images(5), []
    single = run_sharded(
        _oise_job(planted_model, images, tmp_path / "a", calls), 5, tmp_path / "a", "maps", seed=7, block_size=2
    )
    assert single.complete and single.n_blocks == 3 and [r["index"] for r in single.records] == [0, 1, 2, 3, 4]
    reference = json.loads((tmp_path / "a" / "maps.json").read_text())["records"]

    # Three ranks, played in turn: ranks 1 and 2 leave their files; rank 0 computes block 0 and merges.
    split = tmp_path / "b"
    for rank in (1, 2, 0):
        run = run_sharded(
            _oise_job(planted_model, images, split, []), 5, split, "maps", seed=7, block_size=2, rank_world=(rank, 3)
        )
    assert run.complete and run.computed == [0] and run.skipped == [1, 2]
    assert json.loads((split / "maps.json").read_text())["records"] == reference
    assert torch.equal(_maps(split, 3), _maps(tmp_path / "a", 3))

    # A run stopped after one block, killed while writing the next line, then started again.
    resumed, calls = tmp_path / "c", []
    first = run_sharded(
        _oise_job(planted_model, images, resumed, calls), 5, resumed, "maps", seed=7, block_size=2, max_blocks=1
    )
    assert not first.complete and first.missing == [1, 2] and first.records is None
    assert not (resumed / "maps.json").exists()
    with (resumed / "maps.rank0.jsonl").open("a") as file:
        file.write('{"run": {"n_items": 5, "block_size": 2, "se')  # the kill, mid-line
    second = run_sharded(_oise_job(planted_model, images, resumed, calls), 5, resumed, "maps", seed=7, block_size=2)
    assert calls == [0, 1, 2] and second.skipped == [0] and second.records == reference
    assert torch.equal(_maps(resumed, 3), _maps(tmp_path / "a", 3))

    # The folder holds one run: other settings are refused, not mixed in.
    with pytest.raises(ValueError, match="another run"):
        run_sharded(_oise_job(planted_model, images, resumed, []), 5, resumed, "maps", seed=8, block_size=2)


def test_evaluate_sharded_is_evaluate_in_blocks(tmp_path, one_thread):
    from saliency_lib.evaluation.datasets import load_dataset
    from saliency_research.scoring import evaluate, evaluate_sharded

    options, data = {"n_masks": 40, "seed": 3}, load_dataset("planted", 4, seed=0)
    kwargs = dict(options=options, seed=0, block_size=2, same_seed=True, data=data, pixels_per_step=256)
    whole = None
    for rank in (1, 0):  # two ranks, played in turn
        whole = evaluate_sharded("planted", "rise", 4, tmp_path, rank_world=(rank, 2), **kwargs)
    assert [b["rank"] for b in json.loads(whole["path"].read_text())["blocks"]] == [0, 1]
    # The evaluation today (every chunk of 2 seeded 3): the same numbers, so adopting the runner changes none.
    direct = evaluate(
        data["model"],
        data["images"][:4],
        data["targets"][:4],
        "rise",
        options,
        boxes=data["boxes"][:4],
        pixels_per_step=256,
        chunk=2,
    )
    assert whole["values"].keys() == direct["values"].keys()
    for key, value in direct["values"].items():
        assert torch.equal(whole["values"][key], value), key
    assert torch.equal(whole["maps"], direct["maps"])
    assert torch.equal(whole["curves"]["deletion"], direct["curves"]["deletion"])


def test_cuda_requested_without_a_gpu_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    (tmp_path / "in").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "in" / "x.png")
    code = cli.main(
        [
            "explain-folder",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cuda",
            "--model",
            "fashion-cnn",
            "--steps",
            "5",
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.count("\n") == 0 and "no CUDA GPU" in error and "--device cpu" in error


def test_evaluate_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    code = cli.main(
        [
            "evaluate",
            "--suite",
            "quick",
            "--datasets",
            "planted",
            "--methods",
            "random",
            "--out",
            str(tmp_path),
            "--device",
            "cuda",
            "--no-progress",
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 1 and error.count("\n") == 0 and "no CUDA GPU" in error and "--device cpu" in error
    assert not list(tmp_path.iterdir())  # nothing written


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow(reason="two torchrun ranks, killed and resumed (about 25 s)")
def test_explain_folder_two_torchrun_ranks_resume_a_stopped_run(tmp_path, one_thread):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (height, width) in enumerate([(40, 30), (28, 28), (50, 64), (33, 33), (29, 45)]):
        Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).save(folder / f"im{i}.png")
    (folder / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # an image that cannot be read: a record
    options = dict(model_name="fashion-cnn", method="oise", steps=20, seed=0, block_size=2, progress=False)

    reference = image_folders.explain_folder(folder, tmp_path / "one", **options)  # 6 files, 3 blocks
    assert reference.complete and len(reference.records) == 6
    assert "error" in reference.records[0] and reference.records[0]["file"] == "broken.png"
    stopped = image_folders.explain_folder(folder, tmp_path / "two", max_blocks=1, **options)
    assert stopped.missing == [1, 2]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "saliency_research",
        "explain-folder",
        str(folder),
        "--out",
        str(tmp_path / "two"),
        "--model",
        "fashion-cnn",
        "--steps",
        "20",
        "--block-size",
        "2",
        "--no-progress",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    # A rank's own message comes first; torchrun's summary (the tail) only names the signal.
    assert done.returncode == 0, done.stderr[:3000] + "\n...\n" + done.stderr[-800:]
    assert "1 block(s) computed, 1 found done" in done.stdout  # rank 0: block 0 (found), block 2 (now)

    merged = json.loads((tmp_path / "two" / "explain.json").read_text())
    assert merged["records"] == reference.records
    assert [(b["rank"], b["world_size"]) for b in merged["blocks"]] == [(0, 1), (1, 2), (0, 2)]
    for record in reference.records[1:]:
        one = np.load(tmp_path / "one" / record["map"])
        two = np.load(tmp_path / "two" / record["map"])
        assert torch.equal(torch.from_numpy(one["saliency"]), torch.from_numpy(two["saliency"]))
        assert one["saliency"].shape == (28, 28) and int(two["target"]) == record["target"]


TIMING = ("wall_seconds", "seconds_per_image", "machine")


def _without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.mark.slow(reason="two torchrun ranks over an image folder, stopped and resumed (about 20 s)")
def test_evaluate_two_torchrun_ranks_resume_a_killed_run_and_equal_one_process(tmp_path, one_thread, monkeypatch):
    """``run_suite`` (the benchmark) under torchrun: 2 ranks finishing a run killed part-way write the records of
    1 uninterrupted process, metric for metric."""
    sys.path.insert(0, str(ROOT / "tests"))
    from evaluate_driver import TINY

    from saliency_research import runner, suites

    monkeypatch.setitem(suites.SUITES, "tiny", TINY)
    single = runner.run_suite("tiny", tmp_path / "one", progress=False)
    assert [r["method"] for r in single["records"]] == ["oise", "rise", "random", "gradcam"]
    parts = tmp_path / "one" / "evaluation_tiny.parts"
    assert len(list(parts.glob("*.rank0.jsonl"))) == 4

    # A run killed part-way: OISE finished 1 of its 3 blocks, RISE all 3, the rest nothing; no result file yet.
    killed = tmp_path / "two" / "evaluation_tiny.parts"
    killed.mkdir(parents=True)
    for method, keep in (("oise", 1), ("rise", 3)):
        name = f"evaluation-planted-{method}"
        lines = (parts / f"{name}.rank0.jsonl").read_text().splitlines(keepends=True)
        (killed / f"{name}.rank0.jsonl").write_text("".join(lines[:keep]))
        (killed / f"{name}.blocks").mkdir()
        for k in range(keep):
            block = parts / f"{name}.blocks" / f"block{k:06d}.npz"
            (killed / f"{name}.blocks" / block.name).write_bytes(block.read_bytes())

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        str(ROOT / "tests" / "evaluate_driver.py"),
        str(tmp_path / "two"),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    two = json.loads((tmp_path / "two" / "evaluation_tiny.json").read_text())
    assert _without_timing(two["records"]) == _without_timing(
        json.loads((tmp_path / "one" / "evaluation_tiny.json").read_text())["records"]
    )
    oise_blocks = json.loads((killed / "evaluation-planted-oise.json").read_text())["blocks"]
    assert [(b["rank"], b["world_size"]) for b in oise_blocks] == [(0, 1), (1, 2), (0, 2)]  # resumed, then shared
    rise_blocks = json.loads((killed / "evaluation-planted-rise.json").read_text())["blocks"]
    assert {b["world_size"] for b in rise_blocks} == {1}  # nothing recomputed
    assert (killed / "evaluation-planted-rise.rank1.jsonl").read_text() == ""

"""Beyond one machine: a job split into fixed blocks over processes and machines, launched by PyTorch's torchrun.

No scheduler of ours: ``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`world` reads them (none set: one process, rank 0 of 1). :func:`run_sharded` then does the rest::

    items 0 .. n-1  ->  blocks of block_size items (fixed by the caller, never by the number of processes)
    block k         ->  rank k % world_size; its random numbers come from block_seed(seed, k) only
    each block      ->  one JSON line appended to out_dir/<name>.rank<r>.jsonl (flushed and fsynced)
    start           ->  blocks already in ANY rank file are skipped (a killed run resumes where it stopped)
    end             ->  barrier; rank 0 merges every rank file into out_dir/<name>.json, sorted by item index,
                        after checking that every block is there

So the records are identical however the work is split (1 process, 2 ranks, 2 machines x 8 GPUs), and a resumed
run equals an uninterrupted one::

    def job(block):                       # block.start, block.stop, block.seed (an int for oise/rise)
        maps = oise(model, images[block.start:block.stop], n_steps=5000, seed=block.seed).maps
        return [{"peak": float(m.max())} for m in maps]      # one JSON-able dict per item, in order

    run = run_sharded(job, len(images), "results/", "peaks", seed=0, block_size=8)
    run.records                           # on rank 0, once every block is done: [{"index": 0, "peak": ...}, ...]

Commands (``python -m saliency_research explain-folder`` is :func:`saliency_research.image_folders.explain_folder`)::

    python -m saliency_research explain-folder photos/ --out maps/                          # one process
    torchrun --nproc-per-node 2 -m saliency_research explain-folder photos/ --out maps/     # 2 processes
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-id maps --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29500 -m saliency_research explain-folder photos/ --out maps/  # the same on 2 machines

(or a static rendezvous: ``--nnodes 2 --node-rank R --master-addr HOST --master-port 29500`` on machine R).
Across machines ``out_dir`` must be one shared folder (NFS, ...): rank 0 reads every rank's file. The process
group (gloo on the CPU; gloo and NCCL with ``device="cuda"``) is used only for the final barriers: the blocks
need no communication. :func:`saliency_research.scoring.evaluate_sharded` runs the evaluation this way, and
``python -m saliency_research evaluate`` (every suite) runs on it, so the benchmark runs under torchrun too.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch

from saliency_lib.method.checks import check_callable, check_int, check_seed
from saliency_lib.method.threads import share_cores

__all__ = [
    "Block",
    "ShardedRun",
    "world",
    "init",
    "finish",
    "block_seed",
    "run_sharded",
    "read_blocks",
    "merge",
    "save_arrays",
]

# How long a rank that has finished waits at the final barrier for the slowest one (torchrun stops every rank
# when one fails, so a long wait is a slow peer, not a dead one). Override with SALIENCY_BARRIER_TIMEOUT_S.
BARRIER_TIMEOUT_S = 24 * 3600


@dataclass
class Block:
    """A fixed slice of the items: ``index`` k covers items ``start .. stop-1``; ``seed`` = block_seed(seed, k).

    ``info`` is for the job: what it puts there (e.g. seconds, a device name) is kept in the block's line and
    in the merged file's ``blocks``, apart from the records (which must not depend on the machine or the time).
    """

    index: int
    start: int
    stop: int
    seed: int
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def items(self) -> range:
        return range(self.start, self.stop)


@dataclass
class ShardedRun:
    """What :func:`run_sharded` did in this process.

    Attributes:
        rank, world_size: this process's place in the run.
        n_blocks: blocks of the whole job.
        computed: the blocks this process computed now; skipped: the blocks found already done at its start.
        missing: blocks still not done at the end (non-empty after ``max_blocks``: run again to resume).
        path: the merged ``<name>.json`` (None while blocks are missing).
        records: rank 0, complete: one dict per item sorted by ``index``; else None.
    """

    rank: int
    world_size: int
    n_blocks: int
    computed: list[int]
    skipped: list[int]
    missing: list[int]
    path: Path | None = None
    records: list[dict] | None = None

    @property
    def complete(self) -> bool:
        return not self.missing


def world() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment (``RANK``, ``WORLD_SIZE``); ``(0, 1)`` without it."""
    try:
        rank, size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise ValueError(
            f"RANK={os.environ.get('RANK')!r} and WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} must "
            "be ints (torchrun sets them)"
        ) from None
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"RANK={rank} must be in [0, WORLD_SIZE={size})")
    return rank, size


def init(device: str | torch.device = "cpu") -> torch.device:
    """Join torchrun's process group (when ``WORLD_SIZE > 1``) and return the device this rank should use.

    ``"cpu"``: gloo. ``"cuda"``: this rank's GPU (``LOCAL_RANK`` modulo the GPUs visible), gloo for CPU tensors
    and NCCL for CUDA ones. Calling it again does nothing more.

    Raises:
        RuntimeError: ``"cuda"`` asked for and PyTorch sees no CUDA GPU here (one line saying what to do).
    """
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: PyTorch sees no CUDA GPU on this machine; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda', got {str(device)!r}")
    _, size = world()
    if size > 1:  # processes x threads never more than the cores (SALIENCY_THREADS overrides; docs/scale-out.md)
        share_cores(int(os.environ.get("LOCAL_WORLD_SIZE", size)))
    import torch.distributed as dist

    if size > 1 and not dist.is_initialized():
        nccl = device.type == "cuda" and dist.is_nccl_available()
        timeout = timedelta(seconds=float(os.environ.get("SALIENCY_BARRIER_TIMEOUT_S", BARRIER_TIMEOUT_S)))
        dist.init_process_group("cpu:gloo,cuda:nccl" if nccl else "gloo", timeout=timeout)
    return device


def finish() -> None:
    """Leave the process group (if :func:`init` joined one): call once at the end of a torchrun command."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _barrier() -> None:
    """Wait for every rank. A CPU all-reduce: gloo, whatever the GPU backend (the blocks need no GPU sync)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(torch.zeros(1))


def block_seed(seed: int, block: int) -> int:
    """The seed of block ``block`` of a run seeded ``seed``: an int in [0, 2**32), from these two numbers only.

    ``numpy.random.SeedSequence([seed, block])`` spreads neighbouring (seed, block) pairs apart, so blocks get
    unrelated random numbers, and no block's numbers depend on the number of processes.
    """
    check_seed(seed)
    check_int("seed", seed, 0)
    check_int("block", block, 0)
    return int(np.random.SeedSequence([seed, block]).generate_state(1)[0])


def _rank_files(out_dir: Path, name: str) -> list[Path]:
    return sorted(out_dir.glob(f"{name}.rank*.jsonl"))


def read_blocks(out_dir: str | Path, name: str, run: dict | None = None) -> dict[int, dict]:
    """Every finished block in ``out_dir/<name>.rank*.jsonl``: ``{block index: its line}``.

    A last line cut short (the process was killed while writing it) is ignored: that block is not done.
    With ``run`` (``{"n_items", "block_size", "seed", "settings"}``), a line of another run raises ValueError:
    a folder holds one run, so a resume never mixes results of other settings.
    """
    blocks: dict[int, dict] = {}
    for path in _rank_files(Path(out_dir), name):
        text = path.read_text()
        lines = text.split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # no newline after it: a write cut by a kill; the block is redone
                    continue
                raise ValueError(
                    f"{path}:{number} is not a JSON line; the file is damaged: delete it to recompute its blocks"
                ) from None
            if run is not None and entry.get("run") != run:
                raise ValueError(
                    f"{path} holds another run ({_describe(entry.get('run'))}, this one "
                    f"{_describe(run)}); use another output folder or delete its {name}.rank*.jsonl"
                )
            blocks.setdefault(entry["block"], entry)  # a block done twice (two runs at once): the first wins
    return blocks


def _describe(run) -> str:
    if not isinstance(run, dict):
        return "unknown settings"
    settings = ", ".join(f"{k} {v}" for k, v in (run.get("settings") or {}).items())
    return f"{run.get('n_items')} items, block size {run.get('block_size')}, seed {run.get('seed')}" + (
        f", {settings}" if settings else ""
    )


def _cut_partial_line(path: Path) -> None:
    """Drop a last line without its newline (a kill mid-write), so the next append starts on a line of its own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def save_arrays(path: str | Path, **arrays) -> Path:
    """``numpy.savez`` via a temporary file and a rename: a kill never leaves half a file under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(temporary, **{k: v.detach().cpu().numpy() if torch.is_tensor(v) else v for k, v in arrays.items()})
    os.replace(temporary, path)
    return path


def merge(out_dir: str | Path, name: str, run: dict) -> tuple[Path | None, list[dict] | None, list[int]]:
    """Merge the rank files into ``out_dir/<name>.json`` if every block is there.

    Returns:
        ``(path, records sorted by index, [])`` when complete, else ``(None, None, missing block indices)``.

    Raises:
        ValueError: a block whose records do not cover its items exactly.
    """
    out_dir = Path(out_dir)
    n_blocks = math.ceil(run["n_items"] / run["block_size"])
    blocks = read_blocks(out_dir, name, run)
    missing = [k for k in range(n_blocks) if k not in blocks]
    if missing:
        return None, None, missing
    records = sorted((r for k in range(n_blocks) for r in blocks[k]["records"]), key=lambda r: r["index"])
    if [r["index"] for r in records] != list(range(run["n_items"])):
        raise ValueError(f"{name}: the blocks' records do not cover items 0..{run['n_items'] - 1} once each")
    payload = {
        "name": name,
        **run,
        "n_blocks": n_blocks,
        "blocks": [
            {key: blocks[k][key] for key in ("block", "seed", "rank", "world_size", "info")} for k in range(n_blocks)
        ],
        "records": records,
    }
    path = out_dir / f"{name}.json"
    _write_atomic(path, json.dumps(payload, indent=1) + "\n")
    return path, records, []


def run_sharded(
    job: Callable[[Block], list[dict]],
    n_items: int,
    out_dir: str | Path,
    name: str,
    *,
    seed: int = 0,
    block_size: int = 8,
    settings: dict | None = None,
    max_blocks: int | None = None,
    rank_world: tuple[int, int] | None = None,
    progress: bool = False,
) -> ShardedRun:
    """Run ``job`` on this rank's blocks, skip blocks already done, and (rank 0) merge when all are done.

    Args:
        job: ``job(block) -> list[dict]``: one JSON-able dict per item of ``block``, in order (:class:`Block`);
            the runner adds each item's ``index``.
            Its random numbers must come from ``block.seed`` only, and its records must not hold timings or
            machine names (put those in ``block.info``): then a sharded run equals a single one.
        n_items: items 0 .. n_items-1.
        out_dir: folder of the rank files and the merged ``<name>.json``; shared by every machine of the run.
        name: file name stem (no ``/``).
        seed: base seed; block k uses :func:`block_seed` ``(seed, k)``.
        block_size: items per block, fixed by the caller (not by the number of processes): it decides the
            blocks, hence the results. Smaller blocks: finer resume and balance; larger: bigger model batches.
        settings: JSON-able description of what the job computes (model, method, budget, ...). Kept with every
            block; a resume with other settings (or n_items, block_size, seed) is refused.
        max_blocks: compute at most this many blocks in this process, then stop (a run in parts; tests).
        rank_world: ``(rank, world_size)`` to play without a process group (e.g. a job-array task; the last
            one to finish merges when it is rank 0, or call :func:`merge`); default: :func:`world` and the
            process group of :func:`init`, joined here if needed.
        progress: one line per block on stderr.

    Returns:
        A :class:`ShardedRun`; its ``records`` (rank 0) are the merged records, each with its ``index``.
    """
    check_callable("job", job)
    check_int("n_items", n_items, 1)
    check_int("block_size", block_size, 1)
    check_int("seed", seed, 0)
    if max_blocks is not None:
        check_int("max_blocks", max_blocks, 0)
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be a file name stem without '/', got {name!r}")
    if rank_world is None:
        rank, size = world()
        if size > 1:
            init("cpu")
    else:
        rank, size = rank_world
        check_int("world_size", size, 1)
        check_int("rank", rank, 0, size - 1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = json.loads(
        json.dumps(
            {"n_items": n_items, "block_size": block_size, "seed": seed, "settings": settings or {}}, default=str
        )
    )  # as read back
    n_blocks = math.ceil(n_items / block_size)
    done = read_blocks(out_dir, name, run)
    skipped = sorted(done)
    todo = [k for k in range(rank, n_blocks, size) if k not in done]
    if max_blocks is not None:
        todo = todo[:max_blocks]
    own = out_dir / f"{name}.rank{rank}.jsonl"
    _cut_partial_line(own)
    computed = []
    with own.open("a") as file:
        for k in todo:
            block = Block(k, k * block_size, min(n_items, (k + 1) * block_size), block_seed(seed, k))
            began = time.perf_counter()
            records = job(block)
            if (
                not isinstance(records, list)
                or len(records) != len(block)
                or not all(isinstance(r, dict) and "index" not in r for r in records)
            ):
                raise TypeError(
                    f"job must return a list of {len(block)} dicts (no 'index' key: the runner "
                    f"adds it) for block {k}, got "
                    f"{type(records).__name__}" + (f" of length {len(records)}" if isinstance(records, list) else "")
                )
            info = {"seconds": round(time.perf_counter() - began, 3), **block.info}
            line = {
                "run": run,
                "block": k,
                "seed": block.seed,
                "rank": rank,
                "world_size": size,
                "info": info,
                "records": [{"index": i, **r} for i, r in zip(block.items, records)],
            }
            file.write(json.dumps(line) + "\n")
            file.flush()
            os.fsync(file.fileno())
            computed.append(k)
            if progress:
                print(
                    f"[rank {rank}/{size}] {name}: block {k + 1}/{n_blocks} (items {block.start}-"
                    f"{block.stop - 1}) in {info['seconds']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    if rank_world is None:
        _barrier()  # every rank has written its blocks
    path, records, missing = merge(out_dir, name, run) if rank == 0 else (None, None, [])
    if rank_world is None:
        _barrier()  # rank 0 has merged: no rank returns before the merged file exists
    if rank != 0:  # what is missing, as every rank sees it after the barrier
        missing = [k for k in range(n_blocks) if k not in read_blocks(out_dir, name, run)]
        path = out_dir / f"{name}.json" if not missing else None
    return ShardedRun(rank, size, n_blocks, computed, skipped, missing, path, records)

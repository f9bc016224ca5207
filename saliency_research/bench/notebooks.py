"""Wall time, CPU time and peak memory of each notebook's full run (not fast mode), as a learner on Binder would
see it; with ``--write``, the run's outputs and saved widget state become the committed notebook.

Usage (from the repository root)::

    python -m saliency_research.bench.notebooks              # every notebooks/NN_*.ipynb
    python -m saliency_research.bench.notebooks 00 04        # only these (by number or file name), the rest kept
    python -m saliency_research.bench.notebooks --write      # and write each executed notebook back to notebooks/
    python -m saliency_research.bench.notebooks 06 --no-sequence   # no learner sequence (Run All, upload, Run, Save)

With ``--write`` a notebook that ran without an error is written back: every cell executed in order (check cells
included), its outputs, and the widgets' state (``metadata.widgets``), so JupyterLab (in a trusted notebook:
``make lab`` trusts its copies) and nbviewer show each panel as it was at the end of the run. A widget output's
text form (``LoopPanel(children=(HBox(...``), which a viewer without widget support shows instead, becomes one
line saying to run the cells. Cell timing metadata is left out.

CPU time is the kernel's user and system time, all threads: load on the machine stretches the wall time but not
the CPU time, so the two together say whether a slow run was the notebook or the machine.

Each notebook runs in a fresh kernel (``nbclient``, the engine of ``jupyter nbconvert --execute``) from a
temporary copy (the committed notebook is never written), with ``notebooks/`` as the working directory,
``SALIENCY_FAST`` unset and 2 threads (``OMP_NUM_THREADS=2``, ``MKL_NUM_THREADS=2``: Binder's 2 cores).

Peak memory is the kernel's peak resident set size (``VmHWM`` in ``/proc/<pid>/status``: exact, it misses no
spike), reported beside its own memory (that peak less the pages mapped from files, ``RssFile``): the ceiling,
:data:`LIMIT_BYTES`, applies to the own memory, which is what can exceed Binder's 2 GB (see the comment there).
Per cell, the peak is reset before the cell runs (``/proc/<pid>/clear_refs``) and read after it; where the kernel
cannot be reset, the script polls the kernel's process tree with ``psutil`` every 0.2 s instead. ``imports`` is
the memory after the first code cell (the imports and ``tutorial.setup``), before any work.

Notebook 06 is also measured as a learner uses it (:func:`run_learner_sequence`, skipped with ``--no-sequence``):
in one fresh kernel, Run All, then a 15 MB photo uploaded in the panel, every method selected, Run, Save, the
upload and the clicks sent to the kernel as JupyterLab and Voila send them (``comm_msg``, the file as a binary
buffer), with the kernel's peak per stage; ``tests/test_learner_sequence.py`` runs the same sequence.

Results go to ``benchmarks/results/notebooks.json`` (every number) and ``notebooks.md`` (the table), with the
machine, its load average and the date: on a loaded machine times grow, memory does not.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

from saliency_lib.io import paths

ROOT = paths.REPO_ROOT
NOTEBOOKS = paths.NOTEBOOK_DIR
RESULTS = paths.RESULTS_DIR
# The tutorial's ceiling per notebook (Binder gives 2 GB), on the kernel's own memory: its peak resident memory
# (VmHWM) less the pages it maps from files (RssFile: the shared libraries' code, mostly PyTorch's). A container's
# memory limit counts those pages too, but they are clean and the kernel drops them (and reads them again) before
# it kills a process, so what can exceed the limit is the process's own memory. Their share is not the code's but
# the install's: 0.23-0.55 GB here with PyTorch's CUDA build (its CUDA libraries and Triton; the CPU build that
# Binder and `make lab CPU=1` install has neither), more in a freshly written .venv whose files are all cached.
LIMIT_BYTES = 1.5 * 2**30
GB = 2**30
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What a viewer without live widgets shows for a panel (instead of the widget's Python repr).
WIDGET_TEXT = "[an interactive panel: run the notebook's cells from the top to use it]"


def _status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``) in bytes, or ``None``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _reset_peak(pid: int) -> bool:
    """Resets the process's ``VmHWM`` to its current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Watcher:
    """Polls the RSS of a process and its children every ``interval`` s; ``take()`` returns and resets the max."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.overall = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        total = 0
        try:
            for process in [self.process, *self.process.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._rss()
            with self._lock:
                self.peak = max(self.peak, rss)
                self.overall = max(self.overall, rss)
            self._stop.wait(self.interval)

    def take(self) -> int:
        rss = self._rss()
        with self._lock:
            peak, self.peak = max(self.peak, rss), rss
            self.overall = max(self.overall, rss)
        return peak

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.overall


class MeasuringClient(NotebookClient):
    """An ``nbclient`` client that records each code cell's wall time and peak kernel memory."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cells: list[dict] = []
        self.watcher: Watcher | None = None
        self.resettable = False
        self._started = 0.0
        self.on_cell_execute = self._before
        self.on_cell_executed = self._after

    def _pid(self) -> int:
        return self.km.provisioner.process.pid

    def _before(self, cell, cell_index, **_) -> None:
        pid = self._pid()
        if self.watcher is None:
            self.watcher = Watcher(pid)
            self.resettable = _reset_peak(pid)
            self.kernel_peak = _status_kb(pid, "VmHWM") or 0
        # The kernel's peak so far (before this cell resets it).
        self.kernel_peak = max(self.kernel_peak, _status_kb(pid, "VmHWM") or 0)
        if self.resettable:
            _reset_peak(pid)
        self.watcher.take()
        self._cpu_started = _cpu_seconds(pid)
        self._started = time.perf_counter()

    def _after(self, cell, cell_index, execute_reply=None, **_) -> None:
        seconds = time.perf_counter() - self._started
        pid = self._pid()
        polled = self.watcher.take()
        hwm = _status_kb(pid, "VmHWM") or 0
        peak = max(hwm, polled) if self.resettable else max(polled, 0)
        self.kernel_peak = max(self.kernel_peak, hwm)
        first = next((line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), "")
        self.cells.append(
            {
                "index": cell_index,
                "id": cell.get("id"),
                "first_line": first[:80],
                "seconds": round(seconds, 2),
                "cpu_seconds": round(_cpu_seconds(pid) - self._cpu_started, 2),
                "peak_bytes": peak,
                "rss_after_bytes": _status_kb(pid, "VmRSS") or 0,
                "rss_file_after_bytes": _status_kb(pid, "RssFile") or 0,
            }
        )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far (0 when it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


def committed_form(nb) -> None:
    """Prepares an executed notebook for the repository: a widget output's text form becomes :data:`WIDGET_TEXT`
    and cells lose their timing metadata (in place)."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                data["text/plain"] = WIDGET_TEXT


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch  # only for its version (a notebook's kernel imports its own)

    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / GB, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run_notebook(path: Path, threads: int, timeout: int, write: bool = False) -> dict:
    """Runs one notebook from a temporary copy; returns its measurements. ``write``: a run without an error is
    written over ``path`` (outputs and widget state, :func:`committed_form`)."""
    nb = nbformat.read(path, as_version=4)
    env = {key: value for key, value in os.environ.items() if key != "SALIENCY_FAST"}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYDEVD_DISABLE_FILE_VALIDATION="1")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copy(path, copy)
        client = MeasuringClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=False,
            record_timing=False,
            store_widget_state=True,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        load_before = os.getloadavg()
        started = time.perf_counter()
        error, cpu = None, None
        try:
            with client.setup_kernel(env=env, cwd=str(NOTEBOOKS)):
                client.kc.allow_stdin = False
                for index, cell in enumerate(client.nb.cells):
                    if cell.cell_type == "code":
                        client.execute_cell(cell, index)
                pid = client._pid()
                client.kernel_peak = max(client.kernel_peak, _status_kb(pid, "VmHWM") or 0)
                cpu = _cpu_seconds(pid)
        except Exception as exc:  # a failing cell: record how far it got
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]
        wall = time.perf_counter() - started
        polled = client.watcher.stop() if client.watcher else 0
    if write and error is None:
        client.set_widgets_metadata()
        committed_form(client.nb)
        nbformat.write(client.nb, path)
    cells = client.cells
    peak = max([client.kernel_peak, polled, *(c["peak_bytes"] for c in cells)], default=0)
    heaviest = sorted(cells, key=lambda c: -c["peak_bytes"])[:3]
    slowest = sorted(cells, key=lambda c: -c["seconds"])[:3]
    imports = round(cells[0]["rss_after_bytes"] / GB, 2) if cells else None
    # own memory at the peak: VmHWM less the smallest file-backed share seen after a cell (a lower bound on the
    # share at the peak, so the own memory is never understated)
    own = peak - min((c["rss_file_after_bytes"] for c in cells), default=0)
    return {
        "notebook": path.name,
        "wall_s": round(wall, 1),
        "cpu_s": None if cpu is None else round(cpu, 1),
        "written": write and error is None,
        "peak_rss_bytes": peak,
        "peak_rss_gb": round(peak / GB, 2),
        "peak_own_bytes": own,
        "peak_own_gb": round(own / GB, 2),
        "imports_rss_gb": imports,
        "under_limit": own <= LIMIT_BYTES,
        "error": error,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "peak_method": "VmHWM reset per cell" if client.resettable else "psutil poll every 0.2 s",
        "heaviest_cells": heaviest,
        "slowest_cells": slowest,
        "cells": cells,
    }


#: Notebooks whose panel a learner drives after Run All: the learner sequence below runs for them.
LEARNER_SEQUENCE = ("06_your_own_model.ipynb",)
#: The upload of the learner sequence: a JPEG of about this many bytes (15 MB: a 48-megapixel phone photo).
UPLOAD_BYTES = 15_000_000


def photo_file(n_bytes: int = UPLOAD_BYTES, size: tuple[int, int] = (8000, 6000)) -> bytes:
    """A JPEG of ``size`` (width, height) pixels and at least ``n_bytes``, made from the shipped cat photograph:
    upscaled, with seeded noise (JPEG compresses a smooth upscale to a tenth of a phone photo's size) whose
    amplitude grows until the file is large enough. Deterministic; made at run time, never committed."""
    import io

    import numpy as np
    from PIL import Image

    from saliency_lib.io import data

    cat = data.photographs(["cat"])[0][0].permute(1, 2, 0).mul(255).round().byte().numpy()
    pixels = np.asarray(Image.fromarray(cat).resize(size, Image.BICUBIC), dtype=np.int16)
    noise = np.random.default_rng(0).integers(-1, 2, pixels.shape, dtype=np.int16)
    for amplitude in range(12, 64, 2):
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels + amplitude * noise, 0, 255).astype(np.uint8)).save(
            buffer, format="JPEG", quality=90
        )
        if buffer.tell() >= n_bytes:
            return buffer.getvalue()
    raise RuntimeError(f"could not make a {n_bytes / 1e6:.0f} MB JPEG of {size} pixels")


def _comm(client, comm_id: str, data: dict, buffers: list | None = None) -> None:
    """Sends ``data`` to the kernel's widget ``comm_id`` as the browser does (a ``comm_msg``; file bytes as binary
    buffers, as JupyterLab and Voila send an upload)."""
    client.session.send(
        client.shell_channel.socket, "comm_msg", {"comm_id": comm_id, "data": data}, buffers=buffers or []
    )


def _run_code(client, code: str, timeout: float) -> str:
    """Runs ``code`` in the kernel (after every message sent before it) and returns what it printed; raises on an
    error."""
    printed: list[str] = []

    def hook(message) -> None:
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            printed.append(content["text"])
        elif kind == "error":
            printed.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code.splitlines()[0]!r} failed in the kernel: {''.join(printed)[-2000:]}")
    return "".join(printed)


def learner_steps(client, photo: bytes, out_dir: str, timeout: float) -> dict:
    """After Run All of notebook 06, what a learner does next, sent to the kernel as the browser sends it: upload
    ``photo`` in the panel's upload box, select every method, click Run (and wait for the end), click Save.
    ``client``: a blocking client of the kernel. Calls ``client.on_stage(name)`` after each step; returns the
    panel's status line and outcomes."""
    ids = _run_code(
        client,
        "import json\n"
        f"panel.out_dir = __import__('pathlib').Path({out_dir!r})  # Save writes here, not into notebooks/\n"
        "print(json.dumps({'upload': panel.upload.model_id, 'methods': panel.methods.model_id,\n"
        "    'n_methods': len(panel.methods.options), 'run': panel.run_button.model_id,\n"
        "    'save': panel.save_button.model_id}))",
        timeout,
    )
    ids = json.loads(ids.strip().splitlines()[-1])
    entry = {"name": "photo.jpg", "type": "image/jpeg", "size": len(photo), "last_modified": 0}
    _comm(
        client,
        ids["upload"],
        {"method": "update", "state": {"value": [entry]}, "buffer_paths": [["value", 0, "content"]]},
        [photo],
    )
    shown = _run_code(client, "print(panel.status_text)", timeout)
    if "photo.jpg" not in shown or "Press Run" not in shown:
        raise RuntimeError(f"the upload was not used: {shown.strip()}")
    client.on_stage("upload")
    _comm(client, ids["methods"], {"method": "update", "state": {"index": list(range(ids["n_methods"]))}})
    _comm(client, ids["run"], {"method": "custom", "content": {"event": "click"}})
    done = _run_code(
        client, "panel.wait()\nprint(json.dumps({'status': panel.status_text, 'outcome': panel.outcome}))", timeout
    )
    result = json.loads(done.strip().splitlines()[-1])
    client.on_stage("panel")
    _comm(client, ids["save"], {"method": "custom", "content": {"event": "click"}})
    result["saved"] = _run_code(client, "print(panel.saved is not None)", timeout).strip() == "True"
    client.on_stage("save")
    return result


def run_learner_sequence(
    path: Path, threads: int, timeout: int, photo: bytes | None = None, fast: bool = False, after_run_all=None
) -> dict:
    """Notebook 06 as a learner uses it, in one fresh kernel: Run All (every cell, in order), then
    :func:`learner_steps` (upload a 15 MB photo in the panel, Run with every method, Save).

    Returns each stage's peak (``VmHWM`` reset at the start of the stage, where the kernel allows it) and the
    kernel's peak so far at its end (``peak_so_far``: what Binder's limit applies to), with the load average.
    ``fast``: ``SALIENCY_FAST=1`` (the notebook's small budgets), as ``make test`` and ``make present`` run it.
    ``after_run_all``: called with the executed notebook (outputs, and the widgets' state in ``metadata.widgets``:
    what a Voila page shows) before the learner's steps."""
    from jupyter_client import BlockingKernelClient

    photo = photo_file() if photo is None else photo
    nb = nbformat.read(path, as_version=4)
    env = {key: value for key, value in os.environ.items() if key != "SALIENCY_FAST"}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYDEVD_DISABLE_FILE_VALIDATION="1")
    if fast:
        env["SALIENCY_FAST"] = "1"
    stages: dict[str, dict] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        # Per cell as run_notebook measures (VmHWM reset before each cell), so the heaviest cell is named too.
        client = MeasuringClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=False,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        with client.setup_kernel(env=env, cwd=str(NOTEBOOKS)):
            pid = client._pid()
            resettable = _reset_peak(pid)
            overall = {"peak": 0}
            started = {"time": time.perf_counter()}

            def on_stage(name: str, floor: int = 0) -> None:
                peak = max(_status_kb(pid, "VmHWM") or 0, floor)
                overall["peak"] = max(overall["peak"], peak)
                stages[name] = {
                    "peak_bytes": peak,
                    "peak_so_far_bytes": overall["peak"],
                    "rss_after_bytes": _status_kb(pid, "VmRSS") or 0,
                    # file-backed pages (the shared libraries' code, mostly torch's): reclaimable, shared, and
                    # mapped differently by two installs of the same packages (measured: 226 vs 369 MB at import)
                    "rss_file_after_bytes": _status_kb(pid, "RssFile") or 0,
                    "seconds": round(time.perf_counter() - started["time"], 1),
                    "load_average": round(os.getloadavg()[0], 2),
                }
                if resettable:
                    _reset_peak(pid)
                started["time"] = time.perf_counter()

            client.kc.allow_stdin = False
            for index, cell in enumerate(client.nb.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)
            client.watcher.stop()
            if after_run_all is not None:
                client.set_widgets_metadata()
                after_run_all(client.nb)
            on_stage("run_all", max([client.kernel_peak, *(c["peak_bytes"] for c in client.cells)]))
            blocking = BlockingKernelClient()
            blocking.load_connection_info(client.km.get_connection_info())
            blocking.start_channels()
            blocking.on_stage = on_stage
            try:
                blocking.wait_for_ready(timeout=60)
                result = learner_steps(blocking, photo, tmp, timeout)
            finally:
                blocking.stop_channels()
    own = overall["peak"] - min(stage["rss_file_after_bytes"] for stage in stages.values())
    return {
        "notebook": path.name,
        "fast": fast,
        "upload_bytes": len(photo),
        "stages": stages,
        "peak_rss_bytes": overall["peak"],
        "peak_rss_gb": round(overall["peak"] / GB, 2),
        # the kernel's own memory at its peak: VmHWM less the smallest file-backed share seen at a stage's end
        "peak_own_bytes": own,
        "peak_own_gb": round(own / GB, 2),
        "under_limit": own <= LIMIT_BYTES,
        "peak_method": "VmHWM reset per stage" if resettable else "VmHWM of the whole run",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "panel": result,
        "heaviest_cells": sorted(client.cells, key=lambda c: -c["peak_bytes"])[:3],
        "cells": client.cells,
    }


def _select(names: list[str]) -> list[Path]:
    every = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        matches = [p for p in every if p.name == name or p.stem == name or p.name.startswith(name)]
        if not matches:
            raise SystemExit(f"no notebook matches {name!r}; have {[p.name for p in every]}")
        chosen += [p for p in matches if p not in chosen]
    return chosen


def markdown(payload: dict) -> str:
    machine = payload["machine"]
    lines = [
        "# Notebook runs: wall time, CPU time and peak memory",
        "",
        f"Full runs (not fast mode), {payload['threads']} threads, written by "
        f"`python -m saliency_research.bench.notebooks` on {machine['cpu']} "
        f"({machine['cpu_count']} cores, {machine['memory_gb']} GB), Python "
        f"{machine['python']}, torch {machine['torch']}. Resident = the kernel's peak resident memory (VmHWM); "
        f"own = that less the pages mapped from files (the shared libraries' code, which the system drops and reads "
        f"again before it kills a process: they depend on the install, not on the notebook); for a notebook with a "
        f"learner sequence, below, the larger of its Run All and the sequence. "
        f'"imports" = its memory after the first cell (imports and `tutorial.setup`). Limit: '
        f"{LIMIT_BYTES / GB:.1f} GB of own memory per notebook (Binder gives 2 GB). "
        "CPU time is the kernel's, all threads: "
        f"load on the machine stretches the wall time (load average at the start of each run in the table), not "
        f"the CPU time or the memory.",
        "",
        "| notebook | wall time | CPU time | own memory | resident | imports | heaviest cell (peak) | load avg "
        "| measured |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for name in sorted(payload["notebooks"]):
        r = payload["notebooks"][name]
        heavy = r["heaviest_cells"][0] if r["heaviest_cells"] else None
        heavy_text = (
            f"cell {heavy['index']} `{heavy['first_line'][:40]}` ({heavy['peak_bytes'] / GB:.2f} GB)" if heavy else ""
        )
        flag = "" if r["under_limit"] else " (over)"
        wall = f"{r['wall_s'] / 60:.1f} min" if r["wall_s"] >= 60 else f"{r['wall_s']:.0f} s"
        cpu = "" if r.get("cpu_s") is None else f"{r['cpu_s']:.0f} s"
        if r.get("error"):
            wall += f" (failed: {r['error'][:60]})"
        lines.append(
            f"| {name} | {wall} | {cpu} | {r.get('peak_own_gb', float('nan')):.2f} GB{flag} | "
            f"{r['peak_rss_gb']:.2f} GB | {r['imports_rss_gb']} GB | "
            f"{heavy_text} | {r['load_average_before'][0]:.1f} | {r['date']} |"
        )
    sequences = {
        name: r["learner_sequence"] for name, r in sorted(payload["notebooks"].items()) if "learner_sequence" in r
    }
    if sequences:
        lines += [
            "",
            "## As a learner uses it: Run All, then a 15 MB photo uploaded in the panel, Run with every method, Save",
            "",
            "One kernel, full budgets, the upload and the clicks sent as the browser sends them "
            "(`run_learner_sequence`; the photo: a 48-megapixel JPEG made from the shipped cat at run time). Peak "
            "of each stage (`VmHWM` reset at its start), the kernel's peak so far at its end, and the file-backed "
            "part of its memory then; the limit applies to the peak so far less that part (own memory).",
            "",
            "| notebook | stage | stage peak | peak so far | file-backed | seconds | load avg | measured |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        labels = {"run_all": "Run All", "upload": "upload (15 MB)", "panel": "Run, every method", "save": "Save"}
        for name, sequence in sequences.items():
            for stage, r in sequence["stages"].items():
                file_backed = r.get("rss_file_after_bytes", 0)  # not recorded before 2026-12-05
                flag = "" if r["peak_so_far_bytes"] - file_backed <= LIMIT_BYTES else " (over)"
                lines.append(
                    f"| {name} | {labels.get(stage, stage)} | {r['peak_bytes'] / GB:.2f} GB | "
                    f"{r['peak_so_far_bytes'] / GB:.2f} GB{flag} | {file_backed / GB:.2f} GB | "
                    f"{r['seconds']:.0f} | {r['load_average']:.1f} | "
                    f"{sequence['date']} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run, by number (00) or name (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="kernel threads (default 2, as Binder)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell before giving up")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for notebooks.json / notebooks.md")
    parser.add_argument("--write", action="store_true", help="write each executed notebook back to notebooks/")
    parser.add_argument(
        "--no-sequence", action="store_true", help="skip the learner sequence of " + ", ".join(LEARNER_SEQUENCE)
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "notebooks.json"
    payload = json.loads(path.read_text()) if path.exists() else {"notebooks": {}}
    payload.update(machine=_machine(), threads=args.threads, limit_gb=LIMIT_BYTES / GB)
    failed = False
    fresh: dict[str, dict] = {}
    for notebook in _select(args.names):
        print(f"{notebook.name}: running ...", flush=True)
        result = run_notebook(notebook, args.threads, args.timeout, write=args.write)
        result["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        if notebook.name in LEARNER_SEQUENCE and not args.no_sequence:
            print(f"{notebook.name}: the learner sequence (Run All, 15 MB upload, every method, Save) ...", flush=True)
            sequence = run_learner_sequence(notebook, args.threads, args.timeout)
            sequence["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
            result["learner_sequence"] = sequence
            # The notebook's peak is what a learner meets: the larger of Run All alone and the sequence.
            result["run_all_peak_rss_bytes"] = result["peak_rss_bytes"]
            for key in ("peak_rss", "peak_own"):
                result[f"{key}_bytes"] = max(result[f"{key}_bytes"], sequence[f"{key}_bytes"])
                result[f"{key}_gb"] = round(result[f"{key}_bytes"] / GB, 2)
            result["under_limit"] = result["peak_own_bytes"] <= LIMIT_BYTES
            print(
                f"{notebook.name}: learner sequence peak {sequence['peak_rss_gb']:.2f} GB resident, "
                f"{sequence['peak_own_gb']:.2f} GB own ("
                + ", ".join(f"{k} {v['peak_bytes'] / GB:.2f}" for k, v in sequence["stages"].items())
                + ")",
                flush=True,
            )
        payload["notebooks"][notebook.name] = result
        print(
            f"{notebook.name}: {result['wall_s']:.0f} s, CPU {result['cpu_s']} s, "
            f"peak {result['peak_rss_gb']:.2f} GB resident, {result['peak_own_gb']:.2f} GB own, imports "
            f"{result['imports_rss_gb']} GB" + (f", FAILED: {result['error']}" if result["error"] else ""),
            flush=True,
        )
        failed |= bool(result["error"]) or not result["under_limit"]
        # After every notebook (a long run keeps its part), merged into the file as it is now (another run may
        # have added notebooks meanwhile).
        fresh[notebook.name] = result
        if path.exists():
            payload["notebooks"] = {**json.loads(path.read_text())["notebooks"], **fresh}
        path.write_text(json.dumps(payload, indent=1) + "\n")
        (args.out / "notebooks.md").write_text(markdown(payload))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

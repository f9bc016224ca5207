"""The computer's time for each notebook, as measured: the one source of the machine times that the table of times
(:func:`saliency_lib.course.tutorial.index_table` with ``machine=True``: the README, ``notebooks/README.md`` and
``docs/instructor.md``) and the workshop plan (:mod:`saliency_lib.course.schedule`) quote.

``python benchmarks/notebooks.py`` runs every notebook in full (not fast mode) in a fresh kernel and writes
``benchmarks/results/notebooks.json``: per notebook the wall time, the kernel's CPU time (all threads: load on the
machine stretches the wall time, not the CPU time), the peak memory, and the same per cell. Nothing here measures;
it reads that file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..io import paths

__all__ = ["RESULTS", "machine_times", "duration", "measured_on", "cell_sections", "seconds_through"]

#: Written by ``python benchmarks/notebooks.py``.
RESULTS = paths.RESULTS_DIR / "notebooks.json"
_SECTION = re.compile(r"^## (\d+) ·", re.MULTILINE)


def machine_times(path: Path = RESULTS) -> dict:
    """The measured runs: ``{"machine": ..., "threads": ..., "notebooks": {file name: run}}`` (empty when the file
    is missing, as in an installed wheel)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"notebooks": {}}


def duration(seconds: float) -> str:
    """``"15 s"`` under two minutes, else ``"2.5 min"``."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def measured_on(results: dict) -> str:
    """One line saying where and how the runs were measured (the machine, the threads, the highest load)."""
    runs = list(results.get("notebooks", {}).values())
    if not runs:
        return "not measured yet: run `python benchmarks/notebooks.py`"
    machine = results.get("machine", {})
    load = max(run["load_average_before"][0] for run in runs)
    days = sorted({run["date"][:10] for run in runs})
    return (
        f"full runs (not fast mode) in a fresh kernel, {results.get('threads', 2)} threads, on "
        f"{machine.get('cpu', 'an unknown CPU')} ({machine.get('cpu_count', '?')} cores), load average at most "
        f"{load:.1f} at the start, {', '.join(days)}"
    )


def cell_sections(notebook: Path) -> list[int]:
    """The section number of every cell of ``notebook`` (the last ``## N ·`` heading at or above it; 0 before the
    first)."""
    import nbformat

    section, numbers = 0, []
    for cell in nbformat.read(Path(notebook), as_version=4).cells:
        if cell.cell_type == "markdown":
            found = _SECTION.findall(cell.source)
            if found:
                section = int(found[-1])
        numbers.append(section)
    return numbers


def seconds_through(
    file: str, through: int | None = None, results: dict | None = None, notebook_dir: Path = paths.NOTEBOOK_DIR
) -> tuple[float, float]:
    """Measured ``(wall, cpu)`` seconds to run ``file``'s code cells from the top through the end of section
    ``through`` (``None``: every cell), from the per-cell times of the last full run.

    Raises:
        KeyError: ``file`` was never measured (run ``python benchmarks/notebooks.py``).
    """
    results = machine_times() if results is None else results
    run = results["notebooks"][file]
    sections = cell_sections(Path(notebook_dir) / file)
    chosen = [cell for cell in run["cells"] if through is None or sections[cell["index"]] <= through]
    return sum(cell["seconds"] for cell in chosen), sum(cell.get("cpu_seconds", 0.0) for cell in chosen)

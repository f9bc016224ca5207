"""What every notebook shares: the setup cell, and the exercise at its end.

Every notebook's first code cell is ``cfg = tutorial.setup(seed=0)`` (fast mode, seed, device, paths, versions).
``SALIENCY_FAST=1`` (set by ``make test``) shrinks loops so nbval runs each notebook in seconds to a minute,
while the notebook's assert cells still check real results.

Every notebook ends with an exercise: a stub the learner fills in, then one check cell that runs
``tutorial.exercise_or_solution``, ``tutorial.check_exercise`` and ``tutorial.require``; they live in
:mod:`saliency_lib.course.exercises` and are handed on here, so a notebook imports one module.

:data:`NOTEBOOKS` is the one list of the notebooks: file, title, what each teaches and the learner time. The
navigation line at the top and bottom of every notebook (:func:`navigation`), each notebook's ``**Time:**``, the
map in notebook 00 and the index ``notebooks/README.md`` (:func:`index_table`, :func:`index_markdown`) are
written from it, and ``tests/test_notebooks_anatomy.py`` fails when one of them drifts. ``python -m
saliency_lib.course.tutorial index`` rewrites the index; ``python -m saliency_lib.course.tutorial working-copy work``
makes the learner's git-ignored copy of the notebooks that ``make lab`` opens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..io import paths
from ..method.threads import default_count
from .exercises import SOLUTIONS, ExerciseFailed, check_exercise, exercise_or_solution, require

__all__ = [
    "fast_mode",
    "Setup",
    "setup",
    "REPO_ROOT",
    "NOTEBOOK_DIR",
    "SOLUTIONS",
    "ExerciseFailed",
    "exercise_or_solution",
    "check_exercise",
    "require",
    "Notebook",
    "NOTEBOOKS",
    "INDEX",
    "notebook",
    "total_minutes",
    "time_line",
    "navigation",
    "MACHINE_TIMES",
    "index_table",
    "index_markdown",
    "solutions_line",
    "working_copy",
    "trust",
    "notebooks_to_trust",
    "main",
]

REPO_ROOT = paths.REPO_ROOT
NOTEBOOK_DIR = paths.NOTEBOOK_DIR
#: The index of the notebooks, next to them (``notebooks/README.md``; GitHub shows it under the folder listing).
INDEX = "README.md"


@dataclass(frozen=True)
class Notebook:
    """One notebook of the tutorial, as the navigation, the map in notebook 00 and the index show it.

    Attributes:
        number: ``"00"`` ... (the file name's prefix).
        file: the file name in ``notebooks/``.
        title: the short title of the navigation line (the notebook's own heading may be longer).
        learn: what a learner learns there, one line (the index and notebook 00's map).
        minutes: the learner time, in minutes: reading, running, the widgets and the exercise (our estimate
            from workshop runs; the machine's own run time is in ``benchmarks/results/notebooks.md``).
    """

    number: str
    file: str
    title: str
    learn: str
    minutes: int

    @property
    def label(self) -> str:
        """``"01 · Mask initialization"``."""
        return f"{self.number} · {self.title}"


#: The one source of truth for the notebooks' order, titles and learner times.
NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook(
        "00",
        "00_start_here.ipynb",
        "Start here",
        "install check, the data, both offline classifiers, what a masked pixel is",
        10,
    ),
    Notebook(
        "01",
        "01_mask_initialization.ipynb",
        "Mask initialization",
        "masks, the 8×8 Bernoulli grid, bilinear upsampling with a random shift, the reference value, what "
        "the model sees",
        25,
    ),
    Notebook(
        "02",
        "02_pixel_weighting.ipynb",
        "Pixel weighting",
        "the update rule one step at a time: p, Δp, kept / dropped / turned-on cells, rescaling; why the chain lingers",
        30,
    ),
    Notebook(
        "03",
        "03_optimization_loop.ipynb",
        "The optimization loop",
        "the whole loop on Fashion-MNIST and a photograph; Run / Stop / scrub; seeds, steps, chains; OISE next to RISE",
        40,
    ),
    Notebook(
        "04",
        "04_evaluation.ipynb",
        "Evaluation",
        "deletion / insertion, pointing game, IoU, sanity checks; Captum baselines; the evaluation tables",
        45,
    ),
    Notebook(
        "05",
        "05_reconstruction.ipynb",
        "Acceptable variations",
        'regenerating the salient region with a DCGAN; agreement; "acceptable variations" and their limits',
        30,
    ),
    Notebook(
        "06",
        "06_your_own_model.ipynb",
        "Your own model",
        "your photo or model: OISE, RISE and the baselines side by side, saved as PNG and .npz; the standalone page",
        25,
    ),
)


def notebook(key: str) -> Notebook:
    """The entry of :data:`NOTEBOOKS` for a number (``"03"``), a file name or a path."""
    name = Path(str(key)).name
    for entry in NOTEBOOKS:
        if name in (entry.number, entry.file, entry.file.removesuffix(".ipynb")):
            return entry
    raise KeyError(f"no notebook {key!r}; the notebooks are {[entry.file for entry in NOTEBOOKS]}")


def total_minutes() -> int:
    """The learner time of the whole tutorial, in minutes."""
    return sum(entry.minutes for entry in NOTEBOOKS)


def time_line(key: str) -> str:
    """``"**Time:** about 25 minutes"``: how every notebook's first cell states its learner time."""
    return f"**Time:** about {notebook(key).minutes} minutes"


def navigation(key: str) -> str:
    """The navigation line at the top and the bottom of a notebook: previous · index · next (relative links).

    ``"[← 00 · Start here](00_start_here.ipynb) · [index](README.md) · [next: 02 · Pixel weighting →](...)"``;
    the first notebook has no previous one, the last no next one.
    """
    entry = notebook(key)
    position = NOTEBOOKS.index(entry)
    parts = []
    if position > 0:
        before = NOTEBOOKS[position - 1]
        parts.append(f"[← {before.label}]({before.file})")
    parts.append(f"[index: all notebooks]({INDEX})")
    if position + 1 < len(NOTEBOOKS):
        after = NOTEBOOKS[position + 1]
        parts.append(f"[next: {after.label} →]({after.file})")
    return " · ".join(parts)


#: The computer's time for each notebook, written by ``python -m saliency_research.bench.notebooks``: a full run
#: (not fast mode) in a fresh kernel, per notebook and per cell: wall time, the kernel's CPU time (all threads),
#: peak memory (its own, and resident).
MACHINE_TIMES = paths.RESULTS_DIR / "notebooks.json"


def _machine_times() -> dict:
    """``{"machine": ..., "threads": ..., "notebooks": {file name: run}}``; no notebooks when the file is missing,
    as in an installed wheel."""
    path = Path(MACHINE_TIMES)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"notebooks": {}}


def _duration(seconds: float) -> str:
    """``"15 s"`` under two minutes, else ``"2.5 min"``."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _measured_on(results: dict) -> str:
    """One line saying where and how the runs were measured (the machine, the threads, the highest load)."""
    runs = list(results.get("notebooks", {}).values())
    if not runs:
        return "not measured yet: run `python -m saliency_research.bench.notebooks`"
    machine = results.get("machine", {})
    load = max(run["load_average_before"][0] for run in runs)
    days = sorted({run["date"][:10] for run in runs})
    return (
        f"full runs (not fast mode) in a fresh kernel, {results.get('threads', 2)} threads, on "
        f"{machine.get('cpu', 'an unknown CPU')} ({machine.get('cpu_count', '?')} cores), load average at most "
        f"{load:.1f} at the start, {', '.join(days)}"
    )


def index_table(prefix: str = "", *, machine: bool = False) -> str:
    """The markdown table of the notebooks (link, what you learn, learner time) and the total, as notebook 00's
    map shows it; with ``machine``, the one table of times (the README, ``notebooks/README.md`` and
    ``docs/instructor.md``): also the computer's full run, wall and CPU time, and the peak memory, from
    :data:`MACHINE_TIMES` (``benchmarks/results/notebooks.json``).

    Args:
        prefix: put before each notebook's file name in its link (``"../notebooks/"`` from ``docs/``).
        machine: add the measured columns and a line saying how they were measured.
    """
    results = _machine_times() if machine else {"notebooks": {}}
    runs = {
        name: run
        for name, run in results["notebooks"].items()
        if run.get("cpu_s") is not None and "peak_own_gb" in run  # measured, with the own-memory column
    }
    head = "| notebook | what you learn | learner time |"
    if machine:
        head += " computer: full run, wall (CPU) | memory: own (resident) |"
    rows = [head, "|---|---|---:|" + ("---:|---:|" if machine else "")]
    for entry in NOTEBOOKS:
        row = f"| [{entry.label}]({prefix}{entry.file}) | {entry.learn} | {entry.minutes} min |"
        if machine:
            run = runs.get(entry.file)
            row += (
                f" {_duration(run['wall_s'])} ({_duration(run['cpu_s'])}) | "
                f"{run['peak_own_gb']:.2f} GB ({run['peak_rss_gb']:.2f}) |"
                if run
                else " not measured | |"
            )
        rows.append(row)
    total = total_minutes()
    rows.append(f"| **all** | | **{total} min** ({total // 60} h {total % 60:02d} min) |")
    if machine:
        measured = [runs[e.file] for e in NOTEBOOKS if e.file in runs]
        wall, cpu = sum(r["wall_s"] for r in measured), sum(r["cpu_s"] for r in measured)
        rows[-1] += f" {_duration(wall)} ({_duration(cpu)}) | |"
        root = prefix.removesuffix("notebooks/") if prefix.endswith("notebooks/") else "../"  # the repository's root
        rows.append(
            f"\nComputer times: {_measured_on(results)} (`python -m saliency_research.bench.notebooks`, "
            f"[benchmarks/results/notebooks.md]({root}benchmarks/results/notebooks.md)). CPU time counts every "
            f"thread, so it can exceed the wall time; on a loaded machine the wall time grows, the CPU time does not. "
            f"Memory: the kernel's peak of its own memory (the ceiling is {results.get('limit_gb', 1.5):.1f} GB of it; "
            f"Binder gives 2 GB), and in "
            f"brackets its peak resident memory, which adds the shared libraries' pages the system can drop and read "
            f"again (their share depends on the install, not on the notebook)."
        )
    return "\n".join(rows)


def solutions_line(folder: str = "solutions", *, edition: bool = False) -> str:
    """The index's line on the solutions, for the folder beside the notebooks that holds them.

    In view (``"solutions"``), with a link; in the repository's index it also names the learner edition's folder.
    Out of view (the learner edition's ``".solutions"``), without a link: Jupyter serves no hidden file or folder,
    so a link to one is dead in JupyterLab.
    """
    if folder == "solutions" and not edition:
        return (
            "Solutions to the exercises: [solutions/](solutions/) (`%load solutions/<file>` in a notebook cell; the\n"
            "learner edition of a workshop, `make learner-edition`, keeps them out of view in `.solutions/`)."
        )
    if folder == "solutions":
        return "Solutions to the exercises: [solutions/](solutions/) (`%load solutions/<file>` in a notebook cell)."
    return (
        f"Solutions to the exercises: in `{folder}/`, out of view (JupyterLab's file browser does not show it); "
        f"`%load {folder}/<file>` in a notebook cell shows one."
    )


def index_markdown() -> str:
    """The text of ``notebooks/README.md``, the index (``python -m saliency_lib.course.tutorial index`` writes it)."""
    return f"""# The notebooks: index

<!-- Written by `python -m saliency_lib.course.tutorial index` from saliency_lib/course/tutorial.py (NOTEBOOKS); do not
edit by hand: tests/test_notebooks_anatomy.py fails when this file, the notebooks' headers or notebook 00's map
drift. -->

Open them in order; each runs on its own after [00 · Start here](00_start_here.ipynb). "Learner time" is reading,
running, the widgets and the exercise; "computer" is how long a full run of the notebook takes, measured.

{index_table(machine=True)}

Every notebook opens with its time, prerequisites, learning objectives and contents, has a navigation line
(previous · index · next) at the top and the bottom, and ends with an exercise, key points, a quiz and references.
{solutions_line()}
The method, with what is the paper's and what is ours: [docs/method.md](../docs/method.md).
Running a workshop: [docs/instructor.md](../docs/instructor.md).

`make lab` opens your own copy of these notebooks in `work/` (git ignores it), so your edits and outputs never
change the committed files and `git pull` keeps working.
"""


def working_copy(
    destination: str | Path = REPO_ROOT / "work", source: Path = NOTEBOOK_DIR, *, report=print
) -> list[Path]:
    """Copy the notebooks, the index and the solutions into ``destination``, never overwriting a file there.

    ``make lab`` opens JupyterLab on this copy (``work/``, ignored by git), so running a notebook autosaves into
    the learner's copy and the committed ``notebooks/`` stays as it is. The copy sits next to ``notebooks/``, so
    its relative links (``../docs/method.md``, ``solutions/``) resolve the same way.

    Returns:
        The files written (an existing copy of a file is kept as it is; delete it to get a fresh one).
    """
    destination, source = Path(destination), Path(source)
    written, kept = [], 0
    files = [
        *sorted(source.glob("*.ipynb")),
        *sorted(source.glob("*.md")),
        *sorted(
            path for path in (source / "solutions").rglob("*") if path.is_file() and "__pycache__" not in path.parts
        ),
    ]
    for path in files:
        target = destination / path.relative_to(source)
        if target.exists():
            kept += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        written.append(target)
    trust([path for path in written if path.suffix == ".ipynb"])
    if report is not None:
        report(
            f"Your working copy of the notebooks: {destination}/ ({len(written)} new file(s), {kept} kept as you "
            f"left them). Edits and outputs stay there; notebooks/ stays as committed. For a fresh copy of a "
            f"notebook, delete it from {destination}/ and run make lab again."
        )
    return written


def trust(notebooks: list[Path]) -> list[Path]:
    """Mark the repository's own notebooks as trusted for this user (``jupyter trust``), so that JupyterLab shows
    their saved panels as panels.

    JupyterLab renders a widget output only in a trusted notebook; in an untrusted one it shows the widget's text
    form instead (``LoopPanel(children=(HBox(...``). A notebook is trusted when its signature is in the user's
    ``nbsignatures.db``, which a clone cannot carry: ``make lab`` (:func:`working_copy`), Binder's ``postBuild`` and
    every way in of docs/install.md (``python -m saliency_lib trust``) sign the notebooks they open. Returns the
    notebooks signed.
    """
    import nbformat
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary()
    for path in notebooks:
        notary.sign(nbformat.read(path, as_version=nbformat.NO_CONVERT))
    return list(notebooks)


def notebooks_to_trust(paths: list[Path] | tuple = (), here: Path | None = None) -> list[Path]:
    """The notebooks ``python -m saliency_lib trust`` signs: each path given (a notebook, or the ``.ipynb`` files of
    a folder); with none, those of ``notebooks/`` and ``work/`` in ``here`` (default: the current folder), else of
    this checkout's ``notebooks/`` (an editable install run from elsewhere).

    Our own code because ``jupyter trust`` takes file names only, and Windows shells do not expand
    ``notebooks/*.ipynb``: this is the one command that trusts the folder, the same on every OS.

    Raises:
        ValueError: a path that is neither a notebook nor a folder, or no notebook found (one line: what to do).
    """
    base = Path() if here is None else Path(here)  # relative to the current folder, as the learner typed it
    if not paths:
        found = [folder for folder in (base / "notebooks", base / "work") if folder.is_dir()]
        paths = found or ([NOTEBOOK_DIR] if NOTEBOOK_DIR.is_dir() else [])
        if not paths:
            raise ValueError(
                f"no notebooks/ folder in {base.resolve()}: run this in the tutorial's folder (the one with "
                f"notebooks/), or name the notebooks or folders to trust"
            )
    notebooks = []
    for path in map(Path, paths):
        if path.is_dir():
            notebooks += sorted(path.glob("*.ipynb"))
        elif path.is_file() and path.suffix == ".ipynb":
            notebooks.append(path)
        else:
            raise ValueError(f"{path}: not a notebook (.ipynb) or a folder of notebooks")
    if not notebooks:
        raise ValueError(f"no .ipynb files in {', '.join(map(str, paths))}: name the notebooks or folders to trust")
    return notebooks


def fast_mode() -> bool:
    """True when ``SALIENCY_FAST`` is set to 1/true/yes (tests and CI)."""
    return os.environ.get("SALIENCY_FAST", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Setup:
    """What a notebook needs to know about where it runs."""

    fast: bool
    seed: int
    device: torch.device
    repo: Path
    data: Path
    results: Path

    def steps(self, full: int, fast: int) -> int:
        """``fast`` under test, ``full`` otherwise (e.g. ``cfg.steps(5000, 300)``)."""
        return fast if self.fast else full


def setup(seed: int = 0, threads: int | None = None, quiet: bool = False) -> Setup:
    """Seed torch, pick the device (CUDA when present, else CPU), cap threads, print versions.

    Args:
        seed: seed of torch's global generator (notebook-level code; the library takes ``seed=`` itself).
        threads: CPU threads for torch (default: as set by ``OMP_NUM_THREADS``/torch, at most the cores this
            process may use, a container's CPU quota included; see :mod:`saliency_lib.method.threads`).
        quiet: print nothing.
    """
    from .. import __version__
    from ..io.assets import DATA_DIR

    torch.manual_seed(seed)
    torch.set_num_threads(threads if threads is not None else default_count())
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = Setup(
        fast=fast_mode(),
        seed=seed,
        device=device,
        repo=REPO_ROOT,
        data=DATA_DIR,
        results=REPO_ROOT / "benchmarks" / "results",
    )
    if not quiet:
        print(
            f"saliency_lib {__version__} | torch {torch.__version__} | Python {platform.python_version()} | "
            f"device {device} | {torch.get_num_threads()} threads | fast mode {'ON' if config.fast else 'off'}"
        )
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m saliency_lib.course.tutorial index`` (rewrite ``notebooks/README.md``), ``working-copy DIR`` or
    ``trust NOTEBOOK...``."""
    parser = argparse.ArgumentParser(prog="python -m saliency_lib.course.tutorial")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("index", help="rewrite notebooks/README.md from NOTEBOOKS")
    copy = commands.add_parser("working-copy", help="copy notebooks/ into DIR without overwriting anything")
    copy.add_argument("directory", type=Path)
    trusted = commands.add_parser("trust", help="mark these notebooks as trusted (their saved panels show as panels)")
    trusted.add_argument("notebooks", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "index":
        (NOTEBOOK_DIR / INDEX).write_text(index_markdown(), encoding="utf-8")
        print(f"wrote {NOTEBOOK_DIR / INDEX}")
    elif args.command == "trust":
        print(f"trusted {len(trust(args.notebooks))} notebook(s): JupyterLab shows their saved panels")
    else:
        working_copy(args.directory)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

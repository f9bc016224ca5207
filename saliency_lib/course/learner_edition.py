"""The learner edition: the notebooks with the solution cells removed and every output cleared, by nbconvert.

``python -m saliency_lib.course.learner_edition OUT_DIR`` (or ``make learner-edition``) writes every
``notebooks/*.ipynb`` (and ``notebooks/*.md``) into ``OUT_DIR`` for a workshop, where learners should meet each
exercise before its answer::

    written = write_learner_edition("learner")       # list of Paths
    notebook = learner_notebook("notebooks/03_optimization_loop.ipynb")   # one nbformat notebook

nbconvert's own preprocessors do the standard part, as ``jupyter nbconvert --to notebook
--TagRemovePreprocessor.remove_cell_tags=solution --ClearOutputPreprocessor.enabled=True
--ClearMetadataPreprocessor.enabled=True`` would:

- **removed**: cells tagged ``solution`` (cell metadata ``"tags": ["solution"]``; ``TagRemovePreprocessor``).
  Today the notebooks keep solutions in ``notebooks/solutions/*.py`` (never in a cell), so a notebook loses
  nothing but its outputs.
- **cleared**: outputs, execution counts and timings (``ClearOutputPreprocessor``), and the notebook's saved widget
  state (``ClearMetadataPreprocessor``, keeping only the kernel and language): they show answers.
- **kept**: everything else, including each exercise (the stub, ``# YOUR CODE HERE``) and its check cell
  (``tutorial.exercise_or_solution`` + ``tutorial.check_exercise``). An unchanged stub still lets the notebook
  run to the end: the check cell falls back to the solution file beside the notebook (``.solutions/``).

Ours, :class:`EditionPaths` (nbconvert has no link rewriting): relative links that leave ``notebooks/``
(``../docs/method.md``) are rewritten so they still resolve from ``OUT_DIR``, and every ``solutions/`` path and
``%load`` line points at the edition's solutions folder. ``notebooks/solutions/`` is copied to
``OUT_DIR/.solutions/``: available to ``%load`` but out of view (JupyterLab's file browser hides dot-folders, and
Jupyter serves no hidden file, so the index names it without a link). ``--with-solutions`` keeps them in view, in
``OUT_DIR/solutions/`` (self-study).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from nbconvert.preprocessors import (
    ClearMetadataPreprocessor,
    ClearOutputPreprocessor,
    Preprocessor,
    TagRemovePreprocessor,
)
from traitlets import Unicode

from ..io.paths import NOTEBOOK_DIR
from .tutorial import solutions_line

__all__ = [
    "SOLUTION_TAG",
    "EXERCISE_MARK",
    "HIDDEN_SOLUTIONS",
    "NOTEBOOKS",
    "EditionPaths",
    "is_solution_cell",
    "is_exercise_cell",
    "first_exercise_index",
    "learner_notebook",
    "write_learner_edition",
    "main",
]

NOTEBOOKS = NOTEBOOK_DIR
#: Cell tag that marks a solution cell (removed from the learner edition).
SOLUTION_TAG = "solution"
#: Cell tag, or text in a code cell, that marks an exercise the learner fills in (kept).
EXERCISE_TAG = "exercise"
EXERCISE_MARK = "YOUR CODE HERE"
_RELATIVE_LINK = re.compile(r"(\]\()(\.\./[^)\s]+)(\))")
_SOLUTIONS_PATH = re.compile(r"(?<![\w./-])(?:notebooks/)?solutions/")  # as seen from the repository, too
#: Where the learner edition keeps the solutions: available to ``%load``, hidden from the file browser.
HIDDEN_SOLUTIONS = ".solutions"


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_solution_cell(cell) -> bool:
    """A cell tagged ``solution``."""
    return SOLUTION_TAG in _tags(cell)


def is_exercise_cell(cell) -> bool:
    """A code cell tagged ``exercise`` or holding ``# YOUR CODE HERE`` (the stub the learner fills in)."""
    if cell.get("cell_type") != "code":
        return False
    return EXERCISE_TAG in _tags(cell) or EXERCISE_MARK in _source(cell)


def first_exercise_index(notebook) -> int | None:
    """Index of the first exercise cell of ``notebook`` (an nbformat notebook), or None when it has none."""
    for index, cell in enumerate(notebook.cells):
        if is_exercise_cell(cell):
            return index
    return None


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _relink(text: str, source_dir: Path, out_dir: Path) -> str:
    """Markdown links ``](../x)`` made relative to ``out_dir`` instead of ``source_dir``."""

    def replace(match: re.Match) -> str:
        target, _, anchor = match.group(2).partition("#")
        moved = os.path.relpath((source_dir / target).resolve(), out_dir.resolve())
        return match.group(1) + Path(moved).as_posix() + ("#" + anchor if anchor else "") + match.group(3)

    return _RELATIVE_LINK.sub(replace, text)


def _point_to_solutions(text: str, solutions: str) -> str:
    """``solutions/...`` or ``notebooks/solutions/...`` (a ``%load`` line, a link, a path in the text) made to point
    at the edition's ``solutions`` folder, and the index's line on the solutions said for that folder."""
    text = text.replace(solutions_line(), solutions_line(solutions, edition=True))
    return _SOLUTIONS_PATH.sub(f"{solutions}/", text)


class EditionPaths(Preprocessor):
    """The one step nbconvert lacks: markdown links that leave the notebooks' folder rewritten for ``out_dir``
    (unchanged when it is empty), and every ``solutions/`` path and ``%load`` line pointed at ``solutions``."""

    source_dir = Unicode("").tag(config=True)
    out_dir = Unicode("").tag(config=True)
    solutions = Unicode(HIDDEN_SOLUTIONS).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        source = _source(cell)
        if cell.cell_type == "markdown" and self.out_dir:
            source = _relink(source, Path(self.source_dir), Path(self.out_dir))
        cell.source = _point_to_solutions(source, self.solutions)
        return cell, resources


def learner_notebook(path: str | Path, out_dir: str | Path | None = None, *, solutions: str = HIDDEN_SOLUTIONS):
    """The learner edition of one notebook (an ``nbformat.NotebookNode``; nothing is written).

    Args:
        path: a tutorial notebook (``.ipynb``).
        out_dir: where it will be written, to rewrite links that leave ``notebooks/`` (None: links unchanged).
        solutions: the edition's solutions folder (relative to ``out_dir``) that ``%load solutions/...`` lines and
            links are rewritten to: :data:`HIDDEN_SOLUTIONS`, or ``"solutions"`` (unchanged).

    Raises:
        FileNotFoundError: no such notebook. ValueError: not a valid notebook, or its exercises lack a check
        (an exercise cell must be followed by a code cell).
    """
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: notebook not found: {path}")
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises several kinds for a broken file
        raise ValueError(
            f"path: {path} is not a valid notebook ({type(error).__name__}: {error}); "
            f"restore it with `git checkout {path}`"
        ) from None
    steps = (
        TagRemovePreprocessor(enabled=True, remove_cell_tags={SOLUTION_TAG}),
        ClearOutputPreprocessor(enabled=True, remove_metadata_fields={"collapsed", "scrolled", "execution"}),
        ClearMetadataPreprocessor(
            enabled=True, clear_cell_metadata=False, preserve_nb_metadata_mask={"kernelspec", "language_info"}
        ),
        EditionPaths(enabled=True, source_dir=str(path.parent), out_dir=str(out_dir or ""), solutions=solutions),
    )
    resources: dict = {}
    for step in steps:
        notebook, resources = step(notebook, resources)
    notebook = nbformat.from_dict(notebook)  # ClearMetadataPreprocessor leaves a plain dict as metadata
    for index, cell in enumerate(notebook.cells):
        if is_exercise_cell(cell) and not any(later.cell_type == "code" for later in notebook.cells[index + 1 :]):
            raise ValueError(
                f"path: {path.name}: the exercise in cell {index} has no check cell after it once "
                f"solution cells are removed; tag only the solution cell `{SOLUTION_TAG}`"
            )
    nbformat.validate(notebook)
    return notebook


def write_learner_edition(
    out_dir: str | Path,
    notebooks_dir: str | Path | None = None,
    *,
    with_solutions: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write the learner edition of every ``notebooks/*.ipynb`` into ``out_dir``.

    Args:
        out_dir: folder to write to (created). Put it one level below the repository (e.g. ``learner/``,
            git-ignored) or anywhere else: links are rewritten either way.
        notebooks_dir: the notebooks to copy (default: the repository's ``notebooks/``).
        with_solutions: copy ``notebooks/solutions/`` to ``out_dir/solutions`` (in view, self-study) instead of
            ``out_dir/.solutions`` (:data:`HIDDEN_SOLUTIONS`, out of view); every ``%load`` line points there.
        overwrite: replace notebooks already in ``out_dir`` (default: refuse, so a learner's work is never lost).

    Returns:
        The paths written, notebooks first, in order.

    Raises:
        FileExistsError: a notebook is already there and ``overwrite`` is False.
        ValueError: ``out_dir`` is the notebooks folder itself, or there are no notebooks.
    """
    import nbformat

    source = Path(notebooks_dir or NOTEBOOKS)
    out_dir = Path(out_dir)
    if out_dir.resolve() == source.resolve():
        raise ValueError(f"out_dir: {out_dir} is the notebooks folder itself; choose another folder, e.g. learner/")
    paths = sorted(source.glob("*.ipynb"))
    if not paths:
        raise ValueError(f"notebooks_dir: no notebooks (*.ipynb) in {source}")
    targets = [out_dir / path.name for path in paths]
    existing = [target for target in targets if target.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"out_dir: {existing[0]} already exists (a learner's work?); choose an empty folder or pass --overwrite"
        )
    solutions = "solutions" if with_solutions else HIDDEN_SOLUTIONS
    # every one checked before any is written
    notebooks = [learner_notebook(path, out_dir, solutions=solutions) for path in paths]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook, target in zip(notebooks, targets):
        nbformat.write(notebook, target)
        written.append(target)
    for page in sorted(source.glob("*.md")):  # an index page beside the notebooks, links rewritten too
        target = out_dir / page.name
        if overwrite or not target.exists():
            text = _relink(page.read_text(encoding="utf-8"), source, out_dir)
            target.write_text(_point_to_solutions(text, solutions), encoding="utf-8")
            written.append(target)
    if (source / "solutions").is_dir():
        destination = out_dir / solutions
        shutil.copytree(
            source / "solutions",
            destination,
            dirs_exist_ok=overwrite,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        written.extend(sorted(destination.rglob("*.py")))
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m saliency_lib.course.learner_edition OUT_DIR [--with-solutions] [--overwrite]``."""
    parser = argparse.ArgumentParser(
        prog="python -m saliency_lib.course.learner_edition",
        description="Write the notebooks without solution cells and outputs.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the learner edition to (e.g. learner/)")
    parser.add_argument(
        "--with-solutions",
        action="store_true",
        help="keep the solutions in view, in OUT_DIR/solutions/ (self-study; default: OUT_DIR/.solutions/)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace notebooks already in OUT_DIR")
    args = parser.parse_args(argv)
    try:
        written = write_learner_edition(args.out_dir, with_solutions=args.with_solutions, overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    notebooks = [path for path in written if path.suffix == ".ipynb"]
    solutions = [path for path in written if path.suffix == ".py"]
    folder = "solutions" if args.with_solutions else f"{HIDDEN_SOLUTIONS} (out of view; %load finds them)"
    print(f"wrote {len(notebooks)} learner notebooks to {args.out_dir} and {len(solutions)} solution files in {folder}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The learner edition: solution cells gone, exercises and checks kept, outputs cleared, links still resolve, and
each notebook runs to its first exercise (its code there is what nbval runs)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch

from saliency_lib.course import learner_edition, tutorial
from saliency_lib.course.learner_edition import (
    first_exercise_index,
    is_exercise_cell,
    is_solution_cell,
    learner_notebook,
    write_learner_edition,
)

NOTEBOOKS = sorted(learner_edition.NOTEBOOKS.glob("*.ipynb"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def make_notebook(path: Path, cells) -> Path:
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"widgets": {"state": {"x": 1}}})
    nbformat.write(notebook, path)
    return path


def code(source: str, tags=(), output: str | None = "42"):
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    if output is not None:
        cell.outputs = [nbformat.v4.new_output("stream", text=output)]
        cell.execution_count = 7
    return cell


def test_solution_cells_are_removed_and_exercises_checks_and_text_kept(tmp_path):
    path = make_notebook(
        tmp_path / "07_demo.ipynb",
        [
            nbformat.v4.new_markdown_cell("# Demo\n[method](../docs/method.md) · [next](08_next.ipynb)"),
            code("x = 1"),
            code("def f(x):\n    # YOUR CODE HERE\n    return None"),
            code("def f(x):\n    return 2 * x", tags=["solution"]),
            code("%load solutions/07_f.py", tags=["solution"]),
            code("# %load solutions/07_f.py\ndef f(x):\n    return 2 * x\n", tags=["solution"]),
            code("candidate = tutorial.exercise_or_solution(f, '07_f.py', 1)\ntutorial.check_exercise('f', f(1), 2)"),
        ],
    )
    out = tmp_path / "learner"
    notebook = learner_notebook(path, out)
    sources = [cell.source for cell in notebook.cells]
    assert len(notebook.cells) == 4 and "YOUR CODE HERE" in sources[2] and "check_exercise" in sources[3]
    assert not any(is_solution_cell(cell) for cell in notebook.cells)
    assert all(
        cell.outputs == [] and cell.execution_count is None for cell in notebook.cells if cell.cell_type == "code"
    )
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}  # the saved widget state is gone
    # ../docs is rewritten for the new folder (learner/ -> ../../docs from tmp_path/learner), notebook links kept.
    assert "](../docs/method.md)" not in sources[0] and "](08_next.ipynb)" in sources[0]
    [docs_link] = [link for link in LINK.findall(sources[0]) if link.endswith("method.md")]
    assert (out / docs_link).resolve() == (tmp_path.parent / "docs" / "method.md").resolve()
    assert first_exercise_index(notebook) == 2


def test_an_exercise_left_without_its_check_is_refused(tmp_path):
    path = make_notebook(
        tmp_path / "07_bad.ipynb",
        [
            code("def f(x):\n    # YOUR CODE HERE\n    return None"),
            code("assert f(1) == 2", tags=["solution"]),  # the check was tagged as a solution by mistake
        ],
    )
    with pytest.raises(ValueError, match="no check cell after it"):
        learner_notebook(path)
    with pytest.raises(FileNotFoundError, match="path: notebook not found"):
        learner_notebook(tmp_path / "missing.ipynb")
    (tmp_path / "broken.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid notebook"):
        learner_notebook(tmp_path / "broken.ipynb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_each_tutorial_notebook_keeps_its_exercises_and_checks_and_loses_its_outputs(path, tmp_path):
    original = nbformat.read(path, as_version=4)
    loads = [c for c in original.cells if c.cell_type == "code" and re.search(r"%load\s+\S*solutions/", c.source)]
    assert all(map(is_solution_cell, loads)), f"{path.name}: a cell that loads a solution is not tagged `solution`"
    out = tmp_path / "learner"
    notebook = learner_notebook(path, out)
    removed = [cell for cell in original.cells if is_solution_cell(cell)]
    assert len(notebook.cells) == len(original.cells) - len(removed)
    assert sum(map(is_exercise_cell, notebook.cells)) == sum(map(is_exercise_cell, original.cells))
    check_calls = ("check_exercise", "exercise_or_solution")
    assert sum(any(call in cell.source for call in check_calls) for cell in notebook.cells) == sum(
        any(call in cell.source for call in check_calls) for cell in original.cells if not is_solution_cell(cell)
    )
    assert all(
        cell.outputs == [] and cell.execution_count is None and "execution" not in cell.metadata
        for cell in notebook.cells
        if cell.cell_type == "code"
    )
    # Every relative link points where it pointed from notebooks/.
    for before, after in zip([c for c in original.cells if not is_solution_cell(c)], notebook.cells):
        if before.cell_type != "markdown":
            continue
        for old, new in zip(LINK.findall(before.source), LINK.findall(after.source)):
            if "://" in old or old.startswith(("#", "mailto:")):
                assert new == old
                continue
            target = (path.parent / old.split("#")[0]).resolve()
            if old.startswith("solutions/"):  # the edition keeps the solutions out of view, in .solutions/
                assert new == "." + old
            elif target.is_relative_to(path.parent.resolve()):  # beside the notebooks: copied along, link unchanged
                assert new == old
            else:  # ../docs/...: the same file as before
                assert (out / new.split("#")[0]).resolve() == target


def test_the_command_writes_every_notebook_and_never_overwrites_a_learners_work(tmp_path, capsys):
    out = tmp_path / "learner"
    assert learner_edition.main([str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert not (out / "solutions").exists() and any((out / ".solutions").glob("*.py"))
    assert ".solutions (out of view" in capsys.readouterr().out
    assert learner_edition.main([str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert learner_edition.main([str(out), "--overwrite", "--with-solutions"]) == 0
    solutions = sorted(p.name for p in (learner_edition.NOTEBOOKS / "solutions").glob("*.py"))
    assert sorted(p.name for p in (out / "solutions").glob("*.py")) == solutions
    with pytest.raises(ValueError, match="the notebooks folder itself"):
        write_learner_edition(learner_edition.NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_the_learner_edition_runs_what_nbval_runs_up_to_its_first_exercise(path, tmp_path):
    """The learner copy runs to its first exercise: its code up to there is the tutorial's, cell for cell.

    nbval executes exactly these cells of notebooks/ in every ``make test`` (and the rerun test twice more), so
    executing the copy again would test the same code a fourth time. What could still differ is checked here:
    the copy's code cells (solution cells are only ever removed), and any relative path that would make a cell
    depend on the folder the copy is opened from (there is none before the first exercise).
    """
    learner = learner_notebook(path, tmp_path)
    original = nbformat.read(path, as_version=4)
    learner_index, original_index = first_exercise_index(learner), first_exercise_index(original)
    if learner_index is None:
        pytest.skip(f"{path.name} has no exercise cell (# YOUR CODE HERE or tag 'exercise')")
    learner_code = [cell.source for cell in learner.cells[: learner_index + 1] if cell.cell_type == "code"]
    original_code = [
        cell.source
        for cell in original.cells[: original_index + 1]
        if cell.cell_type == "code" and not is_solution_cell(cell)
    ]
    assert learner_code == original_code, f"{path.name}: the learner copy's code differs before its first exercise"
    relative = re.findall(r"[\'\"](\.{1,2}/[^\'\"]*|[\w-]+/[\w./-]+)[\'\"]", "\n".join(learner_code))
    assert not relative, f"{path.name}: relative paths before the first exercise: {relative}"


@pytest.mark.parametrize("with_solutions", [False, True], ids=["hidden solutions", "with solutions"])
def test_every_load_line_link_and_solution_path_of_the_learner_edition_works_from_its_folder(
    with_solutions, tmp_path, monkeypatch, capsys
):
    """What the edition tells a learner works in ``learner/``: each ``%load`` path exists, and so does each relative
    link and each solutions path its notebooks and README name; no link points into a hidden folder (Jupyter serves
    no hidden file, so such a link is dead in JupyterLab); and a check cell run there with the stub untouched names
    the solution as ``%load`` finds it from that folder."""
    out = tmp_path / "learner"
    write_learner_edition(out, with_solutions=with_solutions)
    folder = "solutions" if with_solutions else ".solutions"
    assert (out / folder).is_dir() and not (out / ("." + folder if with_solutions else "solutions")).exists()
    loads, links, paths = [], [], []
    for page in [*sorted(out.glob("*.ipynb")), *sorted(out.glob("*.md"))]:
        if page.suffix == ".ipynb":
            text = "\n".join(cell.source for cell in nbformat.read(page, as_version=4).cells)
        else:
            text = page.read_text()
        loads += [(page.name, target) for target in re.findall(r"%load\s+([^\s`]+)", text) if "<" not in target]
        links += [(page.name, target) for target in LINK.findall(text) if "://" not in target]
        paths += [(page.name, target) for target in re.findall(r"[\w./-]*solutions/[\w.-]*", text)]
    assert loads and paths, "no %load line found: the notebooks tell learners how to see a solution"
    for page, target in loads:
        assert (out / target).is_file(), f"{page}: %load {target} does not work in the learner edition"
        assert target.startswith(f"{folder}/"), f"{page}: %load {target} is not the edition's {folder}/"
    for page, target in paths:
        assert (out / target).exists(), f"{page}: the path {target} does not exist in the learner edition"
    for page, target in links:
        target = target.split("#")[0]
        if target:
            assert (out / target).exists(), f"{page}: link {target} is broken in the learner edition"
            assert not any(part.startswith(".") and part not in (".", "..") for part in Path(target).parts), (
                f"{page}: link {target} points into a hidden folder, which Jupyter does not serve"
            )
    # A check cell, run in the edition's folder (a kernel's folder is its notebook's) with the stub untouched.
    monkeypatch.chdir(out)

    def my_upsample(grid, size, shift):
        return None

    candidate = tutorial.exercise_or_solution(my_upsample, "01_upsample.py", torch.ones(2, 2), (4, 4), (0, 0))
    tutorial.check_exercise("my_upsample", candidate(torch.ones(8, 8), (28, 28), (0, 0)), torch.ones(28, 28))
    [load] = re.findall(r"`%load ([^`]+)`", capsys.readouterr().out)
    assert load == f"{folder}/01_upsample.py" and (out / load).is_file()

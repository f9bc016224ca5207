"""Every notebook follows one anatomy, uses public library names only, and checks its exercise with one helper.

Reads the notebooks as JSON (nothing is executed; ``pytest --nbval-lax notebooks`` runs them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
import torch

from saliency_lib.course import exercises, tutorial

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
OPENING = ("**Time:**", "**Prerequisites:**", "### Learning objectives", "**Contents:**", "../docs/method.md")
ENDING = ("Exercise", "Key points", "Quiz", "References")


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def test_the_notebooks_on_disk_are_the_ones_listed_in_tutorial_notebooks():
    listed = [entry.file for entry in tutorial.NOTEBOOKS]
    assert [entry.number for entry in tutorial.NOTEBOOKS] == [f"{n:02d}" for n in range(len(listed))]
    assert [p.name for p in NOTEBOOKS] == listed, "notebooks/ and saliency_lib.course.tutorial.NOTEBOOKS disagree"


# ---- navigation and learner times: one source of truth (tutorial.NOTEBOOKS) ------------------------------------
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INDEX = tutorial.NOTEBOOK_DIR / tutorial.INDEX


def _relative_links(text):
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link) and not link.startswith("#")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_navigation_at_the_top_and_bottom_and_the_time_come_from_tutorial_notebooks(path):
    cells = _cells(path)
    navigation = tutorial.navigation(path.name)
    top = cells[0].source.splitlines()
    assert top[2].startswith(navigation + " · "), f"{path.name}: the top navigation line is not {navigation!r}"
    assert cells[-1].source.rstrip().splitlines()[-1] == navigation, f"{path.name}: the last line is not the navigation"
    assert tutorial.time_line(path.name) in cells[0].source
    assert len(re.findall(r"\*\*Time:\*\*", cells[0].source)) == 1


def test_navigation_links_previous_index_and_next_in_order():
    files = [entry.file for entry in tutorial.NOTEBOOKS]
    for position, entry in enumerate(tutorial.NOTEBOOKS):
        links = _relative_links(tutorial.navigation(entry.file))
        expected = files[max(0, position - 1) : position] + [tutorial.INDEX] + files[position + 1 : position + 2]
        assert links == expected


def test_the_map_in_notebook_00_and_the_index_are_the_table_of_tutorial_notebooks():
    map_cell = next(c.source for c in _cells(NOTEBOOKS[0]) if c.source.startswith("## 6 · The map of the tutorial"))
    assert tutorial.index_table() in map_cell
    assert INDEX.read_text(encoding="utf-8") == tutorial.index_markdown(), (
        "notebooks/README.md drifted: run python -m saliency_lib.course.tutorial index"
    )
    minutes = [int(m) for m in re.findall(r"\| (\d+) min \|", tutorial.index_table())]
    assert minutes == [entry.minutes for entry in tutorial.NOTEBOOKS]
    assert f"**{tutorial.total_minutes()} min**" in tutorial.index_table()


@pytest.mark.parametrize("path", [*NOTEBOOKS, INDEX], ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    text = (
        "\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")
        if path.suffix == ".ipynb"
        else path.read_text(encoding="utf-8")
    )
    links = _relative_links(text)
    assert links, f"{path.name} has no relative links"
    missing = [link for link in links if not (path.parent / link.split("#")[0]).exists()]
    assert not missing, f"{path.name}: links to files that do not exist: {missing}"


def test_markdown_never_tells_learners_to_import_a_private_name():
    # The code cells and solutions: tests/test_architecture.py (test_notebooks_use_only_public_library_names).
    for path in NOTEBOOKS:
        text = "\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")
        assert not re.search(r"saliency_lib(\.\w+)*\._\w+", text), f"{path.name} names a private module or name"


def test_working_copy_copies_notebooks_and_solutions_and_never_overwrites(tmp_path):
    destination = tmp_path / "work"
    written = tutorial.working_copy(destination, report=None)
    assert (destination / "00_start_here.ipynb").exists() and (destination / tutorial.INDEX).exists()
    assert sorted(p.name for p in (destination / "solutions").glob("*.py")) == sorted(
        p.name for p in tutorial.SOLUTIONS.glob("*.py")
    )
    assert written
    # Trusted for this user, so JupyterLab shows the saved panels as panels (untrusted: their text form).
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary()
    for path in (p for p in written if p.suffix == ".ipynb"):
        assert notary.check_signature(nbformat.read(path, as_version=4)), f"{path.name} is not trusted"
    mine = destination / "00_start_here.ipynb"
    mine.write_text("my edits")
    assert tutorial.working_copy(destination, report=None) == []
    assert mine.read_text() == "my edits"
    # the copy sits next to notebooks/, so its links to ../docs resolve as the originals' do
    copy = tmp_path / "docs"
    copy.mkdir()
    (copy / "method.md").write_text("x")
    assert (destination / "../docs/method.md").resolve().exists()


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_run_is_in_order_and_carries_the_state_of_every_panel_it_shows(path):
    """Every code cell ran, in order (check cells too); each widget output's model, and every model it refers to
    (``IPY_MODEL_...``), is in the saved widget state (what JupyterLab and nbviewer draw the panel from); a viewer
    without widgets gets one line instead of the widget's repr (``saliency_research/bench/notebooks.py --write``)."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), f"{path.name}: not run in order"
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    views = [out for cell in code for out in cell.outputs if WIDGET_VIEW in out.get("data", {})]
    for out in views:
        assert "(children=" not in out["data"].get("text/plain", ""), f"{path.name}: a widget's repr as its text"
        todo, seen = [out["data"][WIDGET_VIEW]["model_id"]], set()
        while todo:
            model = todo.pop()
            if model in seen:
                continue
            seen.add(model)
            assert model in state, f"{path.name}: the saved state lacks model {model}"
            todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[model]["state"]))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opening(path):
    first = _cells(path)[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} · ")
    for part in OPENING:
        assert part in first.source, f"{path.name}: the first cell lacks {part!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell(path):
    cells = _cells(path)
    assert cells[1].cell_type == "markdown" and cells[1].source.startswith("## 1 · Setup")
    code = [c for c in cells if c.cell_type == "code"][0].source
    assert "from saliency_lib" in code and code.rstrip().endswith("cfg = tutorial.setup(seed=0)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ending_and_section_numbers(path):
    cells = _cells(path)
    headings = [
        line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("## ")
    ]
    numbers = [int(re.match(r"## (\d+) · ", h).group(1)) for h in headings]
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: sections {numbers}"
    last = [h.split(" · ", 1)[1] for h in headings[-4:]]
    assert [next((e for e in ENDING if t.startswith(e)), t) for t in last] == list(ENDING), last
    contents = cells[0].source[cells[0].source.index("**Contents:**") :]
    assert f"{numbers[-1]} References" in contents.replace("\n", " ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_uses_the_shared_check_and_a_loadable_solution(path):
    code = "\n".join(c.source for c in _cells(path) if c.cell_type == "code")
    assert "tutorial.exercise_or_solution(" in code and "tutorial.check_exercise(" in code
    solution = re.search(r'exercise_or_solution\(\s*\w+,\s*"([^"]+)"', code).group(1)
    assert (tutorial.SOLUTIONS / solution).exists()
    assert f"%load solutions/{solution}" in "\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")


def test_check_exercise_passes_and_says_what_is_wrong(capsys):
    tutorial.check_exercise("same", torch.ones(2, 3), torch.ones(2, 3))
    tutorial.check_exercise("bound", 0.5, at_least=0.4)
    assert capsys.readouterr().out == "Correct: same\nCorrect: bound\n"
    with pytest.raises(AssertionError, match=r"shape \(2, 3\), expected \(3, 2\)"):
        tutorial.check_exercise("x", torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(AssertionError, match=r"1 of 4 values differ.*at index \(1, 1\).*yours 4, expected 5"):
        tutorial.check_exercise("x", torch.tensor([[1.0, 2], [3, 4]]), torch.tensor([[1.0, 2], [3, 5]]))
    with pytest.raises(AssertionError, match="returned None"):
        tutorial.check_exercise("x", None, 1.0)
    with pytest.raises(AssertionError, match="expected at least 0.4 Hint: more steps"):
        tutorial.check_exercise("x", 0.3, at_least=0.4, hint="more steps")


def test_a_failed_check_names_a_known_mistake_and_shows_no_traceback():
    right, wrong = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0])
    mistakes = {"It matches the off-by-one answer.": wrong, "It matches zeros.": torch.zeros(3)}
    with pytest.raises(tutorial.ExerciseFailed, match=r"^x: 1 of 3 values differ\. It matches the off-by-one"):
        tutorial.check_exercise("x", wrong, right, known_mistakes=mistakes)
    asked = []
    with pytest.raises(AssertionError, match=r"^x: 1 of 3 values differ; the largest difference is 2") as failed:
        tutorial.check_exercise(
            "x", torch.tensor([1.0, 2.0, 5.0]), right, known_mistakes=lambda: asked.append(1) or mistakes
        )
    assert asked == [1]
    tutorial.check_exercise("x", right, right, known_mistakes=lambda: asked.append(2) or mistakes)
    assert asked == [1]  # a right answer never runs the wrong ones
    # IPython draws the failure from _render_traceback_: the message alone, no frame of the library.
    assert failed.value._render_traceback_() == [f"\x1b[0;31mExerciseFailed\x1b[0m: {failed.value}"]


def test_an_error_in_the_learners_function_is_one_line_that_names_their_line():
    def my_f(x):
        return torch.ones(2) @ torch.ones(x)  # a shape error raised inside torch

    checked = tutorial.exercise_or_solution(my_f, "05_context_weights.py", 3)
    assert checked.__wrapped__ is my_f  # raising: not the stub
    with pytest.raises(tutorial.ExerciseFailed, match=r"^my_f raised RuntimeError: .*\(line \d+ of your code: "):
        checked(3)  # the check's call: one line
    with pytest.raises(RuntimeError) as raised:
        my_f(3)
    message = str(exercises.learner_error("my_f", raised.value))
    assert message.startswith("my_f raised RuntimeError: ") and "\n" not in message
    assert message.endswith("of your code: return torch.ones(2) @ torch.ones(x)  # a shape error raised inside torch)")
    known = str(exercises.learner_error("my_f", raised.value, "stopped: a known cause"))
    assert known.startswith("my_f stopped: a known cause (line ")


def test_exercise_or_solution_falls_back_only_for_the_stub(capsys):
    def my_context_weights(hole, k=7):
        return None

    solution = tutorial.exercise_or_solution(my_context_weights, "05_context_weights.py", torch.zeros(1, 5, 5), 3)
    assert solution.__wrapped__ is not my_context_weights and capsys.readouterr().out == ""  # said by the check
    hole = torch.zeros(1, 5, 5, dtype=torch.bool)
    hole[0, 2, 2] = True
    assert torch.isclose(solution(hole, 3).sum(), torch.tensor(8 / 9))

    def done(hole, k=7):
        return torch.zeros(hole.shape)

    assert tutorial.exercise_or_solution(done, "05_context_weights.py", torch.zeros(1, 5, 5), 3).__wrapped__ is done


# ---- the instructor guide ------------------------------------------------------------------------------------
GUIDE = tutorial.REPO_ROOT / "docs" / "instructor.md"


def _schedule(text, heading):
    section = text[text.index(heading) :]
    section = section[: section.index("\n## ", 1)]
    rows = [line.split("|") for line in section.splitlines() if re.match(r"\| \d:\d\d \|", line)]
    return [(row[1].strip(), row[2].strip()) for row in rows]


def test_the_instructor_guide_has_schedules_that_add_up():
    # Its times table is a cog block: tests/test_sync_docs.py holds it to benchmarks/results/notebooks.json.
    text = GUIDE.read_text(encoding="utf-8")
    for heading, length in (
        ("## The 90-minute schedule", 80),  # 10 of the 90 minutes left unplanned (questions, a laptop)
        ("## The 3-hour schedule", 180),
    ):
        rows = _schedule(text, heading)
        minutes = [int(m) for _, m in rows if m.isdigit()]
        assert sum(minutes) == length, (heading, minutes)
        clock = 0
        for start, duration in rows:  # each row starts when the previous one ends
            hours, mins = start.split(":")
            assert int(hours) * 60 + int(mins) == clock, (heading, start)
            clock += int(duration) if duration.isdigit() else 0
    for part in (
        "make check",
        "READY",
        "SALIENCY_FAST=1",
        "make learner-edition",
        "--no-index --find-links",
        "benchmarks/results/notebooks.md",
        "common mistakes",
    ):
        assert part in text, part
    for entry in tutorial.NOTEBOOKS:  # every exercise has its row of common mistakes
        assert re.search(rf"^\| {entry.number} \| `\w+\(", text, re.M), f"no exercise row for {entry.number}"


def test_a_check_praises_only_the_learners_own_code(capsys, tmp_path, monkeypatch):
    (tmp_path / "07_double.py").write_text("def double(x):\n    return 2 * x\n")
    monkeypatch.setattr(exercises, "SOLUTIONS", tmp_path)

    def double(x):  # the untouched stub
        return None

    candidate = tutorial.exercise_or_solution(double, "07_double.py", 1)
    tutorial.check_exercise("double(3)", candidate(3), 6)
    out = capsys.readouterr().out
    assert "Correct:" not in out
    assert "Not yours yet: double is still the stub" in out and f"`%load {tmp_path / '07_double.py'}`" in out

    def double(x):  # noqa: F811 (the learner's own answer)
        return x + x

    candidate = tutorial.exercise_or_solution(double, "07_double.py", 1)
    tutorial.check_exercise("double(3)", candidate(3), 6)
    assert capsys.readouterr().out == "Correct: double(3)\n"

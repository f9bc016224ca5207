"""Every notebook follows one anatomy, uses public library names only, and checks its exercise with one helper.

Reads the notebooks as JSON (nothing is executed; ``pytest --nbval-lax notebooks`` runs them).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch

from saliency_lib import tutorial

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
OPENING = ("**Time:**", "**Prerequisites:**", "### Learning objectives", "**Contents:**", "../docs/method.md")
ENDING = ("Exercise", "Key points", "Quiz", "References")


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def test_there_are_six_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05"]


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
    assert "from saliency_lib import" in code and code.rstrip().endswith("cfg = tutorial.setup(seed=0)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ending_and_section_numbers(path):
    cells = _cells(path)
    headings = [line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    numbers = [int(re.match(r"## (\d+) · ", h).group(1)) for h in headings]
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: sections {numbers}"
    last = [h.split(" · ", 1)[1] for h in headings[-4:]]
    assert [next((e for e in ENDING if t.startswith(e)), t) for t in last] == list(ENDING), last
    contents = cells[0].source[cells[0].source.index("**Contents:**"):]
    assert f"{numbers[-1]} References" in contents.replace("\n", " ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_uses_the_shared_check_and_a_loadable_solution(path):
    code = "\n".join(c.source for c in _cells(path) if c.cell_type == "code")
    assert "tutorial.exercise_or_solution(" in code and "tutorial.check_exercise(" in code
    solution = re.search(r'exercise_or_solution\(\w+, "([^"]+)"', code).group(1)
    assert (tutorial.SOLUTIONS / solution).exists()
    assert f"%load solutions/{solution}" in "\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")


@pytest.mark.parametrize("path", [*NOTEBOOKS, *sorted(tutorial.SOLUTIONS.glob("*.py"))], ids=lambda p: p.name)
def test_only_public_library_names(path):
    if path.suffix == ".ipynb":
        text = "\n".join(c.source for c in _cells(path) if c.cell_type == "code")
    else:
        text = path.read_text()
    assert not re.search(r"saliency_lib(\.\w+)*\._\w+", text), f"{path.name} imports a private module or name"
    assert not re.search(r"from saliency_lib(\.\w+)* import [^\n]*\b_\w+", text), f"{path.name} imports a _name"


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
    with pytest.raises(AssertionError, match="expected at least 0.4\nHint: more steps"):
        tutorial.check_exercise("x", 0.3, at_least=0.4, hint="more steps")


def test_exercise_or_solution_falls_back_only_for_the_stub(capsys):
    def my_context_weights(hole, k=7):
        return None

    solution = tutorial.exercise_or_solution(my_context_weights, "05_context_weights.py", torch.zeros(1, 5, 5), 3)
    assert solution is not my_context_weights and "not written yet" in capsys.readouterr().out
    hole = torch.zeros(1, 5, 5, dtype=torch.bool)
    hole[0, 2, 2] = True
    assert torch.isclose(solution(hole, 3).sum(), torch.tensor(8 / 9))

    def done(hole, k=7):
        return torch.zeros(hole.shape)

    assert tutorial.exercise_or_solution(done, "05_context_weights.py", torch.zeros(1, 5, 5), 3) is done

"""What a learner reads from an exercise check (``saliency_lib.course.exercises``): one line per cause, the message
first, no traceback through the library; the solution named as ``%load`` finds it from the notebook's folder.

The comparison itself (shapes, differing values, a known mistake) is tested in ``test_notebooks_anatomy.py``;
each notebook's mistakes in ``test_mistakes.py`` and ``test_loop_exercise.py``.
"""

from __future__ import annotations

import pytest
import torch

from saliency_lib.course import exercises, tutorial


def test_a_cell_run_too_early_says_which_cells_to_run_without_a_traceback():
    with pytest.raises(NameError) as failed:
        tutorial.require("my_f", "grid", scope={"grid": 1}, run="section 1 (Setup)")
    assert isinstance(failed.value, exercises.CellsNotRun)
    assert str(failed.value).startswith("my_f is not defined yet: this cell needs section 1 (Setup).")
    assert failed.value._render_traceback_() == [f"\x1b[0;31mCellsNotRun\x1b[0m: {failed.value}"]


def test_a_known_mistake_is_named_whatever_the_shape_of_its_result():
    right = torch.ones(4, 4)
    mistakes = [("It matches the floor.", torch.ones(3, 3)), ("It matches the NaN.", torch.full((4, 4), float("nan")))]
    with pytest.raises(
        exercises.ExerciseFailed, match=r"^x: shape \(3, 3\), expected \(4, 4\)\. It matches the floor\.$"
    ):
        tutorial.check_exercise("x", torch.ones(3, 3), right, known_mistakes=mistakes, hint="a hint")
    with pytest.raises(exercises.ExerciseFailed, match=r"^x: 16 values are NaN or infinite\. It matches the NaN\.$"):
        tutorial.check_exercise("x", torch.full((4, 4), float("nan")), right, known_mistakes=mistakes)
    with pytest.raises(exercises.ExerciseFailed, match=r"^x: shape \(2, 2\), expected \(4, 4\) Hint: a hint$"):
        tutorial.check_exercise("x", torch.ones(2, 2), right, known_mistakes=mistakes, hint="a hint")


def test_a_known_error_is_named_in_one_line_with_the_learners_line():
    def my_f(p, uniform):
        return uniform < p  # p is (B,), uniform (B, s, s)

    known = {r"must match the size of tensor": "stopped on a broadcasting error: use p.view(-1, 1, 1)"}
    with pytest.raises(exercises.ExerciseFailed) as failed:
        exercises.learner_call(my_f, torch.rand(5), torch.rand(5, 3, 3), known_errors=known)
    message = str(failed.value)
    assert message.startswith("my_f stopped on a broadcasting error: use p.view(-1, 1, 1) (line ")
    assert message.endswith("of your code: return uniform < p  # p is (B,), uniform (B, s, s))") and "\n" not in message
    # Wrapped twice (exercise_or_solution, then a runner with its own known errors): the outer one names the cause.
    wrapped = tutorial.exercise_or_solution(my_f, "02_update_rule.py", torch.rand(5), torch.rand(5, 3, 3))
    with pytest.raises(exercises.ExerciseFailed, match=r"^my_f raised RuntimeError"):
        wrapped(torch.rand(5), torch.rand(5, 3, 3))
    with pytest.raises(exercises.ExerciseFailed, match=r"^my_f stopped on a broadcasting error"):
        exercises.learner_call(wrapped, torch.rand(5), torch.rand(5, 3, 3), name="my_f", known_errors=known)


@pytest.mark.parametrize("folder", ["solutions", ".solutions", None])
def test_the_stub_names_the_solution_as_load_finds_it_from_the_notebooks_folder(folder, tmp_path, monkeypatch, capsys):
    """A notebook's kernel runs in the notebook's folder: the repository's notebooks/ and make lab's work/ carry
    solutions/, the learner edition .solutions/ (and no solutions/); elsewhere the repository's file is named."""
    if folder:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "07_double.py").write_text("def double(x):\n    return 2 * x\n")
    else:
        monkeypatch.setattr(exercises, "SOLUTIONS", tmp_path / "repository")
        (tmp_path / "repository").mkdir()
        (tmp_path / "repository" / "07_double.py").write_text("def double(x):\n    return x * 2\n")
    monkeypatch.chdir(tmp_path)

    def double(x):
        return None

    candidate = tutorial.exercise_or_solution(double, "07_double.py", 1)
    for case in range(3):
        tutorial.check_exercise(f"double({case})", candidate(case), 2 * case)
    out = capsys.readouterr().out
    load = f"{folder}/07_double.py" if folder else str(tmp_path / "repository" / "07_double.py")
    assert out == (
        f"Not yours yet: double is still the stub (it returns None), so this cell checked our solution instead "
        f"(`%load {load}` shows it), and it passes. Write your double above and run this cell again.\n"
    )
    assert (tmp_path / load).is_file()

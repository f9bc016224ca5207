"""Interrupted and repeated work: every notebook run twice in one kernel, and cells run out of order after a restart.

A learner re-runs a whole notebook without restarting the kernel, runs the setup cell twice, or, after a restart,
jumps straight to the exercise. Each must still work, or stop with a message that says which cells to run first
(``tutorial.require`` at the top of every exercise's check cell), never a bare ``NameError``.

The notebooks run headless in a real kernel (nbclient, the library under nbval) with ``SALIENCY_FAST=1``, as
``make test`` runs them; widget cells build their panels without a browser.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from saliency_lib.course import tutorial

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 1800  # seconds for one cell; fast mode needs far less, but a loaded machine is slow
WIDGET = "application/vnd.jupyter.widget-view+json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What may differ between two runs of the same cell: wall times ("2.1 s") and time stamps in file names.
VARIABLE = re.compile(r"\d+(\.\d+)? s\b|\d{8}-\d{6}")
NUMBER = re.compile(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?")


@contextmanager
def _kernel(path: Path, monkeypatch):
    """A fresh kernel for the notebook at ``path``, started in notebooks/ with ``SALIENCY_FAST=1``.

    Yields ``run(index)``: execute code cell ``index`` of the notebook (a copy of it, so every run keeps its own
    outputs) in that one kernel and return its outputs. Errors do not raise: they come back as outputs.
    """
    monkeypatch.setenv("SALIENCY_FAST", "1")  # the kernel inherits the environment
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )

    def run(index: int) -> list:
        cell = copy.deepcopy(notebook.cells[index])
        assert cell.cell_type == "code", f"{path.name}: cell {index} is not a code cell"
        client.execute_cell(cell, index)
        return cell.outputs

    with client.setup_kernel():
        yield run


def _code_cells(path: Path) -> dict[int, str]:
    """Index -> source of every code cell of the notebook."""
    cells = nbformat.read(path, as_version=4).cells
    return {index: cell.source for index, cell in enumerate(cells) if cell.cell_type == "code"}


def _exercise_cells(path: Path) -> tuple[int, int]:
    """The index of the exercise's stub cell (``# YOUR CODE HERE``) and of its check cell."""
    cells = _code_cells(path)
    stub = next(index for index, source in cells.items() if "YOUR CODE HERE" in source)
    check = next(index for index, source in cells.items() if "tutorial.check_exercise(" in source)
    assert check > stub, f"{path.name}: the check cell comes before the stub"
    return stub, check


def _error(outputs: list):
    return next((output for output in outputs if output.output_type == "error"), None)


def _describe(path: Path, index: int, source: str, error, when: str) -> str:
    """The notebook, the cell and the end of its traceback, for a failure message."""
    traceback = [ANSI.sub("", line) for line in error.traceback]
    lines = "\n".join("\n".join(traceback).splitlines()[-15:])
    first = source.strip().splitlines()[0] if source.strip() else ""
    return (
        f"{path.name}, cell {index} ({first[:60]!r}), {when}: {error.ename}: {error.evalue[:300]}\n"
        f"--- end of the traceback ---\n{lines}"
    )


def _stdout(outputs: list) -> str:
    return "".join(output.text for output in outputs if output.output_type == "stream" and output.name == "stdout")


def _signature(outputs: list, source: str) -> tuple:
    """What a run of a cell showed, up to what may differ between two runs of it.

    The printed text (wall times and time stamps masked; every number masked in a ``# NBVAL_IGNORE_OUTPUT`` cell,
    whose output nbval does not compare either) and how many figures, widgets and other rich outputs it
    displayed. Stderr (warnings are shown once, progress bars) is left out.
    """
    text = VARIABLE.sub("<variable>", _stdout(outputs))
    if "NBVAL_IGNORE_OUTPUT" in source:
        text = NUMBER.sub("<n>", text)
    shown = Counter(
        f"{output.output_type}:{'|'.join(sorted(output.data))}"
        for output in outputs
        if output.output_type in ("display_data", "execute_result")
    )
    return text, sorted(shown.items())


def _widget_ids(outputs: list) -> list[str]:
    return [
        output.data[WIDGET]["model_id"]
        for output in outputs
        if output.output_type in ("display_data", "execute_result") and WIDGET in output.data
    ]


# ---- out of order after a restart, then every notebook twice in the same kernel -----------------------------
# What the check cell of each exercise needs besides the setup cell and the stub: None when it needs nothing else
# (then it passes right after them), else a name that only a later section defines.
NEEDS_MORE = {"00": "fashion", "01": None, "02": None, "03": "model", "04": "panel", "05": "hole", "06": "tiny"}


def test_needs_more_lists_every_notebook():
    assert sorted(NEEDS_MORE) == [path.name[:2] for path in NOTEBOOKS]


def _out_of_order(path: Path, run) -> list:
    """After a restart: the check cell first, then the stub, then the setup cell twice, then the check cell again.

    The check cell must stop with ``tutorial.require``'s message (which names are missing, which sections to
    run), not a bare ``NameError: name 'x' is not defined``; the stub and the setup cell must run in any order;
    where the check needs only those two, it must then pass. Returns the second setup run's outputs.
    """
    cells = _code_cells(path)
    setup = next(iter(cells))
    stub, check = _exercise_cells(path)
    function = re.search(r"def (\w+)\(", cells[stub]).group(1)
    more = NEEDS_MORE[path.name[:2]]

    def refused(outputs, *, missing: list[str], present: list[str], when: str):
        error = _error(outputs)
        assert error is not None, f"{path.name}: the check cell ran {when}"
        message = error.evalue
        assert error.ename == "CellsNotRun" and "not defined yet: this cell needs" in message, _describe(
            path, check, cells[check], error, when
        )
        assert len(error.traceback) == 1, f"{path.name}: a traceback of {len(error.traceback)} lines"  # message alone
        assert "Setup" in message and "Run those cells first" in message, message
        for name in missing:
            assert re.search(rf"\b{name}\b", message.split(":")[0]), f"{path.name}: {name!r} not named: {message}"
        for name in present:
            assert not re.search(rf"\b{name}\b", message.split(":")[0]), f"{path.name}: {name!r} named: {message}"

    refused(run(check), missing=[function], present=[], when="first, in a fresh kernel")
    setup_outputs = []
    for index, when in ((stub, "before the setup cell"), (setup, "after the stub"), (setup, "a second time")):
        outputs = run(index)
        assert _error(outputs) is None, _describe(path, index, cells[index], _error(outputs), when)
        setup_outputs.append(outputs)
    outputs = run(check)
    if more is None:
        assert _error(outputs) is None, _describe(
            path, check, cells[check], _error(outputs), "right after the setup cell and the stub"
        )
        assert "Not yours yet: " in _stdout(outputs) and "Correct: " not in _stdout(outputs)  # the stub is untouched
    else:
        refused(outputs, missing=[more], present=[function], when="right after the setup cell and the stub")
    return setup_outputs[-1]


def _out_of_order_then_twice(path: Path, monkeypatch) -> None:
    """One fresh kernel per notebook (nbval runs each notebook once more, in order, in a kernel of its own).

    First out of order (:func:`_out_of_order`: the exercise's check before anything, the setup cell twice), then
    every code cell in order, then every code cell again. Nothing may raise, and the second run must show what
    the first showed: the same printed results (the exercise's ``Not yours yet: ...`` lines among them: the stub
    is untouched), the same figures, and new widgets (each panel built again, not the old one shown again).
    """
    cells = _code_cells(path)
    setup = next(iter(cells))
    runs: list[dict[int, list]] = [{}, {}]
    with _kernel(path, monkeypatch) as run:
        setup_once = _out_of_order(path, run)
        for number, outputs in enumerate(runs):
            for index, source in cells.items():
                outputs[index] = run(index)
                error = _error(outputs[index])
                assert error is None, _describe(path, index, source, error, f"run {number + 1} of 2")
    first, second = runs

    # The setup cell printed the same line out of order and in order, and the kernel got fast mode.
    assert _stdout(setup_once) == _stdout(first[setup])
    assert "fast mode ON" in _stdout(setup_once), _stdout(setup_once)

    differ = [
        index
        for index, source in cells.items()
        if _signature(first[index], source) != _signature(second[index], source)
    ]
    assert not differ, "\n".join(
        f"{path.name}, cell {index}: the second run showed something else than the first:\n"
        f"  first : {_signature(first[index], cells[index])}\n  second: {_signature(second[index], cells[index])}"
        for index in differ
    )

    stored = nbformat.read(path, as_version=4).cells
    for index, source in cells.items():  # the cells whose output nbval compares: the committed output, twice
        if "# NBVAL_CHECK_OUTPUT" in source:
            assert _stdout(first[index]) == _stdout(second[index]) == _stdout(stored[index].outputs), (
                f"{path.name}, cell {index}: not the committed output"
            )

    _, check = _exercise_cells(path)
    passes = [_stdout(outputs[check]).count("Not yours yet: ") for outputs in runs]  # the stub stays untouched
    assert passes[0] >= 1 and passes[1] == passes[0], f"{path.name}: the exercise check printed {passes} passes"

    for index in cells:
        before, after = _widget_ids(first[index]), _widget_ids(second[index])
        assert len(after) == len(before), f"{path.name}, cell {index}: widgets {len(before)} then {len(after)}"
        assert not set(before) & set(after), f"{path.name}, cell {index}: the second run showed the old widget"
    assert any(_widget_ids(outputs) for outputs in second.values()), f"{path.name}: no widget on the second run"


# One class per notebook, so that `--dist loadscope` (make test) spreads these long runs over both workers.
def _rerun_class(path: Path) -> type:
    @pytest.mark.slow(reason="a notebook out of order after a restart, then twice in a row (20-90 s each)")
    class Rerun:
        def test_out_of_order_after_a_restart_then_the_whole_notebook_twice(self, monkeypatch):
            _out_of_order_then_twice(path, monkeypatch)

    Rerun.__name__ = Rerun.__qualname__ = f"TestRerun_{path.stem}"
    return Rerun


for _path in NOTEBOOKS:
    globals()[f"TestRerun_{_path.stem}"] = _rerun_class(_path)


@pytest.mark.slow(reason="every cell of notebook 01 run twice in one kernel (about 10-15 s)")
@pytest.mark.parametrize("name", ["01_mask_initialization.ipynb"])
def test_every_cell_run_twice_in_a_row_works(name, monkeypatch):
    """Shift+Enter twice on every cell (a cheap notebook only, for time): a cell that drives a panel from code
    must still work on its second run, e.g. notebook 01's "set a control from code" cell, which once set the
    image that was already selected and then failed its own assert."""
    path = NOTEBOOK_DIR / name
    with _kernel(path, monkeypatch) as run:
        for index, source in _code_cells(path).items():
            for number in (1, 2):
                error = _error(run(index))
                assert error is None, _describe(path, index, source, error, f"run {number} of 2 in a row")


def test_require_names_what_is_missing_and_where_it_comes_from():
    scope = {"model": object(), "image": None}
    tutorial.require("model", "image", scope=scope, run="section 1 (Setup)")  # all there: silent
    with pytest.raises(
        NameError,
        match=r"^target is not defined yet: this cell needs section 1 \(Setup\)\. Run "
        r"those cells first \(JupyterLab: Run > Run All Above Selected Cell\)",
    ):
        tutorial.require("model", "target", scope=scope, run="section 1 (Setup)")
    with pytest.raises(NameError, match=r"^my_f, target are not defined yet: this cell needs section 3"):
        tutorial.require("my_f", "image", "target", scope=scope, run="section 3")

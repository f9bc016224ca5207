"""``saliency_lib.method.progress.progress_bar``: one home for the library's progress bars."""

from __future__ import annotations

import tqdm.auto
import tqdm.notebook

from saliency_lib.method.progress import progress_bar


def test_a_terminal_bar_is_erased_when_done_and_a_disabled_one_shows_nothing(capsys):
    bar = progress_bar(total=3, desc="OISE", unit="step")
    bar.update(3)
    bar.close()
    assert bar.leave is False
    assert list(progress_bar(range(4), enabled=False)) == [0, 1, 2, 3]


def test_a_notebook_bar_stays_open_when_done(monkeypatch):
    # In a notebook tqdm.auto is the widget bar. Closing the widget would leave the cell's output pointing at a model
    # that no longer exists ("Error displaying widget: model not found" in Voila and after a reload).
    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    bar = progress_bar(total=3, desc="RISE", unit="mask")
    bar.update(3)
    bar.close()
    assert bar.leave is True
    assert bar.container.comm is not None, "the finished bar's widget was closed"

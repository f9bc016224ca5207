"""One home for the library's progress bars (``tqdm.auto``: a widget in a notebook, text in a terminal)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["progress_bar"]


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool = True,
):
    """A ``tqdm.auto`` bar over ``iterable`` (or ``total`` steps, advanced with ``update``); nothing when not
    ``enabled``.

    In a notebook the finished bar stays on the page: closing a bar widget leaves the cell's output pointing at a
    widget that no longer exists, which JupyterLab (after a reload) and Voila show as "Error displaying widget:
    model not found". In a terminal the bar is erased when done.
    """
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm as notebook_tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, leave=issubclass(tqdm, notebook_tqdm))

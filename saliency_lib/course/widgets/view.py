"""What every panel shares: :class:`FigureView` (a matplotlib figure shown as a PNG widget) and small drawing helpers.

Figures are drawn on a matplotlib ``Figure`` without pyplot and shown as a PNG in an ``ipywidgets.Image``, so they
update in place and tests can read the bytes.
"""

from __future__ import annotations

import io
import threading

import ipywidgets
import torch
from IPython import get_ipython
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from ... import plots

__all__ = ["FigureView", "BackgroundRun", "StoppableModel", "set_image", "set_cell_lines", "class_name"]


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, where a front end can show the figure."""
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class FigureView:
    """A matplotlib ``Figure`` (no pyplot, no global state) shown as a PNG in an ``ipywidgets.Image``.

    Panels change the figure's artists, then call ``update()``. In a Jupyter kernel that renders the PNG at once
    (the image updates in place); elsewhere (tests, scripts) rendering waits until ``png`` is read, since nobody
    can see it. ``renders`` counts the PNGs made. ``lock`` is held while rendering: a thread that changes the
    artists holds it too, so a render never sees half a frame. With ``count_views`` the front end counts its views
    of the image, and ``watched`` says whether one shows it now.
    """

    def __init__(
        self, figsize: tuple[float, float], dpi: int = 72, eager: bool | None = None, *, count_views: bool = False
    ):
        self.figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(self.figure)
        self.dpi = dpi
        self.eager = _in_kernel() if eager is None else eager
        self.widget = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%", height="auto"))
        self.widget.add_class("saliency-figure")
        if count_views:
            # ipywidgets' view counter: None (the default) tracks nothing; from 0 the front end counts its views.
            self.widget._view_count = 0
        self.renders = 0
        self.dirty = True
        self._png = b""
        self.lock = threading.RLock()

    @property
    def watched(self) -> bool:
        """True while a front end shows the figure (always False unless made with ``count_views``)."""
        return bool(self.widget._view_count)

    def update(self) -> None:
        """The figure changed: render now when someone may be looking, else on the next read of ``png``."""
        self.dirty = True
        if self.eager:
            self.render()

    @property
    def png(self) -> bytes:
        """The current figure as PNG bytes (rendered first if it changed)."""
        if self.dirty:
            self.render()
        return self._png

    def render(self) -> bytes:
        with self.lock:
            buffer = io.BytesIO()
            self.figure.savefig(buffer, format="png", dpi=self.dpi)
            if self.renders == 0:
                # Lay out once: later frames only change data and titles, and the layout pass costs as much as
                # drawing.
                self.figure.set_layout_engine("none")
            self._png = buffer.getvalue()
            self.widget.value = self._png
            self.renders += 1
            self.dirty = False
            return self._png


def set_image(artist, array) -> None:
    """Replace an ``AxesImage``'s data, resizing its extent and axes limits when the shape changed."""
    array = plots.as_array(array)
    height, width = array.shape[:2]
    artist.set_data(array)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    if tuple(artist.get_extent()) != extent:
        artist.set_extent(extent)
        artist.axes.set_xlim(extent[0], extent[1])
        artist.axes.set_ylim(extent[2], extent[3])


def set_cell_lines(ax, size: int) -> None:
    """Redraw the lines between the cells of a ``size x size`` grid on ``ax``, keeping their colour."""
    colour = (
        "white"
        if any(c.get_gid() == "cell-lines" and tuple(c.get_colors()[0][:3]) == (1.0, 1.0, 1.0) for c in ax.collections)
        else "tab:orange"
    )
    plots.draw_cell_lines(ax, size, colour)


def class_name(model, index: int) -> str:
    """The model's name for class ``index`` (``model.class_names``), else ``"class <index>"``."""
    names = getattr(model, "class_names", None)
    return names[index] if names is not None and index < len(names) else f"class {index}"


def release_memory() -> None:
    """Hand freed memory back to the system between heavy steps of a panel (a backward pass through a photograph
    leaves hundreds of MB in glibc's free lists, which the next method's peak would add to; Binder kills a kernel at
    2 GB). Collects garbage, then ``malloc_trim(0)`` where the C library has it (glibc); elsewhere a no-op."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


class BackgroundRun:
    """Run / Stop / wait for a panel whose work runs in a daemon thread (the loop, reconstruct, your-model panels).

    The panel sets ``self._stop = threading.Event()`` and ``self._thread = None`` in its ``__init__``, checks
    ``self._stop`` in its work, and starts a run with :meth:`start_work`.
    """

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start_work(self, work, args: tuple, *, block: bool, name: str) -> None:
        """``work(*args)`` in this thread (``block=True``) or in a daemon thread called ``name``."""
        if block:
            work(*args)
        else:
            self._thread = threading.Thread(target=work, args=args, daemon=True, name=name)
            self._thread.start()

    def stop(self) -> None:
        """Ask the running work to stop at its next check (what it computed so far is kept)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run finishes; True when no run is left running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


class StoppableModel(nn.Module):
    """A model wrapped so that a run can be watched and stopped between model calls.

    Counts the images it evaluates (``calls``), calls ``on_call(calls)`` after each call (a progress bar), and
    raises ``KeyboardInterrupt`` before a call once ``stop_event`` is set: :func:`saliency_lib.rise` (and
    :func:`saliency_lib.oise`) catch it and return the partial map; Captum's baselines let it through. Keeps the
    wrapped model's ``spec``, ``class_names``, ``name`` and ``gradcam_layer`` (the outputs are the same).
    """

    def __init__(self, model, stop_event: threading.Event, on_call=None):
        super().__init__()
        self.model = model  # an nn.Module is registered as a submodule (its parameters give the device)
        self.stop_event = stop_event
        self.on_call = on_call
        self.calls = 0
        for attribute in ("spec", "class_names", "name", "gradcam_layer"):
            value = getattr(model, attribute, None)
            if value is not None and not isinstance(value, nn.Module):
                setattr(self, attribute, value)
        layer = getattr(model, "gradcam_layer", None)
        if isinstance(layer, nn.Module):
            # Not registered again as our submodule (it already is one, inside `model`).
            object.__setattr__(self, "gradcam_layer", layer)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.stop_event.is_set():
            raise KeyboardInterrupt
        output = self.model(images)
        self.calls += len(images)
        if self.on_call is not None:
            self.on_call(self.calls)
        return output

"""What a saliency method returns: :class:`SaliencyResult`, the maps with what produced them.

Every method returns one (:func:`saliency_lib.oise`, :func:`saliency_lib.rise`, every function of
:mod:`saliency_lib.evaluation.baselines`)::

    result = oise(model, images, n_steps=1000, seed=0)
    result.maps                # float32 (B, H, W): an ordinary tensor
    result.model_calls         # model calls per image
    result.target              # int64 (B,): the class each map explains
    result.partial             # True when Stop (KeyboardInterrupt) ended the run early
    result[2]                  # the result of image 2 alone (a batch of one), every field kept

The fields live on the result, not on the tensor: ``result.maps[0]``, ``result.maps.clone()`` and
``result.maps * 2`` are plain tensors, and indexing the result itself keeps everything. :class:`Recorder`,
the history of an OISE run (``oise(..., record_every=k)`` returns it as ``result.history``), lives here too.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace

import torch

from . import masks as M
from .checks import check_int

__all__ = ["SaliencyResult", "Recorder"]

# The Recorder's lists whose entries have a leading image axis.
_PER_IMAGE = ("grids", "masks", "p", "delta_p", "saliency")


@dataclass
class Recorder:
    """A ``callback`` that keeps copies of step 1, every ``every``-th step and the last, for plots or sliders.

    ``Recorder(at=(1, 10, 100))`` records exactly those steps instead. ``oise(..., record_every=k)`` (or
    ``record_every=[1, 10, 100]``) makes one for you and returns it as ``result.history``.

    Attributes:
        steps ``[int]``, grids ``[(B, K, s, s)]``, masks ``[(B, K, H, W)]`` (the evaluated masks), p ``[(B, K)]``,
        delta_p ``[(B, K)]``, saliency ``[(B, H, W)]`` (the running map in [0, 1]; with ``postprocess=False``
        the raw running sum S): one entry per recorded step, on the CPU, as ordinary tensors.
    """

    every: int = 50
    at: tuple = ()
    steps: list = field(default_factory=list)
    grids: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    p: list = field(default_factory=list)
    delta_p: list = field(default_factory=list)
    saliency: list = field(default_factory=list)
    postprocess: bool = True

    def __post_init__(self) -> None:
        check_int("every", self.every, 1)
        self.at = tuple(check_int("at", step, 1) for step in self.at)
        self._at = frozenset(self.at)

    def wants(self, step: int, n_steps: int) -> bool:
        """Whether step ``step`` of ``n_steps`` is recorded."""
        if self._at:
            return step in self._at
        return step % self.every == 0 or step == n_steps or step == 1

    def __call__(self, state) -> None:
        """Record ``state`` (an :class:`~saliency_lib.method.oise_method.OISEStep`) if its step is wanted."""
        if not self.wants(state.step, state.n_steps):
            return
        with torch.inference_mode(False):  # plain copies, usable anywhere (even with autograd)
            self.steps.append(state.step)
            self.grids.append(state.grid.detach().cpu().clone())
            self.masks.append(state.mask.detach().cpu().clone())
            self.p.append(state.p.detach().cpu().clone())
            self.delta_p.append(state.delta_p.detach().cpu().clone())
            running = state.saliency_sum.detach().cpu().clone()
            self.saliency.append(M.postprocess(running) if self.postprocess else running)

    def __len__(self) -> int:
        return len(self.steps)

    def subset(self, index) -> Recorder:
        """The history of the images ``index`` only (a slice, a list or an index tensor on the batch axis)."""
        if isinstance(index, torch.Tensor):
            index = index.cpu()
        return Recorder(
            every=self.every,
            at=self.at,
            steps=list(self.steps),
            postprocess=self.postprocess,
            **{name: [entry[index] for entry in getattr(self, name)] for name in _PER_IMAGE},
        )

    def stacked(self) -> dict[str, torch.Tensor]:
        """The history as tensors with a leading step axis: ``{"steps": (T,), "grids": (T, B, K, s, s), ...}``."""
        if not self.steps:
            raise ValueError("the recorder is empty (the run recorded no step)")
        return {
            "steps": torch.tensor(self.steps),
            "grids": torch.stack(self.grids),
            "masks": torch.stack(self.masks),
            "p": torch.stack(self.p),
            "delta_p": torch.stack(self.delta_p),
            "saliency": torch.stack(self.saliency),
        }


@dataclass(frozen=True, eq=False)
class SaliencyResult:
    """The maps of one call of a saliency method, with what it cost and what it explains.

    Attributes (B images, H x W pixels):
        maps: float32 ``(B, H, W)``, one map per image (an ordinary tensor; ``result.maps[0]`` is image 0's
            ``(H, W)`` map).
        model_calls: forward passes of the model per image (the gradient methods also run one backward pass per
            forward; OISE and RISE do not count the one call on the clean images that finds the target).
        target: int64 ``(B,)``, the class each map explains.
        partial: True when the run was stopped (``KeyboardInterrupt``, e.g. a notebook's Stop button) and the maps
            are those of the steps done so far.
        steps_done: OISE steps per chain or RISE masks used; ``None`` for the methods without steps.
        seconds: wall-clock seconds the call took.
        history: OISE's :class:`Recorder` when ``record_every`` was set, else ``None``.

    ``result[i]`` (an int, a slice, a list or an index tensor over the images) is the result of those images,
    every field kept; an int gives a batch of one, so ``result[i].maps`` is ``(1, H, W)``. ``len(result)`` is B.
    Equality is identity: compare maps with ``torch.equal(a.maps, b.maps)``.
    """

    maps: torch.Tensor
    model_calls: int
    target: torch.Tensor
    partial: bool = False
    steps_done: int | None = None
    seconds: float | None = None
    history: Recorder | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.maps, torch.Tensor) or self.maps.dim() != 3:
            raise ValueError(f"maps must be a (B, H, W) tensor, got {_describe(self.maps)}")
        if not isinstance(self.target, torch.Tensor) or tuple(self.target.shape) != (len(self.maps),):
            raise ValueError(
                f"target must be a ({len(self.maps)},) tensor (one class per map), got {_describe(self.target)}"
            )

    def __len__(self) -> int:
        return len(self.maps)

    def __iter__(self):
        """The result of each image in turn (batches of one)."""
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index) -> SaliencyResult:
        if isinstance(index, tuple):
            raise TypeError(
                "a SaliencyResult is indexed by image only (result[i], result[2:5]); index pixels on result.maps"
            )
        if not isinstance(index, (slice, list)) and not (isinstance(index, torch.Tensor) and index.dim() > 0):
            i = operator.index(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"image {i} of a result of {len(self)} images")
            index = [i % len(self)]  # a batch of one: maps stay (B, H, W)
        history = None if self.history is None else self.history.subset(index)
        return replace(self, maps=self.maps[index], target=self.target[index], history=history)

    def to(self, device: torch.device | str) -> SaliencyResult:
        """The same result with ``maps`` and ``target`` on ``device`` (the history is on the CPU already)."""
        return replace(self, maps=self.maps.to(device), target=self.target.to(device))

    def cpu(self) -> SaliencyResult:
        """The same result with ``maps`` and ``target`` on the CPU."""
        return self.to("cpu")

    def __repr__(self) -> str:
        targets = self.target.tolist()
        shown = ", ".join(map(str, targets[:8])) + (", ..." if len(targets) > 8 else "")
        seconds = "None" if self.seconds is None else f"{self.seconds:.2f}"
        history = "None" if self.history is None else f"Recorder({len(self.history)} steps)"
        return (
            f"SaliencyResult(maps={_describe(self.maps)}, model_calls={self.model_calls}, target=[{shown}], "
            f"partial={self.partial}, steps_done={self.steps_done}, seconds={seconds}, history={history})"
        )


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} {tuple(value.shape)} on {value.device}"
    return type(value).__name__

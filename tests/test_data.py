"""Images the notebooks share: the shipped sample, the full set, the photographs."""

from __future__ import annotations

import pytest
import torch

from saliency_lib.io import data


def test_fashion_sample_is_balanced_and_in_range():
    images, labels = data.fashion_sample()
    assert images.shape == (3000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (3000,) and labels.dtype == torch.int64
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.9
    assert torch.bincount(labels, minlength=10).tolist() == [300] * 10


def test_fashion_sample_subset_per_class():
    images, labels = data.fashion_sample(n_per_class=3)
    assert images.shape[0] == 30
    assert torch.bincount(labels, minlength=10).tolist() == [3] * 10
    with pytest.raises(ValueError, match="n_per_class"):
        data.fashion_sample(n_per_class=0)


def test_photographs_are_imagenet_sized():
    images, names = data.photographs(["cat", "coffee"])
    assert images.shape == (2, 3, 224, 224) and names == ["cat", "coffee"]
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_unknown_photograph_is_named():
    with pytest.raises(ValueError, match="names: unknown photograph.*'dog'"):
        data.photographs(["dog"])


def test_full_set_offline_without_the_debian_files_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(data.DataUnavailableError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist(train=False)


@pytest.mark.skipif(not data.DEBIAN_FASHION_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_full_test_set_through_torchvision(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)
    images, labels = data.fashion_tensors(train=False)
    assert images.shape == (10_000, 1, 28, 28) and labels.shape == (10_000,)
    sample, sample_labels = data.fashion_sample()
    # The shipped sample is made of the first 300 test images of each class.
    first_coats = torch.nonzero(labels == 4).flatten()[:300]
    assert torch.equal(images[first_coats], sample[sample_labels == 4])

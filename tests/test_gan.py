"""Tests of saliency_lib.generative.gan: shapes and ranges, seeded training, and the shipped DCGAN's quality."""

from __future__ import annotations

import pytest
import torch

from saliency_lib.generative.gan import (
    DISCRIMINATOR_FILE,
    GENERATOR_FILE,
    Discriminator,
    Generator,
    generator_report,
    load_discriminator,
    load_generator,
    sample_latent,
    train_dcgan,
)
from saliency_lib.io import assets


def test_generator_and_discriminator_shapes_and_ranges():
    torch.manual_seed(0)
    generator, discriminator = Generator().eval(), Discriminator().eval()
    z = sample_latent(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, 100) and z.min() >= -1 and z.max() <= 1
    images = generator(z)
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1
    assert discriminator(images).shape == (5,)
    with pytest.raises(ValueError, match="z must have shape"):
        generator(torch.zeros(5, 10))


def test_training_is_seeded_and_learns():
    torch.manual_seed(123)
    data = (torch.rand(256, 1, 28, 28) > 0.7).float()
    first_g, first_d = train_dcgan(data, epochs=1, seed=1, batch_size=64, progress=False)
    again_g, _ = train_dcgan(data, epochs=1, seed=1, batch_size=64, progress=False)
    other_g, _ = train_dcgan(data, epochs=1, seed=2, batch_size=64, progress=False)
    for a, b in zip(first_g.state_dict().values(), again_g.state_dict().values()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(first_g.state_dict().values(), other_g.state_dict().values()))
    assert not first_g.training and not first_d.training
    assert all(not p.requires_grad for p in first_g.parameters())
    with pytest.raises(ValueError, match="images must have shape"):
        train_dcgan(torch.rand(4, 1, 32, 32), epochs=1, progress=False)


@pytest.fixture(scope="module")
def shipped():
    from saliency_lib.io.models import load

    return load_generator(), load_discriminator(), load("fashion-cnn")


def test_shipped_generator_makes_confident_samples_of_all_ten_classes(shipped):
    from saliency_lib.io.data import fashion_sample

    generator, discriminator, classifier = shipped
    real, _ = fashion_sample(n_per_class=20)
    report = generator_report(generator, classifier, n_samples=1000, seed=7, discriminator=discriminator, real=real)
    assert report["classes_present"] == 10
    assert report["smallest_class_share"] >= 0.01
    assert report["mean_confidence_generated"] >= 0.6
    # D tells real from generated a little (it was trained to), but both get non-trivial scores
    assert 0.05 < report["mean_D_generated"] < report["mean_D_real_test"] < 0.99


def test_manifest_records_what_the_build_measured():
    entries = assets.read_manifest()["files"]
    measured = entries[GENERATOR_FILE]["measured"]
    assert measured["classes_present"] == 10
    assert len(measured["class_counts_generated"]) == 10
    assert measured["mean_confidence_generated"] >= 0.6
    assert measured["train_images"] == 60000
    assert entries[DISCRIMINATOR_FILE]["measured"]["trained_with"] == GENERATOR_FILE
    assert assets.checked_path(GENERATOR_FILE) and assets.checked_path(DISCRIMINATOR_FILE)

"""A small DCGAN for Fashion-MNIST: the generative model behind the "acceptable variations" of Part B.

The authors regenerate the salient region with a DCGAN generator ``G(z)``, ``z`` in ``[-1, 1]^100``, and use its
discriminator ``D`` for a realism loss (semantic inpainting after Yeh et al., CVPR 2017; see
:mod:`saliency_lib.generative.reconstruct`). They worked on 64 px and 224 px images; this network is ours, sized for
28 x 28
Fashion-MNIST and for a CPU:

* :class:`Generator` (ours): ``z`` ``(B, 100)`` -> linear -> 48 x 7 x 7 -> transposed conv -> 24 x 14 x 14 ->
  transposed conv -> 1 x 28 x 28, Tanh mapped to **[0, 1]** (the convention of every classifier here).
* :class:`Discriminator` (ours): ``(B, 1, 28, 28)`` in [0, 1] -> two strided convs (16, 32 channels, LeakyReLU
  0.2) -> one **logit** per image (``sigmoid(logit)`` = probability the image is real).
* :func:`train_dcgan`: the DCGAN recipe (Radford et al. 2016: Adam lr 2e-4, betas (0.5, 0.999), batch norm,
  non-saturating generator loss), with ``z`` drawn uniformly from ``[-1, 1]`` as the authors do, seeded.

``python -m saliency_lib assets build --only dcgan_generator.pt dcgan_discriminator.pt`` trains both on the full
60,000-image training set and records, in ``data/MANIFEST.json``, how good the generator is for our purpose: the
fashion-cnn's confidence on generated samples and the class spread of those samples (all ten classes must appear).
Our shipped build (6 epochs, 722 s on one thread): mean confidence 0.70 on 2,000 samples (0.93 on real test images),
all ten classes present, "Shirt" over-represented (32% of samples): a small, somewhat blurry generator.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from ..io.assets import Asset, load_weights, register
from ..method.core import seeded_generator, to_probabilities
from ..method.progress import progress_bar

__all__ = [
    "LATENT_DIM",
    "Generator",
    "Discriminator",
    "train_dcgan",
    "sample_latent",
    "load_generator",
    "load_discriminator",
    "generator_report",
]

LATENT_DIM = 100  # the authors' z in [-1, 1]^100
GAN_EPOCHS = 6  # ours: about 10-20 minutes on one (shared) CPU thread
GENERATOR_FILE = "dcgan_generator.pt"
DISCRIMINATOR_FILE = "dcgan_discriminator.pt"


class Generator(nn.Module):
    """DCGAN generator for 28 x 28 grey images (ours, not the paper's). ``(B, 100)`` -> ``(B, 1, 28, 28)`` in [0, 1].

    Args:
        latent_dim: length of ``z`` (paper: 100).
        width: channels of the 7 x 7 stage (halved at 14 x 14).
    """

    def __init__(self, latent_dim: int = LATENT_DIM, width: int = 48):
        super().__init__()
        self.latent_dim = latent_dim
        self.out_shape = (1, 28, 28)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, width * 7 * 7, bias=False),
            nn.BatchNorm1d(width * 7 * 7),
            nn.ReLU(inplace=True),
        )
        self.width = width
        self.body = nn.Sequential(
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width // 2),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width // 2, 1, 4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        hidden = self.project(z).view(-1, self.width, 7, 7)
        return (self.body(hidden) + 1) / 2  # Tanh's [-1, 1] -> the [0, 1] pixels the classifiers take


class Discriminator(nn.Module):
    """DCGAN discriminator for 28 x 28 grey images (ours). ``(B, 1, 28, 28)`` in [0, 1] -> logits ``(B,)``.

    ``sigmoid(logit)`` is the probability that the image is a real Fashion-MNIST image; the realism loss of the
    latent search is ``-log D(G(z)) = softplus(-logit)``.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),  # 14 -> 7
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1).squeeze(1)


def _init_weights(module: nn.Module) -> None:
    # DCGAN initialisation: N(0, 0.02) for conv/linear weights, N(1, 0.02) for batch-norm scales.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def sample_latent(
    n: int,
    latent_dim: int = LATENT_DIM,
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """``n`` latent codes drawn uniformly from ``[-1, 1]^latent_dim`` (the authors' prior). ``(n, latent_dim)``."""
    return torch.rand(n, latent_dim, generator=generator, device=device) * 2 - 1


def train_dcgan(
    images: torch.Tensor, epochs: int = GAN_EPOCHS, seed: int = 0, batch_size: int = 128, progress: bool = True
) -> tuple[Generator, Discriminator]:
    """Train a :class:`Generator` and :class:`Discriminator` on ``images`` ``(N, 1, 28, 28)`` in [0, 1].

    The DCGAN recipe (Radford et al.): Adam (lr 2e-4, betas 0.5/0.999), binary cross-entropy, non-saturating
    generator loss, ``z ~ U[-1, 1]^100``. One-sided label smoothing (real label 0.9) is ours; it keeps ``D`` from
    becoming over-confident, which also makes the realism loss of the latent search better behaved.

    Returns both networks in eval mode with gradients off.
    """
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    rng = seeded_generator(seed)
    torch.manual_seed(seed)  # weight init draws from the global generator; seeded for a reproducible build
    gen, disc = Generator(), Discriminator()
    gen.apply(_init_weights)
    disc.apply(_init_weights)
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.functional.binary_cross_entropy_with_logits
    steps_per_epoch = len(images) // batch_size
    bar = progress_bar(total=epochs * steps_per_epoch, desc="training DCGAN", enabled=progress)
    gen.train()
    disc.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=rng)
        for start in range(0, steps_per_epoch * batch_size, batch_size):
            real = images[order[start : start + batch_size]]
            z = sample_latent(batch_size, generator=rng)
            fake = gen(z)
            # Discriminator step: real -> 0.9 (smoothed), fake -> 0.
            d_real, d_fake = disc(real), disc(fake.detach())
            loss_d = bce(d_real, torch.full_like(d_real, 0.9)) + bce(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # Generator step (non-saturating): make D call the fakes real.
            d_fake = disc(fake)
            loss_g = bce(d_fake, torch.ones_like(d_fake))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            bar.update()
            if bar.n % 20 == 0:
                bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}")
    bar.close()
    return gen.eval().requires_grad_(False), disc.eval().requires_grad_(False)


def load_generator(device: str | torch.device = "cpu") -> Generator:
    """The shipped generator (``data/dcgan_generator.pt``, hash-checked), eval mode, gradients off."""
    gen = Generator()
    gen.load_state_dict(load_weights(GENERATOR_FILE))
    return gen.eval().requires_grad_(False).to(device)


def load_discriminator(device: str | torch.device = "cpu") -> Discriminator:
    """The shipped discriminator (``data/dcgan_discriminator.pt``, hash-checked), eval mode, gradients off."""
    disc = Discriminator()
    disc.load_state_dict(load_weights(DISCRIMINATOR_FILE))
    return disc.eval().requires_grad_(False).to(device)


@torch.no_grad()
def generator_report(
    gen: Generator,
    classifier: nn.Module,
    n_samples: int = 2000,
    seed: int = 0,
    discriminator: Discriminator | None = None,
    real: torch.Tensor | None = None,
) -> dict:
    """Is the generator good enough to regenerate Fashion-MNIST regions? What the build records.

    Draws ``n_samples`` images from ``G`` and reports the classifier's mean top-1 confidence on them, the share
    with confidence above 0.9, and how the samples spread over the ten classes (``classes_present`` must be 10).
    With ``real`` test images, the classifier's confidence on those is reported too, for comparison; with the
    ``discriminator``, its mean ``D`` on generated and real images.
    """
    rng = seeded_generator(seed)
    fakes = gen(sample_latent(n_samples, gen.latent_dim, generator=rng))
    probs = to_probabilities(classifier(fakes))
    confidence, predicted = probs.max(dim=1)
    counts = torch.bincount(predicted, minlength=probs.shape[1])
    report = {
        "samples": n_samples,
        "classifier": getattr(classifier, "name", type(classifier).__name__),
        "mean_confidence_generated": round(confidence.mean().item(), 4),
        "share_confident_generated": round((confidence > 0.9).float().mean().item(), 4),
        "class_counts_generated": counts.tolist(),
        "classes_present": int((counts > 0).sum().item()),
        "smallest_class_share": round(counts.min().item() / n_samples, 4),
    }
    if real is not None:
        confidence_real = to_probabilities(classifier(real)).max(dim=1).values
        report["mean_confidence_real_test"] = round(confidence_real.mean().item(), 4)
    if discriminator is not None:
        report["mean_D_generated"] = round(torch.sigmoid(discriminator(fakes)).mean().item(), 4)
        if real is not None:
            report["mean_D_real_test"] = round(torch.sigmoid(discriminator(real)).mean().item(), 4)
    return report


# ---------------------------------------------------------------------------------------------------------------
# Asset recipes. One training run makes both networks: the generator recipe trains, writes the generator and
# leaves the discriminator next to it as ``dcgan_discriminator.pt.trained``; the discriminator recipe (built after
# it, see depends_on) moves that file into place, or retrains with the same seed when it is missing.


def _pending_discriminator(data_dir: Path) -> Path:
    return data_dir / (DISCRIMINATOR_FILE + ".trained")


def _train_full(seed: int, progress: bool) -> tuple[Generator, Discriminator, dict]:
    from ..io.data import fashion_tensors

    images, _ = fashion_tensors(train=True)
    start = time.perf_counter()
    gen, disc = train_dcgan(images, epochs=GAN_EPOCHS, seed=seed, progress=progress)
    info = {
        "train_images": int(len(images)),
        "epochs": GAN_EPOCHS,
        "batch_size": 128,
        "threads": torch.get_num_threads(),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return gen, disc, info


def _build_generator(path: Path, seed: int, progress: bool) -> dict:
    from ..io.data import fashion_tensors
    from ..io.models import load

    gen, disc, info = _train_full(seed, progress)
    classifier = load("fashion-cnn")  # needs data/fashion_cnn.pt (built first: depends_on)
    test_x, _ = fashion_tensors(train=False)
    report = generator_report(gen, classifier, seed=seed, discriminator=disc, real=test_x[:2000])
    if report["classes_present"] < 10:
        raise RuntimeError(f"the DCGAN samples cover only {report['classes_present']} of 10 classes; not shipped")
    torch.save(gen.state_dict(), path)
    torch.save(disc.state_dict(), _pending_discriminator(path.parent))
    return {**info, **report}


def _build_discriminator(path: Path, seed: int, progress: bool) -> dict:
    pending = _pending_discriminator(path.parent)
    if pending.exists():
        os.replace(pending, path)
        return {"trained_with": GENERATOR_FILE, "epochs": GAN_EPOCHS}
    _, disc, info = _train_full(seed, progress)  # built alone: retrain (same seed, same networks)
    torch.save(disc.state_dict(), path)
    return {**info, "trained_with": GENERATOR_FILE}


register(
    Asset(
        GENERATOR_FILE,
        _build_generator,
        licence="MIT (ours; trained on Fashion-MNIST, MIT)",
        origin="saliency_lib.generative.gan.Generator (DCGAN, ours for 28x28) trained on the full Fashion-MNIST "
        "training set",
        needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet; data/fashion_cnn.pt",
        depends_on=("fashion_cnn.pt",),
    )
)
register(
    Asset(
        DISCRIMINATOR_FILE,
        _build_discriminator,
        licence="MIT (ours; trained on Fashion-MNIST, MIT)",
        origin="saliency_lib.generative.gan.Discriminator trained with the generator (one run of "
        "saliency_lib.generative.gan.train_dcgan)",
        needs="Fashion-MNIST: Debian package dataset-fashion-mnist, or internet",
        depends_on=(GENERATOR_FILE,),
    )
)

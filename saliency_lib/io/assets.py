"""Shipped files in ``data/``: the manifest, hash checks, safe loading and the rebuild recipes.

Every file a notebook needs lives in ``data/`` and is described in ``data/MANIFEST.json`` (size, sha256,
licence, origin, the command that made it and what the build measured). Loaders call :func:`checked_path`
before reading, so a missing, truncated or tampered file gives one clear message naming the file and the fix,
never a pickle traceback. Weights are read with ``torch.load(..., weights_only=True)``; a learner's own weights
file from outside ``data/`` goes through the same safe load in :func:`load_user_weights`.

``python -m saliency_lib assets build`` re-makes every asset from scratch; ``... assets verify`` checks them.
Each recipe lives beside the code it builds (the sample in ``data``, the Fashion CNN in ``models``, the clutter
CNN and the photo boxes in ``datasets``, the GAN in ``gan``) and registers itself with :func:`register`; this
module imports none of them, so loaders can import it without cycles (:data:`RECIPE_MODULES`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .paths import DATA_DIR, PACKAGE_DIR

__all__ = [
    "AssetError",
    "DATA_DIR",
    "find_data_dir",
    "MANIFEST_NAME",
    "Asset",
    "ASSETS",
    "register",
    "RECIPE_MODULES",
    "sha256_file",
    "read_manifest",
    "checked_path",
    "load_weights",
    "load_user_weights",
    "verify",
    "build",
    "manifest_table",
]

MANIFEST_NAME = "MANIFEST.json"
# Where a wheel carries a copy of data/ (setup.py copies it into the built package; a checkout has none).
PACKAGED_DATA = PACKAGE_DIR / "shipped_data"
CHECKOUT_DATA = DATA_DIR


def find_data_dir() -> Path:
    """The folder of shipped files, in this order (the first that applies wins):

    1. ``SALIENCY_DATA_DIR``, when set (tests, or a copy elsewhere);
    2. the checkout's ``data/`` beside the package, when it holds a manifest (``make lab``, ``pip install -e .``);
    3. ``saliency_lib/shipped_data/`` inside the installed package (``pip install .`` or a wheel: setup.py copies
       ``data/`` there at build time, hashes and manifest unchanged).

    With none of them present, the checkout's path is returned, so the error names where the files belong.
    """
    if os.environ.get("SALIENCY_DATA_DIR"):
        return Path(os.environ["SALIENCY_DATA_DIR"])
    for candidate in (CHECKOUT_DATA, PACKAGED_DATA):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    return CHECKOUT_DATA


DATA_DIR = find_data_dir()

FIX = "re-make it with `python -m saliency_lib assets build` or restore it from a fresh checkout (`git checkout data/`)"


class AssetError(RuntimeError):
    """A shipped file is missing, altered or unreadable. The message names the file and the fix."""


@dataclass
class Asset:
    """One shipped file and the recipe that makes it.

    ``builder(path, seed, progress)`` writes the file at ``path`` and returns a dict of what it measured
    (accuracy, class spread...), which the manifest records next to the hash.
    """

    filename: str
    builder: Callable[[Path, int, bool], dict]
    licence: str
    origin: str
    needs: str = "nothing"
    seed: int = 0
    depends_on: tuple[str, ...] = field(default_factory=tuple)

    @property
    def command(self) -> str:
        return f"python -m saliency_lib assets build --only {self.filename}"


ASSETS: dict[str, Asset] = {}


def register(asset: Asset) -> Asset:
    """Add an asset recipe to the build (modules call this at import time)."""
    ASSETS[asset.filename] = asset
    return asset


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(data_dir: Path | None = None) -> dict:
    """The manifest as a dict ``{"files": {filename: entry}}``; an empty one if there is none yet."""
    path = Path(data_dir or DATA_DIR) / MANIFEST_NAME
    if not path.exists():
        return {"files": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AssetError(f"{path} is not valid JSON ({error}); restore it from a fresh checkout") from None


def manifest_table(data_dir: Path | None = None) -> str:
    """The manifest as a markdown table: file, size, licence and what the build measured (docs/install.md)."""
    lines = ["| file | size | licence | measured by the build |", "|---|---:|---|---|"]
    for name, entry in read_manifest(data_dir)["files"].items():
        measured = ", ".join(f"{key}: {value}" for key, value in entry.get("measured", {}).items())
        lines.append(f"| `{name}` | {entry['size'] / 1e6:.2f} MB | {entry['licence']} | {measured} |")
    return "\n".join(lines)


def _write_manifest(manifest: dict, data_dir: Path) -> None:
    manifest["files"] = dict(sorted(manifest["files"].items()))
    (data_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def checked_path(filename: str, data_dir: Path | None = None) -> Path:
    """Path of a shipped file after checking its size and sha256 against the manifest.

    Raises :class:`AssetError` naming the file and the fix when it is missing, unlisted or altered.
    """
    data_dir = Path(data_dir or DATA_DIR)
    path = data_dir / filename
    entry = read_manifest(data_dir)["files"].get(filename)
    if entry is None:
        raise AssetError(f"{filename} is not listed in {data_dir / MANIFEST_NAME}; {FIX}")
    if not path.exists():
        raise AssetError(f"{path} is missing; {FIX}")
    size = path.stat().st_size
    if size != entry["size"]:
        raise AssetError(
            f"{path} has {size} bytes but the manifest expects {entry['size']} (truncated or altered); {FIX}"
        )
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise AssetError(f"{path} does not match its sha256 in the manifest (altered or corrupt); {FIX}")
    return path


def load_weights(filename: str, data_dir: Path | None = None) -> dict[str, torch.Tensor]:
    """A state dict from a shipped file: hash-checked, then ``torch.load(..., weights_only=True)``."""
    path = checked_path(filename, data_dir)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a file that passed the hash but still fails to load: say which, not a traceback
        raise AssetError(f"{path} could not be read as weights ({type(error).__name__}); {FIX}") from None
    if not isinstance(state, dict):
        raise AssetError(f"{path} holds a {type(state).__name__}, expected a state dict; {FIX}")
    return state


def load_user_weights(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict from a weights file of your own (outside ``data/``), through the same safe load.

    The file is always read with ``torch.load(..., weights_only=True, map_location="cpu")``, so a file that would
    run code when unpickled is refused (:class:`AssetError` naming the file) and that code never runs. With
    ``sha256`` (the hex digest its publisher gives) the file is checked first and refused if it differs; without
    it, it loads but a one-line warning says its origin was not checked.
    """
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"{path} is missing (or is not a file): check the path")
    if sha256 is not None:
        if not isinstance(sha256, str) or len(sha256.strip()) != 64:
            raise ValueError(f"sha256 must be the 64-character hex digest of the file, got {sha256!r}")
        digest = sha256_file(path)
        if digest != sha256.strip().lower():
            raise AssetError(
                f"{path} does not match the sha256 you gave (got {digest}): altered, corrupt or the "
                "wrong file; download it again"
            )
    else:
        warnings.warn(
            f"{path} is not in data/{MANIFEST_NAME}: its origin was not checked; pass sha256=... to check it",
            UserWarning,
            stacklevel=2,
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # e.g. a pickle that would run code: refused by weights_only, never executed
        raise AssetError(
            f"{path} could not be read as weights ({type(error).__name__}): it is not a plain "
            "state dict of tensors (a pickle that would run code is refused); save it with "
            "torch.save(model.state_dict(), path)"
        ) from None
    if not isinstance(state, dict):
        raise AssetError(
            f"{path} holds a {type(state).__name__}, expected a state dict; save it with "
            "torch.save(model.state_dict(), path)"
        )
    return state


def verify(data_dir: Path | None = None) -> list[str]:
    """Check every file in the manifest (and every registered asset). Returns one line per problem."""
    data_dir = Path(data_dir or DATA_DIR)
    try:
        listed = read_manifest(data_dir)["files"]
    except AssetError as error:
        return [str(error)]
    problems = []
    _load_recipes()
    for name in sorted(set(listed) | set(ASSETS)):
        try:
            checked_path(name, data_dir)
        except AssetError as error:
            problems.append(str(error))
    return problems


# The modules whose import registers a recipe (each calls :func:`register` at import time). They are imported
# by name, only when a build or a check needs every recipe: the modules import this one, never the reverse (two
# of them live on higher floors, evaluation and generative: a registry, not an import of their code).
RECIPE_MODULES = (
    "saliency_lib.io.data",
    "saliency_lib.io.models",
    "saliency_lib.evaluation.datasets",
    "saliency_lib.generative.gan",
)


def _load_recipes() -> None:
    for module in RECIPE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:  # a recipe module that is absent is skipped; a broken one is not
                raise


def build(only: list[str] | None = None, data_dir: Path | None = None, progress: bool = True) -> dict:
    """Re-make the registered assets (all, or ``only`` these filenames) and update the manifest.

    Each recipe is seeded; it states what it needs (the Debian package ``dataset-fashion-mnist`` or internet
    for the full Fashion-MNIST). Returns the manifest entries written.
    """
    data_dir = Path(data_dir or DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True)
    _load_recipes()
    names = list(ASSETS) if not only else only
    unknown = [name for name in names if name not in ASSETS]
    if unknown:
        raise AssetError(f"unknown asset(s) {unknown}; known: {sorted(ASSETS)}")
    written = {}
    for name in _ordered(names):
        asset = ASSETS[name]
        print(f"[assets] building {name} (needs: {asset.needs}; seed {asset.seed})", flush=True)
        start = time.perf_counter()
        path = data_dir / name
        tmp = path.with_name(path.name + ".partial")
        measured = asset.builder(tmp, asset.seed, progress)
        os.replace(tmp, path)
        entry = {
            "size": path.stat().st_size,
            "sha256": sha256_file(path),
            "licence": asset.licence,
            "origin": asset.origin,
            "command": asset.command,
            "seed": asset.seed,
            "build_seconds": round(time.perf_counter() - start, 1),
            "torch": torch.__version__,
            "measured": measured,
        }
        manifest = read_manifest(data_dir)  # re-read: another build may have updated other entries
        manifest["files"][name] = entry
        _write_manifest(manifest, data_dir)
        written[name] = entry
        print(f"[assets] {name}: {entry['size']} bytes, {json.dumps(measured)}", flush=True)
    return written


def _ordered(names: list[str]) -> list[str]:
    """Names in dependency order (an asset after the assets it is built from)."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for dep in ASSETS[name].depends_on:
            if dep in names:
                visit(dep)
        done.append(name)

    for name in names:
        visit(name)
    return done

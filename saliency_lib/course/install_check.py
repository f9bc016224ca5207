"""Is this computer ready for the tutorial? One command a participant runs the day before a workshop.

``python -m saliency_lib.course.install_check`` (or ``make check``) checks, in order:

1. **versions**: Python and every dependency in ``pyproject.toml`` (installed, and the pinned version);
2. **assets**: every shipped file in ``data/`` against its sha256 in ``data/MANIFEST.json``;
3. **a map**: one OISE map of a Fashion-MNIST image with ``fashion-cnn`` (about 10 seconds; the time is printed);
4. **widgets**: ipywidgets and its JupyterLab extension (``jupyterlab_widgets``) installed in matching versions;
5. **browser**: the web browser JupyterLab will open; on a desktop with none (or only a text browser) the check
   fails; without a display (a server, a container) there is none to check: ``make lab`` prints a URL to open.

It prints one line per check and ends with exactly one line, ``READY`` or ``NOT READY: <what to fix>``;
the exit code is 0 or 1. The start notebook runs :func:`run_checks` too::

    checks = run_checks()            # list[Check]
    print(verdict(checks))           # "READY" or "NOT READY: ..."
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..io.paths import PYPROJECT

__all__ = [
    "Check",
    "PYPROJECT",
    "requirements",
    "check_python",
    "check_versions",
    "check_assets",
    "check_map",
    "check_widgets",
    "check_browser",
    "run_checks",
    "verdict",
    "main",
    "WIDGETS_HELP",
]

DISTRIBUTION = "saliency-tutorial"
# Where the CPU-only builds of torch live (a laptop needs no 2 GB CUDA libraries).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WIDGETS_HELP = (
    "if the sliders and buttons do not show in a notebook: stop JupyterLab, run `make lab` (it starts "
    "the JupyterLab of .venv, where the widget extension is installed), reload the page "
    "(Ctrl+Shift+R), then Kernel > Restart; `jupyter labextension list` must show "
    "@jupyter-widgets/jupyterlab-manager enabled OK; in VS Code, install the Jupyter extension"
)


@dataclass(frozen=True)
class Check:
    """The result of one check.

    Attributes:
        name: what was checked ("torch", "assets", "map", "widgets", "browser", ...).
        ok: passed (a warning is ``ok=True`` with a ``fix``).
        detail: what was found, one line.
        fix: what to do, in plain words ("" when nothing).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``  ok   torch 2.14.1`` / ``  FAIL assets: ... -> fix``: one printable line."""
        status = "ok  " if self.ok else "FAIL"
        advice = f" -> {self.fix}" if self.fix else ""
        return f"  {status} {self.name}: {self.detail}{advice}"


def _pip(requirement: str) -> str:
    """The pip command that installs ``requirement`` into this interpreter's environment."""
    command = f'{_python()} -m pip install "{requirement}"'
    name = requirement.split("=")[0].split(">")[0].split("<")[0].split("~")[0].strip().lower()
    if name in ("torch", "torchvision"):
        command += f" (CPU-only laptop: add --index-url {TORCH_CPU_INDEX})"
    return command


def _python() -> str:
    """This interpreter, as short as it can be written from the working directory (e.g. ``.venv/bin/python``)."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return str(executable)


def requirements(pyproject: Path | None = None) -> tuple[list[str], str | None]:
    """The ``[project] dependencies`` of ``pyproject.toml`` and its ``requires-python``.

    Falls back to the installed package's metadata when the file is not there (a non-editable install).

    Returns:
        ``(["torch==2.14.1", ...], ">=3.10")``; extras (``[test]``) are not included.
    """
    path = Path(pyproject or PYPROJECT)
    if path.is_file():
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            tomllib = None
        if tomllib is not None:
            project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
            return list(project.get("dependencies", [])), project.get("requires-python")
    try:
        listed = metadata.requires(DISTRIBUTION) or []
        python = metadata.metadata(DISTRIBUTION).get("Requires-Python")
    except metadata.PackageNotFoundError:
        return [], None
    return [item for item in listed if "extra ==" not in item], python


def check_python(requires_python: str | None, version: str | None = None) -> Check:
    """This Python against ``requires-python`` (e.g. ">=3.10")."""
    from packaging.specifiers import SpecifierSet

    version = version or ".".join(str(part) for part in sys.version_info[:3])
    if not requires_python or SpecifierSet(requires_python).contains(version, prereleases=True):
        return Check("python", True, f"{version} ({requires_python or 'any'} needed)")
    return Check(
        "python",
        False,
        f"{version}, but the tutorial needs Python {requires_python}",
        f"install Python {requires_python.lstrip('>=~')} or newer and re-create .venv (make clean && make lab)",
    )


def check_versions(dependencies: list[str] | None = None) -> list[Check]:
    """Each dependency: installed? in the pinned range? One :class:`Check` per package.

    Args:
        dependencies: requirement strings (default: :func:`requirements` of ``pyproject.toml``).
    """
    from packaging.requirements import Requirement

    if dependencies is None:
        dependencies = requirements()[0]
    checks = []
    for text in dependencies:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        wanted = str(requirement.specifier) or "any version"
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            checks.append(
                Check(
                    requirement.name,
                    False,
                    f"not installed ({wanted} needed)",
                    f"install {requirement.name}: {_pip(str(requirement))}",
                )
            )
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            checks.append(
                Check(
                    requirement.name,
                    False,
                    f"{installed} installed, {wanted} needed",
                    f"install {requirement.name} {wanted}: {_pip(str(requirement))}",
                )
            )
        else:
            checks.append(Check(requirement.name, True, f"{installed} ({wanted})"))
    return checks


def check_assets() -> Check:
    """Every shipped file against its sha256 in ``data/MANIFEST.json`` (:func:`saliency_lib.io.assets.verify`)."""
    from ..io import assets

    try:
        problems = assets.verify()
    except Exception as error:  # noqa: BLE001 - a broken install must end in a verdict, not a traceback
        return Check(
            "assets",
            False,
            f"cannot check data/ ({type(error).__name__}: {error})",
            "restore data/ from a fresh checkout of the repository (git checkout data/)",
        )
    if problems:
        fix = (
            "restore data/ from a fresh checkout (git checkout data/) or rebuild it "
            "(python -m saliency_lib assets build)"
        )
        return Check("assets", False, f"{len(problems)} problem(s): {problems[0]}", fix)
    n_files = len(assets.read_manifest()["files"])
    return Check("assets", True, f"{n_files} shipped files match data/MANIFEST.json")


def check_map(n_steps: int = 1000, slow_seconds: float = 60.0) -> Check:
    """One OISE map of the first Fashion-MNIST sample image with ``fashion-cnn``, timed.

    Args:
        n_steps: OISE model calls (the paper's N; 1000 takes a few seconds on a laptop core).
        slow_seconds: above this the check passes with a warning (workshop machines that slow should use fast
            mode, ``SALIENCY_FAST=1``).
    """
    try:
        import torch

        from ..io import data, models
        from ..method.oise_method import oise

        start = time.perf_counter()
        model = models.load("fashion-cnn")
        images, _ = data.fashion_sample(n_per_class=1)
        saliency = oise(model, images[:1], None, n_steps=n_steps, seed=0).maps
        seconds = time.perf_counter() - start
        if tuple(saliency.shape) != (1, 28, 28) or not bool(torch.isfinite(saliency).all()):
            return Check(
                "map",
                False,
                f"OISE returned a broken map (shape {tuple(saliency.shape)})",
                "re-install the tutorial (make clean && make lab) and run this check again",
            )
    except Exception as error:  # noqa: BLE001 - the message is the report
        first = str(error).splitlines()[0] if str(error) else ""
        return Check(
            "map",
            False,
            f"computing a map failed ({type(error).__name__}: {first})",
            "fix the failures above first; if none, re-install (make clean && make lab)",
        )
    detail = f"OISE, {n_steps} steps on one Fashion-MNIST image: {seconds:.1f} s"
    if seconds > slow_seconds:
        return Check(
            "map",
            True,
            detail + " (slow)",
            "this computer is slow: in the workshop, run notebooks with SALIENCY_FAST=1 (fast mode)",
        )
    return Check("map", True, detail)


# The JupyterLab extension's own (JavaScript) major version for each ipywidgets major version.
LAB_MANAGER_MAJOR = {"8": "5", "7": "3"}
RESTART = "then restart JupyterLab (make lab) and reload the page"


def _lab_extension_version() -> str | None:
    """Version of the installed JupyterLab widget extension (@jupyter-widgets/jupyterlab-manager), or None."""
    try:
        from jupyter_core.paths import jupyter_path

        directories = jupyter_path("labextensions")
    except Exception:  # noqa: BLE001 - no jupyter_core: no JupyterLab either
        directories = [str(Path(sys.prefix) / "share" / "jupyter" / "labextensions")]
    for directory in directories:  # highest priority (this environment) first, as JupyterLab looks
        package = Path(directory) / "@jupyter-widgets" / "jupyterlab-manager" / "package.json"
        if package.is_file():
            try:
                return str(json.loads(package.read_text(encoding="utf-8")).get("version", "?"))
            except (OSError, ValueError):
                return "?"
    return None


def check_widgets() -> Check:
    """ipywidgets, its JupyterLab extension and their versions match (what makes sliders render in Lab).

    Checks that ``jupyterlab_widgets`` satisfies ipywidgets' own requirement on it, and that the Lab extension
    it installs (``share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager``) is there, in the major
    version that this ipywidgets speaks (5.x for ipywidgets 8). Whether a browser then draws them is checked by
    the browser test; :data:`WIDGETS_HELP` says what to do when it does not.
    """
    from packaging.requirements import Requirement

    reinstall = f'{_python()} -m pip install --force-reinstall "ipywidgets>=8.0" jupyterlab_widgets, {RESTART}'
    try:
        widgets = metadata.version("ipywidgets")
    except metadata.PackageNotFoundError:
        return Check(
            "widgets", False, "ipywidgets is not installed", f'{_python()} -m pip install "ipywidgets>=8.0", {RESTART}'
        )
    try:
        lab_widgets = metadata.version("jupyterlab_widgets")
    except metadata.PackageNotFoundError:
        return Check(
            "widgets",
            False,
            f"ipywidgets {widgets} is installed without jupyterlab_widgets (its "
            "JupyterLab extension): sliders will not show",
            reinstall,
        )
    for text in metadata.requires("ipywidgets") or []:
        requirement = Requirement(text)
        if (
            requirement.name.replace("-", "_").lower() == "jupyterlab_widgets"
            and requirement.marker is None
            and not requirement.specifier.contains(lab_widgets, prereleases=True)
        ):
            return Check(
                "widgets",
                False,
                f"ipywidgets {widgets} needs jupyterlab_widgets "
                f"{requirement.specifier}, but {lab_widgets} is installed",
                f'{_python()} -m pip install "jupyterlab_widgets{requirement.specifier}", {RESTART}',
            )
    extension = _lab_extension_version()
    if extension is None:
        return Check(
            "widgets",
            False,
            f"jupyterlab_widgets {lab_widgets} is installed but its JupyterLab "
            "extension is missing: sliders will not show",
            reinstall,
        )
    expected = LAB_MANAGER_MAJOR.get(widgets.split(".")[0])
    if expected is not None and extension.split(".")[0] != expected:
        return Check(
            "widgets",
            False,
            f"the JupyterLab widget extension is {extension}, but ipywidgets {widgets} "
            f"needs {expected}.x (an older extension installed elsewhere?)",
            reinstall,
        )
    return Check(
        "widgets", True, f"ipywidgets {widgets}, jupyterlab_widgets {lab_widgets}, JupyterLab extension {extension}"
    )


# Text-mode browsers webbrowser may return: JupyterLab does not work in them.
_TEXT_BROWSERS = ("www-browser", "links", "elinks", "lynx", "w3m")
_URL_FIX = (
    "make lab prints a URL (http://127.0.0.1:8888/lab?token=...): open it in a recent Firefox, Chrome, Edge or Safari"
)


def _has_display() -> bool:
    """A desktop a browser can open on: macOS and Windows always; Linux with X11 or Wayland, except WSL, whose
    learners open the URL in Windows' own browser."""
    if sys.platform in ("darwin", "win32"):
        return True
    import platform

    if "microsoft" in platform.release().lower():
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_browser() -> Check:
    """The browser JupyterLab will open (Python's ``webbrowser``, as JupyterLab asks it).

    Fails on a desktop where ``webbrowser`` finds no graphical browser (none, or only a text browser such as
    ``lynx``): the participant has nothing to open the tutorial in. Without a display (a server, a container, WSL)
    the browser is on another computer, so there is nothing to check here: ``make lab`` prints a URL to open.
    """
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        browser = None
    name = (getattr(browser, "name", None) or type(browser).__name__) if browser is not None else None
    if browser is not None and name not in _TEXT_BROWSERS:
        return Check(
            "browser",
            True,
            f"JupyterLab will open {name}"
            + (f" (from $BROWSER={os.environ['BROWSER']})" if os.environ.get("BROWSER") else ""),
        )
    if not _has_display():
        return Check("browser", True, "no browser found from here (fine on a server or in a container)", _URL_FIX)
    return Check(
        "browser",
        False,
        "no graphical web browser found" + (f" (only {name}, a text browser)" if name else ""),
        "install Firefox or Chrome (Debian/Ubuntu: sudo apt install firefox), or set $BROWSER to one",
    )


def run_checks(*, map: bool = True, pyproject: Path | None = None, report=print) -> list[Check]:
    """Every check, in order, each line printed (``report``) as it is done.

    Args:
        map: compute the timed map (skip it for a quick check).
        pyproject: the ``pyproject.toml`` to compare with (default: the repository's).
        report: called with each line (``print``; ``None`` prints nothing).
    """
    say = report or (lambda line: None)
    dependencies, requires_python = requirements(pyproject)
    checks = []

    def add(check: Check) -> None:
        checks.append(check)
        say(check.line())

    say("versions (pyproject.toml):")
    add(check_python(requires_python))
    if not dependencies:
        add(
            Check(
                "versions",
                False,
                "no pyproject.toml and saliency-tutorial is not installed",
                f"run this from the repository folder, after {_python()} -m pip install -e .",
            )
        )
    for check in check_versions(dependencies):
        add(check)
    say("shipped files:")
    add(check_assets())
    if map:
        say("a saliency map:")
        versions_ok = all(check.ok for check in checks if check.name in ("torch", "torchvision", "captum"))
        if versions_ok:
            add(check_map())
        else:
            add(
                Check(
                    "map",
                    False,
                    "skipped: torch or its companions are missing or the wrong version",
                    "fix the versions above",
                )
            )
    say("widgets and browser:")
    add(check_widgets())
    add(check_browser())
    return checks


def verdict(checks: list[Check]) -> str:
    """``"READY"`` or ``"NOT READY: <the fixes, in plain words>"`` (one line)."""
    failed = [check for check in checks if not check.ok]
    if not failed:
        return "READY"
    fixes = []
    for check in failed:
        fix = f"{check.name}: {check.detail}" + (f" -> {check.fix}" if check.fix else "")
        if fix not in fixes:
            fixes.append(fix)
    return "NOT READY: " + "; ".join(fixes)


def main(argv: list[str] | None = None) -> int:
    """``python -m saliency_lib.course.install_check [--quick]``: print every check and the verdict; 0 ready, 1 not."""
    parser = argparse.ArgumentParser(
        prog="python -m saliency_lib.course.install_check",
        description="Is this computer ready for the saliency tutorial?",
    )
    parser.add_argument("--quick", action="store_true", help="skip the timed map (versions, files, widgets only)")
    parser.add_argument("--pyproject", type=Path, default=None, help="pyproject.toml to compare with")
    args = parser.parse_args(argv)
    print(f"install check of the saliency tutorial ({_python()}, Python {sys.version.split()[0]})")
    checks = run_checks(map=not args.quick, pyproject=args.pyproject)
    print(f"note: {WIDGETS_HELP}")
    result = verdict(checks)
    print(result)
    return 0 if result == "READY" else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

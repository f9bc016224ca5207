"""install_check: READY here; a missing package, a wrong version, an altered asset or broken widgets -> NOT READY
naming it and the fix."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saliency_lib.course import install_check
from saliency_lib.course.install_check import Check, check_versions, run_checks, verdict
from saliency_lib.io import assets

REPO = Path(__file__).resolve().parent.parent


def test_the_command_on_this_machine_ends_in_one_verdict_line():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "saliency_lib.course.install_check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = result.stdout.strip().splitlines()
    last = lines[-1]
    assert last == "READY" or last.startswith("NOT READY: "), result.stdout + result.stderr
    assert sum(line == "READY" or line.startswith("NOT READY") for line in lines) == 1
    assert result.returncode == (0 if last == "READY" else 1)
    # This machine is set up by `make`: it must be ready; if not, the verdict says why.
    assert last == "READY", f"{last}\n{result.stdout}\n{result.stderr}"
    assert "torch: 2.14.1" in result.stdout
    assert any(line.strip().startswith("ok   map: OISE") and line.rstrip().endswith(" s") for line in lines)
    assert "browser:" in result.stdout and "widgets:" in result.stdout


def test_requirements_come_from_pyproject():
    dependencies, python = install_check.requirements()
    assert any(item.startswith("torch==") for item in dependencies)
    assert python and python.startswith(">=")
    assert not any("pytest" in item for item in dependencies)  # the [test] extra is not a participant's need


def test_a_missing_package_is_named_with_its_pip_command():
    [check] = check_versions(["saliency-nonexistent-package==1.2.3"])
    assert not check.ok and check.name == "saliency-nonexistent-package"
    assert "not installed" in check.detail
    assert '-m pip install "saliency-nonexistent-package==1.2.3"' in check.fix
    line = verdict([Check("torch", True, "2.14.1"), check])
    assert line.startswith("NOT READY: saliency-nonexistent-package: not installed (==1.2.3 needed)")
    assert "\n" not in line


def test_a_wrong_version_is_named_with_both_versions(monkeypatch):
    real = metadata.version

    def fake(name):
        return "2.0.0" if name == "torch" else real(name)

    monkeypatch.setattr(install_check.metadata, "version", fake)
    checks = check_versions(["torch==2.14.1", "numpy>=1.24"])
    assert [check.ok for check in checks] == [False, True]
    assert checks[0].detail == "2.0.0 installed, ==2.14.1 needed"
    assert '"torch==2.14.1"' in checks[0].fix and "download.pytorch.org/whl/cpu" in checks[0].fix
    # A CPU build's local label (+cpu) satisfies the pin.
    monkeypatch.setattr(install_check.metadata, "version", lambda name: "2.14.1+cpu")
    assert check_versions(["torch==2.14.1"])[0].ok


def test_the_full_run_turns_not_ready_on_a_missing_package(monkeypatch, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\nrequires-python = ">=3.10"\n'
        'dependencies = ["numpy>=1.24", "saliency-nonexistent-package>=9"]\n'
    )
    lines = []
    checks = run_checks(map=False, pyproject=pyproject, report=lines.append)
    assert any("FAIL saliency-nonexistent-package" in line for line in lines)
    assert verdict(checks).startswith("NOT READY: saliency-nonexistent-package: not installed")


def test_a_failing_asset_is_named(monkeypatch):
    problem = "data/fashion_cnn.pt does not match its sha256 in the manifest (altered or corrupt); re-make it"
    monkeypatch.setattr(assets, "verify", lambda data_dir=None: [problem])
    check = install_check.check_assets()
    assert not check.ok and "fashion_cnn.pt" in check.detail and "git checkout data/" in check.fix
    checks = run_checks(map=False, report=None)
    line = verdict(checks)
    assert line.startswith("NOT READY: assets: 1 problem(s): data/fashion_cnn.pt") and "\n" not in line
    assert install_check.main(["--quick"]) == 1


def test_widgets_without_their_lab_extension_or_in_the_wrong_version(monkeypatch):
    assert install_check.check_widgets().ok  # this machine
    real = metadata.version

    def without_lab_widgets(name):
        if name == "jupyterlab_widgets":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(install_check.metadata, "version", without_lab_widgets)
    check = install_check.check_widgets()
    assert not check.ok and "without jupyterlab_widgets" in check.detail and "pip install" in check.fix

    monkeypatch.setattr(
        install_check.metadata, "version", lambda name: "1.1.0" if name == "jupyterlab_widgets" else real(name)
    )
    check = install_check.check_widgets()
    assert not check.ok and "needs jupyterlab_widgets" in check.detail and "1.1.0 is installed" in check.detail

    monkeypatch.setattr(install_check.metadata, "version", real)
    monkeypatch.setattr(install_check, "_lab_extension_version", lambda: None)
    check = install_check.check_widgets()
    assert not check.ok and "extension is missing" in check.detail
    monkeypatch.setattr(install_check, "_lab_extension_version", lambda: "3.0.0")
    assert "needs 5.x" in install_check.check_widgets().detail


def test_python_check():
    assert install_check.check_python(">=3.10", "3.11.7").ok
    old = install_check.check_python(">=3.10", "3.9.2")
    assert not old.ok and "3.9.2" in old.detail and "Python 3.10" in old.fix


@pytest.mark.parametrize(
    "checks, expected",
    [
        ([Check("a", True, "fine"), Check("b", True, "slow", "use fast mode")], "READY"),
        (
            [Check("a", False, "broken", "fix a"), Check("b", False, "broken", "fix b")],
            "NOT READY: a: broken -> fix a; b: broken -> fix b",
        ),
    ],
)
def test_verdict(checks, expected):
    assert verdict(checks) == expected


# ---- the browser check: fails on a desktop with no graphical browser, says "open the URL" without a display ------


@pytest.fixture
def browsers(monkeypatch):
    """Linux, no $BROWSER, and Python's webbrowser returning what the test puts in ``found`` (None: nothing)."""
    import webbrowser

    found = {"browser": None}

    def get(using=None):
        if found["browser"] is None:
            raise webbrowser.Error("could not locate runnable browser")
        return found["browser"]

    monkeypatch.delenv("BROWSER", raising=False)
    monkeypatch.setattr(install_check.sys, "platform", "linux")
    monkeypatch.setattr("platform.release", lambda: "6.1.0-28-amd64")
    monkeypatch.setattr(webbrowser, "get", get)
    return found


def _display(monkeypatch, on: bool):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(variable, raising=False)
    if on:
        monkeypatch.setenv("DISPLAY", ":0")


@pytest.mark.parametrize("text_browser", [False, True], ids=["none", "only lynx"])
def test_a_desktop_without_a_graphical_browser_is_not_ready(browsers, monkeypatch, text_browser):
    import webbrowser

    _display(monkeypatch, True)
    browsers["browser"] = webbrowser.GenericBrowser("lynx") if text_browser else None
    check = install_check.check_browser()
    assert not check.ok and "no graphical web browser" in check.detail and "install Firefox or Chrome" in check.fix
    assert ("only lynx" in check.detail) == text_browser
    assert verdict([check]).startswith("NOT READY: browser: no graphical web browser found")


def test_the_browser_jupyterlab_will_open_is_named(browsers, monkeypatch):
    import webbrowser

    _display(monkeypatch, True)
    browsers["browser"] = webbrowser.GenericBrowser("firefox")
    check = install_check.check_browser()
    assert check.ok and check.detail == "JupyterLab will open firefox"


@pytest.mark.parametrize("wsl", [False, True], ids=["server", "WSL"])
def test_without_a_display_the_url_is_the_way_in(browsers, monkeypatch, wsl):
    _display(monkeypatch, wsl)  # WSL may have a display (WSLg), but its learners use Windows' browser
    if wsl:
        monkeypatch.setattr("platform.release", lambda: "5.15.153.1-microsoft-standard-WSL2")
    check = install_check.check_browser()
    assert check.ok and "no browser found" in check.detail and "make lab prints a URL" in check.fix

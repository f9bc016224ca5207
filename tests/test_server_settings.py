"""The Jupyter settings `make lab`, `make present` and Binder write (saliency_lib.course.server_settings): the websocket
message limit that lets a 20 MB upload reach the kernel (tornado's default, 10 MiB, drops it without a word), and
JupyterLab's news off by default (its first start asked in a pop-up over the notebook).

The real upload, a 15 MB PNG through Chromium into JupyterLab and into Voila, is in tests/test_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_dry_run
from saliency_lib.course import server_settings
from saliency_lib.io import uploads

REPO = Path(__file__).resolve().parent.parent
TORNADO_DEFAULT = 10 * 2**20  # tornado.websocket's websocket_max_message_size when none is set


def _limits(directory: Path) -> dict[str, int]:
    server = json.loads((directory / "jupyter_server_config.json").read_text())
    voila = json.loads((directory / "voila.json").read_text())
    return {
        "server": server["ServerApp"]["tornado_settings"]["websocket_max_message_size"],
        "voila": voila["Voila"]["tornado_settings"]["websocket_max_message_size"],
    }


def test_the_settings_carry_a_limit_well_above_the_upload_limit(tmp_path):
    written = server_settings.install(tmp_path)
    assert sorted(str(path.relative_to(tmp_path)) for path in written) == [
        "jupyter_server_config.json",
        "labconfig/default_setting_overrides.json",
        "voila.json",
    ]
    limits = _limits(tmp_path)
    # One home for the numbers: the file limit is uploads.MAX_BYTES, the message limit is derived from it.
    assert limits == {"server": uploads.MAX_MESSAGE_BYTES, "voila": uploads.MAX_MESSAGE_BYTES}
    # A 20 MB file base64-encoded in JSON (x 4/3) still fits, and files somewhat over 20 MB arrive (to be refused).
    assert uploads.MAX_MESSAGE_BYTES >= uploads.MAX_BYTES * 4 / 3 + 2**20
    assert uploads.MAX_MESSAGE_BYTES > 2.5 * TORNADO_DEFAULT and uploads.MAX_BYTES > TORNADO_DEFAULT


def test_jupyter_server_and_voila_read_them(tmp_path, monkeypatch):
    from jupyter_server.serverapp import ServerApp
    from voila.app import Voila

    server_settings.install(tmp_path)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))  # the user's configuration directory
    server = ServerApp()
    server.load_config_file()
    assert server.tornado_settings["websocket_max_message_size"] == uploads.MAX_MESSAGE_BYTES
    voila = Voila()
    voila.load_config_file("voila", path=voila.config_file_paths)
    assert voila.tornado_settings["websocket_max_message_size"] == uploads.MAX_MESSAGE_BYTES


def test_the_lab_defaults_turn_the_news_off(tmp_path):
    server_settings.install(tmp_path)
    written = json.loads((tmp_path / "labconfig" / "default_setting_overrides.json").read_text())
    assert written["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}


def test_jupyterlab_reads_the_lab_defaults(tmp_path, monkeypatch):
    import sys

    from jupyter_core.paths import jupyter_path
    from jupyterlab_server.settings_utils import get_settings

    config = tmp_path / "config"
    server_settings.install(config)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    plugin = "@jupyterlab/apputils-extension:notification"
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    if not (schemas / "@jupyterlab" / "apputils-extension" / "notification.json").exists():
        pytest.skip(f"JupyterLab's settings schemas are not in {schemas}")
    found, _ = get_settings(
        str(tmp_path / "app-settings"),  # no overrides.json of its own
        str(schemas),
        str(tmp_path / "user-settings"),  # a learner who never changed a setting
        plugin,
        labextensions_path=jupyter_path("labextensions"),
    )
    defaults = found["schema"]["properties"]
    assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False


def test_install_keeps_other_settings_and_changes_nothing_twice(tmp_path):
    (tmp_path / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"tornado_settings": {"headers": {"X-Test": "1"}}, "port": 9999}})
    )
    server_settings.install(tmp_path)
    server = json.loads((tmp_path / "jupyter_server_config.json").read_text())["ServerApp"]
    assert server["port"] == 9999 and server["tornado_settings"]["headers"] == {"X-Test": "1"}
    assert server["tornado_settings"]["websocket_max_message_size"] == uploads.MAX_MESSAGE_BYTES
    assert server_settings.install(tmp_path) == []


def test_a_broken_file_is_named_in_one_line(tmp_path, capsys):
    (tmp_path / "voila.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"voila\.json is not valid JSON: .*; fix it or move it away"):
        server_settings.install(tmp_path)
    assert server_settings.main(["--config-dir", str(tmp_path)]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _plan(target: str) -> str:
    """What `make TARGET` runs (-n), the install stamp taken as done and the settings as out of date (-W)."""
    return make_dry_run("-o", ".venv/.installed", "-W", "saliency_lib/course/server_settings.py", target)


# How each target starts its server: JupyterLab's script; Voila through Python with Ctrl+C's default handler set.
@pytest.mark.parametrize(
    "target, server", [("lab", ".venv/bin/jupyter lab "), ("present", "from voila.app import main")]
)
def test_make_lab_and_present_write_the_settings_first(target, server):
    plan = _plan(target)
    write = "-m saliency_lib.course.server_settings --config-dir .venv/etc/jupyter"
    assert write in plan, plan
    assert server in plan, plan
    assert plan.index(write) < plan.index(server), plan


def test_make_lab_writes_the_news_setting_where_its_jupyterlab_reads_it():
    # .venv/etc/jupyter is .venv's own configuration directory: .venv/bin/jupyter lab reads it (sys.prefix/etc/jupyter).
    assert "--config-dir .venv/etc/jupyter" in _plan("lab")
    assert "labconfig/default_setting_overrides.json" in server_settings.settings()


def test_binder_writes_them_too():
    post_build = (REPO / "postBuild").read_text()
    assert "python -m saliency_lib.course.server_settings\n" in post_build
    assert (
        'python -m saliency_lib.course.server_settings --config-dir "${JUPYTER_CONFIG_DIR:-$HOME/.jupyter}"'
        in post_build
    )

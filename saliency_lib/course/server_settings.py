"""The Jupyter settings the tutorial needs, written where Jupyter Server, JupyterLab and Voila read them.

``python -m saliency_lib.course.server_settings`` merges them into a Jupyter configuration directory (default: this
environment's, ``sys.prefix/etc/jupyter``, which the environment's ``jupyter lab`` and ``voila`` read, first
among the directories ``jupyter --paths`` lists). ``make lab`` and ``make present`` run it for ``.venv``, and
Binder's ``postBuild`` for its conda environment::

    jupyter_server_config.json   ServerApp.tornado_settings.websocket_max_message_size   (make lab, Binder)
    voila.json                   Voila.tornado_settings.websocket_max_message_size       (make present)
    labconfig/default_setting_overrides.json   JupyterLab's notifications: fetchNews "false", checkForUpdates false

Why: an upload travels from the browser to the kernel as one websocket message, and tornado drops a message over
its ``websocket_max_message_size`` (10 MiB by default) without a word to the learner (the page shows "Restoring
connection" and nothing happens). The limit written is :data:`saliency_lib.io.uploads.MAX_MESSAGE_BYTES` (100 MiB),
derived from the upload limit :data:`saliency_lib.io.uploads.MAX_BYTES` (20 MB, the one home of that number), so a
file up to 20 MB arrives and a larger one gets the upload check's one-line refusal. And JupyterLab's first start
asks in a pop-up whether to fetch Jupyter's news, over the corner of the notebook: the defaults set here answer
"no" (and no update check, which needs the internet too); a learner can still turn both on in Settings, since
these are defaults, not locks (JupyterLab reads ``labconfig/default_setting_overrides.json`` from every Jupyter
configuration directory and merges them, so nobody's own ``overrides.json`` is replaced).

Merging keeps every other setting already in those files; running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..io import uploads

__all__ = ["LAB_DEFAULTS", "settings", "install", "environment_config_dir", "main"]


def environment_config_dir() -> Path:
    """This Python environment's Jupyter configuration directory (``sys.prefix/etc/jupyter``)."""
    return Path(sys.prefix) / "etc" / "jupyter"


#: JupyterLab plugin settings the tutorial changes the defaults of (no news pop-up, no update check).
LAB_DEFAULTS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def settings(max_message_bytes: int = uploads.MAX_MESSAGE_BYTES) -> dict[str, dict]:
    """What the tutorial sets: file (relative to a Jupyter configuration directory) -> settings to merge into it."""
    tornado = {"tornado_settings": {"websocket_max_message_size": int(max_message_bytes)}}
    return {
        "jupyter_server_config.json": {"ServerApp": tornado},
        "voila.json": {"Voila": tornado},
        "labconfig/default_setting_overrides.json": LAB_DEFAULTS,
    }


def _merge(into: dict, new: dict) -> dict:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _read(path: Path) -> dict:
    try:
        current = json.loads(path.read_text(encoding="utf-8") or "{}")
        problem = "" if isinstance(current, dict) else f"a JSON {type(current).__name__}, not an object"
    except json.JSONDecodeError as error:
        problem = f"not valid JSON: {error}"
    if problem:
        raise ValueError(
            f"{path} is {problem}; fix it or move it away, then run "
            "`python -m saliency_lib.course.server_settings` again"
        )
    return current


def install(config_dir: str | Path | None = None) -> list[Path]:
    """Merge :func:`settings` into the files under ``config_dir`` (default :func:`environment_config_dir`).

    Returns:
        The files written (those already carrying the settings are left as they are).

    Raises:
        ValueError: a file there that is not a JSON object (one line: which file, what to do).
    """
    directory = Path(config_dir) if config_dir is not None else environment_config_dir()
    written = []
    for name, wanted in settings().items():
        path = directory / name
        current = _read(path) if path.exists() else {}
        merged = _merge(json.loads(json.dumps(current)), json.loads(json.dumps(wanted)))  # copies: nothing shared
        if merged != current:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m saliency_lib.course.server_settings [--config-dir DIR]``: write the settings; say what changed."""
    parser = argparse.ArgumentParser(
        prog="python -m saliency_lib.course.server_settings",
        description="Write the Jupyter Server, Voila and JupyterLab settings the saliency tutorial needs.",
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help=f"Jupyter configuration directory (default: this environment's, {environment_config_dir()})",
    )
    args = parser.parse_args(argv)
    directory = args.config_dir or environment_config_dir()
    try:
        written = install(directory)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"Jupyter settings already in place in {directory}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The app's settings that outlive a session (theme, sampling defaults), kept in the config file
the README names (``$LMSCOPE_CONFIG``, default ``~/.config/lmscope/config.toml``) under ``[tui]``::

    [tui]
    theme = "gruvbox"

    [tui.sampling]
    temperature = "0.7"
    max_new_tokens = "512"

The rest of the file (named endpoints, comments) is kept as it is: tomlkit edits in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from engine.endpoints import config_path
from scenarios.errors import ScenarioError


@dataclass
class Settings:
    """What the app restores at start: a theme name (``None``: Textual's default) and the
    sampling panel's texts by field."""

    theme: str | None = None
    sampling: dict[str, str] = field(default_factory=dict)


def load_settings(path: Path | None = None) -> Settings:
    """The ``[tui]`` table of the config file; defaults when the file or table is missing.

    Raises:
        ScenarioError: the file is not valid TOML (one line, with the path).
    """
    path = path or config_path()
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, TOMLKitError) as exc:
        raise ScenarioError(f"cannot read settings from {path}: {exc}", hint="fix or remove the [tui] table") \
            from None
    table = document.get("tui", {})
    sampling = table.get("sampling", {})
    theme = table.get("theme")
    return Settings(str(theme) if theme else None, {str(k): str(v) for k, v in sampling.items()})


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write ``settings`` into the ``[tui]`` table, keeping everything else in the file."""
    path = path or config_path()
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except TOMLKitError as exc:
        raise ScenarioError(f"cannot save settings: {path} is not valid TOML ({exc})") from None
    table = document.get("tui")
    if table is None:
        table = tomlkit.table()
        document["tui"] = table
    if settings.theme:
        table["theme"] = settings.theme
    sampling = tomlkit.table()
    for key, value in settings.sampling.items():
        sampling[key] = value
    table["sampling"] = sampling
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomlkit.dumps(document), encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot save settings to {path}: {exc.strerror}") from None

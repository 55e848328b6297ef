"""Errors about scenario files and data, each pointing at the file, line and key at fault."""

from __future__ import annotations

from pathlib import Path

from engine.errors import LmscopeError


class ScenarioError(LmscopeError):
    """A scenario file or its data is invalid. ``str()`` reads ``file:line: key: message``."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 key: str | None = None, hint: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.key = key
        where = ":".join(str(p) for p in (self.path, line) if p is not None)
        prefix = " ".join(p for p in (f"{where}:" if where else "", f"{key}:" if key else "") if p)
        super().__init__(f"{prefix} {message}" if prefix else message, hint)
        self.detail = message


class DataError(ScenarioError):
    """A data file is missing, unreadable or does not match the declared format or fields."""


class StoreError(LmscopeError):
    """The results store cannot be opened, or a run id does not exist."""

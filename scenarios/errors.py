"""Errors about scenario files and data, each pointing at the file, line and key at fault."""

from __future__ import annotations

import os
import time
import traceback
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


def error_log_path() -> Path:
    """Where tracebacks of unexpected errors go (never the terminal)."""
    from engine.gguf_cache import cache_root

    return cache_root() / "logs" / "errors.log"


def log_unexpected(exc: BaseException) -> Path | None:
    """Append ``exc``'s traceback to the error log; the log's path, or None if it cannot be written."""
    path = error_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n")
            fh.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def describe_error(exc: BaseException) -> tuple[str, str | None]:
    """The one-line message and the hint shown for ``exc`` everywhere: the CLI, the app's
    notifications and run events.

    Errors of ours (:class:`LmscopeError`) speak for themselves. Anything else is a bug: its
    traceback goes to the error log, and the line says where.
    """
    if isinstance(exc, LmscopeError):
        return exc.message, exc.hint
    path = log_unexpected(exc)
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = f"unexpected error: {type(exc).__name__}" + (f": {detail}" if detail else "")
    return message, (f"the traceback is in {path}; please report it" if path else "please report it")

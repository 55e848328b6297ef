"""Errors raised by the engine.

Every error carries a one-line ``message`` saying what went wrong and, where there is one, a
``hint`` saying what to do about it. Callers (the CLI, the TUI) show both; nothing here ever
needs a traceback to be understood.
"""

from __future__ import annotations

# The root lives in evaluators (which may not import the engine); this is the same class.
from evaluators.errors import LmscopeError  # noqa: F401  (re-exported)


class ModelNotFoundError(LmscopeError):
    """The model spec names no folder, file or hub repository that exists."""


class HubUnreachableError(LmscopeError):
    """The model is not in the local Hugging Face cache and the hub cannot be reached."""


class InvalidModelError(LmscopeError):
    """The model files exist but cannot be loaded (corrupt GGUF, folder without config, ...)."""


class UnsupportedModelError(LmscopeError):
    """The model loads, but is of a kind lmscope cannot run, or the request does not fit its kind."""


class MissingDependencyError(LmscopeError):
    """A Python package this model needs is not installed."""


class InvalidRequestError(LmscopeError):
    """A request or its generation parameters are invalid (negative temperature, top-p > 1, ...)."""


class ContextLengthError(LmscopeError):
    """The prompt does not fit the model's context and truncation was not allowed."""


class OutOfMemoryError(LmscopeError):
    """The device ran out of memory even at batch size one."""


class GenerationStalledError(LmscopeError):
    """No token arrived from the model within the stall timeout."""


class EngineClosedError(LmscopeError):
    """The engine was closed; create a new one."""


class RemoteServerError(LmscopeError):
    """An OpenAI-compatible server answered with an error, or broke the protocol."""


class ServerUnreachableError(RemoteServerError):
    """The server could not be reached (refused, down, or the connection was lost)."""


class MalformedStreamError(RemoteServerError):
    """The server's event stream could not be parsed (not server-sent events of JSON objects)."""

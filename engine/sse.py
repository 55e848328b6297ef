"""Server-sent events from an OpenAI-compatible server, read with ``httpx-sse``, and the rules
for quoting what such a server says (redacted, one line).

``httpx-sse`` does the parsing (WHATWG event-stream rules: LF / CRLF / CR line ends, ``data:``
lines joined with LF, comments, unknown fields ignored, a last event without its blank line
discarded). What is ours: a bound on how much a server may send without completing an event
(a hostile one could otherwise fill memory), events without data skipped like keep-alives, and
the decoding of each event into a JSON object or a clear error.
"""

from __future__ import annotations

import json
import re
from contextlib import aclosing
from typing import AsyncIterator, Protocol

import httpx
from httpx_sse import EventSource, SSEError, ServerSentEvent

from engine.errors import MalformedStreamError, RemoteServerError

DONE = "[DONE]"
MAX_EVENT_BYTES = 4 << 20  # this much without a whole event is a broken stream, not a token
REDACTED = "[redacted]"


class SSEEvent(Protocol):
    """What :func:`decode_event` reads of an event (``httpx_sse.ServerSentEvent`` has it)."""

    @property
    def event(self) -> str: ...

    @property
    def data(self) -> str: ...


class _Bounded(httpx.AsyncByteStream):
    """A response body that fails once ``limit`` bytes arrived since :meth:`reset` was last called."""

    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.pending = 0

    def reset(self) -> None:
        self.pending = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.pending += len(chunk)
            if self.pending > self.limit:
                raise MalformedStreamError(f"the server sent more than {self.limit} bytes without completing an event")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


async def server_events(response: httpx.Response, secret: str | None = None) -> AsyncIterator[ServerSentEvent]:
    """The events of a streamed response, as they complete; events without data are skipped
    (they carry nothing, like keep-alive comments). ``secret`` is redacted from what an error quotes.

    Raises:
        MalformedStreamError: the response is not an event stream, or more than
            :data:`MAX_EVENT_BYTES` arrived without completing an event.
        httpx.HTTPError: reading failed (timeouts included).
    """
    if not isinstance(response.stream, httpx.AsyncByteStream):
        raise TypeError("server_events needs a response opened with stream=True on an AsyncClient")
    body = _Bounded(response.stream, MAX_EVENT_BYTES)
    response.stream = body
    try:
        async with aclosing(EventSource(response).aiter_sse()) as events:
            async for event in events:
                body.reset()
                if event.data:
                    yield event
    except SSEError:
        kind = response.headers.get("content-type", "").partition(";")[0].strip() or "no content type"
        raise MalformedStreamError(f"the server answered a streamed request with {excerpt(kind, secret, 60)!r}, "
                                   "not an event stream",
                                   hint="is the URL an OpenAI-compatible API (it usually ends in /v1)?") from None


def decode_event(event: SSEEvent, secret: str | None = None) -> dict | None:
    """The JSON object an event carries, or None for the ``[DONE]`` sentinel.

    ``secret`` (the API key) is redacted from any server text quoted in an error.

    Raises:
        RemoteServerError: the event reports an error (``event: error`` or an ``error`` key).
        MalformedStreamError: the data is not a JSON object.
    """
    data = event.data.strip()
    if data == DONE:
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        raise MalformedStreamError(f"the server sent a stream event that is not JSON: {excerpt(data, secret)!r}",
                                   hint="is the URL an OpenAI-compatible API (it usually ends in /v1)?") from None
    if event.event == "error" or (isinstance(obj, dict) and "error" in obj and "choices" not in obj):
        raise RemoteServerError(f"the server failed mid-stream: {error_message(obj, secret)}")
    if not isinstance(obj, dict):
        raise MalformedStreamError(f"the server sent a stream event that is not a JSON object: "
                                   f"{excerpt(data, secret)!r}")
    return obj


def error_message(body: object, secret: str | None = None) -> str:
    """The human-readable message in an error body (OpenAI, FastAPI or plain shapes), one line,
    with ``secret`` redacted."""
    message: object = body
    if isinstance(body, dict):
        message = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(message, dict):
            message = message.get("message", message)
        elif isinstance(message, list):  # FastAPI validation errors
            message = "; ".join(str(m.get("msg", m)) if isinstance(m, dict) else str(m) for m in message)
    return excerpt(message, secret)


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (and ``Bearer <secret>``) replaced by :data:`REDACTED`.

    Every text that came from a server goes through here before it reaches an error, a hint,
    a warning or a log record: a server may echo the API key back (``invalid key sk-...``).
    """
    if not secret:
        return text
    text = re.sub(r"bearer\s+" + re.escape(secret), REDACTED, text, flags=re.IGNORECASE)
    return text.replace(secret, REDACTED)


def excerpt(value: object, secret: str | None, limit: int = 300) -> str:
    """Server text (or any value it was parsed into) as one redacted line of at most ``limit`` characters.

    Redacting comes first: a key cut in half by the shortening would no longer match.
    """
    text = " ".join(redact(str(value), secret).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"

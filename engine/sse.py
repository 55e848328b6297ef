"""An incremental parser for server-sent events (the streaming format of OpenAI-compatible APIs).

Follows the WHATWG event-stream rules that matter here: lines end in LF, CRLF or CR; a blank
line dispatches the event; ``data:`` lines of one event are joined with LF; lines starting with
``:`` are comments; unknown fields are ignored. Bytes may be split anywhere, even inside a
UTF-8 character.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass

from engine.errors import MalformedStreamError, RemoteServerError

DONE = "[DONE]"
MAX_EVENT_CHARS = 4 << 20  # an event this large is a broken stream, not a token
REDACTED = "[redacted]"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its ``event`` type (``"message"`` unless named) and joined data."""

    data: str
    event: str = "message"


class SSEParser:
    """Feed bytes as they arrive; get back the events they complete."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._size = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk``; return the events completed by it (possibly none).

        Raises:
            MalformedStreamError: an event grew beyond :data:`MAX_EVENT_CHARS`.
        """
        self._buffer += self._decoder.decode(chunk)
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            line, self._buffer = self._buffer[:cut[0]], self._buffer[cut[1]:]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._size > MAX_EVENT_CHARS:
            raise MalformedStreamError(f"the server sent an event of more than {MAX_EVENT_CHARS} characters")
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: return an event left without its closing blank line, if any."""
        rest = self._buffer + self._decoder.decode(b"", final=True)
        self._buffer = ""
        events = []
        if rest:
            event = self._line(rest)
            if event is not None:
                events.append(event)
        event = self._line("")
        if event is not None:
            events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent("\n".join(self._data), self._event or "message")
            self._data, self._event, self._size = [], "", 0
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._size += len(value)
        elif field == "event":
            self._event = value
        return None  # "id", "retry" and unknown fields are ignored, as the standard says


def _line_end(text: str) -> tuple[int, int] | None:
    """(end of the first line, start of the next) or None if no full line is buffered.

    A lone CR at the very end may be the first half of CRLF, so it waits for more bytes.
    """
    lf, cr = text.find("\n"), text.find("\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, lf + 1
    if cr + 1 < len(text):
        return cr, cr + (2 if text[cr + 1] == "\n" else 1)
    return None


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

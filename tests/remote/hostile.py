"""A scripted OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose: echoes the API
key, sends malformed events, keeps a stream open with nothing in it, trickles bytes forever.

Runs on the test's own event loop (``async with HostileServer(routes) as server``). Each route
is an async generator of raw response bytes (status line and headers included); the connection
closes after each response. A route that never ends stops when the client goes away, or after
:data:`MAX_REPLY_S` at the latest, so no test can hang on it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

MODEL = "m"
MAX_REPLY_S = 20.0


@dataclass(frozen=True)
class Request:
    """What the client sent, and when it arrived (``time.monotonic()``)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


Route = Callable[[Request], AsyncIterator[bytes]]


def _head(status: int, content_type: str, length: int | None = None, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def raw_reply(body: str | bytes, status: int = 200, content_type: str = "text/plain",
              headers: dict[str, str] | None = None) -> Route:
    """One whole response."""
    data = body.encode() if isinstance(body, str) else body

    async def reply(_request: Request) -> AsyncIterator[bytes]:
        yield _head(status, content_type, len(data), headers) + data

    return reply


def json_reply(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    """One whole JSON response."""
    return raw_reply(json.dumps(obj), status, "application/json", headers)


def in_turn(*routes: Route) -> Route:
    """The first request gets the first route's reply, the next the second's, ...; the last repeats."""
    served = 0

    async def reply(request: Request) -> AsyncIterator[bytes]:
        nonlocal served
        route = routes[min(served, len(routes) - 1)]
        served += 1
        async for data in route(request):
            yield data

    return reply


def endless_event_reply(piece_bytes: int = 64 << 10) -> Route:
    """An event stream whose first event never ends: ``data: xxxx...`` with no line end, ever."""

    async def reply(_request: Request) -> AsyncIterator[bytes]:
        yield _head(200, "text/event-stream") + b"data: "
        while True:
            yield b"x" * piece_bytes

    return reply


def sse_reply(*events: str, repeat: str | None = None, every_s: float = 0.05) -> Route:
    """An event stream: ``events`` (each ``"data: ..."`` or with more fields, sent as one event),
    then ``repeat`` (raw text, e.g. a keep-alive comment) every ``every_s`` until the client
    leaves; without ``repeat`` the stream ends."""

    async def reply(_request: Request) -> AsyncIterator[bytes]:
        yield _head(200, "text/event-stream")
        for event in events:
            yield (event + "\n\n").encode()
        if repeat is None:
            return
        while True:
            await asyncio.sleep(every_s)
            yield repeat.encode()

    return reply


def trickle_reply(every_s: float = 0.05) -> Route:
    """A JSON answer announced as a megabyte long, of which one byte arrives every ``every_s``."""

    async def reply(_request: Request) -> AsyncIterator[bytes]:
        yield _head(200, "application/json", 1 << 20) + b"{"
        while True:
            await asyncio.sleep(every_s)
            yield b" "

    return reply


def chunk(text: str = "", finish: str | None = None) -> str:
    """One ``data:`` line of a chat completion chunk."""
    delta = {"content": text} if text else {}
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


@dataclass
class HostileServer:
    """Serves ``routes`` (``"POST /v1/chat/completions"`` → route); ``GET /v1/models`` lists
    :data:`MODEL` unless overridden. Records every request."""

    routes: dict[str, Route]
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self.routes = {"GET /v1/models": json_reply({"data": [{"id": MODEL}]}), **self.routes}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> "HostileServer":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await _read_request(reader)
            self.requests.append(request)
            route = self.routes.get(f"{request.method} {request.path}",
                                    json_reply({"error": {"message": "no such route"}}, 404))
            started = time.monotonic()
            async for data in route(request):
                writer.write(data)
                await writer.drain()
                if time.monotonic() - started > MAX_REPLY_S:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client left (or the test ended): that is how endless replies end
        finally:
            writer.close()
            self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader) -> Request:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    method, path, _version = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)

"""A server that cannot be trusted: it echoes the API key back, sends malformed or empty
streams, or trickles bytes forever. The key never reaches an error, a hint or a log record,
and no request outlives its stall timeout or its overall deadline."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from engine import (
    ChatRequest,
    Engine,
    GenerationParams,
    GenerationResult,
    GenerationStalledError,
    InvalidRequestError,
    LmscopeError,
    ModelNotFoundError,
    RemoteServerError,
)
from engine.errors import MalformedStreamError
from tests.remote.hostile import (
    HostileServer,
    Route,
    chunk,
    json_reply,
    raw_reply,
    sse_reply,
    trickle_reply,
)

KEY = "sk-Zq8hostile0123456789abcdef"
LEAK = KEY[:8]  # even a piece of the key cut off by shortening is a leak
KEY_ENV = "HOSTILE_API_KEY"
SPEC = "openai:hostile"
CHAT = "POST /v1/chat/completions"
STALL_S, DEADLINE_S = 0.5, 1.5
LIMIT_S = 10.0  # a test that has not ended by then would have hung


@pytest.fixture
def configure(endpoint_config, monkeypatch):
    """Point the ``hostile`` endpoint at a server, with the key in its variable and small timeouts."""
    monkeypatch.setenv(KEY_ENV, KEY)

    def write(server: HostileServer, stall_s: float = STALL_S, deadline_s: float = DEADLINE_S) -> None:
        endpoint_config(f'[endpoints.hostile]\nurl = "{server.url}"\nmodel = "m"\napi_key_env = "{KEY_ENV}"\n'
                        f"stall_timeout_s = {stall_s}\nrequest_timeout_s = {deadline_s}\nmax_retries = 0\n")

    return write


def chat(max_new_tokens: int = 8) -> ChatRequest:
    return ChatRequest(SPEC, ({"role": "user", "content": "Hi"},), GenerationParams(max_new_tokens=max_new_tokens))


async def stream(engine: Engine) -> GenerationResult:
    async for event in engine.stream(chat()):
        if isinstance(event, GenerationResult):
            return event
    raise AssertionError("no result")


async def batch(engine: Engine) -> GenerationResult:
    """Two requests without a delta callback: plain (non-streamed) requests."""
    return (await engine.generate([chat(), chat()]))[0]


async def load(engine: Engine) -> None:
    await engine.load(SPEC)


def assert_no_key(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    shown = [str(error), repr(error)] + [r.getMessage() for r in caplog.records]
    if isinstance(error, LmscopeError):
        shown += [error.message, error.hint or ""]
    for text in shown:
        assert LEAK not in text, text


LONG = "x" * 270  # puts the key where a 300-character message is cut

ECHOES: dict[str, tuple[dict[str, Route], object, type[LmscopeError]]] = {
    "sse error event": ({CHAT: sse_reply(f'event: error\ndata: {{"error": {{"message": "bad: Bearer {KEY}"}}}}')},
                        stream, RemoteServerError),
    "event that is not JSON": ({CHAT: sse_reply(f"data: <html>invalid token {KEY}</html>")},
                               stream, MalformedStreamError),
    "event that is not an object": ({CHAT: sse_reply(f'data: ["{KEY}"]')}, stream, MalformedStreamError),
    "chunk without choices": ({CHAT: sse_reply(f'data: {{"echo": {{"authorization": "Bearer {KEY}"}}}}')},
                              stream, MalformedStreamError),
    "chunk of the wrong shape": ({CHAT: sse_reply('data: {"choices": [{"delta": {"content": "a"}, "logprobs": '
                                                  f'{{"content": [{{"token": "a", "logprob": "{KEY}"}}]}}}}]}}')},
                                 stream, MalformedStreamError),
    "answer without choices": ({CHAT: json_reply({"echo": KEY})}, batch, MalformedStreamError),
    "401 body, key where it is cut": ({CHAT: json_reply({"error": {"message": f"{LONG} invalid key {KEY}"}}, 401)},
                                      stream, RemoteServerError),
    "500 plain-text body": ({CHAT: raw_reply(f"Internal error. Headers: Authorization: Bearer {KEY}", 500)},
                            batch, RemoteServerError),
    "422 body": ({CHAT: json_reply({"detail": [{"msg": f"bad header bearer {KEY}"}]}, 422)},
                 stream, InvalidRequestError),
    "served model names": ({"GET /v1/models": json_reply({"data": [{"id": f"echo-{KEY}"}]}),
                            CHAT: json_reply({"error": {"message": "The model `m` does not exist."}}, 404)},
                           stream, ModelNotFoundError),
    "401 on connecting": ({"GET /v1/models": json_reply({"error": f"Bearer {KEY} is not a valid key"}, 401)},
                          load, RemoteServerError),
}


@pytest.mark.parametrize("case", list(ECHOES))
async def test_a_key_echoed_by_the_server_is_redacted(case, engine, configure, caplog):
    routes, call, expected = ECHOES[case]
    caplog.set_level(logging.DEBUG)
    async with HostileServer(routes) as server:
        configure(server)
        with pytest.raises(expected) as raised:
            await asyncio.wait_for(call(engine), LIMIT_S)
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"  # the key was sent, and echoed
    assert_no_key(raised.value, caplog)
    assert "[redacted]" in str(raised.value) + "".join(r.getMessage() for r in caplog.records)


EMPTY = {
    "empty chunks": sse_reply(chunk(), repeat=chunk() + "\n\n"),
    "keep-alive comments": sse_reply(chunk(), repeat=": keep-alive\n\n"),
    "a role, then empty deltas": sse_reply('data: {"choices": [{"delta": {"role": "assistant"}}]}',
                                           repeat='data: {"choices": [{"index": 0, "delta": {}}]}\n\n'),
}


@pytest.mark.parametrize("case", list(EMPTY))
async def test_a_stream_without_content_stalls(case, engine, configure):
    async with HostileServer({CHAT: EMPTY[case]}) as server:
        configure(server, deadline_s=LIMIT_S)  # the stall timer alone must end it
        started = time.monotonic()
        with pytest.raises(GenerationStalledError, match="sent nothing for 0.5 s"):
            await asyncio.wait_for(stream(engine), LIMIT_S)
    assert time.monotonic() - started < STALL_S + 2


async def test_a_stream_that_never_finishes_hits_the_deadline(engine, configure):
    # Text keeps coming (so it never stalls) but the answer never ends.
    async with HostileServer({CHAT: sse_reply(chunk("a"), repeat=chunk("a") + "\n\n")}) as server:
        configure(server)
        started = time.monotonic()
        with pytest.raises(GenerationStalledError, match="did not finish the request within 1.5 s") as raised:
            await asyncio.wait_for(stream(engine), LIMIT_S)
    assert DEADLINE_S <= time.monotonic() - started < DEADLINE_S + 2
    assert "request_timeout_s" in raised.value.hint


@pytest.mark.parametrize("call", [batch, load], ids=["answer", "connecting"])
async def test_a_trickled_body_hits_the_deadline(call, engine, configure):
    async with HostileServer({CHAT: trickle_reply()}) as server:
        if call is load:
            server.routes["GET /v1/models"] = trickle_reply()
        configure(server)
        started = time.monotonic()
        with pytest.raises(GenerationStalledError, match="within 1.5 s"):
            await asyncio.wait_for(call(engine), LIMIT_S)
    assert time.monotonic() - started < DEADLINE_S + 2


async def test_a_stream_held_open_after_the_finish_still_answers(engine, configure):
    async with HostileServer({CHAT: sse_reply(chunk("Hi"), chunk(finish="stop"), repeat=": ping\n\n")}) as server:
        configure(server, deadline_s=LIMIT_S)
        started = time.monotonic()
        result = await asyncio.wait_for(stream(engine), LIMIT_S)
    assert (result.text, result.finish_reason) == ("Hi", "stop")
    assert time.monotonic() - started < STALL_S + 2

"""A server that cannot be trusted: it echoes the API key back, sends malformed or empty
streams, or trickles bytes forever. The key never reaches an error, a hint or a log record,
and no request outlives its stall timeout or its overall deadline."""

from __future__ import annotations

import asyncio
import json
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
    endless_event_reply,
    in_turn,
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


async def test_an_endless_event_is_refused(engine, configure):
    async with HostileServer({CHAT: endless_event_reply()}) as server:
        configure(server, stall_s=LIMIT_S, deadline_s=LIMIT_S)  # the size bound alone must end it
        with pytest.raises(MalformedStreamError, match="without completing an event"):
            await asyncio.wait_for(stream(engine), LIMIT_S)


async def test_a_streamed_request_answered_without_an_event_stream_is_malformed(engine, configure, caplog):
    answer = {"choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}]}
    async with HostileServer({CHAT: raw_reply(json.dumps(answer), content_type=f"application/{KEY}")}) as server:
        configure(server)
        with pytest.raises(MalformedStreamError, match="not an event stream") as raised:
            await asyncio.wait_for(stream(engine), LIMIT_S)
    assert_no_key(raised.value, caplog)


async def test_busy_answers_are_retried_after_retry_after(engine, endpoint_config):
    """429 and 503 are retried (connection errors too: see the killed-server test), waiting at
    least what Retry-After asks even when the endpoint's own backoff is shorter."""
    busy = json_reply({"error": {"message": "slow down"}}, 429, headers={"Retry-After": "0.3"})
    down = raw_reply("overloaded", 503, headers={"Retry-After": "0"})
    routes = {CHAT: in_turn(busy, down, sse_reply(chunk("Hi"), chunk(finish="stop")))}
    async with HostileServer(routes) as server:
        endpoint_config(f'[endpoints.busy]\nurl = "{server.url}"\nmodel = "m"\nmax_retries = 2\nbackoff_s = 0.001\n')
        events = [e async for e in engine.stream(ChatRequest("openai:busy", ({"role": "user", "content": "Hi"},)))]
    result = events[-1]
    assert (result.text, result.finish_reason) == ("Hi", "stop")
    tries = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert len(tries) == 3 and tries[1].at - tries[0].at >= 0.3


async def test_a_server_still_busy_after_the_last_retry_is_an_error(engine, endpoint_config):
    busy = json_reply({"error": {"message": "rate limited, slow down"}}, 429)
    async with HostileServer({CHAT: busy}) as server:
        endpoint_config(f'[endpoints.busy]\nurl = "{server.url}"\nmodel = "m"\nmax_retries = 1\nbackoff_s = 0.001\n')
        with pytest.raises(InvalidRequestError, match=r"\(429\): rate limited"):
            await asyncio.wait_for(engine.generate([ChatRequest("openai:busy", ({"role": "user", "content": "Hi"},))]),
                                   LIMIT_S)
    assert len([r for r in server.requests if r.path == "/v1/chat/completions"]) == 2


async def test_cancel_ends_a_request_whose_server_sends_nothing(engine, configure):
    async with HostileServer({CHAT: sse_reply(chunk("a"), repeat=": ping\n\n")}) as server:
        configure(server, stall_s=LIMIT_S, deadline_s=LIMIT_S)
        request = chat()
        events = []
        async for event in engine.stream(request):
            events.append(event)
            if len(events) == 1:
                assert engine.cancel(request.request_id)
    result = events[-1]
    assert isinstance(result, GenerationResult) and (result.text, result.finish_reason) == ("a", "cancelled")
    assert engine.in_flight(SPEC) == 0

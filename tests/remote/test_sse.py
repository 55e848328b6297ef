"""Server-sent events as the remote backend reads them: httpx-sse parses a real httpx response
(bytes split anywhere, malformed, errors); what is ours is checked here: events without data
skipped, a bound on an event's size, a response that is no event stream, decoding, redaction."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest
from httpx_sse import ServerSentEvent

from engine.errors import MalformedStreamError, RemoteServerError
from engine.sse import MAX_EVENT_BYTES, decode_event, error_message, excerpt, redact, server_events

STREAM = (
    'data: {"choices": [{"delta": {"content": "Gr\u00fc\u00df"}}]}\n\n'
    ": keep-alive comment\n\n"
    'data: {"choices": [{"delta": {"content": " \u4f60\u597d"}}]}\r\n\r\n'
    "id: 7\nretry: 100\nunknown-field: x\nevent: message\n"
    'data: {"choices": [],\ndata:  "usage": {"prompt_tokens": 3}}\n\n'
    "data: [DONE]\n\n"
).encode()


def response(chunks: list[bytes], content_type: str = "text/event-stream") -> httpx.Response:
    """A streamed response whose body arrives in ``chunks``."""

    async def body() -> AsyncIterator[bytes]:
        for piece in chunks:
            yield piece

    return httpx.Response(200, headers={"content-type": content_type}, content=body())


async def parse_all(chunks: list[bytes], content_type: str = "text/event-stream") -> list[tuple[str, str]]:
    return [(event.event, event.data) async for event in server_events(response(chunks, content_type))]


async def test_events_are_the_same_however_the_bytes_are_split():
    whole = await parse_all([STREAM])
    assert [data for _, data in whole] == [
        '{"choices": [{"delta": {"content": "Grüß"}}]}',
        '{"choices": [{"delta": {"content": " 你好"}}]}',
        '{"choices": [],\n "usage": {"prompt_tokens": 3}}',
        "[DONE]",
    ]
    for cut in range(1, len(STREAM)):  # including inside multi-byte characters and CRLF pairs
        assert await parse_all([STREAM[:cut], STREAM[cut:]]) == whole, cut
    assert await parse_all([bytes([b]) for b in STREAM]) == whole


async def test_lone_cr_line_endings_and_an_unterminated_last_event():
    # The event stream standard discards an event the stream ends inside of.
    events = await parse_all([b'data: {"a": 1}\r\rdata: {"b": 2}'])
    assert events == [("message", '{"a": 1}')]


async def test_named_events_and_events_without_data():
    events = await parse_all([b"\n\n\nevent: ping\n\nid: 3\n\ndata:\n\nretry: 10\n\n"
                              b"event: error\ndata: {\"error\": {\"message\": \"boom\"}}\n\n"])
    assert events == [("error", '{"error": {"message": "boom"}}')]  # the empty ones carry nothing
    with pytest.raises(RemoteServerError, match="failed mid-stream: boom"):
        decode_event(ServerSentEvent(event="error", data=events[0][1]))


def test_decode_event_json_done_and_malformed():
    assert decode_event(ServerSentEvent(data='{"choices": []}')) == {"choices": []}
    assert decode_event(ServerSentEvent(data=" [DONE] ")) is None
    with pytest.raises(MalformedStreamError, match="not JSON"):
        decode_event(ServerSentEvent(data='{"choices": [{"delta": '))  # cut off mid-object
    with pytest.raises(MalformedStreamError, match="not JSON"):
        decode_event(ServerSentEvent(data="<html>502 Bad Gateway</html>"))
    with pytest.raises(MalformedStreamError, match="not a JSON object"):
        decode_event(ServerSentEvent(data="[1, 2]"))
    with pytest.raises(RemoteServerError, match="out of memory"):
        decode_event(ServerSentEvent(data='{"error": "CUDA out of memory"}'))  # transformers serve's mid-stream error


async def test_an_endless_event_is_refused_but_many_small_ones_are_not():
    piece = b"x" * (64 << 10)
    endless = [b"data: "] + [piece] * (MAX_EVENT_BYTES // len(piece) + 2)
    with pytest.raises(MalformedStreamError, match="more than .* bytes without completing an event"):
        await parse_all(endless)
    event = b"data: " + piece + b"\n\n"
    many = [event] * (MAX_EVENT_BYTES // len(event) + 4)  # more than the bound in all, each one small
    assert len(await parse_all(many)) == len(many)


async def test_a_response_that_is_not_an_event_stream_is_malformed():
    with pytest.raises(MalformedStreamError, match="'application/json', not an event stream"):
        await parse_all([b'{"choices": []}'], "application/json; charset=utf-8")


def test_error_message_shapes():
    assert error_message({"error": {"message": "The model `x` does not exist.", "type": "NotFoundError"}}) == \
        "The model `x` does not exist."
    assert error_message({"detail": "Server is pinned to 'a'; requested 'b'."}) == "Server is pinned to 'a'; requested 'b'."
    assert error_message({"detail": [{"msg": "field required"}, {"msg": "bad type"}]}) == "field required; bad type"
    assert error_message("Internal\n  Server   Error") == "Internal Server Error"
    assert len(error_message("x" * 5000)) == 300


def test_redaction_covers_the_bearer_form_and_comes_before_shortening():
    key = "sk-secret-key"
    assert redact(f"BEARER  {key}; again: {key}", key) == "[redacted]; again: [redacted]"
    assert redact(f"no key set: {key}", None) == f"no key set: {key}"
    cut = excerpt("x" * 285 + " " + key, key)  # unredacted, the cut would keep "sk-secret"
    assert cut.endswith("[redacted]") and "sk-sec" not in cut
    assert "sk-sec" not in error_message({"error": {"message": "x" * 295 + key}}, key)
    with pytest.raises(RemoteServerError) as raised:
        decode_event(ServerSentEvent(data=f'{{"error": "bad key {key}"}}'), key)
    assert key not in str(raised.value)

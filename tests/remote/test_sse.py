"""The server-sent events parser, fed bytes directly (split anywhere, malformed, errors)."""

from __future__ import annotations

import pytest

from engine.errors import MalformedStreamError, RemoteServerError
from engine.sse import MAX_EVENT_CHARS, SSEEvent, SSEParser, decode_event, error_message, excerpt, redact

STREAM = (
    'data: {"choices": [{"delta": {"content": "Gr\u00fc\u00df"}}]}\n\n'
    ": keep-alive comment\n\n"
    'data: {"choices": [{"delta": {"content": " \u4f60\u597d"}}]}\r\n\r\n'
    "id: 7\nretry: 100\nunknown-field: x\nevent: message\n"
    'data: {"choices": [],\ndata:  "usage": {"prompt_tokens": 3}}\n\n'
    "data: [DONE]\n\n"
).encode()


def parse_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def test_events_are_the_same_however_the_bytes_are_split():
    whole = parse_all([STREAM])
    assert [e.data for e in whole] == [
        '{"choices": [{"delta": {"content": "Grüß"}}]}',
        '{"choices": [{"delta": {"content": " 你好"}}]}',
        '{"choices": [],\n "usage": {"prompt_tokens": 3}}',
        "[DONE]",
    ]
    for cut in range(1, len(STREAM)):  # including inside multi-byte characters and CRLF pairs
        assert parse_all([STREAM[:cut], STREAM[cut:]]) == whole, cut
    assert parse_all([bytes([b]) for b in STREAM]) == whole


def test_lone_cr_line_endings_and_an_unterminated_last_event():
    events = parse_all([b'data: {"a": 1}\r\rdata: {"b": 2}'])
    assert [e.data for e in events] == ['{"a": 1}', '{"b": 2}']


def test_named_events_and_blank_lines_without_data():
    events = parse_all([b"\n\n\nevent: error\ndata: {\"error\": {\"message\": \"boom\"}}\n\n"])
    assert events == [SSEEvent('{"error": {"message": "boom"}}', "error")]
    with pytest.raises(RemoteServerError, match="failed mid-stream: boom"):
        decode_event(events[0])


def test_decode_event_json_done_and_malformed():
    assert decode_event(SSEEvent('{"choices": []}')) == {"choices": []}
    assert decode_event(SSEEvent(" [DONE] ")) is None
    with pytest.raises(MalformedStreamError, match="not JSON"):
        decode_event(SSEEvent('{"choices": [{"delta": '))  # cut off mid-object
    with pytest.raises(MalformedStreamError, match="not JSON"):
        decode_event(SSEEvent("<html>502 Bad Gateway</html>"))
    with pytest.raises(MalformedStreamError, match="not a JSON object"):
        decode_event(SSEEvent("[1, 2]"))
    with pytest.raises(RemoteServerError, match="out of memory"):
        decode_event(SSEEvent('{"error": "CUDA out of memory"}'))  # transformers serve's mid-stream error


def test_an_endless_event_is_refused():
    parser = SSEParser()
    parser.feed(b"data: " + b"x" * 1024 + b"\n")
    with pytest.raises(MalformedStreamError, match="more than"):
        parser.feed(b"data: " + b"x" * MAX_EVENT_CHARS + b"\n")


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
        decode_event(SSEEvent(f'{{"error": "bad key {key}"}}'), key)
    assert key not in str(raised.value)

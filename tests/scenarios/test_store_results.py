"""Finished chat answers kept with their prompt and tokens, and stores from before that still open."""

from __future__ import annotations

import math
import random
import sqlite3

import pytest

from engine import GenerationResult, TokenLogprob, Usage
from scenarios.result_record import result_from_record, result_record
from scenarios.store import Store

# The chat tables as the first release created them: no ``result`` column.
OLD_CHAT_SCHEMA = """
CREATE TABLE chats (id TEXT PRIMARY KEY, title TEXT NOT NULL, model TEXT NOT NULL, settings TEXT NOT NULL,
                    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE chat_messages (chat_id TEXT NOT NULL REFERENCES chats(id), idx INTEGER NOT NULL, role TEXT NOT NULL,
                            content TEXT NOT NULL, usage TEXT, created_at REAL NOT NULL, PRIMARY KEY (chat_id, idx));
INSERT INTO chats VALUES ('old1', 'Hi', 'default', '{"system_prompt": "", "sampling": {}}', 1.0, 2.0);
INSERT INTO chat_messages VALUES ('old1', 0, 'user', 'Hi', NULL, 1.0);
INSERT INTO chat_messages VALUES ('old1', 1, 'assistant', 'Hello!', '{"new_tokens": 2, "finish_reason": "stop"}', 2.0);
"""

ODD_TOKENS = ["Hello", " world", "\n", "", "中", "\ufffd", "\"quoted\"", "\\", "<|end|>", "\t"]


def fake_result(num_tokens: int, top_k: int = 5, seed: int = 0) -> GenerationResult:
    """An answer with varied token texts and full-precision log-probabilities (one of them -inf)."""
    rng = random.Random(seed)

    def token(token_id: int) -> TokenLogprob:
        return TokenLogprob(token_id, ODD_TOKENS[token_id % len(ODD_TOKENS)] + str(token_id % 7), -rng.random() * 12)

    ids = tuple(rng.randrange(49_152) for _ in range(num_tokens))
    logprobs = tuple(token(i) for i in ids)
    top = tuple(tuple(token(rng.randrange(49_152)) for _ in range(top_k)) for _ in ids)
    logprobs = logprobs[:-1] + (TokenLogprob(ids[-1], "x", -math.inf),)
    usage = Usage(prompt_tokens=31, new_tokens=num_tokens, time_to_first_token_s=0.12, total_time_s=9.5,
                  device="cpu", dtype="float32", seed=None)
    return GenerationResult("req1", "default", "".join(t.token for t in logprobs), ids, "length", usage,
                            "<|user|>Hi<|end|><|assistant|>", logprobs, top, ("prompt truncated",))


def test_result_record_round_trips_through_the_store_exactly(tmp_path):
    path = tmp_path / "results.sqlite"
    original = fake_result(2000)
    store = Store(path)
    chat = store.create_chat("default", {})
    store.add_message(chat, "user", "Hi")
    store.add_message(chat, "assistant", original.text, usage={"new_tokens": 2000}, result=result_record(original))
    rebuilt = result_from_record(Store(path).last_answer_result(chat))
    assert rebuilt == original
    assert rebuilt.logprobs[-1].logprob == -math.inf
    (size,) = store._db.execute("SELECT LENGTH(result) FROM chat_messages WHERE role = 'assistant'").fetchone()
    assert size < 600_000  # 2,000 tokens with top-5 alternatives, stored compactly
    assert store.chat_messages(chat)[1] == {"role": "assistant", "content": original.text,
                                            "usage": {"new_tokens": 2000}}


def test_last_answer_result_is_none_without_one(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    chat = store.create_chat("default", {})
    assert store.last_answer_result(chat) is None
    store.add_message(chat, "user", "Hi")
    store.add_message(chat, "assistant", "Hel", usage={"finish_reason": "cancelled"})  # a stopped answer
    assert store.last_answer_result(chat) is None
    record = result_record(fake_result(3))
    store.add_message(chat, "assistant", "Hello", result=record)  # regenerated: the later one counts
    assert store.last_answer_result(chat) == record


def test_unknown_record_format_is_a_value_error():
    record = result_record(fake_result(2)) | {"format": 99}
    with pytest.raises(ValueError, match="unknown answer record format 99"):
        result_from_record(record)
    with pytest.raises(ValueError, match="malformed"):
        result_from_record({"format": 1, "tokens": []})


def test_a_store_from_before_results_opens_and_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_CHAT_SCHEMA)
    store = Store(path)
    assert store.chat_messages("old1") == [
        {"role": "user", "content": "Hi", "usage": None},
        {"role": "assistant", "content": "Hello!", "usage": {"new_tokens": 2, "finish_reason": "stop"}},
    ]
    assert store.last_answer_result("old1") is None
    record = result_record(fake_result(4))
    store.add_message("old1", "assistant", "Hello again", result=record)
    assert Store(path).last_answer_result("old1") == record  # a second open finds the column in place
    columns = [row[1] for row in store._db.execute("PRAGMA table_info(chat_messages)")]
    assert columns.count("result") == 1

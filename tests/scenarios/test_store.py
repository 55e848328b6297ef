"""The results store: chats persist as they happen; a second connection sees committed rows."""

from __future__ import annotations

import pytest

from scenarios.errors import StoreError
from scenarios.store import Store


def test_chats_persist_message_by_message(tmp_path):
    path = tmp_path / "results.sqlite"
    store = Store(path)
    chat = store.create_chat("default", {"system": "Be brief.", "temperature": 0.7, "seed": 1})
    store.add_message(chat, "user", "What is BLEU?")
    store.add_message(chat, "assistant", "A translation metric.", usage={"new_tokens": 5, "tokens_per_s": 30.0})
    reader = Store(path)  # e.g. the app reopened after a crash: nothing committed is lost
    (saved,) = reader.chats()
    assert saved["title"] == "What is BLEU?" and saved["settings"]["seed"] == 1
    assert reader.chat_messages(chat) == [
        {"role": "user", "content": "What is BLEU?", "usage": None},
        {"role": "assistant", "content": "A translation metric.", "usage": {"new_tokens": 5, "tokens_per_s": 30.0}},
    ]
    assert reader._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_and_ambiguous_run_ids(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    with pytest.raises(StoreError, match="no run with id 'abc'"):
        store.run("abc")


def test_unwritable_store_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the results store"):
        Store(blocker / "results.sqlite")

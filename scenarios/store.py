"""The results store: runs, their examples and chats in one SQLite file (WAL).

Every finished example is committed as it finishes, so a run killed mid-way loses at most the
examples in flight and can be resumed.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from scenarios.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    scenario_name TEXT NOT NULL,
    scenario_path TEXT,
    scenario_hash TEXT NOT NULL,
    scenario_text TEXT NOT NULL,
    models TEXT NOT NULL,          -- JSON: list of model info (name, source, kind, device, dtype, ...)
    generation TEXT NOT NULL,      -- JSON: generation settings
    seed INTEGER NOT NULL,
    example_limit INTEGER,
    total INTEGER NOT NULL,
    versions TEXT NOT NULL,        -- JSON: package versions
    signatures TEXT NOT NULL,      -- JSON: model -> metric -> signature
    started_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL           -- running | finished | cancelled | failed | interrupted
);
CREATE TABLE IF NOT EXISTS examples (
    run_id TEXT NOT NULL REFERENCES runs(id),
    model TEXT NOT NULL,
    example_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    input TEXT NOT NULL,
    prompt TEXT NOT NULL,
    output TEXT NOT NULL,
    refs TEXT NOT NULL,            -- JSON list
    scores TEXT NOT NULL,          -- JSON: metric -> score
    likelihood TEXT,               -- JSON: engine perplexity sums, when scored
    latency_s REAL NOT NULL,
    new_tokens INTEGER NOT NULL,
    error TEXT,
    finished_at REAL NOT NULL,
    PRIMARY KEY (run_id, model, example_id)
);
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    model TEXT NOT NULL,
    settings TEXT NOT NULL,        -- JSON: system prompt, sampling settings
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chat_messages (
    chat_id TEXT NOT NULL REFERENCES chats(id),
    idx INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    usage TEXT,                    -- JSON, for answers
    created_at REAL NOT NULL,
    result TEXT,                   -- JSON, for finished answers: prompt and tokens (scenarios.result_record)
    PRIMARY KEY (chat_id, idx)
);
"""

# Columns added after the first release: (table, column, declaration). Older stores get them on open.
ADDED_COLUMNS = (
    ("chat_messages", "result", "TEXT"),
    ("runs", "pid", "INTEGER"),            # the process running it, to find runs whose process is gone
    ("runs", "host", "TEXT"),
    ("runs", "data_hash", "TEXT"),         # content hash of the data files when the run began
    ("runs", "model_errors", "TEXT"),      # JSON: model -> why it failed as a whole
    ("runs", "language", "TEXT"),          # the language every metric was told (declared or detected)
    ("examples", "warnings", "TEXT"),      # JSON list: truncated input, scoring warnings, ...
    ("chats", "comparison", "TEXT"),       # compare screen: the comparison a pane's chat belongs to
    ("chats", "pane", "TEXT"),             # compare screen: the pane's letter (A, B, ...)
)
RUN_STATUSES = ("running", "finished", "failed", "cancelled", "interrupted")
# Runs that can be continued with ``--resume``.
RESUMABLE = ("failed", "cancelled", "interrupted")


def default_store_path() -> Path:
    """``LMSCOPE_DB`` if set, else ``results.sqlite`` in the platform's user data directory."""
    env = os.environ.get("LMSCOPE_DB")
    return Path(env) if env else Path(platformdirs.user_data_dir("lmscope")) / "results.sqlite"


@dataclass(frozen=True)
class StoredExample:
    run_id: str
    model: str
    example_id: str
    index: int
    input: str
    prompt: str
    output: str
    references: tuple[str, ...]
    scores: dict[str, float]
    likelihood: dict[str, Any] | None
    latency_s: float
    new_tokens: int
    error: str | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredRun:
    id: str
    scenario_name: str
    scenario_path: str | None
    scenario_hash: str
    scenario_text: str
    models: list[dict[str, Any]]
    generation: dict[str, Any]
    seed: int
    limit: int | None
    total: int
    versions: dict[str, str]
    signatures: dict[str, dict[str, str]]
    started_at: float
    ended_at: float | None
    status: str
    data_hash: str | None = None
    model_errors: dict[str, str] = field(default_factory=dict)
    language: str | None = None

    @property
    def model_names(self) -> list[str]:
        return [m["name"] for m in self.models]


@dataclass(frozen=True)
class StoredChat:
    """A stored conversation: a chat screen chat, or one pane of a stored comparison."""

    id: str
    title: str
    model: str
    settings: dict[str, Any]   # system prompt and sampling settings at creation
    created_at: float
    updated_at: float
    comparison: str | None = None  # the comparison it belongs to (compare screen), else None
    pane: str | None = None        # its pane's letter in that comparison


@dataclass(frozen=True)
class StoredMessage:
    """One message of a stored conversation; ``usage`` and ``result`` only on answers."""

    index: int
    role: str
    content: str
    usage: dict[str, Any] | None
    result: dict[str, Any] | None  # see scenarios.result_record


_RUN_COLUMNS = ("id, scenario_name, scenario_path, scenario_hash, scenario_text, models, generation, seed, "
                "example_limit, total, versions, signatures, started_at, ended_at, status, data_hash, model_errors, language")
_EXAMPLE_COLUMNS = ("run_id, model, example_id, idx, input, prompt, output, refs, scores, likelihood, latency_s, "
                    "new_tokens, error, finished_at, warnings")


class Store:
    """Runs, examples and chats. Writes commit immediately; safe to read while a run writes.

    Every SQLite failure (a corrupted page, a locked or unwritable file) surfaces as a
    :class:`StoreError` naming the file, never as a ``sqlite3`` exception.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_store_path()
        try:
            if self.path.is_dir():
                raise StoreError(f"the results store {self.path} is a folder", hint="give a file path with --db")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
            self._add_missing_columns()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the results store {self.path}: {exc}",
                             hint="pass another path with --db or LMSCOPE_DB, or move the damaged file aside"
                             ) from None
        self.reconcile()

    def close(self) -> None:
        self._db.close()

    def _sql(self, query: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement; a damaged or locked database becomes a StoreError."""
        try:
            return self._db.execute(query, args)
        except sqlite3.Error as exc:
            raise StoreError(f"the results store {self.path} cannot be used: {exc}",
                             hint="if the file is damaged, move it aside (its runs are lost) or pass another --db"
                             ) from None

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._sql(query, args).fetchall()
        except sqlite3.Error as exc:  # a damaged page can surface only while rows are read
            raise StoreError(f"the results store {self.path} cannot be read: {exc}",
                             hint="if the file is damaged, move it aside (its runs are lost) or pass another --db"
                             ) from None

    def _add_missing_columns(self) -> None:
        """Migrate a store made by an older version in place (rows keep NULL in the new columns)."""
        for table, column, declaration in ADDED_COLUMNS:
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column in present:
                continue
            try:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another connection migrated it just now
                    raise

    # ------------------------------------------------------------------------------ runs
    def create_run(self, *, scenario_name: str, scenario_path: str | None, scenario_hash: str, scenario_text: str,
                   models: list[dict[str, Any]], generation: dict[str, Any], seed: int, limit: int | None,
                   total: int, versions: dict[str, str], signatures: dict[str, dict[str, str]],
                   data_hash: str | None = None, language: str | None = None) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self._sql(
            "INSERT INTO runs (id, scenario_name, scenario_path, scenario_hash, scenario_text, models, generation, "
            "seed, example_limit, total, versions, signatures, started_at, ended_at, status, pid, host, data_hash, "
            "language) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, scenario_name, scenario_path, scenario_hash, scenario_text, json.dumps(models),
             json.dumps(generation), seed, limit, total, json.dumps(versions), json.dumps(signatures),
             time.time(), None, "running", os.getpid(), socket.gethostname(), data_hash, language))
        return run_id

    def set_status(self, run_id: str, status: str, model_errors: dict[str, str] | None = None) -> None:
        """Set a run's status (one of RUN_STATUSES); ``model_errors`` records models that failed as a whole."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        ended = None if status == "running" else time.time()
        pid = os.getpid() if status == "running" else None
        self._sql("UPDATE runs SET status = ?, ended_at = ?, pid = COALESCE(?, pid), host = COALESCE(?, host), "
                  "model_errors = COALESCE(?, model_errors) WHERE id = ?",
                  (status, ended, pid, socket.gethostname() if pid else None,
                   json.dumps(model_errors) if model_errors is not None else None, run_id))

    def reconcile(self) -> list[str]:
        """Mark ``running`` runs whose process on this host is gone as ``interrupted``; return their ids.

        A run's last status update can be lost (``kill -9``, a full disk); this keeps such a run
        from claiming to run forever, and makes it resumable.
        """
        host = socket.gethostname()
        stale = [run_id for run_id, pid in self._rows(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)) if not _alive(pid)]
        for run_id in stale:
            self._sql("UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?) "
                      "WHERE id = ? AND status = 'running'", (time.time(), run_id))
        return stale

    def run(self, run_id: str) -> StoredRun:
        """Raises StoreError if there is no such run (a unique prefix of the id is enough)."""
        rows = self._rows(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ? OR id LIKE ? ORDER BY started_at",
                          (run_id, f"{run_id}%"))
        exact = [r for r in rows if r[0] == run_id]
        rows = exact or rows
        if len(rows) != 1:
            problem = "no run" if not rows else f"{len(rows)} runs match"
            raise StoreError(f"{problem} with id {run_id!r} in {self.path}", hint="`lmscope runs` lists them")
        return _run_from_row(rows[0])

    def runs(self) -> list[StoredRun]:
        return [_run_from_row(r) for r in self._rows(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC")]

    def record_example(self, example: StoredExample) -> None:
        """Insert or replace one example's outcome (committed at once)."""
        self._sql(
            f"INSERT OR REPLACE INTO examples ({_EXAMPLE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (example.run_id, example.model, example.example_id, example.index, example.input, example.prompt,
             example.output, json.dumps(list(example.references), ensure_ascii=False),
             json.dumps(example.scores), json.dumps(example.likelihood) if example.likelihood else None,
             example.latency_s, example.new_tokens, example.error, time.time(),
             json.dumps(list(example.warnings), ensure_ascii=False) if example.warnings else None))

    def set_example_scores(self, run_id: str, model: str, example_id: str, scores: dict[str, float],
                           warnings: Sequence[str] = (), error: str | None = None) -> None:
        """Add the scores (or a scoring error) to an example already recorded with its output."""
        self._sql("UPDATE examples SET scores = ?, warnings = ?, error = ? WHERE run_id = ? AND model = ? "
                  "AND example_id = ?",
                  (json.dumps(scores), json.dumps(list(warnings), ensure_ascii=False) if warnings else None,
                   error, run_id, model, example_id))

    def examples(self, run_id: str, model: str | None = None, *, include_failed: bool = True) -> list[StoredExample]:
        """A run's examples in data order (by model, then index)."""
        query = f"SELECT {_EXAMPLE_COLUMNS} FROM examples WHERE run_id = ?"
        args: list[Any] = [run_id]
        if model is not None:
            query += " AND model = ?"
            args.append(model)
        if not include_failed:
            query += " AND error IS NULL"
        return [_example_from_row(r) for r in self._rows(query + " ORDER BY model, idx", args)]

    # ----------------------------------------------------------------------------- chats
    def create_chat(self, model: str, settings: dict[str, Any], title: str = "", *,
                    comparison: str | None = None, pane: str | None = None) -> str:
        """A new conversation; ``comparison`` and ``pane`` tie it to a compare-screen comparison."""
        chat_id = uuid.uuid4().hex[:12]
        now = time.time()
        self._sql("INSERT INTO chats (id, title, model, settings, created_at, updated_at, comparison, pane) "
                  "VALUES (?,?,?,?,?,?,?,?)",
                  (chat_id, title or "untitled chat", model, json.dumps(settings), now, now, comparison, pane))
        return chat_id

    def add_message(self, chat_id: str, role: str, content: str, usage: dict[str, Any] | None = None,
                    result: dict[str, Any] | None = None) -> int:
        """Append a message to a chat and return its index.

        ``usage`` is a small JSON-able dict shown with answers; ``result`` is what rebuilds a finished
        answer (see :mod:`scenarios.result_record`), read back with :meth:`last_answer_result`.
        """
        ((count,),) = self._rows("SELECT COUNT(*) FROM chat_messages WHERE chat_id = ?", (chat_id,))
        now = time.time()
        self._sql(
            "INSERT INTO chat_messages (chat_id, idx, role, content, usage, created_at, result) VALUES (?,?,?,?,?,?,?)",
            (chat_id, count, role, content, json.dumps(usage) if usage else None, now,
             json.dumps(result, separators=(",", ":")) if result else None))
        self._sql("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat_id))
        if count == 0 and role == "user":
            self._sql("UPDATE chats SET title = ? WHERE id = ?", (content[:60], chat_id))
        return count

    def chats(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT id, title, model, settings, created_at, updated_at FROM chats "
                          "ORDER BY updated_at DESC")
        return [{"id": r[0], "title": r[1], "model": r[2], "settings": json.loads(r[3]), "created_at": r[4],
                 "updated_at": r[5]} for r in rows]

    def chat_messages(self, chat_id: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT role, content, usage FROM chat_messages WHERE chat_id = ? ORDER BY idx",
                          (chat_id,))
        return [{"role": r[0], "content": r[1], "usage": json.loads(r[2]) if r[2] else None} for r in rows]

    def chat_list(self, *, comparisons: bool = False) -> list[StoredChat]:
        """Chat-screen chats (or, with ``comparisons``, compare panes' chats), most recent first."""
        where = "comparison IS NOT NULL" if comparisons else "comparison IS NULL"
        rows = self._rows("SELECT id, title, model, settings, created_at, updated_at, comparison, pane FROM chats "
                          f"WHERE {where} ORDER BY updated_at DESC")
        return [_chat_from_row(r) for r in rows]

    def chat(self, chat_id: str) -> StoredChat:
        """One stored conversation; StoreError when there is none with that id."""
        rows = self._rows("SELECT id, title, model, settings, created_at, updated_at, comparison, pane FROM chats "
                          "WHERE id = ?", (chat_id,))
        if not rows:
            raise StoreError(f"no chat {chat_id!r} in {self.path}", hint="ctrl+o lists the stored chats")
        return _chat_from_row(rows[0])

    def comparison_chats(self, comparison: str) -> list[StoredChat]:
        """The panes' conversations of a stored comparison, in pane order."""
        rows = self._rows("SELECT id, title, model, settings, created_at, updated_at, comparison, pane FROM chats "
                          "WHERE comparison = ? ORDER BY pane", (comparison,))
        return [_chat_from_row(r) for r in rows]

    def chat_history(self, chat_id: str) -> list[StoredMessage]:
        """Every message of a conversation in order, with usage and result where stored."""
        rows = self._rows("SELECT idx, role, content, usage, result FROM chat_messages WHERE chat_id = ? "
                          "ORDER BY idx", (chat_id,))
        return [StoredMessage(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None,
                              json.loads(r[4]) if r[4] else None) for r in rows]

    def last_answer_result(self, chat_id: str) -> dict[str, Any] | None:
        """The ``result`` stored with the chat's last assistant message; ``None`` when it has none
        (a stopped or failed answer, a chat saved before results were kept, or no answer at all)."""
        rows = self._rows("SELECT result FROM chat_messages WHERE chat_id = ? AND role = 'assistant' "
                          "ORDER BY idx DESC LIMIT 1", (chat_id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _chat_from_row(r: tuple) -> StoredChat:
    return StoredChat(id=r[0], title=r[1], model=r[2], settings=json.loads(r[3]), created_at=r[4], updated_at=r[5],
                      comparison=r[6], pane=r[7])


def _run_from_row(r: tuple) -> StoredRun:
    return StoredRun(id=r[0], scenario_name=r[1], scenario_path=r[2], scenario_hash=r[3], scenario_text=r[4],
                     models=json.loads(r[5]), generation=json.loads(r[6]), seed=r[7], limit=r[8], total=r[9],
                     versions=json.loads(r[10]), signatures=json.loads(r[11]), started_at=r[12], ended_at=r[13],
                     status=r[14], data_hash=r[15], model_errors=json.loads(r[16]) if r[16] else {}, language=r[17])


def _example_from_row(r: tuple) -> StoredExample:
    return StoredExample(run_id=r[0], model=r[1], example_id=r[2], index=r[3], input=r[4], prompt=r[5], output=r[6],
                         references=tuple(json.loads(r[7])), scores=json.loads(r[8]),
                         likelihood=json.loads(r[9]) if r[9] else None, latency_s=r[10], new_tokens=r[11],
                         error=r[12], warnings=tuple(json.loads(r[14])) if r[14] else ())

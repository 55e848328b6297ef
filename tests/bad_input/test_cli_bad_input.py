"""Bad input on the command line: each case is one clear error, exit status 2, never a traceback,
and the store keeps everything it held before.

Cases run ``lmscope``'s real entry point in-process (the same code a shell runs, minus the
interpreter start-up); ``error`` names the class that reached the error renderer (None: argparse
refused the value before any command ran).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import evaluators
from engine import InvalidRequestError
from scenarios import errors as scenario_errors
from scenarios.errors import DataError, ScenarioError, StoreError
from scenarios.store import Store, StoredExample
from tui import cli

ZH = "我们明天早上去公园散步。"


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    error: type[BaseException] | None
    fragment: str
    files: dict[str, str | bytes] = field(default_factory=dict)  # written into the case's folder first


def scenario_text(extra: str = "", data: str = "data.jsonl") -> str:
    return ("name: t\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
            f"data: {{path: {data}}}\nfields: {{id: id, input: en, references: de}}\n{extra}")


DATA = "".join(json.dumps({"id": f"s{i}", "en": f"Sentence {i}.", "de": f"Satz {i}."}) + "\n" for i in range(3))
S = {"data.jsonl": DATA}

CASES = [
    # ----------------------------------------------------------------------- lmscope score
    Case("score unknown metric", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--metrics", "blu"),
         evaluators.UnknownMetricError, "did you mean", {"h.txt": "a\n", "r.txt": "a\n"}),
    Case("score two empty files", ("score", "--hyp", "h.txt", "--ref", "r.txt"), DataError, "no lines to score",
         {"h.txt": "", "r.txt": ""}),
    Case("score Chinese with --lang de", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--lang", "de",
                                          "--metrics", "bleu"),
         evaluators.UnsupportedScriptError, "without spaces", {"h.txt": ZH + "\n", "r.txt": ZH + "\n"}),
    Case("score --hyp is a folder", ("score", "--hyp", ".", "--ref", "r.txt"), DataError, "is a folder",
         {"r.txt": "a\n"}),
    Case("score --ref is a folder", ("score", "--hyp", "h.txt", "--ref", "."), DataError, "is a folder",
         {"h.txt": "a\n"}),
    Case("score --metrics perplexity", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--metrics", "perplexity"),
         ScenarioError, "log-likelihoods", {"h.txt": "a\n", "r.txt": "a\n"}),
    Case("score --metrics ppl alias", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--metrics", "ppl"),
         ScenarioError, "log-likelihoods", {"h.txt": "a\n", "r.txt": "a\n"}),
    Case("score --metrics bpb alias", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--metrics", "bleu,bpb"),
         ScenarioError, "log-likelihoods", {"h.txt": "a\n", "r.txt": "a\n"}),
    Case("score --metrics ,", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--metrics", ","),
         ScenarioError, "names no metric", {"h.txt": "a\n", "r.txt": "a\n"}),
    Case("score --lang klingon", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--lang", "klingon"),
         evaluators.InvalidOptionError, "klingon", {"h.txt": "a\n", "r.txt": "a\n"}),
    Case("score missing hypothesis file", ("score", "--hyp", "nope.txt", "--ref", "r.txt"), DataError,
         "file not found", {"r.txt": "a\n"}),
    Case("score line counts differ", ("score", "--hyp", "h.txt", "--ref", "r.txt"), ScenarioError,
         "2 hypotheses", {"h.txt": "a\nb\n", "r.txt": "a\n"}),
    Case("score invalid UTF-8", ("score", "--hyp", "h.txt", "--ref", "r.txt"), DataError, "invalid UTF-8",
         {"h.txt": b"caf\xe9\n", "r.txt": "a\n"}),
    Case("score unknown format", ("score", "--hyp", "h.txt", "--ref", "r.txt", "--format", "xml"), None,
         "invalid choice", {"h.txt": "a\n", "r.txt": "a\n"}),
    Case("score bleu with an unknown tokenizer language", ("score", "--hyp", "h.txt", "--ref", "r.txt",
                                                           "--lang", "xx-nope"),
         evaluators.InvalidOptionError, "unknown language", {"h.txt": "a\n", "r.txt": "a\n"}),
    # ------------------------------------------------------------------ lmscope run: options
    Case("run --limit -1", ("run", "s.yaml", "--limit", "-1"), None, "expected an integer >= 1", S),
    Case("run --limit 0", ("run", "s.yaml", "--limit", "0"), None, "expected an integer >= 1", S),
    Case("run --limit ten", ("run", "s.yaml", "--limit", "ten"), None, "expected an integer >= 1", S),
    Case("run --batch-size -1", ("run", "s.yaml", "--batch-size", "-1"), None, "expected an integer >= 1", S),
    Case("run --bootstrap -5", ("run", "s.yaml", "--bootstrap", "-5"), None, "expected an integer >= 0", S),
    Case("--threads -3", ("--threads", "-3", "run", "s.yaml"), None, "expected an integer >= 1", S),
    Case("run --seed 1e23", ("run", "s.yaml", "--seed", "1e23"), None, "expected an integer from 0", S),
    Case("run --seed 10**23", ("run", "s.yaml", "--seed", str(10**23)), None, "expected an integer from 0", S),
    Case("run --seed -1", ("run", "s.yaml", "--seed", "-1"), None, "expected an integer from 0", S),
    Case("run --out x.pdf", ("run", "s.yaml", "--out", "x.pdf"), ScenarioError, "unknown format 'pdf'",
         {**S, "s.yaml": scenario_text()}),
    Case("run --out without a suffix", ("run", "s.yaml", "--out", "report"), ScenarioError, "unknown format",
         {**S, "s.yaml": scenario_text()}),
    Case("run --out into a missing folder", ("run", "s.yaml", "--out", "missing/r.html"), ScenarioError,
         "does not exist", {**S, "s.yaml": scenario_text()}),
    Case("run --out is a folder", ("run", "s.yaml", "--out", "sub.html"), ScenarioError, "is a folder",
         {**S, "s.yaml": scenario_text(), "sub.html/keep": ""}),
    Case("run with nothing to run", ("run",), ScenarioError, "give a scenario", {}),
    Case("run with a scenario and --resume", ("run", "s.yaml", "--resume", "x"), ScenarioError, "not both",
         {**S, "s.yaml": scenario_text()}),
    Case("run --resume of an unknown run", ("run", "--resume", "nope"), StoreError, "no run with id 'nope'", {}),
    Case("run --resume of a finished run", ("run", "--resume", "RUN"), ScenarioError, "is finished", {}),
    Case("run an unknown built-in", ("run", "translation_en_dee"), ScenarioError, "did you mean", {}),
    Case("run a missing scenario file", ("run", "missing.yaml"), ScenarioError, "scenario file not found", {}),
    # --------------------------------------------------------------- lmscope chat --once options
    Case("chat --seed 1e23", ("chat", "--once", "hi", "--seed", "1e23"), None, "expected an integer from 0", {}),
    Case("chat --max-new-tokens 0", ("chat", "--once", "hi", "--max-new-tokens", "0"), None,
         "expected an integer >= 1", {}),
    Case("chat --top-k -2", ("chat", "--once", "hi", "--top-k", "-2"), None, "expected an integer >= 0", {}),
    # ----------------------------------------------------------------------------- stored runs
    Case("show an unknown run", ("show", "no-such-run"), StoreError, "no run with id 'no-such-run'", {}),
    Case("export an unknown format", ("export", "RUN", "--format", "pdf"), None, "invalid choice", {}),
    Case("export into a missing folder", ("export", "RUN", "--format", "csv", "--out", "missing/x.csv"),
         ScenarioError, "cannot write", {}),
    Case("compare with a model the run lacks", ("compare", "RUN", "RUN", "--model-a", "other"), ScenarioError,
         "has no model 'other'", {}),
    Case("--db is a folder", ("runs", "--db", "."), StoreError, "is a folder", {}),
]


@pytest.fixture
def stored(tmp_path, monkeypatch) -> tuple[Path, str]:
    """A store holding one finished run of three examples; LMSCOPE_DB points at it."""
    db = tmp_path / "results.sqlite"
    store = Store(db)
    run_id = store.create_run(scenario_name="t", scenario_path=None, scenario_hash="h", scenario_text=scenario_text(),
                              models=[{"name": "m"}], generation={}, seed=0, limit=None, total=3, versions={},
                              signatures={})
    for i in range(3):
        store.record_example(StoredExample(run_id, "m", f"s{i}", i, f"Sentence {i}.", "p", f"Satz {i}.",
                                           (f"Satz {i}.",), {"bleu": 100.0}, None, 0.1, 3, None))
    store.set_status(run_id, "finished")
    store.close()
    monkeypatch.setenv("LMSCOPE_DB", str(db))
    return db, run_id


def run_cli(argv: tuple[str, ...], monkeypatch) -> tuple[int, type[BaseException] | None]:
    """``lmscope ARGV`` in-process: its exit status and the class of the error it rendered."""
    seen: list[type[BaseException]] = []
    describe = scenario_errors.describe_error

    def spy(exc: BaseException):
        seen.append(type(exc))
        return describe(exc)

    monkeypatch.setattr(scenario_errors, "describe_error", spy)
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:  # argparse
        status = exc.code
    return status, (seen[0] if seen else None)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_bad_input(case: Case, stored, tmp_path, monkeypatch, capsys):
    db, run_id = stored
    folder = tmp_path / "work"
    folder.mkdir()
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    monkeypatch.chdir(folder)
    argv = tuple(run_id if a == "RUN" else a for a in case.argv)
    status, error = run_cli(argv, monkeypatch)
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err and err.startswith("lmscope: error: "), err
    assert case.fragment in err, err
    if case.error is None:
        assert error is None
    else:
        assert error is not None and issubclass(error, case.error), error
    assert len([line for line in err.splitlines() if line.startswith("lmscope: error:")]) == 1
    store = Store(db)  # nothing already produced is lost
    assert store.run(run_id).status == "finished" and len(store.examples(run_id)) == 3
    assert [r.id for r in store.runs()] == [run_id]  # and no run was started by a refused command


@pytest.mark.parametrize("value", ["abc", "0", "-2"])
def test_a_bad_thread_count_in_the_environment_is_one_line(value, stored, tmp_path, monkeypatch, capsys):
    """LMSCOPE_THREADS=abc ended in "unexpected error: ValueError" and a logged traceback."""
    db, run_id = stored
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.yaml").write_text(scenario_text(), encoding="utf-8")
    (tmp_path / "data.jsonl").write_text(DATA, encoding="utf-8")
    monkeypatch.setenv("LMSCOPE_THREADS", value)
    status, error = run_cli(("run", "t.yaml", "--limit", "1"), monkeypatch)
    err = capsys.readouterr().err
    assert status == 2 and error is not None and issubclass(error, InvalidRequestError), err
    assert f"LMSCOPE_THREADS={value!r} is not a thread count" in err and "unexpected" not in err, err
    assert [r.id for r in Store(db).runs()] == [run_id]


def test_there_are_enough_cases():
    from tests.bad_input.test_scenario_bad_input import CASES as SCENARIO_CASES

    assert len(CASES) + len(SCENARIO_CASES) >= 60


def test_an_unexpected_error_is_one_line_and_a_logged_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LMSCOPE_CACHE_DIR", str(tmp_path / "cache"))

    def broken(args):
        return 1 / 0  # a bug, as a user would meet one

    monkeypatch.setattr(cli, "_dispatch", broken)
    status = cli.main(["runs"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "lmscope: error: unexpected error: ZeroDivisionError: division by zero" in err
    log = tmp_path / "cache" / "logs" / "errors.log"
    assert log.is_file() and "Traceback" in log.read_text() and str(log) in err


def test_a_corrupted_store_is_a_clear_error(tmp_path, monkeypatch, capsys):
    db = tmp_path / "results.sqlite"
    store = Store(db)
    store.create_run(scenario_name="t", scenario_path=None, scenario_hash="h", scenario_text="", models=[],
                     generation={}, seed=0, limit=None, total=1, versions={}, signatures={})
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = bytearray(db.read_bytes())
    page = 4096
    raw[page:] = b"\xff" * (len(raw) - page)  # every page after the header is garbage
    db.write_bytes(bytes(raw))
    status, error = run_cli(("runs", "--db", str(db)), monkeypatch)
    err = capsys.readouterr().err
    assert status == 2 and error is not None and issubclass(error, StoreError), err
    assert "Traceback" not in err and "results.sqlite" in err


def test_remote_key_in_url_is_refused_without_echoing_it():
    from engine.endpoints import parse_remote_spec

    with pytest.raises(InvalidRequestError) as err:
        parse_remote_spec("openai:m@http://127.0.0.1:1/v1?api_key=sk-secret-123")
    assert "sk-secret-123" not in str(err.value) and "sk-secret-123" not in (err.value.hint or "")

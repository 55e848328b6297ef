"""The headless commands as a user runs them: real processes, real models, a real store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sacrebleu

from tests.conftest import SHARED_DATA
from tests.scenarios.test_runner import write_translation_scenario


def lmscope(*args: str, db: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, LMSCOPE_DB=str(db))
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_run_then_runs_show_compare_and_export(tiny_causal, tiny_causal_b, tmp_path):
    db = tmp_path / "results.sqlite"
    scenario = write_translation_scenario(tmp_path, n=6)
    first = lmscope("run", str(scenario), "--model", tiny_causal, "--out", str(tmp_path / "report.html"), db=db)
    assert first.returncode == 0, first.stderr
    assert "BLEU = " in first.stdout and "nrefs:1" in first.stdout and "6/6" in first.stderr
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html and "The house number 5 is small." in html
    second = lmscope("run", str(scenario), "--model", tiny_causal_b, "--bootstrap", "0", db=db)
    assert second.returncode == 0, second.stderr
    runs = lmscope("runs", db=db)
    ids = [line.split()[0] for line in runs.stdout.splitlines()]
    assert len(ids) == 2 and all("finished" in line for line in runs.stdout.splitlines())
    show = lmscope("show", ids[1], db=db)
    assert show.returncode == 0 and "tiny-translate" in show.stdout and "chrF = " in show.stdout
    assert "causal, hf backend, cpu" in show.stdout
    compare = lmscope("compare", ids[1], ids[0], db=db)
    assert compare.returncode == 0, compare.stderr
    header, metric_lines = compare.stdout.splitlines()[:3], compare.stdout.splitlines()[3:]
    assert header[0].startswith(f"A = run {ids[1]}") and header[1].startswith(f"B = run {ids[0]}")
    assert "compared on 6 examples" in header[2] and "missing from B: none" in header[2]
    assert len(metric_lines) == 3 and all(" delta " in line for line in metric_lines)
    assert all(("p = " in line) or ("identical scores" in line) for line in metric_lines)
    for fmt in ("json", "csv", "md"):
        exported = lmscope("export", ids[0], "--format", fmt, db=db)
        assert exported.returncode == 0, exported.stderr
    data = json.loads(lmscope("export", ids[1], "--format", "json", db=db).stdout)
    assert len(data["examples"]) == 6 and data["scores"][tiny_causal]["bleu"]["signature"].startswith("nrefs:1")
    bad = lmscope("show", "no-such-run", db=db)
    assert bad.returncode == 2 and "no run with id 'no-such-run'" in bad.stderr


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="no shared data")
def test_score_matches_sacrebleu_on_wmt21_references(tmp_path):
    wmt = SHARED_DATA / "wmt21"
    hyp, ref = wmt / "newstest2021.en-de.ref.C.de", wmt / "newstest2021.en-de.ref.A.de"
    done = lmscope("score", "--hyp", str(hyp), "--ref", str(ref), "--metrics", "bleu,chrf", "--format", "json",
                   db=tmp_path / "r.sqlite")
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    hyps = hyp.read_text(encoding="utf-8").splitlines()
    refs = ref.read_text(encoding="utf-8").splitlines()
    assert scores["bleu"]["score"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["chrf"]["score"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert scores["bleu"]["signature"].startswith("nrefs:1|")
    mismatch = lmscope("score", "--hyp", str(hyp), "--ref", str(wmt / "newstest2021.zh-en.ref.A.en"),
                       db=tmp_path / "r.sqlite")
    assert mismatch.returncode == 2 and "1002 hypotheses" in mismatch.stderr


def test_bad_scenario_file_is_one_clear_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ntask: qa\ndata: {path: x.jsonl}\nfields: {input: q, references: a}\nmetrics: [blue]\n")
    done = lmscope("run", str(path), db=tmp_path / "r.sqlite")
    assert done.returncode == 2 and "s.yaml:5: metrics" in done.stderr and "Traceback" not in done.stderr
    unknown = lmscope("run", "translation_en_dee", db=tmp_path / "r.sqlite")
    assert unknown.returncode == 2 and "did you mean 'translation_en_de'" in unknown.stderr


def test_sigkill_mid_run_then_resume_completes_every_example_once(tiny_causal_long, tmp_path):
    db = tmp_path / "results.sqlite"
    scenario = write_translation_scenario(tmp_path, n=12, max_new_tokens=600)
    env = dict(os.environ, LMSCOPE_DB=str(db))
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "run", str(scenario), "--model", tiny_causal_long,
                             "--batch-size", "2", "--bootstrap", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    finished = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            with sqlite3.connect(db) as conn:
                try:
                    finished = conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
                except sqlite3.OperationalError:
                    continue
            if finished >= 2:
                break
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        run_id, status = conn.execute("SELECT id, status FROM runs").fetchone()
        kept = conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
    assert status == "running" and 2 <= kept < 12
    resumed = subprocess.run([sys.executable, "-m", "tui.cli", "run", "--resume", run_id, "--bootstrap", "0"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{kept} restored" in resumed.stderr
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT example_id FROM examples WHERE run_id = ?", (run_id,))]
        status = conn.execute("SELECT status FROM runs").fetchone()[0]
    assert sorted(ids) == sorted(f"s{i}" for i in range(12)) and status == "finished"


@pytest.mark.slow
def test_builtin_scenario_on_the_embedded_default_model(tmp_path):
    db = tmp_path / "results.sqlite"
    done = lmscope("run", "qa", "--limit", "4", "--out", str(tmp_path / "qa.json"), db=db, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "qa.json").read_text())
    import evaluators

    outputs = [e["output"] for e in report["examples"]]
    refs = [e["references"] for e in report["examples"]]
    f1 = evaluators.get("f1").score_corpus(outputs, refs).score
    assert report["scores"]["default"]["f1"]["score"] == pytest.approx(f1)
    assert any(o.strip() for o in outputs)

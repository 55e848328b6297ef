"""The command line as a filter and a scorer: pipes, line endings, start-up cost, hostile exports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import sacrebleu

from scenarios.report import export
from scenarios.store import Store, StoredExample


def test_runs_piped_into_head_exits_quietly(tmp_path):
    db = tmp_path / "r.sqlite"
    store = Store(db)
    for i in range(1500):  # far more than a pipe buffer holds
        store.create_run(scenario_name=f"s{i}", scenario_path=None, scenario_hash="h", scenario_text="", models=[],
                         generation={}, seed=0, limit=None, total=1, versions={}, signatures={})
    store.close()
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m tui.cli runs --db {db} | head -1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stderr == ""


def test_a_carriage_return_inside_a_line_is_not_a_line_break(tmp_path):
    hyp, ref = tmp_path / "h.txt", tmp_path / "r.txt"
    hyp.write_bytes("the cat\rsat on the mat\nthe dog barked\n".encode())
    ref.write_bytes("the cat sat on the mat\nthe dog barked loudly\n".encode())
    done = subprocess.run([sys.executable, "-m", "tui.cli", "score", "--hyp", str(hyp), "--ref", str(ref),
                           "--metrics", "bleu,chrf", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    hyps = ["the cat\rsat on the mat", "the dog barked"]  # as sacrebleu's own reader splits the file
    refs = ["the cat sat on the mat", "the dog barked loudly"]
    assert scores["bleu"]["n"] == 2
    assert scores["bleu"]["score"] == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert scores["chrf"]["score"] == sacrebleu.corpus_chrf(hyps, [refs]).score


def test_score_prints_warnings_in_text_and_json(tmp_path):
    hyp, ref = tmp_path / "h.txt", tmp_path / "r.txt"
    hyp.write_text("\nthe dog\n", encoding="utf-8")
    ref.write_text("a cat\nthe dog\n", encoding="utf-8")
    base = [sys.executable, "-m", "tui.cli", "score", "--hyp", str(hyp), "--ref", str(ref), "--metrics", "bleu"]
    text = subprocess.run(base, capture_output=True, text=True, timeout=120)
    as_json = subprocess.run(base + ["--format", "json"], capture_output=True, text=True, timeout=120)
    assert "warning: 1 of 2 examples: empty hypothesis" in text.stdout
    assert any("empty hypothesis" in w for w in json.loads(as_json.stdout)["bleu"]["warnings"])


def test_help_and_score_do_not_import_torch(tmp_path):
    (tmp_path / "h.txt").write_text("a b c\n", encoding="utf-8")
    probe = ("import sys, contextlib, io\nfrom tui.cli import main\n"
             "for argv in (['--help'], ['score', '--hyp', 'h.txt', '--ref', 'h.txt']):\n"
             "    with contextlib.redirect_stdout(io.StringIO()):\n"
             "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
             "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def hostile_run(tmp_path) -> tuple[Store, str]:
    store = Store(tmp_path / "r.sqlite")
    text = ("name: t\ntask: chat\ndata: {path: d.jsonl}\nfields: {id: id, input: q, references: a}\n"
            "metrics: [chrf]\n")
    run_id = store.create_run(scenario_name="t", scenario_path=str(tmp_path / "t.yaml"), scenario_hash="h",
                              scenario_text=text, models=[{"name": "m"}], generation={}, seed=0, limit=None, total=2,
                              versions={}, signatures={})
    outputs = ['=HYPERLINK("http://evil.example","click")', "<script>alert(1)</script> | *bold* [x](y)"]
    for i, output in enumerate(outputs):
        store.record_example(StoredExample(run_id, "m", f"e{i}", i, "@SUM(A1:A2)", "p", output, ("+1 ref", ),
                                           {"chrf": 1.0}, None, 0.1, 3, None))
    store.set_status(run_id, "finished")
    return store, run_id


def test_csv_export_neutralises_formulas(tmp_path):
    store, run_id = hostile_run(tmp_path)
    rows = list(csv.reader(io.StringIO(export(store, store.run(run_id), "csv"))))
    header, first = rows[0], rows[1]
    cell = dict(zip(header, first))
    assert cell["output"].startswith("'=HYPERLINK") and cell["input"] == "'@SUM(A1:A2)"
    assert cell["references"] == "'+1 ref"
    for row in rows:
        for value in row:
            assert not value.startswith(("=", "+", "@", "\t", "\r")) or value == "", value


def test_markdown_and_html_exports_escape_markup(tmp_path):
    store, run_id = hostile_run(tmp_path)
    markdown = export(store, store.run(run_id), "md")
    page = export(store, store.run(run_id), "html")
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "\\| \\*bold\\* \\[x\\](y)" in markdown  # a pipe cannot split the table, no emphasis or link
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page

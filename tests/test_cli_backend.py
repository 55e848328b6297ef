"""``--backend auto|hf|llamacpp`` on the commands that load models: the choice reaches the engine,
shows in what they print and is stored with a run; bad values are one line and exit status 2."""

from __future__ import annotations

import re

import pytest

from engine.spec import llama_cpp_available
from tests.test_cli import run_cli
from tui import cli

needs_llama = pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed")


@needs_llama
def test_chat_once_runs_on_the_backend_asked_for(tiny_causal):
    llama = run_cli("chat", "--once", "Hi", "--backend", "llamacpp", "--max-new-tokens", "3", "--stats")
    assert llama.returncode == 0, llama.stderr
    assert "backend llamacpp" in llama.stderr

    # Before the subcommand works too; hf on a model folder.
    hf = run_cli("--backend", "hf", "chat", "--once", "Hi", "--model", tiny_causal, "--max-new-tokens", "3", "--stats")
    assert hf.returncode == 0, hf.stderr
    assert "backend hf" in hf.stderr


def _run_and_show(tmp_path, *args: str) -> str:
    db = str(tmp_path / "results.sqlite")
    done = run_cli("run", "perplexity", "--limit", "1", "--bootstrap", "0", "--db", db, *args)
    assert done.returncode == 0, done.stderr
    run_id = re.search(r"run (\S+) finished", done.stdout).group(1)
    shown = run_cli("show", run_id, "--db", db)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


@needs_llama
def test_a_scenario_run_stores_the_backend_asked_for(tmp_path, tiny_causal):
    assert "llamacpp backend" in _run_and_show(tmp_path, "--backend", "llamacpp")
    assert "hf backend" in _run_and_show(tmp_path, "-m", tiny_causal, "--backend", "hf")


@pytest.mark.parametrize("argv", [
    ["--backend", "vllm", "chat", "--once", "hi"],
    ["chat", "--once", "hi", "--backend", "gpu"],
    ["run", "qa", "--backend", "HF "],
])
def test_an_unknown_backend_is_one_line_and_exit_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "lmscope: error: argument --backend: invalid choice" in err and "'llamacpp'" in err
    assert "Traceback" not in err


@needs_llama
def test_llamacpp_asked_for_a_model_folder_is_refused_clearly(tiny_causal):
    done = run_cli("chat", "--once", "hi", "--model", tiny_causal, "--backend", "llamacpp")
    assert done.returncode == 2
    assert "lmscope: error: the llama.cpp backend runs .gguf files" in done.stderr
    assert "Traceback" not in done.stderr

"""``lmscope chat --once`` as a user runs it: a real process, real models."""

from __future__ import annotations

import re

import os
import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))


def test_chat_once_streams_an_answer_from_a_model_folder(tiny_causal):
    done = run_cli("chat", "--once", "What is the capital of France?", "--model", tiny_causal,
                   "--max-new-tokens", "10", "--stats")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "10 new tokens" in done.stderr and "cpu float32" in done.stderr


def test_chat_once_reports_a_missing_model_without_a_traceback(tmp_path):
    done = run_cli("chat", "--once", "hi", "--model", str(tmp_path / "missing.gguf"))
    assert done.returncode == 2
    assert "lmscope: error: model" in done.stderr and "not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_chat_once_rejects_invalid_sampling_values(tiny_causal):
    done = run_cli("chat", "--once", "hi", "--model", tiny_causal, "--top-p", "1.5")
    assert done.returncode == 2 and "top_p must be in (0, 1]" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_chat_once_on_the_embedded_default_model():
    done = run_cli("chat", "--once", "Say hello in one short sentence.", "--max-new-tokens", "20")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) > 2


def test_chat_once_stats_print_the_seed_it_drew(tiny_causal):
    # Issue 11: `chat --once --stats` did not print the seed an unseeded sampling drew.
    done = run_cli("chat", "--once", "Hi", "--model", tiny_causal, "--max-new-tokens", "4", "--temperature", "0.7",
                   "--stats")
    assert done.returncode == 0, done.stderr
    assert re.search(r", seed \d+,", done.stderr), done.stderr

"""Shared fixtures: tiny models built once per session, an isolated lmscope cache, engines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import tiny_models

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_model() -> None:
    """Models the tests do not give a thread count (the CLI, the app) decode on one thread.

    CI's two cores are shared with other work; llama.cpp's threads wait for each other after
    every operation, and one descheduled thread stalls them all (25x slower, measured). The
    default itself is tested in tests/engine/test_threads.py.
    """
    os.environ.setdefault("LMSCOPE_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session gets its own converted-model cache, so cache behaviour is really tested."""
    folder = tmp_path_factory.mktemp("lmscope-cache")
    os.environ["LMSCOPE_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_causal(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_models.build_causal(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(scope="session")
def tiny_causal_b(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second, differently initialised causal model without a chat template."""
    return str(tiny_models.build_causal(tmp_path_factory.mktemp("tiny-llama-b"), chat_template=False, seed=1))


@pytest.fixture(scope="session")
def tiny_causal_long(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 4,096-token context, wider layers and no end-of-turn: long answers take seconds."""
    return str(tiny_models.build_causal(tmp_path_factory.mktemp("tiny-llama-long"), max_positions=4096,
                                        hidden=256, layers=4, never_ends=True))


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_models.build_seq2seq(tmp_path_factory.mktemp("tiny-t5")))


@pytest.fixture(scope="session")
def tiny_masked(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_models.build_masked(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture
async def engine():
    from engine import Engine, EngineConfig

    eng = Engine(EngineConfig(threads=1))
    yield eng
    await eng.aclose()

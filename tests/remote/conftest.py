"""A real ``transformers serve`` on a loopback port, serving the tiny causal model, for the session."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.remote.serve import TransformersServe


@pytest.fixture(scope="session")
def tiny_server(tiny_causal_long: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersServe]:
    """Serves ``tiny_causal_long`` (never emits end-of-turn, so answers run to max_new_tokens)."""
    server = TransformersServe(tiny_causal_long, tmp_path_factory.mktemp("serve-logs") / "tiny.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def endpoint_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a config file with the given ``[endpoints.NAME]`` tables and point $LMSCOPE_CONFIG at it."""

    def write(text: str) -> Path:
        path = tmp_path / "config.toml"
        path.write_text(text)
        monkeypatch.setenv("LMSCOPE_CONFIG", str(path))
        return path

    return write

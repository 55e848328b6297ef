"""Shared fixtures for the evaluators tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# The public evaluation data sits beside the project root (../shared/data), never in it.
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"public test data not found at {DATA.resolve()} (expected ../shared/data beside the project)")
    return DATA


"""Fixtures shared by the TUI tests: one host app around the screens under test, and snapshots
that do not depend on the machine's load."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine, EngineConfig
from scenarios.store import Store
from tests.tui.pilot_helpers import HostApp, settle


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A results store of the test's own."""
    return Store(tmp_path / "r.sqlite")


@pytest.fixture
def host_app(store: Store):
    """Builds a :class:`HostApp` showing the given screens (or screen classes), the last on top.

    The engine is a real one (one thread, models in-process) unless ``engine=`` says otherwise
    (the scripted engine for snapshots); the store is the test's own ``store`` fixture.
    """

    def make(*screens, model: str = "default", engine=None, app_class: type[HostApp] = HostApp,
             **kwargs) -> HostApp:
        return app_class(*screens, model=model, engine=engine if engine is not None else Engine(EngineConfig(threads=1)),
                         store=kwargs.pop("store", store), **kwargs)

    return make


@pytest.fixture
def snap(snap_compare):
    """``snap_compare`` that settles the screen (no blinking cursor, no animation) before the shot."""

    def compare(app, *, terminal_size: tuple[int, int] = (80, 24), run_before=None) -> bool:
        async def prepare(pilot) -> None:
            await settle(pilot)
            if run_before is not None:
                await run_before(pilot)
            await settle(pilot)

        return snap_compare(app, terminal_size=terminal_size, run_before=prepare)

    return compare


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each TUI test has a config file of its own: the app saves settings (theme, sampling) there."""
    path = tmp_path / "config.toml"
    monkeypatch.setenv("LMSCOPE_CONFIG", str(path))
    return path

"""One progress model for a scenario run, shared by the CLI and the run screen: examples done,
rate and ETA, per model and for the whole run.

Models of a run generate concurrently, each at its own pace, so the run ends when its slowest
model does: the run's ETA is the largest of the models' ETAs, not the remaining examples over
the summed rate. Examples restored from the store on resume count as done but not towards the
rate (they took no time in this session).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class ModelProgress:
    """One model's share of a run."""

    total: int
    done: int = 0
    restored: int = 0  # done before this session (resume)
    started_at: float = 0.0
    last_at: float = 0.0

    def rate(self) -> float | None:
        """Examples per second finished in this session (``None`` before the first)."""
        fresh = self.done - self.restored
        elapsed = self.last_at - self.started_at
        return fresh / elapsed if fresh > 0 and elapsed > 0 else None

    def eta(self) -> float | None:
        """Seconds until this model finishes at its rate so far (0 when done, ``None`` unknown)."""
        if self.done >= self.total:
            return 0.0
        rate = self.rate()
        return (self.total - self.done) / rate if rate else None


@dataclass
class RunProgress:
    """Progress of a whole run; feed it the runner's events' numbers.

    ``start(model, total, restored)`` for each model at ``RunStarted``; ``advance(model)`` for
    each ``ExampleFinished`` (or ``update(model, done)`` from ``ScoresUpdated``).
    """

    clock: Callable[[], float] = time.monotonic
    models: dict[str, ModelProgress] = field(default_factory=dict)
    started_at: float = 0.0

    def start(self, model: str, total: int, restored: int = 0) -> None:
        now = self.clock()
        if not self.models:
            self.started_at = now
        self.models[model] = ModelProgress(total, restored, restored, now, now)

    def advance(self, model: str, count: int = 1) -> None:
        self.update(model, self.models[model].done + count)

    def update(self, model: str, done: int) -> None:
        state = self.models[model]
        state.done = min(done, state.total)
        state.last_at = self.clock()

    @property
    def done(self) -> int:
        return sum(m.done for m in self.models.values())

    @property
    def total(self) -> int:
        return sum(m.total for m in self.models.values())

    def elapsed(self) -> float:
        return self.clock() - self.started_at

    def rate(self) -> float | None:
        """Examples per second over every model, in this session."""
        fresh = sum(m.done - m.restored for m in self.models.values())
        elapsed = self.elapsed()
        return fresh / elapsed if fresh > 0 and elapsed > 0 else None

    def eta(self) -> float | None:
        """Seconds until the slowest model finishes; ``None`` while a model has no rate yet."""
        etas = [m.eta() for m in self.models.values()]
        if not etas or any(e is None for e in etas):
            return None
        return max(etas)  # type: ignore[type-var]

"""The progress model shared by the CLI and the run screen: rate and ETA over several models."""

from __future__ import annotations

import pytest

from scenarios.progress import RunProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_is_the_slowest_models_not_the_summed_rate():
    """Finding 8: with several models the ETA misled (remaining over the summed rate)."""
    clock = Clock()
    progress = RunProgress(clock)
    progress.start("fast", total=10)
    progress.start("slow", total=10)
    clock.now += 10
    progress.update("fast", 10)  # 1 example/s: done
    progress.update("slow", 1)  # 0.1 example/s: 9 left -> 90 s
    assert progress.done == 11 and progress.total == 20
    assert progress.rate() == pytest.approx(1.1)
    assert progress.eta() == pytest.approx(90.0)  # the old formula said 9 / 1.1 = 8.2 s


def test_restored_examples_do_not_count_towards_the_rate_and_eta_waits_for_every_model():
    clock = Clock()
    progress = RunProgress(clock)
    progress.start("a", total=10, restored=6)
    progress.start("b", total=10)
    assert progress.eta() is None and progress.rate() is None  # nothing measured yet
    clock.now += 4
    progress.advance("a")
    assert progress.eta() is None  # b has no rate yet
    progress.advance("b", 2)
    assert progress.models["a"].rate() == pytest.approx(0.25)  # 1 fresh example in 4 s, not 7
    assert progress.eta() == pytest.approx(max(3 / 0.25, 8 / 0.5))

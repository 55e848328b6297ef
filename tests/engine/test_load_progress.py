"""Load percentages from transformers' own progress-bar loops (engine.load_progress)."""

from __future__ import annotations

import threading

from tqdm import tqdm as real_tqdm

from engine import load_progress


def test_a_loop_on_the_reporting_thread_reports_percentages_and_keeps_working_as_a_bar():
    bar = load_progress._wrap(real_tqdm, "dequantising")
    lines: list[str] = []
    with load_progress.reporting(lines.append):
        with bar(list(range(8)), desc="Converting") as counted:  # a loop that uses the bar as a bar
            seen = [item for item in counted]
            counted.set_postfix(done=True)
    assert seen == list(range(8)) and lines[-1] == "dequantising: 100% (8/8 tensors)"
    assert lines[0].startswith("dequantising: 12% (1/8")


def test_other_threads_and_finished_blocks_get_the_original_bar():
    bar = load_progress._wrap(real_tqdm, "loading weights")
    lines: list[str] = []
    elsewhere: list[object] = []
    with load_progress.reporting(lines.append):
        thread = threading.Thread(target=lambda: elsewhere.append(bar(range(3), disable=True)))
        thread.start()
        thread.join()
    assert isinstance(elsewhere[0], real_tqdm) and not lines
    assert isinstance(bar(range(3), disable=True), real_tqdm)  # after the block

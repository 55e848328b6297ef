"""Choice tasks in the app: the run screen's confusion matrices and the example detail's option
table (chosen and gold marked), on the real engine and a tiny model."""

from __future__ import annotations

from textual.widgets import DataTable

from scenarios.choice_report import run_confusions
from tests.scenarios.test_choice_runs import write_classification
from tests.tui.pilot_helpers import wait_for
from tests.tui.test_run_screen import run_app, start
from tui.screens.example_detail import ExampleDetailScreen
from tui.widgets.choice_view import ConfusionPanel, OptionTable


async def test_classification_run_shows_confusion_and_option_table(host_app, tiny_causal, tmp_path):
    app = run_app(host_app, tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        await start(pilot, screen, str(write_classification(tmp_path, "[acc, macro_f1]")))
        await wait_for(pilot, lambda: screen.last_finished is not None)
        panel = screen.query_one(ConfusionPanel)
        await wait_for(pilot, lambda: "Confusion" in str(panel.render()))
        shown = str(panel.render())
        [matrix] = run_confusions(app.store.examples(screen.run_id)).values()
        for label, row in zip(matrix.labels, matrix.counts):  # the same counts as show and the exports
            line = next(x for x in shown.splitlines() if x.startswith(label))
            assert [int(n) for n in line.split()[1:]] == list(row)

        table = screen.query_one("#examples", DataTable)
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExampleDetailScreen))
        options = app.screen.query_one(OptionTable)
        await wait_for(pilot, lambda: "★" in str(options.render()))
        text = str(options.render())
        stored = {r.example_id: r for r in app.store.examples(screen.run_id)}[app.screen.record.example_id]
        gold = stored.likelihood["labels"][stored.likelihood["gold"]]
        lines = text.splitlines()
        assert sum("✓" in line for line in lines[:2]) == 1
        assert gold in next(line for line in lines if "★" in line)
        for lp in stored.likelihood["logprobs"]:
            assert f"{lp:.4f}" in text

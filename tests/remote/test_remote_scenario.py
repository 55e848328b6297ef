"""A scenario run against a served model: the server dies mid-run, the run marks those examples
failed, the server comes back, and ``resume`` completes every example exactly once."""

from __future__ import annotations

import json

from engine import Engine
from scenarios.events import ExampleFinished, RunFinished
from scenarios.runner import ScenarioRun
from scenarios.scenario import load_scenario
from scenarios.store import Store
from tests.remote.serve import TransformersServe


async def test_scenario_run_survives_a_server_crash_and_resumes(engine: Engine, tiny_server: TransformersServe,
                                                                  endpoint_config, tmp_path):
    endpoint_config(f'[endpoints.crashy]\nurl = "{tiny_server.url}"\nmodel = "{tiny_server.model}"\n'
                    "max_retries = 1\nbackoff_s = 0.05\n")
    rows = [{"id": f"s{i}", "text": f"Sentence number {i}.", "refs": [f"Satz Nummer {i}."]} for i in range(6)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "s.yaml").write_text("name: remote-crash\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
                                     "data: {path: data.jsonl}\nfields: {id: id, input: text, references: refs}\n"
                                     "generation: {max_new_tokens: 8}\nmetrics: [chrf]\n")
    store = Store(tmp_path / "results.sqlite")
    events = []
    async for event in ScenarioRun(load_scenario(tmp_path / "s.yaml"), ["openai:crashy"], engine, store,
                                   batch_size=2, n_bootstrap=0):
        events.append(event)
        if isinstance(event, ExampleFinished) and not event.error and tiny_server.process.poll() is None:
            tiny_server.kill()  # crash after the first successful example
    final = events[-1]
    assert isinstance(final, RunFinished) and final.failed["openai:crashy"] >= 2
    errors = [e.error for e in events if isinstance(e, ExampleFinished) and e.error]
    assert errors and all("server" in error.lower() and "\n" not in error for error in errors)
    assert store.run(final.run_id).status == "failed"

    tiny_server.start()
    resumed = [e async for e in ScenarioRun(None, [], engine, store, resume=final.run_id, n_bootstrap=0)]
    assert isinstance(resumed[-1], RunFinished) and resumed[-1].failed == {"openai:crashy": 0}
    stored = store.examples(final.run_id)
    assert sorted(r.example_id for r in stored) == [f"s{i}" for i in range(6)]
    assert all(r.error is None and r.output for r in stored)
    assert store.run(final.run_id).status == "finished"

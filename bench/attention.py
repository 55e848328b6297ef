"""Attention probe benchmark: how long the heatmap of a 256-token prompt takes to draw, against
the engine call that computes its weights (the baseline, in the same process).

    .venv/bin/python bench/attention.py [--model default|FOLDER] [--tokens 256] [--runs 7]

``--model default`` (the embedded SmolLM2-135M GGUF: 30 layers x 9 heads; on llama.cpp its
weights come from the transformers copy of the same file). ``--tiny`` builds a small random
model instead (2 layers, for a quick run). Medians of ``--runs`` runs of each step:

- **engine**: ``Engine.attention`` for the prompt (eager forward pass, weights to numpy).
- **select + levels**: the numpy work when a layer or head is picked (mean over heads, colour levels).
- **show_result**: the tool taking a new result (selects, numpy, heatmap state), on the event loop.
- **first frame, 80x24**: ``AttentionTool.show_result`` until Textual has laid out and painted
  (one ``pilot.pause``), in a headless app of 80x24 with the tool's tab open; an idle
  ``pilot.pause`` is printed for reference (Textual's own frame and the pilot's wait).
- **visible lines, 80x24**: the heatmap's ``render_line`` for every visible line (one repaint).
- **whole heatmap**: ``render_line`` for all rows at zoom 1 on a screen wide enough for every key.
- **SVG export**: :func:`tui.widgets.attention_svg.heatmap_svg` for the whole matrix.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Engine, EngineConfig  # noqa: E402
from scenarios.store import Store  # noqa: E402
from tui.base import LmscopeAppBase  # noqa: E402
from tui.screens.probe import ProbeScreen  # noqa: E402
from tui.widgets.attention_data import levels, select  # noqa: E402
from tui.widgets.attention_heatmap import AttentionHeatmap  # noqa: E402
from tui.widgets.attention_svg import heatmap_svg  # noqa: E402
from tui.widgets.attention_tool import AttentionTool  # noqa: E402

TEXT = ("The lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps as his "
        "father had taught him, and lit the great lamp that warned the fishing boats away from the rocks. ")


class Host(LmscopeAppBase):
    def on_mount(self) -> None:
        self.push_screen(ProbeScreen())


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def measure(model: str, tokens: int, runs: int) -> dict[str, float]:
    engine = Engine(EngineConfig())
    out: dict[str, list[float]] = {k: [] for k in ("engine", "levels", "show", "frame", "idle", "visible", "whole",
                                                   "svg")}
    try:
        result = await engine.attention(model, TEXT * 20, max_tokens=tokens)  # load, warm up
        for _ in range(runs):
            start = time.perf_counter()
            result = await engine.attention(model, TEXT * 20, max_tokens=tokens)
            out["engine"].append(time.perf_counter() - start)
        layer = result.num_layers - 1
        for _ in range(runs):
            start = time.perf_counter()
            levels(select(result.weights, layer, None), causal=result.causal)
            out["levels"].append(time.perf_counter() - start)
        for _ in range(runs):
            start = time.perf_counter()
            heatmap_svg(result, layer, None)
            out["svg"].append(time.perf_counter() - start)

        app = Host(engine=engine, store=Store(Path(tempfile.mkdtemp()) / "r.sqlite"), model=model)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f7")
            tool = app.screen.query_one(AttentionTool)
            heatmap = tool.query_one(AttentionHeatmap)
            for _ in range(runs):
                start = time.perf_counter()
                await pilot.pause()
                out["idle"].append(time.perf_counter() - start)
                start = time.perf_counter()
                tool.show_result(result)
                out["show"].append(time.perf_counter() - start)
                await pilot.pause()
                out["frame"].append(time.perf_counter() - start)
                start = time.perf_counter()
                for y in range(heatmap.scrollable_content_region.height):
                    heatmap.render_line(y)
                out["visible"].append(time.perf_counter() - start)
        app = Host(engine=engine, store=Store(Path(tempfile.mkdtemp()) / "r.sqlite"), model=model)
        async with app.run_test(size=(tokens + 60, tokens + 12)) as pilot:
            await pilot.press("f7")
            tool = app.screen.query_one(AttentionTool)
            heatmap = tool.query_one(AttentionHeatmap)
            tool.show_result(result)
            heatmap.cell_width = 1
            await pilot.pause()
            assert heatmap.scrollable_content_region.width >= heatmap.label_columns + len(result.key_tokens)
            for _ in range(runs):
                start = time.perf_counter()
                for y in range(len(result.query_tokens) + 1):
                    heatmap.render_line(y)
                out["whole"].append(time.perf_counter() - start)
        shape = result.weights.shape
    finally:
        await engine.aclose()
    medians = {k: _median_ms(v) for k, v in out.items()}
    medians.update(layers=shape[0], heads=shape[1], tokens=shape[2])
    return medians


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default")
    parser.add_argument("--tiny", action="store_true", help="a small random model instead (quick)")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    model = args.model
    if args.tiny:
        from tests.tiny_models import build_causal

        model = str(build_causal(Path(tempfile.mkdtemp()) / "tiny", max_positions=4096, hidden=256, layers=4))
    m = asyncio.run(measure(model, args.tokens, args.runs))
    engine_ms = m["engine"]
    print(f"Attention probe benchmark: {m['tokens']:.0f}-token prompt, {m['layers']:.0f} layers x {m['heads']:.0f} "
          f"heads ({model}), medians of {args.runs} runs")
    print(f"  engine.attention (baseline)          {engine_ms:9.2f} ms")
    for key, label in (("levels", "select + colour levels (numpy)"), ("show", "show_result on the event loop"),
                       ("frame", "first frame at 80x24 (show+paint)"), ("idle", "  (an idle frame, for reference)"),
                       ("visible", "visible lines at 80x24 (repaint)"), ("whole", "whole heatmap, every row"),
                       ("svg", "SVG export (whole heatmap)")):
        print(f"  {label:<36} {m[key]:9.2f} ms   (ratio to engine {m[key] / engine_ms:6.3f})")


if __name__ == "__main__":
    main()

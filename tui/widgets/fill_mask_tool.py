"""The fill-mask tool: the top-k predictions of a masked language model for each ``[MASK]``."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Input, Static

from engine import FillMaskRequest, FillMaskResult
from tui.widgets.probe_tool import ProbeTool, busy
from tui.widgets.token_view import format_probability


def fill_mask_text(result: FillMaskResult) -> Content:
    """The model, then the top-k predictions per mask position, with probabilities and bars."""
    lines: list[Content] = [Content.assemble(("model ", "dim"), result.model)]
    for k, predictions in enumerate(result.predictions, 1):
        lines.append(Content.styled(f"mask {k} of {len(result.predictions)}", "bold $accent"))
        for rank, p in enumerate(predictions, 1):
            bar = "█" * max(1, round(p.probability * 20))
            lines.append(Content.assemble(f"{rank:>3}. ", (f"{p.token:<14}", "bold"), " ",
                                          f"{format_probability(p.probability):>8} ", (bar, "$accent")))
        if predictions:
            lines.append(Content.assemble(("     → ", "dim"), (predictions[0].sequence, "italic")))
    if not result.predictions:
        lines.append(Content.styled("no mask token in the text", "dim"))
    return Content("\n").join(lines)


class FillMaskTool(ProbeTool):
    """Text with ``[MASK]``; the predictions per mask, with probabilities."""

    tool = "mask"
    focus_id = "mask-text"

    def __init__(self, app_model: str, *, top_k: int = 5, id: str | None = None) -> None:
        super().__init__(app_model, id=id)
        self.top_k = top_k
        self.result: FillMaskResult | None = None

    def compose(self) -> ComposeResult:
        yield self.model_field()
        yield Input(placeholder="text with [MASK], e.g. The capital of France is [MASK].", id="mask-text")
        yield Static(Content.styled("Predictions appear here (the model must be a masked LM, BERT-style).", "dim"),
                     id="mask-results", classes="probe-results")

    @on(Input.Submitted, "#mask-text")
    def _mask_submitted(self) -> None:
        self.run()

    def run(self) -> None:
        text = self.query_one("#mask-text", Input).value
        if "[MASK]" not in text:
            self.query_one("#mask-results", Static).update(Content.styled("Put at least one [MASK] in the text.",
                                                                          "$warning"))
            return
        self._fill_mask(self.model, text)

    @work(exclusive=True, exit_on_error=False, group="fill-mask")
    async def _fill_mask(self, model: str, text: str) -> None:
        results = self.query_one("#mask-results", Static)
        try:
            results.update(busy("loading", model))
            await self.app.engine.load(model)
            results.update(busy("predicting with", model))
            result = await self.app.engine.fill_mask(FillMaskRequest(model, text, self.top_k))
        except Exception as exc:
            self.report(results, exc, "Not a masked language model. ")
            return
        self.result = result
        results.update(fill_mask_text(result))

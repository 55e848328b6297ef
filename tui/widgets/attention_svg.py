"""An attention heatmap as a standalone SVG file (pure: no Textual, no engine call).

The same colour levels as the terminal heatmap (:mod:`tui.widgets.attention_data`); each cell
carries its exact weight in a ``<title>`` (a tooltip in browsers). Token labels are model output,
so every text is XML-escaped.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from engine import AttentionResult
from tui.widgets.attention_data import MASKED, PALETTE, Scale, levels, select, token_label

CELL = 14
LABEL_CHARS = 16
FONT = 11


def _label(token: str) -> str:
    text = token_label(token)
    return escape(text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…")


def heatmap_svg(result: AttentionResult, layer: int, head: int | None, *, scale: Scale = "matrix") -> str:
    """The heatmap of ``result`` at ``layer`` / ``head`` (None: mean over heads) as SVG text:
    queries as rows (labels left), keys as columns (labels on top, rotated)."""
    matrix = select(result.weights, layer, head)
    cells = levels(matrix, scale=scale, causal=result.causal)
    rows, cols = matrix.shape
    gutter = LABEL_CHARS * 7 + 8
    top = LABEL_CHARS * 7 + 24
    width, height = gutter + cols * CELL + 8, top + rows * CELL + 8
    what = "mean of heads" if head is None else f"head {head}"
    title = escape(f"{result.model} · {result.kind} attention · layer {layer} · {what}")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="{FONT}">',
           f"<title>{title}</title>", '<rect width="100%" height="100%" fill="#ffffff"/>',
           f'<text x="4" y="14" font-weight="bold">{title}</text>']
    for j, token in enumerate(result.key_tokens):
        x = gutter + j * CELL + CELL * 0.7
        out.append(f'<text x="{x:.1f}" y="{top - 4}" transform="rotate(-60 {x:.1f} {top - 4})">{_label(token)}</text>')
    for i, token in enumerate(result.query_tokens):
        y = top + i * CELL
        out.append(f'<text x="{gutter - 4}" y="{y + CELL - 3}" text-anchor="end">{_label(token)}</text>')
        for j in range(cols):
            if cells[i, j] == MASKED:
                continue
            out.append(f'<rect x="{gutter + j * CELL}" y="{y}" width="{CELL}" height="{CELL}" '
                       f'fill="{PALETTE[cells[i, j]]}"><title>{matrix[i, j]:.4f}</title></rect>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_heatmap_svg(path: str | Path, result: AttentionResult, layer: int, head: int | None, *,
                      scale: Scale = "matrix") -> Path:
    """Write :func:`heatmap_svg` to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.write_text(heatmap_svg(result, layer, head, scale=scale), encoding="utf-8")
    return path


def default_svg_name(result: AttentionResult, layer: int, head: int | None) -> str:
    """A file name for the export: the model's own name, the kind, layer and head, as safe characters."""
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(result.model.rstrip("/")).name)
    return f"attention-{stem or 'model'}-{result.kind}-L{layer}-{'mean' if head is None else f'H{head}'}.svg"


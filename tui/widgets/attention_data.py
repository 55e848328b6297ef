"""What the attention heatmap and its SVG export draw, as plain numpy: the matrix for a layer and
head (or the mean over heads), its colour levels, and the keys a query attends to most.

One colour scale for both views: :data:`PALETTE` from cold to hot, a cell's level being its
weight over the scale (the matrix's largest weight, or its row's) in :data:`LEVELS` equal steps,
so the hottest level holds the matrix's argmax. Cells a causal mask hides get level ``-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tui.widgets.score_panel import printable
from tui.widgets.token_view import display_token

# Dark blue through teal and green to yellow (viridis-like): ordered by lightness, so readable
# without colour vision and in a monochrome export.
PALETTE: tuple[str, ...] = ("#1b1f3b", "#2c2f6b", "#313f8f", "#2a5a9a", "#21789a", "#1f9590", "#35b07a",
                            "#6cc45a", "#b3d334", "#fde725")
LEVELS = len(PALETTE)
MASKED = -1
Scale = Literal["matrix", "row"]


def token_label(token: str) -> str:
    """A token as a label: control characters neutralised (:func:`printable`), newlines and
    tabs shown as ``↵`` / ``⇥``, an empty token as ``∅``. Never interpreted as markup by callers,
    who draw it as plain text."""
    return display_token(printable(token))


def select(weights: np.ndarray, layer: int, head: int | None) -> np.ndarray:
    """``weights[layer, head]`` as a ``[query, key]`` matrix; ``head=None``: the mean over heads."""
    per_layer = weights[layer]
    return per_layer.mean(axis=0) if head is None else per_layer[head]


def levels(matrix: np.ndarray, *, scale: Scale = "matrix", causal: bool = False) -> np.ndarray:
    """Colour level per cell (``0 .. LEVELS-1``; :data:`MASKED` above a causal diagonal), as int8.

    ``scale="matrix"`` divides by the largest weight, ``"row"`` by each row's own largest (so a
    row dominated by one key, such as the first token, still shows its other keys).
    """
    top = matrix.max(axis=1, keepdims=True) if scale == "row" else np.asarray(matrix.max())
    top = np.where(top > 0, top, 1.0)
    out = np.minimum(LEVELS - 1, (matrix / top * LEVELS).astype(np.int16)).astype(np.int8)
    if causal:
        out[np.triu_indices(matrix.shape[0], k=1, m=matrix.shape[1])] = MASKED
    return out


@dataclass(frozen=True)
class KeyWeight:
    """One key a query attends to: its index, label and weight."""

    index: int
    label: str
    weight: float


def top_keys(matrix: np.ndarray, query: int, key_tokens: tuple[str, ...], k: int = 8) -> list[KeyWeight]:
    """The ``k`` keys query ``query`` gives the most weight, heaviest first (ties: earlier key first)."""
    row = matrix[query]
    order = np.argsort(-row, kind="stable")[:k]
    return [KeyWeight(int(i), token_label(key_tokens[i]), float(row[i])) for i in order]


def legend_parts(matrix: np.ndarray, scale: Scale) -> tuple[str, str]:
    """What the hottest colour means: the weight it stands for, and how the scale was chosen."""
    if scale == "row":
        return "row max", "each row scaled to its own largest weight (s: whole map)"
    return f"{float(matrix.max()):.3f}", "the largest weight shown (s: per row)"

"""A second llama.cpp context for batches: one KV-cache stream per sequence.

With ``kv_unified`` off, every sequence owns a stream of cells that starts empty at cell 0 and
fills in position order, exactly as a request decoded alone fills the main context. So a
sequence can be emptied and given the next request while the others go on decoding
(continuous batching), and several prompts can be computed in one ``llama_decode`` call; the
logits stay bit-identical to the request decoded alone (measured: prompts, 20 greedy steps and
a reused stream, on SmolLM2 Q4_1). In the unified cache the main context uses, a request
started in cells another one left behind found its keys out of order and 4 of 10 chat answers
changed a token.

A stream can also be copied whole (``llama_memory_seq_cp`` across streams copies the buffer):
the prompt prefix a batch shares (the chat template's system turn, a scenario's instructions and
few-shot examples) is computed once and copied into each sequence before its own tokens.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

# Cells are allocated per stream in multiples of this (llama.cpp pads its attention views to 256).
CELL_STEP = 256


def fill_batch(batch: Any, items: Sequence[tuple[int, int, int, bool]]) -> None:
    """Write ``items`` (token, position, sequence, wants logits) into a ``llama_batch``."""
    batch.n_tokens = len(items)
    for i, (token, position, seq, want) in enumerate(items):
        batch.token[i] = token
        batch.pos[i] = position
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = want


def fit_threads(llama_cpp: Any, ctx: Any, wanted: int) -> None:
    """Make context ``ctx`` decode with ``wanted`` threads from its next call (a no-op when it does)."""
    if llama_cpp.llama_n_threads(ctx) != wanted:
        llama_cpp.llama_set_n_threads(ctx, wanted, wanted)


class LlamaStreams:
    """``streams`` sequences of ``cells`` cells each, in a context of their own on the runtime's
    model (blocking; the model's worker thread)."""

    def __init__(self, llama_cpp: Any, model: Any, params: Any, streams: int, cells: int, batch_tokens: int,
                 threads_now: Callable[[], int]) -> None:
        """``params``: context parameters to start from (threads, batch sizes); ``threads_now``:
        threads for each decode call. Raises ValueError when llama.cpp cannot make the context
        (out of memory)."""
        from llama_cpp import _internals

        self.llama_cpp = lp = llama_cpp
        self.streams, self.cells = streams, cells
        params.n_ctx = streams * cells
        params.n_seq_max = streams
        params.kv_unified = False
        self._ctx = _internals.LlamaContext(model=model, params=params, verbose=False)
        self.n_vocab = model.n_vocab()
        self.batch_tokens = batch_tokens
        self.threads_now = threads_now
        self._batch = lp.llama_batch_init(batch_tokens, 0, 1)

    def fits(self, streams: int, cells: int) -> bool:
        return streams <= self.streams and cells <= self.cells

    def clear(self, seq: int) -> None:
        """Empty stream ``seq``."""
        self.llama_cpp.llama_memory_seq_rm(self._ctx.memory, seq, -1, -1)

    def copy(self, source: int, target: int) -> None:
        """Make stream ``target`` a copy of stream ``source`` (whole streams only)."""
        self.llama_cpp.llama_memory_seq_cp(self._ctx.memory, source, target, -1, -1)

    def decode(self, items: Sequence[tuple[int, int, int, bool]]) -> list[np.ndarray]:
        """One llama_decode call; ``items`` are (token, position, sequence, wants logits), at most
        ``batch_tokens``. Returns the logits rows asked for, in order. Raises RuntimeError."""
        fill_batch(self._batch, items)
        fit_threads(self.llama_cpp, self._ctx.ctx, self.threads_now())
        code = self.llama_cpp.llama_decode(self._ctx.ctx, self._batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        rows = []
        for i, (_, _, _, want) in enumerate(items):
            if want:
                pointer = self.llama_cpp.llama_get_logits_ith(self._ctx.ctx, i)
                rows.append(np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy())
        return rows

    def close(self) -> None:
        if self._batch is not None:
            self.llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()

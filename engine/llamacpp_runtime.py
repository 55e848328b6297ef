"""A thin layer over llama.cpp (``llama-cpp-python``'s C bindings): one model, one context, and
the tokens cached for each of its sequences.

``llama_cpp.Llama`` is not used: it allocates a logits matrix of ``n_ctx x n_vocab`` floats when
every position's logits are wanted (1.6 GB for SmolLM2's 8,192-token context), hides the KV
cache it reuses, and samples inside llama.cpp with its own RNG. Here the engine keeps control:
logits come back as numpy rows (only those asked for), sampling and log-probabilities are done
by the caller, several sequences decode in one call, and a sequence's KV cache is reused for the
prefix consecutive requests share (a chat turn re-sends the whole history; only the new part is
computed), in whole chunks so that reuse never changes a result.

Blocking throughout; a backend calls it from its one worker thread.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from engine.cancel import CancelToken
from engine.llamacpp_streams import LlamaStreams, fill_batch, fit_threads

llama_log = logging.getLogger("engine.llamacpp.native")

# Prompt tokens per llama_decode call; also how often a long prompt checks for cancellation.
BATCH_TOKENS = 512
# Most context allocated for a model (its KV cache is allocated up front: 8,192 tokens of a 7B
# model take 1 GB). Models trained on less get their own length.
MAX_CONTEXT = 8192

_INIT_LOCK = threading.Lock()
_initialised = False
_log_callback = None  # kept alive: llama.cpp holds a pointer to it


def _forward_native_log(level: int, text: bytes, _user_data) -> None:
    # llama.cpp's own logging would print to stderr, which the terminal app owns.
    # ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the last line)
    if level in (3, 4):
        llama_log.log(logging.WARNING if level == 3 else logging.ERROR, "%s", text.decode("utf-8", "replace").rstrip())


def init_llama_cpp() -> ModuleType:
    """Import llama_cpp, initialise its backend once and route its log to Python logging.

    Raises ImportError when ``llama-cpp-python`` is not installed.
    """
    global _initialised, _log_callback
    import llama_cpp

    with _INIT_LOCK:
        if not _initialised:
            _log_callback = llama_cpp.llama_log_callback(_forward_native_log)
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _initialised = True
    return llama_cpp


class LlamaDecodeError(RuntimeError):
    """llama_decode failed (no KV-cache slot left, or an internal error)."""


@dataclass(frozen=True)
class Scored:
    """Log-probabilities of a sequence's last tokens, each given all tokens before it."""

    logprobs: np.ndarray  # float64
    greedy: np.ndarray  # bool: the token was the model's argmax


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float32 (as the Hugging Face path computes it)."""
    top = logits.max(axis=-1, keepdims=True)
    shifted = logits - top
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class LlamaRuntime:
    """A loaded GGUF model with one llama.cpp context for single requests and scoring (sequence
    0, the whole ``n_ctx``), and on demand a second one for batches of up to ``sequences``
    requests (:meth:`streams`)."""

    def __init__(self, path: str, threads: int, sequences: int = 1, gpu_layers: int = 0) -> None:
        """Load ``path``. Raises ValueError when llama.cpp cannot load it."""
        self.llama_cpp = lp = init_llama_cpp()
        from llama_cpp import _internals

        # One stream of the batch context holds the prefix a batch shares.
        sequences = max(1, min(sequences, lp.llama_max_parallel_sequences() - 1, BATCH_TOKENS))
        self._threads = threads
        # Threads for the next llama_decode call (the engine shares the cores among busy models).
        self.threads_now: Callable[[], int] = lambda: self._threads
        self._streams: LlamaStreams | None = None

        model_params = lp.llama_model_default_params()
        model_params.n_gpu_layers = gpu_layers
        if b"AMX_INT8 = 1" in lp.llama_print_system_info():
            # Weights repacked for AMX crash in ggml_backend_amx_mul_mat on some AMX machines
            # (llama.cpp issue 20824; seen here on the first decode). Plain CPU buffers are safe.
            model_params.use_extra_bufts = False
        self._model = _internals.LlamaModel(path_model=path, params=model_params, verbose=False)
        try:
            self.n_ctx_train = self._model.n_ctx_train()
            ctx_params = self._context_params()
            ctx_params.n_ctx = min(self.n_ctx_train, MAX_CONTEXT) if self.n_ctx_train > 0 else MAX_CONTEXT
            self._ctx = _internals.LlamaContext(model=self._model, params=ctx_params, verbose=False)
        except BaseException:
            self._model.close()
            raise
        self.n_ctx = lp.llama_n_ctx(self._ctx.ctx)
        self.sequences = sequences
        self.n_vocab = self._model.n_vocab()
        self._batch = lp.llama_batch_init(BATCH_TOKENS, 0, 1)
        self._vocab = self._model.vocab
        # Per sequence of the main context (one), the tokens whose keys and values sit in the KV
        # cache, in order, and how many of the first ones were computed in whole chunks (see _reusable).
        self.cached: list[list[int]] = [[]]
        self._whole_chunks: list[int] = [0]
        self.metadata: dict[str, str] = self._model.metadata()

    def _context_params(self) -> Any:
        lp = self.llama_cpp
        params = lp.llama_context_default_params()
        params.n_batch = params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = 1
        # Its threads meet at a barrier after every operation: with as many threads as cores,
        # one core busy with other work made decoding 25x slower here (3 tok/s instead of 73);
        # the engine still defaults to every physical core (engine.device.llama_threads).
        params.n_threads = params.n_threads_batch = self._threads
        params.no_perf = True
        return params

    def streams(self, count: int, cells: int) -> LlamaStreams:
        """The batch context with at least ``count`` streams of ``cells`` cells, kept for the
        next batch that fits (its cells are allocated once, like the main context's). Raises
        LlamaDecodeError when llama.cpp cannot allocate it."""
        if self._streams is not None and self._streams.fits(count, cells):
            return self._streams
        if self._streams is not None:
            self._streams.close()
            self._streams = None
        try:
            self._streams = LlamaStreams(self.llama_cpp, self._model, self._context_params(), count, cells,
                                         BATCH_TOKENS, lambda: self.threads_now())
        except ValueError as exc:
            raise LlamaDecodeError(f"cannot allocate {count} sequences of {cells} tokens: {exc}") from exc
        return self._streams

    # --------------------------------------------------------------------------- facts
    @property
    def description(self) -> str:
        """llama.cpp's one-line description, e.g. ``llama 256M Q4_1``."""
        return self._model.desc()

    @property
    def size_bytes(self) -> int:
        return int(self._model.size())

    @property
    def num_parameters(self) -> int:
        return int(self._model.n_params())

    @property
    def threads(self) -> int:
        """CPU threads llama.cpp decodes with."""
        return int(self.llama_cpp.llama_n_threads(self._ctx.ctx))

    @property
    def is_generative(self) -> bool:
        """A decoder-only model with a KV cache (not seq2seq, not an embedding model)."""
        lp, model = self.llama_cpp, self._model.model
        return (bool(lp.llama_model_has_decoder(model)) and not lp.llama_model_has_encoder(model)
                and self._ctx.memory is not None)

    def token_text(self, token: int) -> str:
        """The vocabulary entry of ``token`` (special tokens as written, e.g. ``<|im_end|>``)."""
        return self._model.token_get_text(token)

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self.llama_cpp.llama_vocab_is_eog(self._vocab, token))

    @property
    def adds_bos(self) -> bool:
        return bool(self._model.add_bos_token())

    # ---------------------------------------------------------------------- tokenisation
    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        """Token ids of ``text``; special tokens written in the text are parsed as such (as the
        Hugging Face tokenizers do)."""
        if not text:
            return [self._model.token_bos()] if add_bos else []
        return self._model.tokenize(text.encode("utf-8"), add_bos, True)

    def piece(self, token: int, special: bool) -> bytes:
        """The bytes ``token`` stands for; control tokens are empty unless ``special``."""
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = self.llama_cpp.llama_token_to_piece(self._vocab, token, buffer, size, 0, special)
            if n >= 0:
                return buffer.raw[:n]
            size = -n

    def decode_text(self, tokens: Sequence[int], special: bool = False) -> str:
        return b"".join(self.piece(t, special) for t in tokens).decode("utf-8", "replace")

    # ------------------------------------------------------------------------- decoding
    def _decode(self, items: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode call; ``items`` are (token, position, sequence, wants logits)."""
        fill_batch(self._batch, items)
        fit_threads(self.llama_cpp, self._ctx.ctx, self.threads_now())
        code = self.llama_cpp.llama_decode(self._ctx.ctx, self._batch)
        if code != 0:
            # The cache may hold part of the batch now: forget what it holds.
            self.reset()
            raise LlamaDecodeError(f"llama_decode returned {code}")

    def _logits(self, index: int) -> np.ndarray:
        pointer = self.llama_cpp.llama_get_logits_ith(self._ctx.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def reset(self) -> None:
        """Empty the main context's KV cache."""
        self._ctx.kv_cache_clear()
        self.cached = [[]]
        self._whole_chunks = [0]

    def drop(self, seq: int, keep: int = 0) -> int:
        """Forget sequence ``seq`` after its first ``keep`` tokens; return how many it kept
        (none when the model's memory cannot be cut there, as with recurrent models)."""
        if keep < len(self.cached[seq]):
            lp = self.llama_cpp
            if not lp.llama_memory_seq_rm(self._ctx.memory, seq, keep, -1):
                lp.llama_memory_seq_rm(self._ctx.memory, seq, 0, -1)
                keep = 0
            del self.cached[seq][keep:]
        self._whole_chunks[seq] = min(self._whole_chunks[seq], keep)
        return keep

    def _reusable(self, seq: int, tokens: Sequence[int], limit: int) -> int:
        """Keep the cached prefix of ``seq`` that ``tokens`` can reuse (at most ``limit`` tokens)
        and drop the rest; return its length.

        Only whole chunks count: keys and values computed in another chunk (or one token at a time
        while decoding) differ in the last bits, and the same request must give the same text
        whatever ran before it. Chunks start at multiples of BATCH_TOKENS, so what is reused is
        exactly what computing ``tokens`` from scratch would have produced.
        """
        shared = min(_common_prefix(self.cached[seq], tokens), self._whole_chunks[seq], limit)
        return self.drop(seq, shared - shared % BATCH_TOKENS)

    def _feed(self, seq: int, tokens: Sequence[int], start: int, want: Callable[[int], bool]) -> int:
        """Decode ``tokens[start:start + BATCH_TOKENS]`` into ``seq``; ``want(position)`` says
        which positions need logits. Returns the end of the chunk."""
        chunk = tokens[start:start + BATCH_TOKENS]
        self._decode([(t, start + i, seq, want(start + i)) for i, t in enumerate(chunk)])
        self.cached[seq].extend(chunk)
        if len(chunk) == BATCH_TOKENS and self._whole_chunks[seq] == start:
            self._whole_chunks[seq] = start + BATCH_TOKENS
        return start + len(chunk)

    def prefill(self, tokens: Sequence[int], cancel: CancelToken | None = None, seq: int = 0) -> np.ndarray | None:
        """Bring sequence ``seq`` to ``tokens`` and return the logits after the last one, or None
        when ``cancel`` was set between chunks. Reuses whole cached chunks only (see
        :meth:`_reusable`), so the logits are those of computing ``tokens`` from scratch."""
        if not tokens:
            raise ValueError("cannot decode an empty prompt")
        start = self._reusable(seq, tokens, len(tokens) - 1)
        while start < len(tokens):
            if cancel is not None and cancel.is_set():
                return None
            start = self._feed(seq, tokens, start, lambda position: position == len(tokens) - 1)
        return self._logits(-1)

    def step(self, tokens: dict[int, int]) -> dict[int, np.ndarray]:
        """Append one token to each of several sequences ({sequence: token}) in one decode call;
        return the logits after each."""
        items = [(token, len(self.cached[seq]), seq, True) for seq, token in tokens.items()]
        self._decode(items)
        out = {}
        for index, (seq, token) in enumerate(tokens.items()):
            self.cached[seq].append(token)
            out[seq] = self._logits(index)
        return out

    def score(self, tokens: Sequence[int], num_targets: int) -> Scored:
        """log P(tokens[i] | tokens[:i]) for the last ``num_targets`` tokens (``tokens[0]`` is
        never a target) and whether each was the greedy choice. Uses sequence 0."""
        first = len(tokens) - 1 - num_targets  # position whose logits predict the first target
        if num_targets < 1 or first < 0:
            raise ValueError(f"cannot score {num_targets} of {len(tokens)} tokens")
        inputs = tokens[:-1]
        start = self._reusable(0, inputs, first)
        logprobs = np.empty(num_targets, dtype=np.float64)
        greedy = np.empty(num_targets, dtype=bool)
        for begin, rows in self._all_logits(inputs, start, first):
            targets = np.asarray(tokens[begin + 1:begin + 1 + len(rows)])
            picked = log_softmax(rows)[np.arange(len(rows)), targets]
            logprobs[begin - first:begin - first + len(rows)] = picked
            greedy[begin - first:begin - first + len(rows)] = rows.argmax(axis=-1) == targets
        return Scored(logprobs, greedy)

    def _all_logits(self, tokens: Sequence[int], start: int, first: int) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``tokens[start:]`` into sequence 0, yielding (position, logits rows) for
        positions >= ``first``."""
        while start < len(tokens):
            end = self._feed(0, tokens, start, lambda position: position >= first)
            outputs = end - max(start, first)
            if outputs > 0:
                pointer = self.llama_cpp.llama_get_logits(self._ctx.ctx)
                yield end - outputs, np.ctypeslib.as_array(pointer, shape=(outputs, self.n_vocab))
            start = end

    # -------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Free the contexts, the batch and the model."""
        if self._streams is not None:
            self._streams.close()
            self._streams = None
        if self._batch is not None:
            self.llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()
        self._model.close()

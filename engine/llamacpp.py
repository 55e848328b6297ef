"""The llama.cpp backend: a GGUF model run by ``llama-cpp-python``, behind the same contract as
:class:`~engine.local.HFBackend`.

It loads a GGUF file as it is (no dequantisation: well under a second for SmolLM2) and decodes
several times faster on a CPU than transformers. Prompts are built by the same code as the Hugging
Face path (:func:`engine.prompts.prepare`, through a small tokenizer adapter), the chat template
is the GGUF file's own, rendered as ``apply_chat_template`` renders it, and perplexity uses the
same windows, prefix token and word count as :mod:`engine.scoring`.

Calls run in order on the model's worker thread (llama.cpp itself uses ``threads`` CPU
threads). Batched ``generate`` decodes up to 32 requests at once, each in a KV-cache stream of
its own (:mod:`engine.llamacpp_generate`, :mod:`engine.llamacpp_streams`), and a request's text
does not depend on what else was in the batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from engine import scoring
from engine.attention import TransformersTwin
from engine.backend import Emit, ModelBackend
from engine.cancel import CancelToken
from engine.errors import (
    InvalidModelError,
    LmscopeError,
    MissingDependencyError,
    UnsupportedModelError,
)
from engine.llamacpp_generate import generate_all
from engine.llamacpp_runtime import LlamaDecodeError, LlamaRuntime, init_llama_cpp
from engine.llamacpp_template import ChatTemplate
from engine.prompts import prepare
from engine.spec import LLAMACPP_INSTALL, ModelSpec
from engine.types import (
    AttentionRequest,
    AttentionResult,
    FillMaskRequest,
    FillMaskResult,
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    ModelInfo,
    ModelKind,
    PerplexityResult,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = Callable[[str], None]
BACKEND_NAME = "llamacpp"
# Requests decoded at once. Measured on a busy 2-core machine, SmolLM2 Q4_1, one thread, 32 chat
# requests of up to 48 tokens, prompts included: 16 sequences 47 tok/s, 32 66 (decoding is
# compute-bound here: more sequences per step share each weight read).
DEFAULT_SEQUENCES = 32
ALL_LAYERS = 0x7FFFFFFF  # llama.cpp caps it at the model's layer count


class LlamaTokenizer:
    """The slice of a Hugging Face tokenizer that :mod:`engine.prompts` and :mod:`engine.scoring`
    use, served by llama.cpp's own vocabulary and the GGUF chat template."""

    def __init__(self, runtime: LlamaRuntime) -> None:
        self.runtime = runtime
        meta = runtime.metadata

        def special(key: str) -> int | None:
            value = meta.get(f"tokenizer.ggml.{key}_token_id")
            return int(value) if value not in (None, "") else None

        self.bos_token_id = special("bos")
        self.eos_token_id = special("eos")
        self.pad_token_id = special("padding")
        if self.pad_token_id is None:  # as the Hugging Face loader does
            self.pad_token_id = self.eos_token_id if self.eos_token_id is not None else special("unknown")
        names = {"bos_token": self.bos_token_id, "eos_token": self.eos_token_id,
                 "unk_token": special("unknown"), "pad_token": self.pad_token_id}
        tokens = {name: runtime.token_text(i) for name, i in names.items() if i is not None}
        source = meta.get("tokenizer.chat_template")
        self.chat_template = ChatTemplate(source, tokens) if source else None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self.runtime.tokenize(text, add_bos=add_special_tokens and self.runtime.adds_bos)}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.runtime.decode_text(ids, special=not skip_special_tokens)

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True,
                            tokenize: bool = False) -> str:
        if self.chat_template is None or tokenize:
            raise ValueError("this adapter renders chat templates to text only, and needs a template")
        return self.chat_template.render(messages, add_generation_prompt)


@dataclasses.dataclass
class LlamaModelView:
    """What :func:`engine.prompts.prepare` and :mod:`engine.scoring` read from a loaded model."""

    info: ModelInfo
    tokenizer: LlamaTokenizer
    kind: ModelKind = "causal"


def _dtype(description: str) -> str:
    # "llama 256M Q4_1" -> "Q4_1"; "llama 7B Q4_K - Medium" -> "Q4_K - Medium"
    parts = description.split(" ", 2)
    return parts[2] if len(parts) == 3 else "gguf"


def _placement(llama_cpp: Any, requested: str | None) -> tuple[int, str]:
    """(layers to offload, device name) for the device asked for: every layer on the GPU when
    this build of llama.cpp has one and the device is auto or a GPU, else the CPU."""
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    if requested in (None, "auto"):
        return (ALL_LAYERS, "gpu") if gpu else (0, "cpu")
    if requested == "cpu":
        return 0, "cpu"
    if gpu:
        return ALL_LAYERS, requested
    raise UnsupportedModelError(f"device {requested!r} asked for, but this llama-cpp-python build runs on the CPU only",
                                hint="use device cpu, the Hugging Face backend, or a GPU build of llama-cpp-python")


def load_runtime(spec: ModelSpec, path: Path, threads: int, sequences: int = DEFAULT_SEQUENCES,
                 progress: Progress | None = None) -> tuple[LlamaRuntime, LlamaModelView]:
    """Load the GGUF file at ``path`` with llama.cpp (blocking; call from a worker thread), able
    to decode ``sequences`` requests at once.

    Raises:
        MissingDependencyError: llama-cpp-python is not installed.
        UnsupportedModelError: a fill-mask or seq2seq kind was asked for, the file is not a
            decoder-only model, or a GPU was asked for and this build has none.
        InvalidModelError: llama.cpp cannot load the file (corrupt, truncated, unknown architecture).
    """
    started = time.perf_counter()
    if spec.kind not in (None, "causal"):
        raise UnsupportedModelError(
            f"the llama.cpp backend runs causal language models; {spec.kind} models are not served from GGUF",
            hint="use the Hugging Face backend (backend='hf') for fill-mask and seq2seq models")
    try:
        llama_cpp = init_llama_cpp()
    except ImportError as exc:
        raise MissingDependencyError("the llama.cpp backend needs llama-cpp-python, which is not installed",
                                     hint=f"install it with: {LLAMACPP_INSTALL}") from exc
    gpu_layers, device = _placement(llama_cpp, spec.device)
    if progress is not None:
        progress(f"loading {path.name} with llama.cpp")
    try:
        runtime = LlamaRuntime(str(path), threads, sequences, gpu_layers)
    except (ValueError, RuntimeError) as exc:
        raise InvalidModelError(f"cannot load GGUF file {path} with llama.cpp: {exc}",
                                hint="the file may be corrupt or truncated, or of an architecture llama.cpp "
                                     "does not know; re-download it or try backend='hf'") from exc
    try:
        if not runtime.is_generative:
            raise UnsupportedModelError(
                f"{path.name} is not a decoder-only language model (embedding, fill-mask and seq2seq GGUF "
                "models are not run by the llama.cpp backend)", hint="use the Hugging Face backend (backend='hf')")
        tokenizer = LlamaTokenizer(runtime)
    except BaseException:
        runtime.close()
        raise
    info = ModelInfo(
        name=spec.name, source=str(path), kind="causal", device=device, dtype=_dtype(runtime.description),
        context_length=runtime.n_ctx, num_parameters=runtime.num_parameters, memory_bytes=runtime.size_bytes,
        has_chat_template=tokenizer.chat_template is not None, load_time_s=time.perf_counter() - started,
        backend=BACKEND_NAME,
    )
    return runtime, LlamaModelView(info, tokenizer)


class LlamaCppBackend(ModelBackend):
    """A GGUF model run by llama.cpp on one worker thread: the event loop never waits on it, and
    one model's requests run in order."""

    def __init__(self, runtime: LlamaRuntime, view: LlamaModelView) -> None:
        super().__init__()
        self.runtime = runtime
        self.view = view
        self.info = view.info
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lmscope-llama-{self.info.name[-24:]}")
        self.twin = TransformersTwin(self.info)  # attention weights, which llama.cpp does not expose
        # Requests a scenario run sends per call: twice what decodes at once, so a request that
        # ends early hands its sequence to a waiting one (continuous batching) before the call ends.
        self.batch_size = 2 * runtime.sequences

    @classmethod
    async def open(cls, spec: ModelSpec, path: Path, threads: int, sequences: int | None = None,
                   progress: Progress | None = None) -> "LlamaCppBackend":
        """Load ``path`` off the event loop; ``sequences``: most requests decoded at once
        (default 32). Raises what :func:`load_runtime` raises."""
        runtime, view = await asyncio.to_thread(load_runtime, spec, path, threads, sequences or DEFAULT_SEQUENCES,
                                                progress)
        return cls(runtime, view)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on this model's worker thread."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))
        except LlamaDecodeError as exc:
            raise LmscopeError(f"llama.cpp failed while running {self.info.name!r}: {exc}",
                               hint="the prompt may not fit the context; try a shorter one") from exc

    async def generate(self, requests: Sequence[GenerationRequest], cancels: Sequence[CancelToken],
                       emit: Emit | None) -> list[GenerationResult]:
        """Up to 32 requests decode at once, a waiting one starting as soon as another ends (see
        :func:`engine.llamacpp_generate.generate_all`); results in request order."""
        return await self.call(self._generate_all, list(requests), list(cancels), emit)

    def _generate_all(self, requests: list[GenerationRequest], cancels: list[CancelToken],
                      emit: Emit | None) -> list[GenerationResult]:
        prepared = [prepare(self.view, r) for r in requests]  # every request is checked before any runs
        return generate_all(self.runtime, prepared, cancels, emit, self.info.device, self.info.dtype, self.info.name)

    async def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        """As :func:`engine.scoring.loglikelihood` computes it (same tokenisation and truncation);
        a long context shared by consecutive pairs is computed once (in whole 512-token chunks)."""
        return await self.call(self._loglikelihood, list(pairs))

    def _loglikelihood(self, pairs: list[tuple[str, str]]) -> list[LoglikelihoodResult]:
        results = []
        for ids, num_targets in scoring.loglikelihood_inputs(self.view, pairs):
            n = min(num_targets, len(ids) - 1)
            scored = self.runtime.score(ids, n)
            results.append(LoglikelihoodResult(
                logprob=float(scored.logprobs.sum()), num_tokens=n, is_greedy=bool(scored.greedy.all()),
                token_logprobs=tuple(scored.logprobs.tolist())))
        return results

    async def perplexity(self, texts: Sequence[str], max_length: int | None,
                         stride: int | None) -> list[PerplexityResult]:
        """The sliding-window perplexity of :func:`engine.scoring.perplexity`, window by window."""
        return await self.call(self._perplexity, list(texts), max_length, stride)

    def _perplexity(self, texts: list[str], max_length: int | None, stride: int | None) -> list[PerplexityResult]:
        max_length, stride, prefix, texts_ids = scoring.perplexity_inputs(self.view, texts, max_length, stride)
        method = scoring.perplexity_method(max_length, stride, prefix)
        results = []
        for text, ids in zip(texts, texts_ids):
            nll, count = 0.0, 0
            for begin, end, scored in scoring.perplexity_windows(ids, max_length, stride):
                nll -= float(self.runtime.score(ids[begin:end], scored).logprobs.sum())
                count += scored
            results.append(PerplexityResult(nll=nll, num_tokens=count, num_words=scoring.num_words(text),
                                            num_bytes=len(text.encode("utf-8")), method=method))
        return results

    async def fill_mask(self, request: FillMaskRequest) -> FillMaskResult:
        raise UnsupportedModelError(
            f"{self.info.name!r} runs on llama.cpp, which serves causal language models only: no fill-mask",
            hint="load a masked language model (e.g. a BERT folder) with the Hugging Face backend")

    async def attention(self, request: AttentionRequest) -> AttentionResult:
        """Computed by transformers from the same GGUF file, loaded on first use (see the result's notes)."""
        return await self.twin.attention(request)

    async def aclose(self) -> None:
        await self.twin.aclose()
        await asyncio.get_running_loop().run_in_executor(self.executor, lambda: None)  # let queued work end
        self.executor.shutdown(wait=False)
        self.runtime.close()
        self.runtime = None  # type: ignore[assignment]
        gc.collect()

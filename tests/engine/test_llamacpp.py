"""The llama.cpp backend, on the embedded default model (SmolLM2-135M-Instruct, Q4_1 GGUF).

Most tests need ``llama-cpp-python`` and are skipped without it. The parity tests (marked slow)
also load the same GGUF on the Hugging Face backend and compare: llama.cpp multiplies with the
quantised weights (and 8-bit activations), transformers with dequantised float32 copies, so
outputs are close, not equal. The bounds below are set under what was measured on a 2-core
x86 machine (AVX-512, llama-cpp-python 0.3.36, transformers 5.24): greedy answers (32 tokens)
identical for 8-10 of 20 prompts, 64-70% of tokens the same before the first divergence;
token perplexity 0.3-1.3% apart (the larger gaps on the shorter texts).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time

import pytest

import engine.spec as spec_module
from engine import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    ContextLengthError,
    Engine,
    EngineConfig,
    FillMaskRequest,
    GenerationParams,
    GenerationResult,
    InvalidModelError,
    InvalidRequestError,
    MissingDependencyError,
    ModelSpec,
    Text2TextRequest,
    UnsupportedModelError,
)
from engine.llamacpp_sampling import Sampler
from engine.llamacpp_template import ChatTemplate
from engine.scoring import num_words
from engine.spec import default_model_path, llama_cpp_available, resolve_source, select_backend

needs_llama = pytest.mark.skipif(
    not llama_cpp_available(),
    reason="llama-cpp-python is not installed (pip install llama-cpp-python==0.3.36): no llama.cpp backend to test")
LLAMA = ModelSpec("default", backend="llamacpp")
HF = ModelSpec("default", backend="hf")
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"  # greedy decoding keeps counting: a long answer


# One thread: llama.cpp's threads wait for each other at every step, so with as many threads as
# cores, anything else running made decoding 10-25x slower here (3 tok/s instead of 73).
THREADS = 1


@pytest.fixture
async def llama():
    eng = Engine(EngineConfig(threads=THREADS))
    await eng.load(LLAMA)
    yield eng
    await eng.aclose()


async def _stream(eng: Engine, request) -> tuple[list, GenerationResult]:
    deltas = []
    async for event in eng.stream(request):
        if isinstance(event, GenerationResult):
            return deltas, event
        deltas.append(event)
    raise AssertionError("the stream ended without a result")


# ------------------------------------------------------------------------- choosing the backend
def test_backend_choice_follows_the_spec_and_what_is_installed(monkeypatch, tmp_path):
    gguf = resolve_source(ModelSpec("default"))
    assert select_backend(ModelSpec("default", backend="hf"), gguf) == "hf"
    assert select_backend(ModelSpec("default", kind="masked"), gguf) == "hf"
    with pytest.raises(InvalidRequestError, match="unknown backend"):
        select_backend(ModelSpec("default", backend="vllm"), gguf)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(UnsupportedModelError, match=r"\.gguf"):
        select_backend(ModelSpec(str(tmp_path), backend="llamacpp"), resolve_source(ModelSpec(str(tmp_path))))

    monkeypatch.setattr(spec_module, "llama_cpp_available", lambda: False)
    assert select_backend(ModelSpec("default"), gguf) == "hf"
    with pytest.raises(MissingDependencyError) as err:
        select_backend(LLAMA, gguf)
    assert "pip install llama-cpp-python" in err.value.hint


async def test_asking_for_llamacpp_without_it_installed_fails_with_a_pip_hint(monkeypatch):
    monkeypatch.setattr(spec_module, "llama_cpp_available", lambda: False)
    async with Engine(EngineConfig(threads=THREADS)) as eng:
        with pytest.raises(MissingDependencyError, match="llama-cpp-python"):
            await eng.load(LLAMA)


@needs_llama
async def test_the_default_model_loads_on_llamacpp_quickly_and_says_so():
    async with Engine(EngineConfig(threads=THREADS)) as eng:
        started = time.perf_counter()
        info = await eng.load("default")  # auto: a .gguf file with llama.cpp installed
        elapsed = time.perf_counter() - started
        backend = await eng.backend("default")
        assert backend.runtime.threads == THREADS  # EngineConfig.threads
    assert elapsed < 2.0 and info.load_time_s < 2.0
    assert info.backend == "llamacpp" and info.kind == "causal" and info.dtype == "Q4_1"
    assert info.context_length == 8192 and info.has_chat_template and info.device == "cpu"
    assert 130e6 < info.num_parameters < 140e6


@needs_llama
async def test_what_llamacpp_cannot_serve_is_refused_clearly(llama, tmp_path):
    with pytest.raises(UnsupportedModelError, match="fill-mask"):
        await llama.fill_mask(FillMaskRequest("default", "Paris is the [MASK] of France."))
    with pytest.raises(UnsupportedModelError, match="seq2seq"):
        await llama.generate([Text2TextRequest("default", "Hello", task_prefix="translate English to German: ")])
    async with Engine(EngineConfig(threads=THREADS)) as eng:
        with pytest.raises(UnsupportedModelError, match="masked"):
            await eng.load(ModelSpec("default", kind="masked", backend="llamacpp"))
        truncated = tmp_path / "truncated.gguf"
        with open(default_model_path(), "rb") as src:
            truncated.write_bytes(src.read(2_000_000))
        with pytest.raises(InvalidModelError, match="truncated.gguf"):
            await eng.load(ModelSpec(str(truncated), backend="llamacpp"))
        import llama_cpp

        if not llama_cpp.llama_supports_gpu_offload():
            with pytest.raises(UnsupportedModelError, match="CPU only"):
                await eng.load(ModelSpec(str(default_model_path()), backend="llamacpp", device="cuda"))


# ------------------------------------------------------------------------ the chat template
TEMPLATES = [
    # trim_blocks / lstrip_blocks, special tokens by name, the generation prompt
    "{{ bos_token }}{% for m in messages %}\n  {% if m['role'] == 'system' %}[SYS] {{ m['content'] }}\n"
    "  {% else %}<{{ m['role'] }}>{{ m['content'] }}{{ eos_token }}\n  {% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}",
    # loop controls, namespace, tojson without HTML escaping, {% generation %}
    "{% set ns = namespace(n=0) %}{% for m in messages %}{% if m['role'] == 'system' %}{% continue %}{% endif %}"
    "{% set ns.n = ns.n + 1 %}{{ ns.n }}:{{ m | tojson }}{% if m['role'] == 'assistant' %}{% generation %}"
    "<end>{% endgeneration %}{% endif %}\n{% endfor %}{{ tools is none }}{{ documents is none }}",
]
CONVERSATION = [{"role": "system", "content": "Be <brief> & kind."}, {"role": "user", "content": "Héllo \"there\""},
                {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "数学?"}]


@pytest.mark.parametrize("template", TEMPLATES)
def test_chat_templates_render_as_transformers_renders_them(template):
    from transformers.utils.chat_template_utils import render_jinja_template

    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}
    [[expected], _] = render_jinja_template([CONVERSATION], chat_template=template, add_generation_prompt=True,
                                            **specials)
    assert ChatTemplate(template, specials).render(CONVERSATION) == expected


def test_chat_templates_run_sandboxed():
    escape = ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    with pytest.raises(InvalidRequestError, match="chat template"):
        escape.render(CONVERSATION)
    strict = ChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('users first') }}{% endif %}", {})
    with pytest.raises(InvalidRequestError, match="users first"):
        strict.render(CONVERSATION)
    with pytest.raises(UnsupportedModelError, match="does not parse"):
        ChatTemplate("{% for %}", {}).render(CONVERSATION)


# ------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("settings", [dict(temperature=0.7), dict(temperature=1.3, top_k=40),
                                      dict(temperature=0.9, top_p=0.8), dict(temperature=0.8, top_k=100, top_p=0.5)])
def test_sampling_draws_from_the_distribution_the_hugging_face_path_draws_from(settings):
    import numpy as np
    import torch
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    logits = np.random.default_rng(0).normal(0, 3, 5000).astype(np.float32)
    params = GenerationParams(**settings)
    warpers = [TemperatureLogitsWarper(params.temperature)]  # in engine.generation's order
    warpers += [TopKLogitsWarper(params.top_k)] if params.top_k else []
    warpers += [TopPLogitsWarper(params.top_p)] if params.top_p < 1 else []
    expected = torch.softmax(LogitsProcessorList(warpers)(None, torch.tensor(logits)[None]), -1)[0].double().numpy()
    got = Sampler(params, seed=1).probabilities(logits)
    assert np.array_equal(got > 0, expected > 0)
    assert got == pytest.approx(expected, abs=1e-6)


def test_repetition_penalty_and_seeds():
    import numpy as np

    logits = np.array([2.0, 1.9, -1.0, 0.5], dtype=np.float32)
    greedy = Sampler(GenerationParams(repetition_penalty=1.2), seed=None)
    assert greedy.pick(logits) == 0
    greedy.observe([0])
    assert greedy.pick(logits) == 1  # 2.0 / 1.2 < 1.9
    draws = [Sampler(GenerationParams(temperature=1.0, seed=5), 5).pick(logits) for _ in range(2)]
    assert draws[0] == draws[1]


# ----------------------------------------------------------------------------- generation
@needs_llama
async def test_stream_carries_text_logprobs_and_alternatives(llama):
    params = GenerationParams(max_new_tokens=12, logprobs=True, top_logprobs=5)
    prompt = "The three laws of thermodynamics are"
    request = CompletionRequest("default", prompt, params)  # no BOS, as loglikelihood() conditions
    deltas, result = await _stream(llama, request)
    assert "".join(d.text for d in deltas) == result.text and result.text.strip()
    assert [t for d in deltas for t in d.token_ids] == list(result.token_ids)
    assert len(result.logprobs) == len(result.top_logprobs) == len(result.token_ids) == 12
    for token, chosen, alternatives in zip(result.token_ids, result.logprobs, result.top_logprobs):
        values = [a.logprob for a in alternatives]
        assert len(alternatives) == 5 and values == sorted(values, reverse=True) and values[0] <= 0
        assert chosen.token_id == token == alternatives[0].token_id  # greedy picks the most likely
        assert chosen.logprob == pytest.approx(values[0]) and sum(math.exp(v) for v in values) <= 1 + 1e-6
    assert result.finish_reason == "length" and result.usage.new_tokens == 12
    assert result.usage.backend == "llamacpp" and result.usage.dtype == "Q4_1" and result.usage.seed is None

    # The answer's log-probabilities are those loglikelihood() gives the same text.
    [scored] = await llama.loglikelihood("default", [(prompt, result.text)])
    assert scored.num_tokens == 12 and scored.is_greedy
    assert scored.token_logprobs == pytest.approx([lp.logprob for lp in result.logprobs], abs=2e-3)


@needs_llama
async def test_same_seed_same_text_alone_in_a_batch_and_after_other_work(llama):
    def request(seed: int | None) -> CompletionRequest:
        return CompletionRequest("default", "Once upon a time", GenerationParams(max_new_tokens=16, temperature=0.9,
                                                                                 top_p=0.95, top_k=50, seed=seed))

    [alone] = await llama.generate([request(7)])
    await llama.generate([CompletionRequest("default", COUNTING, GenerationParams(max_new_tokens=4))])
    batch = await llama.generate([request(7), request(8), request(7)])
    assert batch[0].token_ids == batch[2].token_ids == alone.token_ids and alone.usage.seed == 7
    assert batch[1].token_ids != alone.token_ids
    [unseeded] = await llama.generate([request(None)])
    assert isinstance(unseeded.usage.seed, int)


@needs_llama
async def test_a_batch_decodes_each_request_as_if_alone():
    async with Engine(EngineConfig(threads=THREADS, max_batch_size=4)) as eng:  # 4 sequences at once
        await eng.load(LLAMA)
        requests = [ChatRequest("default", (ChatMessage("user", q),), GenerationParams(max_new_tokens=6))
                    for q in QUESTIONS[:6]]
        batch = await eng.generate(requests)
        alone = [(await eng.generate([r]))[0] for r in requests]
        assert [r.token_ids for r in batch] == [r.token_ids for r in alone]
        assert [r.request_id for r in batch] == [r.request_id for r in requests]

        # Each may fill 4,000+ cells of the 8,192: the third waits until the first two end.
        params = GenerationParams(max_new_tokens=4000, stop=(" 14,",))
        results = await eng.generate([CompletionRequest("default", COUNTING, params) for _ in range(3)])
    assert [r.finish_reason for r in results] == ["stop_string"] * 3
    assert results[0].text == results[1].text == results[2].text == " 11, 12, 13,"


@needs_llama
async def test_stop_strings_end_the_answer_before_them(llama):
    prompt = "The three laws of thermodynamics are"
    [base] = await llama.generate([CompletionRequest("default", prompt, GenerationParams(max_new_tokens=24))])
    stop = base.text[12:17]  # a piece from the middle of the greedy answer
    expected = base.text[:base.text.index(stop)]
    deltas, result = await _stream(llama, CompletionRequest("default", prompt, GenerationParams(max_new_tokens=24,
                                                                                               stop=(stop,))))
    assert result.finish_reason == "stop_string" and result.text == expected
    assert "".join(d.text for d in deltas) == expected


@needs_llama
async def test_cancel_stops_within_one_token(llama):
    backend = await llama.backend("default")
    cancel = threading.Event()
    seen: list[int] = []

    def emit(delta) -> None:  # called on the worker thread, right after each token
        seen.extend(delta.token_ids)
        if len(seen) == 5:
            cancel.set()

    request = CompletionRequest("default", COUNTING, GenerationParams(max_new_tokens=500))
    [result] = await backend.generate([request], [cancel], emit)
    assert result.finish_reason == "cancelled" and len(result.token_ids) == 5
    assert result.usage.new_tokens == 6  # the step that saw the cancel is counted, its token dropped

    # Closing a stream cancels it: the model is free again at once.
    async for _event in llama.stream(CompletionRequest("default", COUNTING, GenerationParams(max_new_tokens=2000))):
        break
    started = time.perf_counter()
    [after] = await llama.generate([CompletionRequest("default", "Hello", GenerationParams(max_new_tokens=2))])
    assert after.usage.new_tokens >= 1 and time.perf_counter() - started < 5


@needs_llama
async def test_prompts_longer_than_the_context_are_cut_from_the_left_or_refused(llama):
    backend = await llama.backend("default")
    prompt = " ".join(["word"] * 40)
    budget = 16
    params = GenerationParams(max_new_tokens=8192 - budget)
    stop_at_once = threading.Event()

    def emit(delta) -> None:
        stop_at_once.set()

    [result] = await backend.generate([CompletionRequest("default", prompt, params)], [stop_at_once], emit)
    assert result.usage.prompt_tokens == budget and result.finish_reason == "cancelled"
    assert len(result.warnings) == 1 and "truncated from the left" in result.warnings[0]
    with pytest.raises(ContextLengthError, match="exceeds"):
        await llama.generate([CompletionRequest("default", prompt, GenerationParams(max_new_tokens=8192 - budget,
                                                                                    truncation="error"))])
    with pytest.raises(ContextLengthError, match="no room"):
        await llama.generate([CompletionRequest("default", "Hi", GenerationParams(max_new_tokens=8192))])


# -------------------------------------------------------------------------------- scoring
@needs_llama
async def test_perplexity_fields_and_windows(llama):
    text = "The quick brown fox jumps over the lazy dog. It was not amused, and said so at length. " * 4
    [whole] = await llama.perplexity("default", text)
    [windowed] = await llama.perplexity("default", text, max_length=32, stride=16)
    [as_ll] = await llama.loglikelihood("default", [("", text)])
    assert whole.num_tokens == windowed.num_tokens == as_ll.num_tokens
    assert whole.num_words == num_words(text) and whole.num_bytes == len(text.encode())
    assert whole.method == "sliding-window(max_length=8192, stride=4096, prefix_token=1)"
    assert whole.nll == pytest.approx(-as_ll.logprob, rel=1e-4)  # one window: the same computation
    assert windowed.nll > whole.nll  # less context per token
    assert 1 < whole.token_perplexity < windowed.token_perplexity < 100
    with pytest.raises(InvalidRequestError):
        await llama.perplexity("default", "   ")


# ------------------------------------------------------------------ parity with Hugging Face
CHATS = [
    (ChatMessage("user", "What is the capital of France?"),),
    (ChatMessage("system", "You answer in one word."), ChatMessage("user", "Capital of Peru?")),
    (ChatMessage("user", "Hi!"), ChatMessage("assistant", "Hello! How can I help?"),
     ChatMessage("user", "Tell me a joke about café crème ☕ and naïve 数学.")),
]
QUESTIONS = [
    "What is the capital of France?", "Name three primary colours.", "What is 12 times 7?",
    "Write a haiku about the sea.", "Explain photosynthesis in one sentence.", "Who wrote Romeo and Juliet?",
    "Translate 'good morning' into German.", "List the planets of the solar system.", "What does a CPU do?",
    "Give me a synonym for 'happy'.", "How many days are in a leap year?",
    "What is the boiling point of water in Celsius?", "Summarise the plot of Cinderella in two sentences.",
    "What is machine learning?", "Suggest a name for a pet cat.", "Why is the sky blue?",
]
COMPLETIONS = ["The history of the Roman empire", "def fibonacci(n):", "Once upon a time, in a small village,",
               "The three laws of thermodynamics are"]
PPL_TEXT = (
    "The Industrial Revolution began in Great Britain in the late eighteenth century and spread to continental "
    "Europe and North America. It replaced hand production with machines, new chemical processes and iron "
    "production, and it changed how people lived and worked. Steam power, fuelled by coal, drove factories, "
    "ships and railways; towns grew quickly as workers left the countryside. Historians still argue about its "
    "causes, its effects on living standards, and whether it should be called a revolution at all, since many "
    "of the changes were gradual. What is clear is that output per person, which had barely grown for centuries, "
    "began to rise steadily and has kept rising ever since."
)


def _parity_run(spec: ModelSpec) -> dict:
    async def run() -> dict:
        async with Engine(EngineConfig(threads=THREADS)) as eng:
            await eng.load(spec)
            chats = await eng.generate([ChatRequest("default", c, GenerationParams(max_new_tokens=1)) for c in CHATS])
            greedy = [ChatRequest("default", (ChatMessage("user", q),), GenerationParams(max_new_tokens=32))
                      for q in QUESTIONS]
            greedy += [CompletionRequest("default", c, GenerationParams(max_new_tokens=32)) for c in COMPLETIONS]
            return {
                "chats": chats,
                "greedy": await eng.generate(greedy),
                "perplexity": await eng.perplexity("default", [PPL_TEXT, PPL_TEXT[:400]])
                + await eng.perplexity("default", PPL_TEXT, max_length=64, stride=32),
            }
    return asyncio.run(run())


@pytest.fixture(scope="module")
def parity() -> dict:
    return {"hf": _parity_run(HF), "llamacpp": _parity_run(LLAMA)}


@needs_llama
@pytest.mark.slow
def test_chat_prompts_render_identically_on_both_backends(parity):
    for hf, llama in zip(parity["hf"]["chats"], parity["llamacpp"]["chats"]):
        assert llama.prompt_text == hf.prompt_text
        assert llama.usage.prompt_tokens == hf.usage.prompt_tokens
    assert parity["llamacpp"]["chats"][0].prompt_text.startswith("<|im_start|>system\n")


@needs_llama
@pytest.mark.slow
def test_greedy_answers_mostly_agree_with_the_hugging_face_path(parity):
    pairs = list(zip(parity["hf"]["greedy"], parity["llamacpp"]["greedy"]))
    identical = sum(hf.token_ids == llama.token_ids for hf, llama in pairs)
    agreeing = total = 0
    for hf, llama in pairs:
        n = 0
        while n < min(len(hf.token_ids), len(llama.token_ids)) and hf.token_ids[n] == llama.token_ids[n]:
            n += 1
        agreeing, total = agreeing + n, total + len(hf.token_ids)
        if hf.token_ids == llama.token_ids:
            assert hf.text == llama.text  # same tokens, same detokenised text
    print(f"greedy parity: {identical}/{len(pairs)} answers identical, {agreeing}/{total} tokens agree "
          "before the first divergence")
    assert identical >= 5 and agreeing / total >= 0.5  # measured: 8-10/20 and 0.64-0.70


@needs_llama
@pytest.mark.slow
def test_perplexity_is_close_to_the_hugging_face_path(parity):
    for hf, llama in zip(parity["hf"]["perplexity"], parity["llamacpp"]["perplexity"]):
        assert (llama.num_tokens, llama.num_words, llama.num_bytes, llama.method) == \
            (hf.num_tokens, hf.num_words, hf.num_bytes, hf.method)
        difference = abs(llama.token_perplexity / hf.token_perplexity - 1)
        print(f"perplexity {hf.token_perplexity:.3f} (hf) vs {llama.token_perplexity:.3f} (llama.cpp): "
              f"{difference:.2%} apart; {hf.method}")
        assert difference < 0.03  # measured: 0.28%, 0.81% and 1.28%

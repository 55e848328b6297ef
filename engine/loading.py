"""Loading a model and its tokenizer from a folder, a GGUF file or the Hugging Face hub.

Every source goes through ``from_pretrained``, exactly as a user's own model would.
Nothing here enables ``trust_remote_code`` unless the spec asks for it.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import torch

from engine import gguf_cache, load_progress
from engine.device import dtype_name, pick_device, workload_dtypes
from engine.errors import (
    HubUnreachableError,
    InvalidModelError,
    LmscopeError,
    MissingDependencyError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from engine.spec import ModelSpec, ResolvedSource, resolve_source
from engine.types import ModelInfo, ModelKind

log = logging.getLogger(__name__)
# from_pretrained flips process-wide switches (weight init, default device); two loads in
# parallel threads corrupt each other (seen: a T5 loaded with untied, meta-device embeddings).
_LOAD_LOCK = threading.Lock()
Progress = Callable[[str], None]


@dataclass
class LoadedModel:
    """A model ready to run: weights on their device, tokenizer, and what they are."""

    model: Any
    tokenizer: Any
    info: ModelInfo
    device: torch.device
    dtype: torch.dtype  # of ``model``: single streams, scoring, fill-mask and attention
    warnings: list[str] = field(default_factory=list)
    batch_dtype: torch.dtype | None = None  # batched generation's (None: ``dtype``)
    dtype_choice: str = "auto"  # why: see engine.types.Usage.dtype_choice
    _batch_model: Any = field(default=None, repr=False)

    @property
    def kind(self) -> ModelKind:
        return self.info.kind

    def for_generation(self, batch: bool) -> tuple[Any, torch.dtype]:
        """The model a generation runs on, and its dtype: ``model`` itself, or for a batch a copy
        in ``batch_dtype`` made on first use (blocking; the worker thread). Without the memory
        for a copy (making it briefly needs the model's size again), ``model`` in ``dtype``."""
        if not batch or self.batch_dtype in (None, self.dtype):
            return self.model, self.dtype
        if self._batch_model is None:
            if self.info.memory_bytes > _available_memory() // 2:
                log.warning("not enough free memory for a %s copy of %s; batches decode in %s",
                            dtype_name(self.batch_dtype), self.info.name, dtype_name(self.dtype))
                self.batch_dtype = None
                return self.model, self.dtype
            self._batch_model = copy.deepcopy(self.model).to(self.batch_dtype).eval()
        return self._batch_model, self.batch_dtype


def _available_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def detect_kind(config: Any) -> ModelKind:
    """causal / seq2seq / masked, from the config alone."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    for arch in getattr(config, "architectures", None) or []:
        if arch.endswith("ForMaskedLM"):
            return "masked"
        if arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
            return "causal"
    model_type = getattr(config, "model_type", "")
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        return "masked"
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    if model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return "seq2seq"
    raise UnsupportedModelError(
        f"model type {model_type!r} is not a causal, seq2seq or masked language model",
        hint="lmscope runs text-generation (causal / seq2seq) and fill-mask models",
    )


def _auto_class(kind: ModelKind):
    import transformers

    return {
        "causal": transformers.AutoModelForCausalLM,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
        "masked": transformers.AutoModelForMaskedLM,
    }[kind]


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the hub endpoint accepts a TCP connection (one quick probe, no retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _hub_kwargs(spec: ModelSpec, source: ResolvedSource) -> dict[str, Any]:
    """from_pretrained kwargs for a hub id: offline when cached, a clear error when unreachable."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source.location, "config.json", revision=spec.revision)
    if isinstance(cached, str):
        return {"local_files_only": True, "revision": spec.revision}
    if not hub_reachable():
        raise HubUnreachableError(
            f"model {source.location!r} is not in the local Hugging Face cache and the hub cannot be reached",
            hint=(f"download it where there is network (`hf download {source.location}`) and copy the cache, "
                  "or pass a local folder or .gguf file"),
        )
    return {"revision": spec.revision}


def _context_length(config: Any, tokenizer: Any) -> int | None:
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else None


def load_model(spec: ModelSpec, progress: Progress | None = None) -> LoadedModel:
    """Load ``spec`` (blocking; call from a worker thread).

    Raises:
        ModelNotFoundError: nothing by that name exists locally or on the hub.
        HubUnreachableError: a hub id that is neither cached nor reachable.
        InvalidModelError: files exist but cannot be loaded (corrupt, truncated, no config).
        UnsupportedModelError: the model is not a causal / seq2seq / masked LM.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress goes through ``progress``; bars would corrupt a TUI
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    source = resolve_source(spec)
    device = pick_device(spec.device)
    batch_dtype, dtype, dtype_choice = workload_dtypes(device, spec.dtype)
    try:
        with _LOAD_LOCK, load_progress.reporting(say):  # percentages of dequantising / loading weights
            model, tokenizer, from_cache = _load_weights(spec, source, dtype, say)
    except LmscopeError:
        raise
    except Exception as exc:  # noqa: BLE001 - every loader failure becomes one clear error
        raise _classify_load_error(spec, source, exc) from exc

    say(f"moving to {device}")
    model.to(device=device, dtype=dtype)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    kind = spec.kind or detect_kind(model.config)
    num_params = sum(p.numel() for p in model.parameters())
    memory = sum(p.numel() * p.element_size() for p in model.parameters())
    memory += sum(b.numel() * b.element_size() for b in model.buffers())
    info = ModelInfo(
        name=spec.name,
        source=source.location,
        kind=kind,
        device=device,
        dtype=dtype_name(dtype),
        context_length=_context_length(model.config, tokenizer),
        num_parameters=num_params,
        memory_bytes=memory,
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        load_time_s=time.perf_counter() - started,
        loaded_from_cache=from_cache,
        backend="hf",
        **ModelInfo.capabilities(kind),
    )
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, device=torch.device(device), dtype=dtype,
                       batch_dtype=batch_dtype if kind != "masked" else None, dtype_choice=dtype_choice)


def _load_weights(spec: ModelSpec, source: ResolvedSource, dtype: torch.dtype, say: Progress):
    from transformers import AutoConfig, AutoTokenizer

    common: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if source.type == "gguf":
        gguf_path = Path(source.location)
        say("checking the converted-model cache")
        cached = gguf_cache.lookup(gguf_path)
        if cached is not None:
            say(f"loading converted copy from {cached}")
            config = AutoConfig.from_pretrained(cached)
            kind = spec.kind or detect_kind(config)
            model = _auto_class(kind).from_pretrained(cached, dtype=dtype, **common)
            return model, AutoTokenizer.from_pretrained(cached), True
        say(f"dequantising {gguf_path.name} (first load only; later loads use a converted copy)")
        folder, kwargs = str(gguf_path.parent), {"gguf_file": gguf_path.name}
        config = AutoConfig.from_pretrained(folder, **kwargs)
        kind = spec.kind or detect_kind(config)
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        # Convert in float32 so the cached copy is exact whatever dtype this run uses.
        model = _auto_class(kind).from_pretrained(folder, dtype=torch.float32, **kwargs, **common)
        say("saving converted copy")
        if gguf_cache.store(gguf_path, model, tokenizer) is None:
            log.warning("could not write the converted-model cache under %s", gguf_cache.cache_root())
        return model, tokenizer, False
    kwargs = dict(common)
    location = source.location
    if source.type == "hub":
        kwargs.update(_hub_kwargs(spec, source))
    say(f"loading {location}")
    config = AutoConfig.from_pretrained(location, **kwargs)
    kind = spec.kind or detect_kind(config)
    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    model = _auto_class(kind).from_pretrained(location, dtype=dtype, **kwargs)
    return model, tokenizer, False


def _classify_load_error(spec: ModelSpec, source: ResolvedSource, exc: Exception) -> LmscopeError:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if source.type == "hub":
        name = type(exc).__name__
        if "RepositoryNotFound" in name or "404" in text:
            return ModelNotFoundError(f"model {source.location!r} does not exist on the hub",
                                      hint="check the spelling of the hub id")
        if "GatedRepo" in name:
            return ModelNotFoundError(f"model {source.location!r} is gated on the hub",
                                      hint="accept its licence online and log in with `hf auth login`")
        if isinstance(exc, OSError) and ("connect" in text.lower() or "offline" in text.lower()):
            return HubUnreachableError(f"could not download {source.location!r}: the hub cannot be reached",
                                       hint="pass a local folder or .gguf file")
    if isinstance(exc, ImportError) or "pip install" in text:
        return MissingDependencyError(f"loading {source.location} needs a package that is not installed: {text}",
                                      hint="install it into lmscope's environment and try again")
    if "Unrecognized configuration class" in text:
        return UnsupportedModelError(
            f"{source.location} cannot be loaded as a {spec.kind or 'generation'} model ({type(exc).__name__})",
            hint="leave the kind on auto, or pick the kind that matches the model's architecture",
        )
    what = "GGUF file" if source.type == "gguf" else "model"
    return InvalidModelError(
        f"cannot load {what} {source.location}: {text}",
        hint="the files may be corrupt or truncated; re-download them",
    )

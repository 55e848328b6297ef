"""Fill-mask predictions for masked language models (blocking)."""

from __future__ import annotations

import torch

from engine.errors import InvalidRequestError, UnsupportedModelError
from engine.loading import LoadedModel
from engine.types import FillMaskRequest, FillMaskResult, MaskPrediction

GENERIC_MASK = "[MASK]"


def fill_mask(loaded: LoadedModel, request: FillMaskRequest) -> FillMaskResult:
    """Top-k tokens for every mask in ``request.text`` (``[MASK]`` or the tokenizer's own)."""
    tok = loaded.tokenizer
    if loaded.kind != "masked" or tok.mask_token is None:
        raise UnsupportedModelError(
            f"fill-mask needs a masked language model; {loaded.info.name!r} is a {loaded.kind} model",
            hint="load a BERT-style model for fill-mask",
        )
    if request.top_k < 1:
        raise InvalidRequestError(f"top_k must be >= 1, got {request.top_k}")
    text = request.text.replace(GENERIC_MASK, tok.mask_token)
    encoded = tok(text, return_tensors="pt", truncation=True)
    ids = encoded["input_ids"][0]
    positions = (ids == tok.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        raise InvalidRequestError(f"no mask token in the text; write {GENERIC_MASK} or {tok.mask_token} where a word is missing")
    with torch.inference_mode():
        logits = loaded.model(**{k: v.to(loaded.device) for k, v in encoded.items()}).logits[0]
    predictions = []
    for pos in positions:
        probs = torch.softmax(logits[pos].float(), dim=-1)
        values, token_ids = torch.topk(probs, min(request.top_k, probs.shape[-1]))
        per_mask = []
        for p, t in zip(values.tolist(), token_ids.tolist()):
            filled = ids.clone()
            filled[pos] = t
            per_mask.append(MaskPrediction(
                token_id=t, token=tok.decode([t]).strip(), probability=p,
                sequence=tok.decode(filled, skip_special_tokens=True),
            ))
        predictions.append(tuple(per_mask))
    return FillMaskResult(request.request_id, loaded.info.name, tuple(predictions))

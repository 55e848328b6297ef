"""A finished answer (:class:`engine.GenerationResult`) as a compact JSON-able dict, and back.

The chat store keeps one of these with every finished answer, so a reopened chat can show the
exact prompt sent and probe the answer token by token, as it could when the answer was fresh.

Compactness: every distinct ``(token_id, token)`` pair is written once in ``tokens``; the chosen
tokens and their top-k alternatives refer to it by position, as ``[position, logprob]`` pairs.
A 2,000-token answer with 5 alternatives per token takes about 0.3 MB. Log-probabilities are
written as Python's shortest round-trip repr, so they read back bit for bit.
"""

from __future__ import annotations

from typing import Any, Sequence

from engine import GenerationResult, TokenLogprob, Usage

FORMAT = 1

_USAGE_FIELDS = ("prompt_tokens", "new_tokens", "time_to_first_token_s", "total_time_s", "device", "dtype", "seed",
                 "backend", "dtype_choice")
# Fields added after the first format-1 records were written, with the value old records get.
_USAGE_DEFAULTS = {"backend": "unknown", "dtype_choice": ""}


class _TokenTable:
    """Interns ``(token_id, token)`` pairs: each distinct pair gets one position."""

    def __init__(self) -> None:
        self.positions: dict[tuple[int, str], int] = {}

    def ref(self, item: TokenLogprob) -> list[Any]:
        key = (item.token_id, item.token)
        position = self.positions.setdefault(key, len(self.positions))
        return [position, item.logprob]

    def rows(self) -> list[list[Any]]:
        return [[token_id, token] for token_id, token in self.positions]


def result_record(result: GenerationResult) -> dict[str, Any]:
    """Everything needed to rebuild ``result`` with :func:`result_from_record`, as JSON-able data."""
    table = _TokenTable()
    logprobs = [table.ref(item) for item in result.logprobs]
    top = [[table.ref(item) for item in alternatives] for alternatives in result.top_logprobs]
    return {
        "format": FORMAT,
        "request_id": result.request_id,
        "model": result.model,
        "text": result.text,
        "prompt_text": result.prompt_text,
        "finish_reason": result.finish_reason,
        "token_ids": list(result.token_ids),
        "usage": {name: getattr(result.usage, name) for name in _USAGE_FIELDS},
        "warnings": list(result.warnings),
        "tokens": table.rows(),
        "logprobs": logprobs,
        "top_logprobs": top,
    }


def result_from_record(record: dict[str, Any]) -> GenerationResult:
    """The :class:`GenerationResult` a :func:`result_record` dict was made from.

    Raises:
        ValueError: the record is of an unknown format or malformed.
    """
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"unknown answer record format {found!r} (expected {FORMAT})")
    try:
        table = [TokenLogprob(int(token_id), str(token), 0.0) for token_id, token in record["tokens"]]

        def rebuild(refs: Sequence[Sequence[Any]]) -> tuple[TokenLogprob, ...]:
            return tuple(TokenLogprob(table[k].token_id, table[k].token, float(lp)) for k, lp in refs)

        return GenerationResult(
            request_id=record["request_id"],
            model=record["model"],
            text=record["text"],
            token_ids=tuple(int(t) for t in record["token_ids"]),
            finish_reason=record["finish_reason"],
            usage=Usage(**{name: record["usage"].get(name, _USAGE_DEFAULTS.get(name)) if name in _USAGE_DEFAULTS
                           else record["usage"][name] for name in _USAGE_FIELDS}),
            prompt_text=record["prompt_text"],
            logprobs=rebuild(record["logprobs"]),
            top_logprobs=tuple(rebuild(refs) for refs in record["top_logprobs"]),
            warnings=tuple(record["warnings"]),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed answer record: {type(exc).__name__}: {exc}") from None

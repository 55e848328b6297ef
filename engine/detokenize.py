"""Incremental detokenisation and stop strings, one generated token at a time."""

from __future__ import annotations


class IncrementalDetokenizer:
    """Text for each new token without re-decoding the whole answer.

    Decodes a short window of recent tokens (the text-generation-inference method), so word
    boundaries of SentencePiece / byte-level BPE tokenizers come out right, and holds back
    text while a multi-byte character is still incomplete (decoded as U+FFFD).
    """

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def push(self, token_id: int) -> str:
        """Add one token; return the new text it completes (possibly empty)."""
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        prefix = decode(self._ids[self._prefix_offset:self._read_offset], skip_special_tokens=True)
        full = decode(self._ids[self._prefix_offset:], skip_special_tokens=True)
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
            return full[len(prefix):]
        return ""


class StopStringMatcher:
    """Finds stop strings in streamed text and holds back text that may be the start of one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self.text = ""
        self._released = 0

    def feed(self, piece: str) -> tuple[str, bool]:
        """Add ``piece``; return (text safe to release now, whether a stop string ended it)."""
        self.text += piece
        if not self._stops:
            return self._release(len(self.text)), False
        start = max(0, self._released - max(len(s) for s in self._stops))
        hits = [i for i in (self.text.find(s, start) for s in self._stops) if i >= 0]
        if hits:
            end = min(hits)
            self.text = self.text[:end]
            return self._release(end), True
        return self._release(len(self.text) - self._partial_stop_suffix()), False

    def flush(self) -> str:
        """Release everything held back (the answer ended without a stop string)."""
        return self._release(len(self.text))

    def _partial_stop_suffix(self) -> int:
        longest = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(self.text)), longest, -1):
                if self.text.endswith(stop[:k]):
                    longest = k
                    break
        return longest

    def _release(self, end: int) -> str:
        end = max(end, self._released)
        piece = self.text[self._released:end]
        self._released = end
        return piece

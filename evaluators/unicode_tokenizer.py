"""A rouge-score tokenizer that keeps every script (rouge-score's own drops non-ASCII)."""

from __future__ import annotations

import re

from .scripts import UNSEGMENTED_CHARS

# Characters that become one token each.
_UNSEGMENTED_RE = re.compile(f"[{UNSEGMENTED_CHARS}]")
_CHAR_TOKEN_RE = re.compile(f"([{UNSEGMENTED_CHARS}])")
_WORD_RE = re.compile(r"[^\W_]+")


class UnicodeTokenizer:
    """Lower-cases, keeps runs of letters and digits of any script as words, and makes each
    Han / kana / Thai-family character a token of its own (scripts without spaces). On
    ASCII text it yields exactly the tokens of rouge-score's ``DefaultTokenizer``
    (including Porter stemming of tokens longer than three characters).
    """

    name = "unicode"

    def __init__(self, use_stemmer: bool = False) -> None:
        self._stemmer = None
        if use_stemmer:
            from nltk.stem import porter  # the stemmer rouge-score itself uses

            self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into lower-cased tokens."""
        text = text.lower()
        if _UNSEGMENTED_RE.search(text):
            text = _CHAR_TOKEN_RE.sub(r" \1 ", text)
        tokens = _WORD_RE.findall(text)
        if self._stemmer is not None:
            stem = self._stemmer.stem
            tokens = [stem(t) if len(t) > 3 else t for t in tokens]
        return tokens

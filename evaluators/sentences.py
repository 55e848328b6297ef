"""Sentence splitting for ROUGE-Lsum's ``split_sentences="punctuation"`` mode.

rouge-score's ROUGE-Lsum takes one sentence per line and never splits text itself (its
``split_summaries`` option needs nltk's punkt model, a data download). This splitter is
the explicit alternative: it ends a sentence after ``. ! ?`` (and closing quotes or
brackets) followed by whitespace, unless

- the next word starts with a lower-case letter (``e.g. the``),
- the word before the period is an initialism (``U.S.``, ``i.e.``, ``e.g.``), a single
  capital (``J. Smith``), or a common abbreviation (``Dr.``, ``Prof.``, ``Fig.``...),

and after ``。！？`` whatever follows. A period without a space after it (``3.5``,
``example.com``) never ends a sentence. Ambiguous cases stay together: ``... in the
U.S. The next`` is one sentence.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st jr sr vs etc approx fig figs vol pp inc ltd corp mt gen sen rep gov col lt sgt "
    "capt jan feb mar apr jun jul aug sep sept oct nov dec al cf eq eqs ref refs dept univ".split()
)
_BOUNDARY_RE = re.compile(r"[.!?]+[\"'”’)\]]*\s+|[。！？]+[”’」』）]*\s*")
_INITIALISM_RE = re.compile(r"(?:[^\W\d_]\.){2,}")
_WORD_BEFORE_RE = re.compile(r"[\"'“‘(\[]*([^\s\"'“‘(\[]*)$")


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    rest = text[match.end():]
    if not rest:
        return False
    punct = match.group()
    if punct[0] in "。！？":
        return True
    if rest[0].islower():
        return False
    if not punct.startswith("."):
        return True
    word = _WORD_BEFORE_RE.search(text[:match.start()]).group(1)  # type: ignore[union-attr]
    if _INITIALISM_RE.fullmatch(word + "."):
        return False
    if len(word) == 1 and word.isupper():
        return False
    return word.lower() not in ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """Split one line of text into sentences (see the module docstring for the rules)."""
    sentences, start = [], 0
    for match in _BOUNDARY_RE.finditer(text):
        if _ends_sentence(text, match):
            sentences.append(text[start:match.end()].strip())
            start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]

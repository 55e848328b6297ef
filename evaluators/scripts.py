"""Writing-system detection: which texts are written without spaces between words.

Word-based metrics silently fail on such scripts: rouge-score's default tokenizer deletes
every non-ASCII character (Chinese scores 0.0), and sacrebleu's 13a tokenizer turns an
unsegmented Chinese sentence into one "word". Metrics use these checks to refuse
references they cannot score and to warn about hypotheses they score badly.
"""

from __future__ import annotations

import re

# Scripts written without spaces between words. Han (incl. extension A and compatibility
# ideographs), Japanese kana, Thai, Lao, Khmer, Myanmar.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
SOUTHEAST_ASIAN = "\u0e00-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f"
_HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"

UNSEGMENTED_CHARS = HAN + KANA + SOUTHEAST_ASIAN
_UNSEGMENTED_RE = re.compile(f"[{UNSEGMENTED_CHARS}]")
_HAN_RE = re.compile(f"[{HAN}]")
_KANA_RE = re.compile(f"[{KANA}]")
_HANGUL_RE = re.compile(f"[{_HANGUL}]")
_SEA_RE = re.compile(f"[{SOUTHEAST_ASIAN}]")
_LETTER_RE = re.compile(r"[^\W\d_]")

# Share of letters above which a text counts as written in that script.
_DOMINANT = 0.3


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

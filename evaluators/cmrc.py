"""The CMRC 2018 evaluation script's answer comparison, for QA in Chinese.

Follows ``cmrc2018_evaluate.py`` (ymcui/cmrc2018, squad-style-data, "v5 - special"):

- ``remove_punctuation``: lower-case, strip, drop the characters of the script's own
  punctuation list (and nothing else: ``.``, ``%``, ``,``, ``?`` and spaces stay);
- ``mixed_segmentation`` (with ``rm_punc=True``): drop listed punctuation, make every
  Chinese character (U+4E00..U+9FA5) a segment of its own, and split the runs in between
  with NLTK's word tokenizer;
- EM: equal after ``remove_punctuation``; F1: from the longest common *substring* of the
  segment lists (``find_lcs``); both the maximum over gold answers.

One deliberate difference: the script calls ``nltk.word_tokenize(run)``, which first
splits the run into sentences with NLTK's punkt model, a data download (``punkt_tab``)
that is not available here. We call the same word tokenizer without sentence splitting
(``word_tokenize(run, preserve_line=True)``, NLTK's current word tokenizer; the script
ran an older NLTK release). The two agree on every run with no ``.``,
``?`` or ``!`` followed by whitespace inside it (punkt can only break there). On a run
such as ``"dr. smith"`` they differ only if punkt's English model ends a sentence after
the period: the script then gives ``dr . smith`` where we give ``dr. smith``.

The script defines segments for Chinese only. For Japanese and Thai-family text (which
this project also scores "CMRC-style") the character class is widened to kana and to
Thai/Lao/Khmer/Myanmar letters; for Chinese it is exactly the script's.
"""

from __future__ import annotations

import re

from nltk.tokenize import word_tokenize

from .scripts import HAN, KANA, SOUTHEAST_ASIAN

# The script's sp_char list, verbatim. '……' is one two-character entry, so a single '…'
# never matches and is kept, as in the script.
CMRC_PUNCTUATION = (
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』",
)
_PUNCT = frozenset(CMRC_PUNCTUATION)
_CMRC_CHINESE = "\u4e00-\u9fa5"
# Characters that are segments of their own, per language family.
_SEGMENT_CHARS = {"zh": _CMRC_CHINESE, "ja": _CMRC_CHINESE + HAN + KANA, "th": SOUTHEAST_ASIAN}


def remove_punctuation(text: str) -> str:
    """The script's ``remove_punctuation``: lower, strip, drop listed punctuation."""
    return "".join(ch for ch in text.lower().strip() if ch not in _PUNCT)


def mixed_segmentation(text: str, family: str = "zh") -> list[str]:
    """The script's ``mixed_segmentation(text, rm_punc=True)`` (see the module docstring
    for the sentence-splitting difference and the non-Chinese families)."""
    single = re.compile(f"[{_SEGMENT_CHARS.get(family, _CMRC_CHINESE)}]")
    segments: list[str] = []
    run = ""
    for ch in text.lower().strip():
        if ch in _PUNCT:
            continue
        if single.match(ch):
            if run:
                segments.extend(word_tokenize(run, preserve_line=True))
                run = ""
            segments.append(ch)
        else:
            run += ch
    if run:
        segments.extend(word_tokenize(run, preserve_line=True))
    return segments


def longest_common_substring(a: list[str], b: list[str]) -> int:
    """Length of the longest common contiguous run of ``a`` and ``b`` (the script's
    ``find_lcs``, which returns it along with the run)."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def cmrc_exact_match(prediction: str, gold: str) -> bool:
    """The script's EM for one gold answer."""
    return remove_punctuation(gold) == remove_punctuation(prediction)


def cmrc_f1(prediction: str, gold: str, family: str = "zh") -> float:
    """The script's F1 (0..1) for one gold answer."""
    gold_segs, pred_segs = mixed_segmentation(gold, family), mixed_segmentation(prediction, family)
    lcs = longest_common_substring(gold_segs, pred_segs)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred_segs), lcs / len(gold_segs)
    return (2 * precision * recall) / (precision + recall)

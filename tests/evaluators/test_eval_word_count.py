"""Words for word perplexity are counted as lm-evaluation-harness counts them, by every
backend, and the signature says so."""

from __future__ import annotations

import re

import pytest

import evaluators
from evaluators.perplexity import count_words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("the cat sat", 3),
        ("  the cat sat\n", 5),   # leading and trailing whitespace each add an empty word
        ("a\n\nb\tc", 3),
        ("", 1),                  # re.split on "" gives [""]
        ("\n", 2),
        ("大规模语言模型", 1),
    ],
)
def test_count_words_is_lm_evals(text: str, words: int) -> None:
    # lm_eval/tasks/wikitext/preprocess_wikitext.py: len(re.split(r"\s+", doc["page"]))
    assert count_words(text) == words == len(re.split(r"\s+", text))


def test_remote_backend_counts_words_the_same_way() -> None:
    from engine.remote_scoring import PromptToken, perplexity_result

    text = " Hello world \n"
    tokens = [PromptToken(" Hello", None, None), PromptToken(" world", -1.5, True), PromptToken(" \n", -0.5, False)]
    result = perplexity_result(tokens, text, "localhost")
    assert result.num_words == count_words(text) == 4  # str.split() said 2


def test_signature_states_the_word_count() -> None:
    assert "words:lm-eval(re.split(\\s+))" in evaluators.build("word_perplexity").signature

"""The explicit sentence splitter of ROUGE-Lsum's split_sentences="punctuation" mode."""

from __future__ import annotations

import pytest

from evaluators.sentences import split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("One. Two! Three?", ["One.", "Two!", "Three?"]),
        ("第一句。第二句！第三句", ["第一句。", "第二句！", "第三句"]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("It works, i.e. it compiles. Good.", ["It works, i.e. it compiles.", "Good."]),
        ("Use e.g. Python. Or Go.", ["Use e.g. Python.", "Or Go."]),
        ("Ask Dr. Smith. He knows.", ["Ask Dr. Smith.", "He knows."]),
        ("The U.S. Army arrived. It rained.", ["The U.S. Army arrived.", "It rained."]),
        ("Growth was 3.5 percent. Prices rose 2.1%.", ["Growth was 3.5 percent.", "Prices rose 2.1%."]),
        ("J. R. R. Tolkien wrote it. Fans read it.", ["J. R. R. Tolkien wrote it.", "Fans read it."]),
        ("See Fig. 3 for details. Then stop.", ["See Fig. 3 for details.", "Then stop."]),
        ("Wait... What? Yes.", ["Wait...", "What?", "Yes."]),
        ("no capital. after", ["no capital. after"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences

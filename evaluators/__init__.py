"""lmscope evaluators: reference-implementation metric scores with signatures.

Pure and synchronous (no Textual, no torch). Typical use::

    import evaluators
    bleu = evaluators.get("bleu", language="zh")
    for hyp, refs in examples:
        bleu.add(hyp, refs)           # per-example score, corpus stats updated
    result = bleu.corpus(ci=True)     # MetricResult(name, score, ci, signature, ...)
"""

from . import perplexity, qa, rouge, sacrebleu_metrics, semantic  # noqa: F401  (register metrics)
from .base import ExampleScore, Metric, MetricResult, MetricWarning
from .errors import (
    CountMismatchError,
    EmptyCorpusError,
    EvaluatorError,
    IncomparableSystemsError,
    InconsistentInputError,
    InvalidOptionError,
    MetricUnavailableError,
    UnknownMetricError,
    UnsupportedScriptError,
)
from .perplexity import LogLikelihoodStats, Perplexity
from .qa import ExactMatch, TokenF1
from .registry import available, entries, get, register
from .rouge import Rouge
from .sacrebleu_metrics import BLEU, CHRF, TER
from .semantic import SemanticSimilarity
from .significance import PairedResult, bootstrap_interval, paired_test

__all__ = [
    "BLEU", "CHRF", "TER", "Rouge", "ExactMatch", "TokenF1", "Perplexity", "SemanticSimilarity",
    "LogLikelihoodStats", "Metric", "MetricResult", "ExampleScore", "MetricWarning",
    "get", "available", "entries", "register",
    "PairedResult", "paired_test", "bootstrap_interval",
    "EvaluatorError", "UnknownMetricError", "MetricUnavailableError", "InvalidOptionError",
    "CountMismatchError", "UnsupportedScriptError", "InconsistentInputError", "EmptyCorpusError",
    "IncomparableSystemsError",
]

"""lmscope evaluators: reference-implementation metric scores with signatures.

Pure and synchronous (no Textual, no torch, no engine). Typical use::

    import evaluators
    language = evaluators.resolve_language(declared, all_references)  # once per run
    bleu = evaluators.build("bleu", language=language)
    for hyp, refs in examples:
        bleu.add(hyp, refs)           # per-example score, corpus stats updated
    result = bleu.corpus(ci=True)     # MetricResult(name, score, ci, signature, ci_mean, ...)
    print(result.format())            # BLEU = 30.12 (μ = 30.05 ± 1.20) (nrefs:1|bs:1000|...)
"""

from . import choice, perplexity, qa, rouge, sacrebleu_metrics, semantic  # noqa: F401  (register metrics)
from .base import ExampleScore, Metric, MetricResult, MetricWarning
from .choice import ChoiceAccuracy, ChoiceOutcome, ConfusionMetric
from .errors import (
    CountMismatchError,
    EmptyCorpusError,
    EvaluatorError,
    IncomparableSystemsError,
    InconsistentInputError,
    InvalidOptionError,
    LmscopeError,
    MetricUnavailableError,
    UnknownMetricError,
    UnsupportedScriptError,
)
from .language import LANGUAGE_NAMES, language_name, resolve_language, validate_language
from .perplexity import LogLikelihoodStats, Perplexity, count_words
from .qa import ExactMatch, TokenF1
from .registry import MetricEntry, available, build, entries, entry, get, register
from .rouge import Rouge
from .sacrebleu_metrics import BLEU, CHRF, TER
from .semantic import SemanticSimilarity
from .significance import PairedResult, bootstrap_interval, paired_test

__all__ = [
    "BLEU", "CHRF", "TER", "Rouge", "ExactMatch", "TokenF1", "Perplexity", "SemanticSimilarity",
    "LogLikelihoodStats", "ChoiceOutcome", "ChoiceAccuracy", "ConfusionMetric", "Metric", "MetricResult", "ExampleScore", "MetricWarning", "MetricEntry",
    "build", "entry", "get", "available", "entries", "register",
    "resolve_language", "validate_language", "language_name", "LANGUAGE_NAMES", "count_words",
    "PairedResult", "paired_test", "bootstrap_interval",
    "LmscopeError", "EvaluatorError", "UnknownMetricError", "MetricUnavailableError", "InvalidOptionError",
    "CountMismatchError", "UnsupportedScriptError", "InconsistentInputError", "EmptyCorpusError",
    "IncomparableSystemsError",
]

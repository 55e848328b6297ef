"""Scenario files: one YAML file declares the data, prompt, generation settings and metrics.

Loading validates everything that can be checked without running a model — keys and types,
templates against the declared fields, metric names and options, generation settings — and
reports the file, line and key of the first problem.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import evaluators
from engine import GenerationParams, LmscopeError
from scenarios.errors import ScenarioError
from scenarios.templates import Template, TemplateError, parse_template

TASKS = ("qa", "summarization", "translation", "chat", "completion")
PROMPT_KINDS = ("chat", "completion", "seq2seq")
STANDARD_FIELDS = ("id", "input", "context", "references")
LANGUAGES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ru": "Russian", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ar": "Arabic",
    "hi": "Hindi", "tr": "Turkish", "pl": "Polish", "cs": "Czech", "uk": "Ukrainian", "sv": "Swedish",
}
# Metrics computed from the engine's log-likelihoods of the input text, not from generated output.
LIKELIHOOD_METRICS = ("perplexity", "word_perplexity", "bits_per_byte")

DEFAULT_PROMPTS: dict[str, dict[str, str]] = {
    "qa": {
        "chat": "Answer the question using the context. Reply with the answer only.\n\nContext: {context}\n\nQuestion: {input}",
        "completion": "Context: {context}\nQuestion: {input}\nAnswer:",
        "seq2seq": "question: {input} context: {context}",
    },
    "summarization": {
        "chat": "Summarize the following text in one sentence.\n\n{input}",
        "completion": "{input}\n\nSummary in one sentence:",
        "seq2seq": "summarize: {input}",
    },
    "translation": {
        "chat": "Translate the following {source_language} text into {target_language}. Reply with the translation only.\n\n{input}",
        "completion": "{source_language}: {input}\n{target_language}:",
        "seq2seq": "translate {source_language} to {target_language}: {input}",
    },
    "chat": {"chat": "{input}", "completion": "{input}", "seq2seq": "{input}"},
    "completion": {"chat": "{input}", "completion": "{input}", "seq2seq": "{input}"},
}
DEFAULT_METRICS = {"qa": ["exact_match", "f1"], "summarization": ["rouge1", "rouge2", "rougeL"],
                   "translation": ["bleu", "chrf"], "chat": [], "completion": []}


DEFAULT_MAX_NEW_TOKENS = {"qa": 32, "summarization": 64, "translation": 128, "chat": 256, "completion": 256}


class _LineDict(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode):
    data = _LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    data.update(loader.construct_mapping(node, deep=True))
    for key_node, _ in node.value:
        data.key_lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


@dataclass(frozen=True)
class DataSpec:
    """Where the examples come from."""

    format: str
    path: Path | None = None
    references: tuple[Path, ...] = ()  # parallel: reference files beside ``path`` (the source)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_likelihood(self) -> bool:
        return self.name in LIKELIHOOD_METRICS


@dataclass(frozen=True)
class FewShot:
    k: int
    pool: DataSpec | None  # None: drawn from the scenario's own data, never the example itself


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``content_hash`` identifies the file's exact content."""

    name: str
    task: str
    data: DataSpec
    fields: dict[str, str]
    prompts: dict[str, Template]
    metrics: tuple[MetricSpec, ...]
    generation: GenerationParams
    description: str = ""
    source_lang: str | None = None
    target_lang: str | None = None
    system: str | None = None
    few_shot: FewShot | None = None
    limit: int | None = None
    seed: int = 0
    path: Path | None = None
    content_hash: str = ""
    text: str = ""

    @property
    def needs_generation(self) -> bool:
        return not self.metrics or any(not m.is_likelihood for m in self.metrics)

    @property
    def needs_references(self) -> bool:
        return any(not m.is_likelihood for m in self.metrics)

    def template_values(self) -> dict[str, str]:
        """Values every example shares (languages)."""
        return {
            "source_lang": self.source_lang or "", "target_lang": self.target_lang or "",
            "source_language": LANGUAGES.get(self.source_lang or "", self.source_lang or ""),
            "target_language": LANGUAGES.get(self.target_lang or "", self.target_lang or ""),
        }

    def make_metric(self, spec: MetricSpec) -> evaluators.Metric:
        """A fresh metric object for ``spec``, told the target language when it takes one."""
        options = dict(spec.options)
        metric = evaluators.get(spec.name, **options)
        if "language" not in options and self.target_lang and _accepts_language(metric):
            metric = evaluators.get(spec.name, language=self.target_lang, **options)
        return metric


def _accepts_language(metric: evaluators.Metric) -> bool:
    return "language" in inspect.signature(type(metric).__init__).parameters


class _Validator:
    """Reads a parsed YAML document, raising ScenarioError at the first problem."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def fail(self, mapping: Any, key: str | None, message: str, hint: str | None = None) -> ScenarioError:
        line = None
        if isinstance(mapping, _LineDict):
            line = mapping.key_lines.get(key.rsplit(".", 1)[-1] if key else None, mapping.line)
        return ScenarioError(message, path=self.path, line=line, key=key, hint=hint)

    def get(self, mapping: dict, key: str, types: tuple[type, ...], *, required: bool = False,
            prefix: str = "", default: Any = None) -> Any:
        full = f"{prefix}{key}"
        if key not in mapping:
            if required:
                raise self.fail(mapping, None, f"missing required key '{full}'")
            return default
        value = mapping[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(_type_name(t) for t in types)
            raise self.fail(mapping, full, f"expected {expected}, found {_type_name(type(value))} {value!r}")
        return value

    def reject_unknown(self, mapping: dict, allowed: tuple[str, ...], prefix: str = "") -> None:
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                raise self.fail(mapping, f"{prefix}{key}", "unknown key",
                                hint=f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}")


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping",
            bool: "true/false", type(None): "nothing"}.get(t, t.__name__)


TOP_KEYS = ("name", "description", "task", "data", "fields", "source_lang", "target_lang", "system", "prompt",
            "few_shot", "generation", "metrics", "limit", "seed")


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file.

    Raises:
        ScenarioError: unreadable file, malformed YAML, unknown or ill-typed keys, bad templates,
            unknown metrics, invalid generation settings — with file, line and key.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError("scenario file not found", path=path) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file: {exc.strerror}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"invalid UTF-8 at byte {exc.start}", path=path) from None
    return parse_scenario(text, path)


def parse_scenario(text: str, path: Path | None = None) -> Scenario:
    """Validate scenario YAML ``text``; relative data paths resolve against ``path``'s folder."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # SafeLoader underneath: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"malformed YAML: {problem}", path=path,
                            line=mark.line + 1 if mark else None) from None
    v = _Validator(path)
    if not isinstance(doc, dict):
        raise ScenarioError(f"expected a mapping of scenario keys, found {_type_name(type(doc))}", path=path, line=1)
    v.reject_unknown(doc, TOP_KEYS)
    name = v.get(doc, "name", (str,), required=True)
    task = v.get(doc, "task", (str,), required=True)
    if task not in TASKS:
        raise v.fail(doc, "task", f"expected one of {', '.join(TASKS)}, found {task!r}")
    base = path.parent if path else Path.cwd()
    data = _data_spec(v, v.get(doc, "data", (dict,), required=True), base)
    fields = _fields(v, doc, data)
    source_lang = v.get(doc, "source_lang", (str,))
    target_lang = v.get(doc, "target_lang", (str,))
    metrics = _metrics(v, doc, task)
    generation = _generation(v, doc, task)
    allowed = set(fields) - {"id", "references"} | {"reference", "source_lang", "target_lang",
                                                     "source_language", "target_language"}
    prompts = _prompts(v, doc, task, allowed)
    few_shot = None
    if "few_shot" in doc:
        shot = v.get(doc, "few_shot", (dict,))
        v.reject_unknown(shot, ("k", "pool"), "few_shot.")
        k = v.get(shot, "k", (int,), required=True, prefix="few_shot.")
        if k < 1:
            raise v.fail(shot, "few_shot.k", f"expected an integer >= 1, found {k}")
        pool = v.get(shot, "pool", (str, dict), default="data", prefix="few_shot.")
        if isinstance(pool, str) and pool != "data":
            raise v.fail(shot, "few_shot.pool", f"expected 'data' or a data mapping, found {pool!r}")
        few_shot = FewShot(k, None if isinstance(pool, str) else _data_spec(v, pool, base, "few_shot.pool."))
        if "references" not in fields:
            raise v.fail(shot, "few_shot", "few-shot examples need a references field to show answers")
    limit = v.get(doc, "limit", (int,))
    if limit is not None and limit < 1:
        raise v.fail(doc, "limit", f"expected an integer >= 1, found {limit}")
    if any(not m.is_likelihood for m in metrics) and "references" not in fields:
        raise v.fail(doc, "fields", "the metrics need references but fields has no 'references' entry")
    return Scenario(
        name=name, task=task, data=data, fields=fields, prompts=prompts, metrics=metrics,
        generation=generation, description=v.get(doc, "description", (str,), default=""),
        source_lang=source_lang, target_lang=target_lang, system=v.get(doc, "system", (str,)),
        few_shot=few_shot, limit=limit, seed=v.get(doc, "seed", (int,), default=0), path=path,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(), text=text,
    )


def _data_spec(v: _Validator, data: dict, base: Path, prefix: str = "data.") -> DataSpec:
    from scenarios.loaders import FORMATS, infer_format

    v.reject_unknown(data, ("path", "format", "source", "references", "dataset", "split"), prefix)
    if "dataset" in data:
        raise v.fail(data, f"{prefix}dataset", "Hugging Face datasets ids are not supported yet",
                     hint="download the split to a JSONL or CSV file and give its path")
    fmt = v.get(data, "format", (str,), prefix=prefix)
    if fmt is not None and fmt not in FORMATS:
        raise v.fail(data, f"{prefix}format", f"expected one of {', '.join(FORMATS)}, found {fmt!r}")
    if "source" in data or fmt == "parallel":
        source = v.get(data, "source", (str,), required=True, prefix=prefix)
        refs = v.get(data, "references", (str, list), required=True, prefix=prefix)
        refs = [refs] if isinstance(refs, str) else refs
        if not refs or not all(isinstance(r, str) for r in refs):
            raise v.fail(data, f"{prefix}references", "expected a file name or a non-empty list of file names")
        return DataSpec("parallel", base / source, tuple(base / r for r in refs))
    file = base / v.get(data, "path", (str,), required=True, prefix=prefix)
    try:
        return DataSpec(fmt or infer_format(file), file)
    except ScenarioError as exc:
        raise v.fail(data, f"{prefix}format", exc.detail, exc.hint) from None


def _fields(v: _Validator, doc: dict, data: DataSpec) -> dict[str, str]:
    defaults = {"squad": {"id": "id", "input": "question", "context": "context", "references": "answers"},
                "parallel": {"id": "id", "input": "source", "references": "references"}}.get(data.format, {})
    mapping = v.get(doc, "fields", (dict,), default=None)
    if mapping is None:
        if not defaults:
            raise v.fail(doc, None, "missing required key 'fields' (which data keys hold input and references)")
        return dict(defaults)
    fields = dict(defaults)
    for key, value in mapping.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise v.fail(mapping, f"fields.{key}", "field names must be identifiers (letters, digits, _)")
        if not isinstance(value, str) or not value:
            raise v.fail(mapping, f"fields.{key}", f"expected the name of a data key, found {value!r}")
        fields[key] = value
    if "input" not in fields:
        raise v.fail(mapping, "fields", "missing required key 'fields.input'")
    return fields


def _metrics(v: _Validator, doc: dict, task: str) -> tuple[MetricSpec, ...]:
    raw = v.get(doc, "metrics", (list,), default=None)
    if raw is None:
        return tuple(MetricSpec(n) for n in DEFAULT_METRICS[task])
    specs = []
    for index, item in enumerate(raw):
        key = f"metrics[{index}]"
        if isinstance(item, str):
            spec = MetricSpec(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            spec = MetricSpec(item["name"], {k: val for k, val in item.items() if k != "name"})
        else:
            raise v.fail(doc, "metrics", f"{key}: expected a metric name or a mapping with 'name', found {item!r}")
        try:
            evaluators.get(spec.name, **spec.options)
        except evaluators.EvaluatorError as exc:
            raise v.fail(doc, "metrics", f"{key}: {exc.message}", exc.hint) from None
        except TypeError as exc:
            raise v.fail(doc, "metrics", f"{key}: invalid option for {spec.name}: {exc}") from None
        specs.append(spec)
    return tuple(specs)


def _generation(v: _Validator, doc: dict, task: str) -> GenerationParams:
    section = v.get(doc, "generation", (dict,), default=_LineDict())
    v.reject_unknown(section, tuple(f.name for f in dataclasses.fields(GenerationParams)), "generation.")
    values = {k: tuple(val) if isinstance(val, list) else val for k, val in section.items()}
    values.setdefault("max_new_tokens", DEFAULT_MAX_NEW_TOKENS[task])
    try:
        return GenerationParams(**values)
    except LmscopeError as exc:
        field_name = next((k for k in section if k in exc.message), None)
        raise v.fail(section, f"generation.{field_name}" if field_name else "generation", exc.message) from None
    except TypeError as exc:
        raise v.fail(section, "generation", str(exc)) from None


def _prompts(v: _Validator, doc: dict, task: str, allowed: set[str]) -> dict[str, Template]:
    raw = v.get(doc, "prompt", (str, dict), default=None)
    if raw is None:
        sources = {kind: text for kind, text in DEFAULT_PROMPTS[task].items()}
        if "context" not in allowed:
            sources = {kind: text.replace("Context: {context}\n\n", "").replace("Context: {context}\n", "")
                       .replace(" context: {context}", "") for kind, text in sources.items()}
    elif isinstance(raw, str):
        sources = {kind: raw for kind in PROMPT_KINDS}
    else:
        v.reject_unknown(raw, PROMPT_KINDS, "prompt.")
        sources = dict(DEFAULT_PROMPTS[task])
        for kind, text in raw.items():
            if not isinstance(text, str):
                raise v.fail(raw, f"prompt.{kind}", f"expected a string, found {text!r}")
            sources[kind] = text
    templates = {}
    for kind, text in sources.items():
        try:
            templates[kind] = parse_template(text, frozenset(allowed))
        except TemplateError as exc:
            key = "prompt" if isinstance(raw, str) or raw is None else f"prompt.{kind}"
            target = raw if isinstance(raw, dict) else doc
            raise v.fail(target, key, str(exc)) from None
    return templates

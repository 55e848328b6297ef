"""Scenario files: one YAML file declares the data, prompt, generation settings and metrics.

Loading validates everything that can be checked without running a model — keys and types,
templates against the declared fields, metric names and options, generation settings — and
reports the file, line and key of the first problem.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import evaluators
from engine import GenerationParams, LmscopeError
from scenarios.errors import ScenarioError
from scenarios.templates import Template, TemplateError, parse_template

TASKS = ("qa", "summarization", "translation", "chat", "completion", "multiple_choice", "classification")
CHOICE_TASKS = ("multiple_choice", "classification")  # scored by option log-likelihood, nothing generated
PROMPT_KINDS = ("chat", "completion", "seq2seq")
STANDARD_FIELDS = ("id", "input", "context", "references")

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
                   "translation": ["bleu", "chrf"], "chat": [], "completion": [],
                   "multiple_choice": ["acc", "acc_norm"], "classification": ["acc", "macro_f1", "mcc"]}


DEFAULT_MAX_NEW_TOKENS = {"qa": 32, "summarization": 64, "translation": 128, "chat": 256, "completion": 256,
                          "multiple_choice": 1, "classification": 1}  # choice tasks generate nothing


class _LineDict(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    pass


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (PyYAML would silently keep the last one)."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key!r} (first given on line {first_line})")
        self.key, self.line = key, line


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode):
    data = _LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        try:
            seen = key in data.key_lines
        except TypeError:  # an unhashable key: construct_mapping below reports it
            continue
        if seen:
            raise DuplicateKeyError(key, line, data.key_lines[key])
        data.key_lines[key] = line
    data.update(loader.construct_mapping(node, deep=True))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


@dataclass(frozen=True)
class DataSpec:
    """Where the examples come from."""

    format: str
    path: Path | None = None
    references: tuple[Path, ...] = ()  # parallel: reference files beside ``path`` (the source)


@dataclass(frozen=True)
class MetricSpec:
    """A metric as a scenario names it: the registry name (or alias) and its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def input(self) -> str:
        """What the metric scores: ``text``, ``likelihood`` or ``choices`` (see the registry)."""
        return evaluators.entry(self.name).input

    @property
    def is_likelihood(self) -> bool:
        """Scored from the engine's log-likelihoods of the input, not from generated text."""
        return self.input == "likelihood"

    @property
    def is_choice(self) -> bool:
        """Scored from the engine's log-likelihoods of each answer option."""
        return self.input == "choices"

    @property
    def calibrated(self) -> bool:
        """Whether it compares options after subtracting a content-free prompt's log-likelihoods."""
        return bool(self.options.get("calibrate"))

    def build(self, language: str | None) -> evaluators.Metric:
        """A fresh metric object, told the scenario's language (metrics that take none ignore it)."""
        options = dict(self.options)
        language = options.pop("language", language)  # an explicit per-metric language wins
        return evaluators.build(self.name, language=language, embedder=_lazy_embedder, **options)


def _lazy_embedder(texts: list[str]):
    """MiniLM sentence embeddings from the engine, imported (with torch) only when first used."""
    from engine.embeddings import embed

    return embed(texts)


_lazy_embedder.embedder_name = "all-MiniLM-L6-v2(mean-pool,l2)"  # the signature names the model


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
    labels: tuple[str, ...] = ()       # classification: label names, in order
    verbalisers: tuple[str, ...] = ()  # classification: the text scored for each label
    target_delimiter: str = " "        # choice tasks: between a causal model's context and each option

    @property
    def is_choice(self) -> bool:
        """Scored by the log-likelihood of answer options (multiple choice, classification)."""
        return self.task in CHOICE_TASKS

    @property
    def needs_generation(self) -> bool:
        return not self.is_choice and (not self.metrics or any(m.input == "text" for m in self.metrics))

    @property
    def needs_references(self) -> bool:
        return any(m.input == "text" for m in self.metrics)

    def with_seed(self, seed: int) -> "Scenario":
        """This scenario with ``seed`` for its few-shot draws and its sampling."""
        return dataclasses.replace(self, seed=seed, generation=dataclasses.replace(self.generation, seed=seed))

    def template_values(self) -> dict[str, str]:
        """Values every example shares (languages)."""
        return {
            "source_lang": self.source_lang or "", "target_lang": self.target_lang or "",
            "source_language": evaluators.language_name(self.source_lang) if self.source_lang else "",
            "target_language": evaluators.language_name(self.target_lang) if self.target_lang else "",
        }


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


MAX_SEED = 2**63 - 1  # seeds are stored as SQLite integers and fed to torch / numpy generators


def check_seed(v: "_Validator", mapping: dict, key: str, prefix: str = "") -> int:
    seed = v.get(mapping, key, (int,), prefix=prefix)
    if not 0 <= seed <= MAX_SEED:
        raise v.fail(mapping, f"{prefix}{key}", f"expected an integer from 0 to 2**63-1, found {seed}")
    return seed


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping",
            bool: "true/false", type(None): "nothing"}.get(t, t.__name__)


TOP_KEYS = ("name", "description", "task", "data", "fields", "source_lang", "target_lang", "system", "prompt",
            "few_shot", "generation", "metrics", "limit", "seed", "labels", "target_delimiter")


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
    except DuplicateKeyError as exc:
        raise ScenarioError(str(exc), path=path, line=exc.line, key=str(exc.key),
                            hint="give each key once") from None
    except RecursionError:
        raise ScenarioError("the YAML is nested too deeply", path=path) from None
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
    fields = _fields(v, doc, data, task)
    source_lang = _language(v, doc, "source_lang")
    target_lang = _language(v, doc, "target_lang")
    metrics = _metrics(v, doc, task, target_lang)
    generation = _generation(v, doc, task)
    allowed = set(fields) - {"id", "references"} | {"reference", "source_lang", "target_lang",
                                                     "source_language", "target_language"}
    choice = None
    if task in CHOICE_TASKS:
        from scenarios.choice_scenario import validate_choice_task

        choice = validate_choice_task(v, doc, task, fields, metrics, target_lang or source_lang)
        prompts = choice.prompts
    else:
        for key in ("labels", "target_delimiter"):
            if key in doc:
                raise v.fail(doc, key, f"'{key}' is for multiple_choice and classification tasks, not {task}")
        for index, spec in enumerate(metrics):
            if spec.is_choice:
                raise v.fail(doc, "metrics", f"metrics[{index}]: {spec.name} scores answer options; it needs "
                             "task: multiple_choice or classification")
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
        if "references" not in fields and task not in CHOICE_TASKS:
            raise v.fail(shot, "few_shot", "few-shot examples need a references field to show answers")
    limit = v.get(doc, "limit", (int,))
    if limit is not None and limit < 1:
        raise v.fail(doc, "limit", f"expected an integer >= 1, found {limit}")
    if any(m.input == "text" for m in metrics) and "references" not in fields:
        raise v.fail(doc, "fields", "the metrics need references but fields has no 'references' entry")
    return Scenario(
        name=name, task=task, data=data, fields=fields, prompts=prompts, metrics=metrics,
        generation=generation, description=v.get(doc, "description", (str,), default=""),
        source_lang=source_lang, target_lang=target_lang, system=v.get(doc, "system", (str,)),
        few_shot=few_shot, limit=limit, seed=check_seed(v, doc, "seed") if "seed" in doc else 0, path=path,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(), text=text,
        **(choice.scenario_fields() if choice else {}),
    )


def _language(v: _Validator, doc: dict, key: str) -> str | None:
    code = v.get(doc, key, (str,))
    if code is None:
        return None
    try:
        return evaluators.resolve_language(code, ())
    except evaluators.EvaluatorError as exc:
        raise v.fail(doc, key, exc.message, exc.hint) from None


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


def _fields(v: _Validator, doc: dict, data: DataSpec, task: str = "qa") -> dict[str, str | tuple[str, ...]]:
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
        if key == "choices" and task == "multiple_choice" and isinstance(value, list):
            if len(value) < 2 or not all(isinstance(c, str) and c for c in value):
                raise v.fail(mapping, "fields.choices", f"expected a data key holding a list, or a list of at "
                             f"least two data keys (one per option), found {value!r}")
            fields[key] = tuple(value)
            continue
        if not isinstance(value, str) or not value:
            raise v.fail(mapping, f"fields.{key}", f"expected the name of a data key, found {value!r}")
        fields[key] = value
    if "input" not in fields:
        raise v.fail(mapping, "fields", "missing required key 'fields.input'")
    return fields


def _metrics(v: _Validator, doc: dict, task: str, language: str | None) -> tuple[MetricSpec, ...]:
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
            spec.build(language)
        except evaluators.EvaluatorError as exc:
            raise v.fail(doc, "metrics", f"{key}: {exc.message}", exc.hint) from None
        if any(evaluators.entry(earlier.name).name == evaluators.entry(spec.name).name for earlier in specs):
            raise v.fail(doc, "metrics", f"{key}: {spec.name} is listed twice; its scores would overwrite each other",
                         hint="list each metric once (a calibrated variant needs a run of its own)")
        specs.append(spec)
    return tuple(specs)


# What each generation setting must be in a scenario file (YAML types; bool is never a number here).
GENERATION_TYPES: dict[str, tuple[type, ...]] = {
    "max_new_tokens": (int,), "temperature": (int, float), "top_p": (int, float), "top_k": (int,),
    "repetition_penalty": (int, float), "stop": (str, list), "seed": (int,), "logprobs": (bool,),
    "top_logprobs": (int,), "truncation": (str,),
}


def _generation(v: _Validator, doc: dict, task: str) -> GenerationParams:
    section = v.get(doc, "generation", (dict,), default=_LineDict())
    v.reject_unknown(section, tuple(f.name for f in dataclasses.fields(GenerationParams)), "generation.")
    for key in section:
        v.get(section, key, GENERATION_TYPES[key], prefix="generation.")
    if "seed" in section:
        check_seed(v, section, "seed", "generation.")
    stop = section.get("stop")
    if isinstance(stop, list) and not all(isinstance(item, str) for item in stop):
        raise v.fail(section, "generation.stop", f"expected a list of strings, found {stop!r}")
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

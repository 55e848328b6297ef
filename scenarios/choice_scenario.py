"""What a ``multiple_choice`` or ``classification`` scenario file adds, validated.

```yaml
task: classification
fields: {id: id, input: sentence, label: label}   # label: an index or the label's text
labels:                                           # name -> verbaliser (or per language)
  positive: {en: great, zh: 好}
  negative: {en: terrible, zh: 差}
target_lang: en                                   # picks the verbalisers (else source_lang)
target_delimiter: " "                             # between a causal model's context and each option
prompt:
  completion: "Review: {input}\nSentiment:"       # causal models (chat template or not)
  seq2seq: "sst2 sentence: {input}"               # T5-style task prefix; the option is the target
  masked: "{input} It was {answer}."              # BERT: the option fills {answer}
```

``multiple_choice`` maps ``fields.choices`` to a data key holding a list (JSONL), or to a list of
data keys, one per option (CSV columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import evaluators
from scenarios.templates import Template, TemplateError, parse_template

if TYPE_CHECKING:
    from scenarios.scenario import MetricSpec, _Validator

CHOICE_PROMPT_KINDS = ("completion", "seq2seq", "masked")
SLOT = "answer"  # the masked template's slot for the option
CHOICE_METRICS = ("acc", "acc_norm", "acc_bytes", "macro_f1", "mcc")
LABEL_SET_METRICS = ("macro_f1", "mcc")
DEFAULT_CHOICE_PROMPTS: dict[str, dict[str, str]] = {
    "multiple_choice": {"completion": "Question: {input}\nAnswer:", "seq2seq": "question: {input}",
                        "masked": "Question: {input} Answer: {answer}"},
    "classification": {"completion": "{input}\nAnswer:", "seq2seq": "{input}", "masked": "{input} {answer}"},
}


@dataclass(frozen=True)
class ChoiceSettings:
    """The validated choice-task part of a scenario."""

    prompts: dict[str, Template]
    labels: tuple[str, ...]
    verbalisers: tuple[str, ...]
    target_delimiter: str

    def scenario_fields(self) -> dict[str, Any]:
        return {"labels": self.labels, "verbalisers": self.verbalisers, "target_delimiter": self.target_delimiter}


def validate_choice_task(v: "_Validator", doc: dict, task: str, fields: dict, metrics: "tuple[MetricSpec, ...]",
                         language: str | None) -> ChoiceSettings:
    """Check fields, metrics, labels and prompts of a choice task; raise ScenarioError at the first problem."""
    if "label" not in fields:
        raise v.fail(doc.get("fields", doc), "fields", "missing required key 'fields.label' (the data key holding "
                     "the gold option: its index or its text)")
    if task == "multiple_choice" and "choices" not in fields:
        raise v.fail(doc.get("fields", doc), "fields", "missing required key 'fields.choices' (a data key holding "
                     "the list of options, or a list of data keys, one per option)")
    if task == "classification" and "choices" in fields:
        raise v.fail(doc.get("fields", doc), "fields.choices", "classification takes its options from 'labels'",
                     hint="use task: multiple_choice for options that differ per example")
    for index, spec in enumerate(metrics):
        canonical = evaluators.entry(spec.name).name
        if not spec.is_choice:
            raise v.fail(doc, "metrics", f"metrics[{index}]: {spec.name} does not score answer options; "
                         f"expected one of {', '.join(CHOICE_METRICS)}")
        if task == "multiple_choice" and canonical in LABEL_SET_METRICS:
            raise v.fail(doc, "metrics", f"metrics[{index}]: {spec.name} needs a fixed label set",
                         hint="use task: classification with labels")
    labels, verbalisers = _labels(v, doc, language) if task == "classification" else ((), ())
    if task != "classification" and "labels" in doc:
        raise v.fail(doc, "labels", "labels are for task: classification; multiple_choice reads its options "
                     "from fields.choices")
    delimiter = v.get(doc, "target_delimiter", (str,), default=" ")
    allowed = (set(fields) - {"id", "references", "label", "choices"}
               | {"source_lang", "target_lang", "source_language", "target_language"})
    return ChoiceSettings(_prompts(v, doc, task, allowed, "context" in fields), labels, verbalisers, delimiter)


def _labels(v: "_Validator", doc: dict, language: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    raw = v.get(doc, "labels", (list, dict), required=True)
    if isinstance(raw, list):
        if not all(isinstance(x, str) and x.strip() for x in raw):
            raise v.fail(doc, "labels", f"expected a list of label texts, found {raw!r}")
        names, verbalisers = tuple(raw), tuple(raw)
    else:
        names, words = [], []
        for name, value in raw.items():
            key = f"labels.{name}"
            if not isinstance(name, str) or not name.strip():
                raise v.fail(raw, key, "expected a label name")
            if isinstance(value, dict):
                if language is None:
                    raise v.fail(raw, key, "verbalisers per language need the scenario's language",
                                 hint="set target_lang (or source_lang) to pick one")
                if language not in value:
                    raise v.fail(raw, key, f"no verbaliser for language {language!r} "
                                 f"(given: {', '.join(map(str, value))})")
                value = value[language]
            if not isinstance(value, str) or not value.strip():
                raise v.fail(raw, key, f"expected the label's verbaliser text, found {value!r}")
            names.append(name)
            words.append(value)
        names, verbalisers = tuple(names), tuple(words)
    if len(names) < 2:
        raise v.fail(doc, "labels", f"expected at least two labels, found {len(names)}")
    for group, what in ((names, "label names"), (verbalisers, "verbalisers")):
        if len(set(group)) != len(group):
            raise v.fail(doc, "labels", f"{what} must differ from each other, found {list(group)}")
    return names, verbalisers


def _prompts(v: "_Validator", doc: dict, task: str, allowed: set[str], has_context: bool) -> dict[str, Template]:
    raw = v.get(doc, "prompt", (str, dict), default=None)
    sources = dict(DEFAULT_CHOICE_PROMPTS[task])
    if has_context and task == "multiple_choice":
        sources["completion"] = "{context}\n" + sources["completion"]
        sources["seq2seq"] += " context: {context}"
        sources["masked"] = "{context} " + sources["masked"]
    if isinstance(raw, str):
        sources.update(completion=raw, seq2seq=raw)  # the masked prompt needs its {answer} slot
    elif isinstance(raw, dict):
        v.reject_unknown(raw, CHOICE_PROMPT_KINDS, "prompt.")
        for kind, text in raw.items():
            if not isinstance(text, str):
                raise v.fail(raw, f"prompt.{kind}", f"expected a string, found {text!r}")
            sources[kind] = text
    templates = {}
    for kind, text in sources.items():
        key = f"prompt.{kind}" if isinstance(raw, dict) and kind in raw else "prompt"
        target = raw if isinstance(raw, dict) else doc
        try:
            template = parse_template(text, frozenset(allowed | ({SLOT} if kind == "masked" else set())))
        except TemplateError as exc:
            raise v.fail(target, key, f"{kind} prompt: {exc}") from None
        slots = sum(1 for _, f in template.parts if f == SLOT)
        if kind == "masked" and slots != 1:
            raise v.fail(target, key, f"the masked prompt needs exactly one {{{SLOT}}} slot for the option, "
                         f"found {slots}", hint='for example "{input} It was {answer}."')
        templates[kind] = template
    return templates

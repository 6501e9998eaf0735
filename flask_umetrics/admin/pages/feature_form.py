"""The feature forms of the dashboard: typed values, ordered rules and overrides to and from
the definitions the flag store takes.

Forms post flat, repeated fields (one entry per rule, in page order); they become the same
dicts the REST routes take (``PUT /api/experiments/<key>/rules``, ``.../overrides``) and are
validated by the store's own models, so the page accepts exactly what the API accepts. Errors are
keyed by the model's field path (``rules.1.coverage``) for the template.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pydantic
from werkzeug.datastructures import MultiDict

from ...flags.model import (
    BOOLEAN_VARIANTS,
    KEY_PATTERN,
    Experiment,
    OverrideSpec,
    RuleSpec,
)
from ...flags.store import ExperimentSpec

VALUE_TYPES = ("boolean", "string", "number", "json")
#: What the rule-kind select offers, with the label a person reads.
RULE_KINDS: dict[str, str] = {
    "force": "Serve a value",
    "rollout": "Percentage rollout",
    "experiment": "Run the experiment",
}
RULE_FIELDS = ("type", "id", "variant", "coverage", "hash_attribute", "condition")
_RULES: pydantic.TypeAdapter[list[RuleSpec]] = pydantic.TypeAdapter(list[RuleSpec])
_KEY = re.compile(KEY_PATTERN)
_SUBJECT_SPLIT = re.compile(r"[\s,]+")


@dataclass
class FeatureForm:
    """The create form as the visitor typed it, and errors by field path."""

    key: str = ""
    name: str = ""
    description: str = ""
    value_type: str = "boolean"
    default_value: str = ""
    served_value: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def parse_value(value_type: str, text: str, name: str, errors: dict[str, str]) -> Any:
    """A typed value from its text (strings as typed); a bad one goes to ``errors``."""
    if value_type == "string":
        return text
    if value_type == "boolean":
        if text in ("true", "false"):
            return text == "true"
        errors[name] = "must be true or false"
        return None
    if value_type == "number":
        try:
            number = float(text)
        except ValueError:
            errors[name] = "must be a number"
            return None
        if not math.isfinite(number):
            errors[name] = "must be a finite number"
            return None
        return int(number) if number.is_integer() and "." not in text else number
    try:
        return json.loads(text)
    except ValueError:
        errors[name] = "is not valid JSON"
        return None


def value_text(value: Any, value_type: str) -> str:
    """A value as the form shows it (JSON for JSON, plain text otherwise)."""
    if value_type == "string" and isinstance(value, str):
        return value
    return json.dumps(value)


def _variant_key(value: Any, index: int, taken: set[str]) -> str:
    """A readable variant key for a value: the value itself when it is a valid key."""
    text = value if isinstance(value, str) else json.dumps(value)
    key = text if _KEY.match(text) and len(text) <= 100 else f"value-{index}"
    while key in taken:
        key = f"{key}-{index}"
    taken.add(key)
    return key


def validate_new(form: FeatureForm) -> ExperimentSpec | None:
    """A new feature (a flag whose rules are added on its page), or None with ``form.errors``."""
    body: dict[str, Any] = {
        "key": form.key,
        "kind": "flag",
        "name": form.name,
        "description": form.description,
        "value_type": form.value_type,
        "rules": [],
    }
    if form.value_type not in VALUE_TYPES:
        form.errors["value_type"] = f"must be one of {', '.join(VALUE_TYPES)}"
        return None
    if form.value_type != "boolean":
        default = parse_value(form.value_type, form.default_value, "default_value", form.errors)
        served = parse_value(form.value_type, form.served_value, "served_value", form.errors)
        if not form.errors and default == served:
            form.errors["served_value"] = "must differ from the default value"
        taken: set[str] = set()
        body["variants"] = [
            {"key": _variant_key(default, 0, taken), "value": default, "weight": 0.5},
            {"key": _variant_key(served, 1, taken), "value": served, "weight": 0.5},
        ]
    if form.errors:
        return None
    try:
        return ExperimentSpec.model_validate(body)
    except pydantic.ValidationError as exc:
        form.errors.update(errors_of(exc))
        return None


def errors_of(exc: pydantic.ValidationError, prefix: str = "") -> dict[str, str]:
    """Pydantic's errors by field path (``rules.0.coverage``), first message per field."""
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        # A discriminated union adds the rule kind to the path: rules.0.rollout.coverage.
        parts = [str(p) for p in error["loc"] if str(p) not in RULE_KINDS]
        name = ".".join([prefix, *parts] if prefix else parts) or "form"
        found.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
    return found


def read_rules(form: MultiDict[str, str]) -> list[dict[str, str]]:
    """The posted rules in page order, as typed (rules without a kind are dropped)."""
    columns = {name: form.getlist(f"rule_{name}") for name in RULE_FIELDS}
    count = max(len(values) for values in columns.values())
    rows = [
        {name: (values[i] if i < len(values) else "").strip() for name, values in columns.items()}
        for i in range(count)
    ]
    return [row for row in rows if row["type"]]


def rules_of(experiment: Experiment) -> list[dict[str, str]]:
    """The stored rules as form rows (coverage in percent, condition as JSON text)."""
    rows = []
    for rule in experiment.rules:
        row = dict.fromkeys(RULE_FIELDS, "")
        row.update(type=rule.type, id=rule.id)
        if rule.type != "experiment":
            row["variant"] = rule.variant
            row["condition"] = json.dumps(rule.condition, indent=2) if rule.condition else ""
        if rule.type == "rollout":
            row["coverage"] = f"{rule.coverage * 100:g}"
            row["hash_attribute"] = rule.hash_attribute
        rows.append(row)
    return rows


def _percent(text: str, name: str, errors: dict[str, str]) -> float | None:
    try:
        percent = float(text)
    except ValueError:
        errors[name] = "must be a percentage from 0 to 100"
        return None
    if not 0 <= percent <= 100:
        errors[name] = "must be a percentage from 0 to 100"
        return None
    return round(percent / 100, 6)


def rules_payload(rows: list[dict[str, str]], errors: dict[str, str]) -> list[RuleSpec] | None:
    """The rules the rows stand for, validated as the REST route validates them."""
    rules: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        rule: dict[str, Any] = {"type": row["type"], "id": row["id"]}
        if row["type"] in ("force", "rollout"):
            rule["variant"] = row["variant"]
            condition = row["condition"]
            if condition:
                try:
                    rule["condition"] = json.loads(condition)
                except ValueError:
                    errors[f"rules.{index}.condition"] = "is not valid JSON"
        if row["type"] == "rollout":
            rule["coverage"] = _percent(row["coverage"], f"rules.{index}.coverage", errors)
            rule["hash_attribute"] = row["hash_attribute"] or "id"
        rules.append(rule)
    if errors:
        return None
    try:
        return _RULES.validate_python(rules)
    except pydantic.ValidationError as exc:
        errors.update(errors_of(exc, "rules"))
        return None


def override_payload(
    form: MultiDict[str, str], experiment: Experiment, errors: dict[str, str]
) -> OverrideSpec | None:
    """One new override from the add form: a value and subject ids or a segment."""
    variant = (form.get("variant") or "").strip()
    ids = [s for s in _SUBJECT_SPLIT.split(form.get("subject_ids") or "") if s]
    segment = (form.get("segment") or "").strip()
    if variant not in experiment.variant_keys:
        errors["variant"] = "choose the value these subjects get"
    if not ids and not segment:
        errors["subject_ids"] = "give subject ids (one per line) or choose a segment"
    elif ids and segment:
        errors["subject_ids"] = "give subject ids or a segment, not both (add two overrides)"
    if errors:
        return None
    body = {"variant": variant, "subject_ids": ids or None, "segment": segment or None}
    try:
        return OverrideSpec.model_validate(body)
    except pydantic.ValidationError as exc:
        errors.update(errors_of(exc))
        return None


def variants_payload(
    form: MultiDict[str, str], experiment: Experiment, errors: dict[str, str]
) -> list[dict[str, Any]]:
    """The feature's variants with the values typed in the values form (keys and weights kept);
    a filled-in extra row adds a value (weight 0: the experiment does not serve it until its
    weights say so)."""
    texts = form.getlist("value")
    variants = [v.model_dump() for v in experiment.variants]
    taken = set(experiment.variant_keys)
    for index, text in enumerate(texts):
        name = f"values.{index}"
        if index < len(variants):
            variants[index]["value"] = parse_value(experiment.value_type, text, name, errors)
        elif text.strip():
            value = parse_value(experiment.value_type, text.strip(), name, errors)
            key = _variant_key(value, index, taken)
            variants.append({"key": key, "weight": 0.0, "name": "", "value": value})
    values = [json.dumps(v["value"], sort_keys=True) for v in variants]
    if not errors and len(set(values)) != len(values):
        errors["values"] = "every value must be different"
    return variants


def values_of(experiment: Experiment) -> list[tuple[str, str]]:
    """Each variant's key and the value it serves, as text (what a rule's value select shows)."""
    return [
        (key, value_text(experiment.value_of(key), experiment.value_type))
        for key in experiment.variant_keys
    ]


def is_boolean(experiment: Experiment) -> bool:
    """An off/on feature (its values are false and true)."""
    return experiment.value_type == "boolean" and experiment.variant_keys == BOOLEAN_VARIANTS

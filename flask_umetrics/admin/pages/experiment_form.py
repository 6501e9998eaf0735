"""The experiment form of the dashboard: its fields to and from a definition.

The form posts flat, repeated fields (one row per variant and per metric); they are turned into
the same dict the REST API takes and validated by the store's own pydantic models
(:class:`ExperimentSpec`, :class:`ExperimentChanges`), so the form accepts exactly what the API
accepts. Errors are keyed by the model's field path (``variants.1.weight``) for the template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pydantic
from werkzeug.datastructures import MultiDict

from ...flags.model import Experiment, ExperimentRule
from ...flags.sample_size import DEFAULT_MDE
from ...flags.store import ExperimentChanges, ExperimentSpec

#: Blank rows the form always offers, so rows can be added without JavaScript.
SPARE_VARIANT_ROWS = 1
SPARE_METRIC_ROWS = 1
METRIC_ROLES = ("goal", "secondary", "guardrail")
METRIC_FIELDS = ("key", "kind", "event", "property", "window", "filters", "role")
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"

#: The experiment rule's analysis settings the form edits (the rest of ``rules`` is kept).
ANALYSIS = ("one_sided", "mde", "min_bucket_version")

#: Fields an edit compares with the stored definition (only changed ones are sent).
EDITABLE = (
    "name",
    "description",
    "variants",
    "coverage",
    "seed",
    "bucket_version",
    "conditions",
    "namespace",
    "metrics",
    "start_at",
    "stop_at",
)


@dataclass
class ExperimentForm:
    """What the form shows: the visitor's text, field by field, and errors by field path."""

    key: str = ""
    kind: str = "experiment"
    name: str = ""
    description: str = ""
    coverage: str = "1"
    seed: str = ""
    bucket_version: str = "1"
    conditions: str = ""
    namespace_name: str = ""
    namespace_start: str = ""
    namespace_end: str = ""
    start_at: str = ""
    stop_at: str = ""
    one_sided: bool = False
    mde: str = ""
    min_bucket_version: str = ""
    variants: list[dict[str, str]] = field(default_factory=list)
    metrics: list[dict[str, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def errors_under(self, prefix: str) -> list[tuple[str, str]]:
        """Errors of one part of the form (``variants`` matches ``variants.1.key``)."""
        return [
            (name, message)
            for name, message in self.errors.items()
            if name == prefix or name.startswith(prefix + ".")
        ]

    def with_spare_rows(self) -> ExperimentForm:
        """The form with blank rows appended (for display)."""
        blank_variant = {"key": "", "weight": "", "name": ""}
        blank_metric = {
            "key": "",
            "kind": "conversion",
            "event": "",
            "property": "",
            "window": "",
            "filters": "",
            "role": "secondary" if self.metrics else "goal",
        }
        self.variants = [*self.variants, *([blank_variant] * SPARE_VARIANT_ROWS)]
        self.metrics = [*self.metrics, *([blank_metric] * SPARE_METRIC_ROWS)]
        return self


def new_form() -> ExperimentForm:
    """The create form's starting point: a 50/50 test of control against one treatment."""
    return ExperimentForm(
        mde=_number(DEFAULT_MDE),
        min_bucket_version="0",
        variants=[
            {"key": "control", "weight": "0.5", "name": ""},
            {"key": "treatment", "weight": "0.5", "name": ""},
        ],
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime(DATETIME_FORMAT) if value else ""


def form_of(experiment: Experiment) -> ExperimentForm:
    """The edit form filled with a stored definition."""
    metrics = []
    goal = experiment.goal
    for metric in experiment.metrics:
        role = "guardrail" if metric.guardrail else "secondary"
        if metric is goal:
            role = "goal"
        filters = [f.model_dump(mode="json", exclude_none=True) for f in metric.filters]
        default_key = (
            metric.event if metric.kind == "conversion" else f"{metric.property}:{metric.event}"
        )
        metrics.append(
            {
                "key": metric.key if metric.key != default_key else "",
                "kind": metric.kind,
                "event": metric.event,
                "property": metric.property or "",
                "window": str(metric.window_seconds or ""),
                "filters": json.dumps(filters) if filters else "",
                "role": role,
            }
        )
    if goal is not None:  # the goal row comes first in the form
        metrics.sort(key=lambda row: row["role"] != "goal")
    namespace = experiment.namespace
    rule = experiment.experiment_rule
    return ExperimentForm(
        key=experiment.key,
        kind=experiment.kind,
        name=experiment.name,
        description=experiment.description,
        coverage=_number(experiment.coverage),
        seed=experiment.seed,
        bucket_version=str(experiment.bucket_version),
        conditions=json.dumps(experiment.conditions, indent=2) if experiment.conditions else "",
        namespace_name=namespace.name if namespace else "",
        namespace_start=_number(namespace.start) if namespace else "",
        namespace_end=_number(namespace.end) if namespace else "",
        start_at=_when(experiment.start_at),
        stop_at=_when(experiment.stop_at),
        one_sided=rule.one_sided,
        mde=_number(rule.mde),
        min_bucket_version=str(rule.min_bucket_version),
        variants=[
            {"key": v.key, "weight": _number(v.weight), "name": v.name} for v in experiment.variants
        ],
        metrics=metrics,
    )


def _rows(form: MultiDict[str, str], prefix: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    columns = {name: form.getlist(f"{prefix}_{name}") for name in names}
    count = max((len(values) for values in columns.values()), default=0)
    rows = []
    for i in range(count):
        row = {
            name: (values[i] if i < len(values) else "").strip() for name, values in columns.items()
        }
        rows.append(row)
    return rows


def read_form(form: MultiDict[str, str]) -> ExperimentForm:
    """The posted fields as the visitor typed them (blank rows dropped)."""

    def text(name: str) -> str:
        return (form.get(name) or "").strip()

    variants = [
        row
        for row in _rows(form, "variant", ("key", "weight", "name"))
        if row["key"] or row["weight"] or row["name"]
    ]
    metrics = [
        row
        for row in _rows(form, "metric", METRIC_FIELDS)
        if row["key"] or row["event"] or row["property"] or row["window"] or row["filters"]
    ]
    return ExperimentForm(
        key=text("key"),
        kind=text("kind") or "experiment",
        name=text("name"),
        description=(form.get("description") or "").strip(),
        coverage=text("coverage"),
        seed=text("seed"),
        bucket_version=text("bucket_version"),
        conditions=(form.get("conditions") or "").strip(),
        namespace_name=text("namespace_name"),
        namespace_start=text("namespace_start"),
        namespace_end=text("namespace_end"),
        start_at=text("start_at"),
        stop_at=text("stop_at"),
        one_sided=text("one_sided") in ("true", "on", "1"),
        mde=text("mde"),
        min_bucket_version=text("min_bucket_version"),
        variants=variants,
        metrics=metrics,
    )


def _json(value: str, name: str, errors: dict[str, str]) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        errors[name] = "is not valid JSON"
        return None


def _datetime(value: str) -> str | None:
    """A ``datetime-local`` value is UTC; anything with an offset is kept as typed."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value  # pydantic names the field and says why
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.isoformat()


def payload(form: ExperimentForm) -> dict[str, Any]:
    """The REST body the form stands for; JSON fields that do not parse go to ``form.errors``."""
    body: dict[str, Any] = {
        "name": form.name,
        "description": form.description,
        "variants": [
            {"key": v["key"], "name": v["name"], **({"weight": v["weight"]} if v["weight"] else {})}
            for v in form.variants
        ],
        "coverage": form.coverage or None,
        "seed": form.seed or None,
        "bucket_version": form.bucket_version or None,
        "conditions": _json(form.conditions, "conditions", form.errors),
        "namespace": None,
        "start_at": _datetime(form.start_at),
        "stop_at": _datetime(form.stop_at),
    }
    if form.namespace_name or form.namespace_start or form.namespace_end:
        body["namespace"] = {
            "name": form.namespace_name,
            "start": form.namespace_start or "0",
            "end": form.namespace_end or "1",
        }
    metrics = []
    rows = sorted(enumerate(form.metrics), key=lambda pair: pair[1]["role"] != "goal")
    for index, row in rows:
        metric: dict[str, Any] = {
            "kind": row["kind"] or "conversion",
            "event": row["event"],
            "guardrail": row["role"] == "guardrail",
        }
        if row["key"]:
            metric["key"] = row["key"]
        if row["property"]:
            metric["property"] = row["property"]
        if row["window"]:
            metric["window_seconds"] = row["window"]
        filters = _json(row["filters"], f"metrics.{index}.filters", form.errors)
        if filters is not None:
            metric["filters"] = filters
        metrics.append(metric)
    body["metrics"] = metrics
    return body


def _errors(exc: pydantic.ValidationError) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]) or "form"
        message = str(error["msg"]).removeprefix("Value error, ")
        found.setdefault(name, message)
    return found


def _analysis(form: ExperimentForm) -> ExperimentRule | None:
    """The experiment rule's analysis settings as typed (blank: the default), or None with
    ``form.errors`` filled (named ``mde``, ``min_bucket_version``)."""
    typed: dict[str, Any] = {"type": "experiment", "one_sided": form.one_sided}
    if form.mde:
        typed["mde"] = form.mde
    if form.min_bucket_version:
        typed["min_bucket_version"] = form.min_bucket_version
    try:
        return ExperimentRule.model_validate(typed)
    except pydantic.ValidationError as exc:
        form.errors.update(_errors(exc))
        return None


def _settings(rule: ExperimentRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in ANALYSIS}


def validate_new(form: ExperimentForm) -> ExperimentSpec | None:
    """A new definition, or None with ``form.errors`` filled."""
    body = payload(form)
    body.update(key=form.key, kind=form.kind)
    rule = _analysis(form)
    if rule is not None and _settings(rule) != _settings(ExperimentRule(type="experiment")):
        body["rules"] = [rule.model_dump()]  # else the default: the experiment rule alone
    if form.kind == "flag" and not form.variants:
        body.pop("variants")  # a flag without variants is a boolean off/on flag
    if form.errors:
        return None
    try:
        return ExperimentSpec.model_validate(body)
    except pydantic.ValidationError as exc:
        form.errors.update(_errors(exc))
        return None


def _stored(experiment: Experiment) -> dict[str, Any]:
    """The stored definition in the shape validated changes are compared in."""
    return ExperimentChanges.model_validate(
        {
            "name": experiment.name,
            "description": experiment.description,
            "variants": [v.model_dump() for v in experiment.variants],
            "coverage": experiment.coverage,
            "seed": experiment.seed,
            "bucket_version": experiment.bucket_version,
            "conditions": experiment.conditions,
            "namespace": experiment.namespace.model_dump() if experiment.namespace else None,
            "metrics": [m.model_dump(mode="json") for m in experiment.metrics],
            "start_at": experiment.start_at,
            "stop_at": experiment.stop_at,
        }
    ).model_dump(mode="json")


def validate_changes(form: ExperimentForm, experiment: Experiment) -> ExperimentChanges | None:
    """Only the fields the visitor changed (possibly none), or None with ``form.errors``."""
    body = payload(form)
    # The analysis settings, when the definition has an experiment rule (else not shown).
    rule = _analysis(form) if experiment.has_experiment else None
    if form.errors:
        return None
    try:
        wanted = ExperimentChanges.model_validate(body).model_dump(mode="json")
    except pydantic.ValidationError as exc:
        form.errors.update(_errors(exc))
        return None
    stored = _stored(experiment)
    changed = {
        name: body[name]
        for name in EDITABLE
        if wanted[name] != stored[name]
        and not (name in ("seed", "coverage", "bucket_version") and wanted[name] is None)
    }
    if rule is not None and _settings(rule) != _settings(experiment.experiment_rule):
        # The other rules (forced values, rollouts) and the rule's id stay as they are.
        changed["rules"] = [
            r.model_copy(update=_settings(rule)).model_dump()
            if isinstance(r, ExperimentRule)
            else r.model_dump()
            for r in experiment.rules
        ]
    return ExperimentChanges.model_validate(changed)

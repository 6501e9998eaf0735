"""Flags and experiments in the database: create, update, start, stop, ship, kill, delete.

Every change bumps the scope's flag generation (so every worker process reloads its cached
definitions) and writes an audit row with the definition before and after, in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)
from sqlalchemy import Connection, delete, insert, select, update

from ..audit import record_audit
from ..db.tables import assignments, experiments, exposures, flag_generations
from ..db.types import utcnow
from ..db.upsert import insert_ignoring_conflicts
from ..errors import APIError, ValidationError
from ..queries.filters import PropertyFilter
from ..state import current_state, resolve_scope
from .conditions import SEGMENT_KEY_PATTERN, validate_condition
from .model import (
    BOOLEAN_VARIANTS,
    EXPERIMENT_ONLY,
    KEY_PATTERN,
    MAX_RULES,
    Experiment,
    Kind,
    MetricSpec,
    NamespaceSpec,
    OverrideSpec,
    RuleSpec,
    ValueType,
    VariantSpec,
)

MAX_VARIANTS = 20
_RULES: TypeAdapter[RuleSpec] = TypeAdapter(RuleSpec)
MAX_METRICS = 20


class GoalSpec(BaseModel):
    """The REST shortcut ``"goal": {"event": ...}``: the primary conversion metric."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=200)
    window_seconds: int | None = Field(None, gt=0)
    # Validated here (400 naming ``goal.filters.N.key``), not first inside MetricSpec (a 500).
    filters: list[PropertyFilter] = Field(default_factory=list)


class ExperimentChanges(BaseModel):
    """Fields a user may set; on update only the fields sent are applied."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    variants: list[VariantSpec] | None = Field(None, min_length=2, max_length=MAX_VARIANTS)
    coverage: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    seed: str | None = Field(None, min_length=1, max_length=200)
    bucket_version: int | None = Field(None, ge=1)
    conditions: dict[str, Any] | None = None
    namespace: NamespaceSpec | None = None
    goal: GoalSpec | None = None
    metrics: list[MetricSpec] | None = Field(None, max_length=MAX_METRICS)
    start_at: datetime | None = None
    stop_at: datetime | None = None
    value_type: ValueType | None = None
    hash_version: Literal[1, 2] | None = None
    rules: list[RuleSpec] | None = Field(None, max_length=MAX_RULES)
    overrides: list[OverrideSpec] | None = Field(None, max_length=MAX_RULES)

    @field_validator("variants")
    @classmethod
    def _distinct_variants(cls, variants: list[VariantSpec] | None) -> list[VariantSpec] | None:
        if variants is not None:
            keys = [v.key for v in variants]
            if len(set(keys)) != len(keys):
                raise ValueError("variant keys must be distinct")
            if sum(v.weight for v in variants) <= 0:
                raise ValueError("at least one variant needs a positive weight")
        return variants

    @field_validator("start_at", "stop_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-12-01T00:00:00Z)")
        return value


class ExperimentSpec(ExperimentChanges):
    """A new flag or experiment. A flag without variants is a boolean ``off``/``on`` flag."""

    key: str = Field(min_length=1, max_length=100, pattern=KEY_PATTERN)
    kind: Kind = "experiment"

    @model_validator(mode="after")
    def _defaults(self) -> ExperimentSpec:
        if self.variants is None:
            if self.kind == "experiment":
                raise ValueError("an experiment needs 'variants' (at least two)")
            self.variants = [VariantSpec(key=k, weight=0.5, name="") for k in BOOLEAN_VARIANTS]
        return self


def _metrics(changes: ExperimentChanges, current: tuple[MetricSpec, ...]) -> tuple[MetricSpec, ...]:
    metrics = list(changes.metrics) if changes.metrics is not None else list(current)
    if changes.goal is not None:
        goal = MetricSpec.model_validate(
            {
                "event": changes.goal.event,
                "window_seconds": changes.goal.window_seconds,
                "filters": changes.goal.filters,
            }
        )
        metrics = [goal, *[m for m in metrics if m.key != goal.key or m.guardrail]]
    keys = [m.key for m in metrics]
    if len(set(keys)) != len(keys):
        raise ValidationError("metrics", "metric keys must be distinct")
    return tuple(metrics)


def _default_value_type(variants: list[VariantSpec] | tuple[VariantSpec, ...]) -> str:
    keys = tuple(v.key for v in variants)
    plain = all(v.value is None for v in variants)
    return "boolean" if keys == BOOLEAN_VARIANTS and plain else "string"


def _value_matches(value_type: str, value: Any) -> bool:
    if value_type == "boolean":
        return isinstance(value, bool)
    if value_type == "string":
        return isinstance(value, str)
    if value_type == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _check_values(value_type: str, variants: list[VariantSpec] | tuple[VariantSpec, ...]) -> None:
    """Every variant's value is of the feature's type (the key is a string value)."""
    keys = tuple(v.key for v in variants)
    for index, variant in enumerate(variants):
        if variant.value is None:
            if value_type == "boolean" and keys == BOOLEAN_VARIANTS:
                continue
            if value_type in ("string", "json"):
                continue
            raise ValidationError(f"variants.{index}.value", f"needs a {value_type} value")
        if not _value_matches(value_type, variant.value):
            raise ValidationError(f"variants.{index}.value", f"must be a {value_type}")


def _check_rules(
    rules: list[RuleSpec] | tuple[RuleSpec, ...], keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Rules as stored: variants that exist, valid conditions, at most one experiment rule."""
    stored: list[dict[str, Any]] = []
    experiments_seen = 0
    for index, rule in enumerate(rules):
        data = rule.model_dump()
        if rule.type == "experiment":
            experiments_seen += 1
            if experiments_seen > 1:
                raise ValidationError(f"rules.{index}.type", "only one experiment rule per feature")
        else:
            if rule.variant not in keys:
                raise ValidationError(f"rules.{index}.variant", f"must be one of {', '.join(keys)}")
            data["condition"] = validate_condition(rule.condition, field=f"rules.{index}.condition")
        stored.append(data)
    return stored


def _check_overrides(
    overrides: list[OverrideSpec] | tuple[OverrideSpec, ...], keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    for index, override in enumerate(overrides):
        if override.variant not in keys:
            raise ValidationError(f"overrides.{index}.variant", f"must be one of {', '.join(keys)}")
        if override.segment is not None and not SEGMENT_KEY_PATTERN.match(override.segment):
            raise ValidationError(f"overrides.{index}.segment", "is not a segment key")
    return [o.model_dump(exclude_none=True) for o in overrides]


def _to_experiment(row: Any) -> Experiment:
    return Experiment(
        scope_id=row.scope_id,
        key=row.key,
        name=row.name,
        description=row.description,
        kind=row.kind,
        variants=tuple(VariantSpec.model_validate(v) for v in row.variants),
        coverage=row.coverage,
        seed=row.seed,
        bucket_version=row.bucket_version,
        status=row.status,
        shipped_variant=row.shipped_variant,
        killed=row.killed,
        conditions=row.conditions,
        namespace=NamespaceSpec.model_validate(row.namespace) if row.namespace else None,
        metrics=tuple(MetricSpec.model_validate(m) for m in row.metrics),
        start_at=row.start_at,
        stop_at=row.stop_at,
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revision=row.revision,
        value_type=row.value_type,
        hash_version=row.hash_version,
        rules=tuple(_RULES.validate_python(rule) for rule in row.rules),
        overrides=tuple(OverrideSpec.model_validate(o) for o in row.overrides),
    )


def load_experiments(connection: Connection, scope_id: str) -> dict[str, Experiment]:
    """Every flag and experiment of a scope, by key (what the definition cache holds)."""
    rows = connection.execute(select(experiments).where(experiments.c.scope_id == scope_id))
    return {row.key: _to_experiment(row) for row in rows}


def _row(connection: Connection, scope_id: str, key: str) -> Experiment | None:
    row = connection.execute(
        select(experiments).where(experiments.c.scope_id == scope_id, experiments.c.key == key)
    ).first()
    return _to_experiment(row) if row is not None else None


def bump_generation(connection: Connection, scope_id: str) -> None:
    """Tell every process that this scope's definitions changed."""
    now = utcnow()
    changed = connection.execute(
        update(flag_generations)
        .where(flag_generations.c.scope_id == scope_id)
        .values(generation=flag_generations.c.generation + 1, updated_at=now)
    ).rowcount
    if not changed:
        connection.execute(
            insert_ignoring_conflicts(connection, flag_generations, "scope_id").values(
                scope_id=scope_id, generation=1, updated_at=now
            )
        )


@contextmanager
def _change(scope_id: str) -> Iterator[Connection]:
    state = current_state()
    with state.engine.begin() as connection:
        yield connection
        bump_generation(connection, scope_id)
    state.flag_cache.invalidate(scope_id)


def _not_found(key: str) -> APIError:
    return APIError(404, "not_found", f"No flag or experiment {key!r} in this scope.")


def _check_schedule(start_at: datetime | None, stop_at: datetime | None) -> None:
    if start_at is not None and stop_at is not None and stop_at <= start_at:
        raise ValidationError("stop_at", "must be later than start_at")


def _check_conditions(conditions: dict[str, Any] | None) -> dict[str, Any] | None:
    return validate_condition(conditions, field="conditions")


def create_experiment(
    spec: ExperimentSpec | dict[str, Any], *, scope_id: str | None = None, actor: str | None = None
) -> Experiment:
    """Store a new flag or experiment (status ``draft``); 409 if the key exists in the scope."""
    scope = resolve_scope(scope_id)
    if not isinstance(spec, ExperimentSpec):
        spec = ExperimentSpec.model_validate(spec)
    assert spec.variants is not None
    conditions = _check_conditions(spec.conditions)
    _check_schedule(spec.start_at, spec.stop_at)
    metrics = _metrics(spec, ())
    keys = tuple(v.key for v in spec.variants)
    value_type = spec.value_type or _default_value_type(spec.variants)
    _check_values(value_type, spec.variants)
    rules = _check_rules(spec.rules if spec.rules is not None else EXPERIMENT_ONLY, keys)
    overrides = _check_overrides(spec.overrides or [], keys)
    now = utcnow()
    with _change(scope) as connection:
        if _row(connection, scope, spec.key) is not None:
            raise APIError(409, "conflict", f"{spec.key!r} already exists in this scope.")
        connection.execute(
            insert(experiments).values(
                scope_id=scope,
                key=spec.key,
                name=spec.name or spec.key,
                description=spec.description or "",
                kind=spec.kind,
                variants=[v.model_dump() for v in spec.variants],
                coverage=1.0 if spec.coverage is None else spec.coverage,
                seed=spec.seed or spec.key,
                bucket_version=spec.bucket_version or 1,
                status="draft",
                shipped_variant=None,
                killed=False,
                conditions=conditions,
                namespace=spec.namespace.model_dump() if spec.namespace else None,
                metrics=[m.model_dump(mode="json") for m in metrics],
                start_at=spec.start_at,
                stop_at=spec.stop_at,
                created_at=now,
                updated_at=now,
                revision=1,
                value_type=value_type,
                hash_version=spec.hash_version or 2,
                rules=rules,
                overrides=overrides,
            )
        )
        created = _row(connection, scope, spec.key)
        assert created is not None
        record_audit(
            connection,
            scope_id=scope,
            action="experiment.create",
            target=spec.key,
            after=created.to_json(),
            actor=actor,
        )
    return created


def _apply(
    key: str,
    scope_id: str | None,
    actor: str | None,
    action: str,
    values_for: Any,
) -> Experiment:
    scope = resolve_scope(scope_id)
    with _change(scope) as connection:
        before = _row(connection, scope, key)
        if before is None:
            raise _not_found(key)
        values = values_for(before)
        values.update(updated_at=utcnow(), revision=before.revision + 1)
        connection.execute(
            update(experiments)
            .where(experiments.c.scope_id == scope, experiments.c.key == key)
            .values(**values)
        )
        after = _row(connection, scope, key)
        assert after is not None
        record_audit(
            connection,
            scope_id=scope,
            action=action,
            target=key,
            before=before.to_json(),
            after=after.to_json(),
            actor=actor,
        )
    return after


def update_experiment(
    key: str,
    changes: ExperimentChanges | dict[str, Any],
    *,
    scope_id: str | None = None,
    actor: str | None = None,
) -> Experiment:
    """Change a definition. New weights never move assigned subjects; a higher
    ``bucket_version`` re-buckets everyone."""
    if not isinstance(changes, ExperimentChanges):
        changes = ExperimentChanges.model_validate(changes)
    sent = changes.model_fields_set

    def values_for(before: Experiment) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in ("name", "description", "coverage", "seed"):
            if name in sent and getattr(changes, name) is not None:
                values[name] = getattr(changes, name)
        if changes.variants is not None:
            values["variants"] = [v.model_dump() for v in changes.variants]
        if "bucket_version" in sent and changes.bucket_version is not None:
            if changes.bucket_version <= before.bucket_version:
                raise ValidationError(
                    "bucket_version",
                    f"can only go up (now {before.bucket_version}); a higher version re-buckets",
                )
            values["bucket_version"] = changes.bucket_version
        if "conditions" in sent:
            values["conditions"] = _check_conditions(changes.conditions)
        if "namespace" in sent:
            values["namespace"] = changes.namespace.model_dump() if changes.namespace else None
        if "goal" in sent or "metrics" in sent:
            metrics = _metrics(changes, before.metrics)
            values["metrics"] = [m.model_dump(mode="json") for m in metrics]
        start_at = changes.start_at if "start_at" in sent else before.start_at
        stop_at = changes.stop_at if "stop_at" in sent else before.stop_at
        _check_schedule(start_at, stop_at)
        values.update(start_at=start_at, stop_at=stop_at)
        if before.shipped_variant and "variants" in values:
            keys = {v["key"] for v in values["variants"]}
            if before.shipped_variant not in keys:
                raise ValidationError("variants", "the shipped variant must stay")
        variants = changes.variants if changes.variants is not None else before.variants
        variant_keys = tuple(v.key for v in variants)
        if "value_type" in sent and changes.value_type is not None:
            values["value_type"] = changes.value_type
        _check_values(values.get("value_type", before.value_type), variants)
        if "hash_version" in sent and changes.hash_version is not None:
            values["hash_version"] = changes.hash_version
        rules = changes.rules if changes.rules is not None else before.rules
        values["rules"] = _check_rules(rules, variant_keys)
        overrides = changes.overrides if changes.overrides is not None else before.overrides
        values["overrides"] = _check_overrides(overrides, variant_keys)
        return values

    return _apply(key, scope_id, actor, "experiment.update", values_for)


def start_experiment(
    key: str, *, scope_id: str | None = None, actor: str | None = None
) -> Experiment:
    """Serve variants from now on (from ``draft``, ``paused`` or ``stopped``)."""

    def values_for(before: Experiment) -> dict[str, Any]:
        if before.status == "running":
            raise APIError(409, "conflict", f"{key!r} is already running.")
        values: dict[str, Any] = {"status": "running", "shipped_variant": None}
        if before.started_at is None:
            values["started_at"] = utcnow()
        return values

    return _apply(key, scope_id, actor, "experiment.start", values_for)


def pause_experiment(
    key: str, *, scope_id: str | None = None, actor: str | None = None
) -> Experiment:
    """Everyone gets the control variant for now; assignments are kept for a restart."""

    def values_for(before: Experiment) -> dict[str, Any]:
        if before.status != "running":
            raise APIError(409, "conflict", f"{key!r} is not running (status {before.status}).")
        return {"status": "paused"}

    return _apply(key, scope_id, actor, "experiment.pause", values_for)


def stop_experiment(
    key: str,
    *,
    shipped_variant: str | None = None,
    scope_id: str | None = None,
    actor: str | None = None,
) -> Experiment:
    """End the experiment; with ``shipped_variant`` everyone gets that variant from now on."""

    def values_for(before: Experiment) -> dict[str, Any]:
        if shipped_variant is not None and shipped_variant not in before.variant_keys:
            raise ValidationError(
                "shipped_variant", f"must be one of {', '.join(before.variant_keys)}"
            )
        if before.status == "stopped" and shipped_variant == before.shipped_variant:
            raise APIError(409, "conflict", f"{key!r} is already stopped.")
        values: dict[str, Any] = {"status": "stopped", "shipped_variant": shipped_variant}
        if before.status != "stopped":
            values["stopped_at"] = utcnow()
        return values

    action = "experiment.ship" if shipped_variant is not None else "experiment.stop"
    return _apply(key, scope_id, actor, action, values_for)


def set_killed(
    key: str, killed: bool, *, scope_id: str | None = None, actor: str | None = None
) -> Experiment:
    """The kill switch: while on, everyone gets the control variant and nothing is logged."""
    action = "experiment.kill" if killed else "experiment.unkill"
    return _apply(key, scope_id, actor, action, lambda before: {"killed": killed})


def delete_experiment(key: str, *, scope_id: str | None = None, actor: str | None = None) -> None:
    """Delete a flag or experiment with its assignments and exposures (not while running)."""
    scope = resolve_scope(scope_id)
    with _change(scope) as connection:
        before = _row(connection, scope, key)
        if before is None:
            raise _not_found(key)
        if before.status == "running":
            raise APIError(409, "conflict", f"Stop {key!r} before deleting it.")
        for table in (assignments, exposures):
            connection.execute(
                delete(table).where(table.c.scope_id == scope, table.c.experiment_key == key)
            )
        connection.execute(
            delete(experiments).where(experiments.c.scope_id == scope, experiments.c.key == key)
        )
        record_audit(
            connection,
            scope_id=scope,
            action="experiment.delete",
            target=key,
            before=before.to_json(),
            actor=actor,
        )


def get_experiment(key: str, *, scope_id: str | None = None) -> Experiment | None:
    """One definition as stored now (bypasses the cache)."""
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        return _row(connection, scope, key)


def list_experiments(*, scope_id: str | None = None) -> list[Experiment]:
    """Every flag and experiment of the scope, by key."""
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        found = load_experiments(connection, scope)
    return [found[key] for key in sorted(found)]

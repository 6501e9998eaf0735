"""What a flag or experiment is: its variants, goal metrics, and the runtime definition.

The pydantic models validate what users send (REST, Python, CLI); :class:`Experiment` is the
immutable definition the resolver reads on every evaluation, with its bucket ranges precomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from ..db.types import utcnow
from ..queries.filters import PropertyFilter
from ..queries.sql import check_property_key
from .compiled import CompiledCondition, compile_condition
from .hashing import bucket_ranges, seed_state
from .sample_size import DEFAULT_MDE

if TYPE_CHECKING:
    from .decide import Resolution

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
Kind = Literal["experiment", "flag"]
Status = Literal["draft", "running", "paused", "stopped"]
STATUSES: tuple[str, ...] = ("draft", "running", "paused", "stopped")
BOOLEAN_VARIANTS = ("off", "on")
ValueType = Literal["boolean", "string", "number", "json"]
MAX_RULES = 50
MAX_OVERRIDE_SUBJECTS = 1000


class VariantSpec(BaseModel):
    """One variant: its key, its share of traffic, and an optional display name."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=100, pattern=KEY_PATTERN)
    weight: float = Field(1.0, ge=0, allow_inf_nan=False)
    name: str = Field("", max_length=200)
    #: What ``get_value`` returns for this variant (None: the variant's key; for an off/on
    #: boolean flag, False/True).
    value: JsonValue = None


class ForceRule(BaseModel):
    """Serve ``variant`` to every subject the condition matches (no subject needed)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["force"]
    id: str = Field(default="", max_length=100)
    condition: dict[str, Any] | None = None
    variant: str = Field(min_length=1, max_length=100)


class RolloutRule(BaseModel):
    """Serve ``variant`` to ``coverage`` of the matching subjects, hashed on ``hash_attribute``.

    The hash of a subject does not depend on ``coverage``, so raising it (10% -> 25%) keeps
    everyone who had the variant (GrowthBook's ``isIncludedInRollout``).
    """

    model_config = ConfigDict(extra="forbid")
    type: Literal["rollout"]
    id: str = Field(default="", max_length=100)
    condition: dict[str, Any] | None = None
    variant: str = Field(min_length=1, max_length=100)
    coverage: float = Field(ge=0, le=1, allow_inf_nan=False)
    hash_attribute: str = Field("id", min_length=1, max_length=200)
    seed: str | None = Field(None, min_length=1, max_length=200)


class ExperimentRule(BaseModel):
    """The feature's experiment (its variants, weights, coverage, targeting, namespace), with
    how its results are analysed and which stored assignments it still honours."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["experiment"]
    id: str = Field(default="", max_length=100)
    #: Test "treatment beats control" one-sided instead of "differs from control".
    one_sided: bool = False
    #: The minimum detectable effect (relative) the sample-size estimate plans for.
    mde: float = Field(default=DEFAULT_MDE, gt=0, le=10, allow_inf_nan=False)
    #: Stored assignments of older bucket versions no longer count (GrowthBook's
    #: ``minBucketVersion``): a subject holding one is left out of the experiment.
    min_bucket_version: int = Field(default=0, ge=0)


RuleSpec = Annotated[ForceRule | RolloutRule | ExperimentRule, Field(discriminator="type")]
#: The rules a definition has before any were set: its experiment (every flag before issue 15).
EXPERIMENT_ONLY: tuple[RuleSpec, ...] = (ExperimentRule(type="experiment"),)


class OverrideSpec(BaseModel):
    """Subjects (a list of ids, or a saved segment) that always get ``variant``: QA, betas."""

    model_config = ConfigDict(extra="forbid")
    variant: str = Field(min_length=1, max_length=100)
    subject_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=MAX_OVERRIDE_SUBJECTS
    )
    segment: str | None = Field(None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_target(self) -> OverrideSpec:
        if (self.subject_ids is None) == (self.segment is None):
            raise ValueError("give either 'subject_ids' or 'segment'")
        return self


class MetricSpec(BaseModel):
    """A goal or guardrail metric, computed per exposed subject from events after exposure.

    ``conversion``: 1 if the subject did ``event`` (matching ``filters``) at or after their first
    exposure (within ``window_seconds`` when given), else 0. ``mean``: the sum of the numeric
    ``property`` over those events (0 if none).
    """

    model_config = ConfigDict(extra="forbid")
    key: str = Field("", max_length=100)
    kind: Literal["conversion", "mean"] = "conversion"
    event: str = Field(min_length=1, max_length=200)
    filters: list[PropertyFilter] = Field(default_factory=list)
    window_seconds: int | None = Field(None, gt=0)
    property: str | None = Field(None, min_length=1, max_length=200)
    guardrail: bool = False

    @model_validator(mode="after")
    def _complete(self) -> MetricSpec:
        if self.kind == "mean":
            if self.property is None:
                raise ValueError("a 'mean' metric needs 'property' (a numeric event property)")
            check_property_key(self.property, "property")
        elif self.property is not None:
            raise ValueError("'property' only applies to 'mean' metrics")
        if not self.key:
            self.key = self.event if self.kind == "conversion" else f"{self.property}:{self.event}"
        return self


class NamespaceSpec(BaseModel):
    """Mutual exclusion: experiments in one namespace with disjoint ranges never share a subject."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    start: float = Field(ge=0, le=1)
    end: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> NamespaceSpec:
        if self.end <= self.start:
            raise ValueError("'end' must be greater than 'start'")
        return self


@dataclass(frozen=True)
class Experiment:
    """A flag or experiment as stored, ready for evaluation."""

    scope_id: str
    key: str
    name: str
    description: str
    kind: str
    variants: tuple[VariantSpec, ...]
    coverage: float
    seed: str
    bucket_version: int
    status: str
    shipped_variant: str | None
    killed: bool
    conditions: dict[str, Any] | None
    namespace: NamespaceSpec | None
    metrics: tuple[MetricSpec, ...]
    start_at: datetime | None
    stop_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    created_at: datetime
    updated_at: datetime
    revision: int
    value_type: str = "string"
    hash_version: int = 2
    rules: tuple[RuleSpec, ...] = EXPERIMENT_ONLY
    overrides: tuple[OverrideSpec, ...] = ()
    ranges: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)
    #: The FNV state after ``seed`` (hash version 2 then hashes only the subject id).
    seed_state: int = field(init=False, repr=False, compare=False)
    variant_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    override_subjects: Mapping[str, str] = field(init=False, repr=False, compare=False)
    #: What ``get_value`` returns per variant key (precomputed: read on every evaluation).
    values: Mapping[str, Any] = field(init=False, repr=False, compare=False)
    #: ``conditions`` and each rule's condition compiled (None: interpret it, or no condition).
    condition_check: CompiledCondition | None = field(init=False, repr=False, compare=False)
    rule_checks: tuple[CompiledCondition | None, ...] = field(init=False, repr=False, compare=False)
    #: Whether the experiment is its only rule (every flag before issue 15).
    experiment_only: bool = field(init=False, repr=False, compare=False)
    #: Whether evaluating it may ask for the subject's segments: an override by segment, or a
    #: condition left to the interpreter (which knows ``$inSegment``); compiled ones never do.
    reads_segments: bool = field(init=False, repr=False, compare=False)
    #: The outcomes already handed out, by (variant, reason, in experiment, record): a
    #: :class:`~.decide.Resolution` is immutable and depends on nothing else, so each is built
    #: once per definition (at most variants x reasons x 2). A changed definition is a new
    #: ``Experiment`` (the flag cache reloads it) with an empty memo.
    resolutions: dict[tuple[str, str, bool, bool], Resolution] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed_state", seed_state(self.seed))
        ranges = bucket_ranges(len(self.variants), self.coverage, self.weights)
        object.__setattr__(self, "ranges", tuple(ranges))
        object.__setattr__(self, "variant_keys", tuple(v.key for v in self.variants))
        object.__setattr__(self, "condition_check", compile_condition(self.conditions))
        rule_checks = tuple(
            None if isinstance(rule, ExperimentRule) else compile_condition(rule.condition)
            for rule in self.rules
        )
        object.__setattr__(self, "rule_checks", rule_checks)
        only = len(self.rules) == 1 and isinstance(self.rules[0], ExperimentRule)
        object.__setattr__(self, "experiment_only", only)
        interpreted = (bool(self.conditions) and self.condition_check is None) or any(
            check is None and not isinstance(rule, ExperimentRule) and bool(rule.condition)
            for rule, check in zip(self.rules, rule_checks, strict=True)
        )
        segments = any(override.segment is not None for override in self.overrides)
        object.__setattr__(self, "reads_segments", interpreted or segments)
        object.__setattr__(self, "resolutions", {})
        subjects: dict[str, str] = {}
        for override in self.overrides:
            for subject in override.subject_ids or ():
                subjects.setdefault(subject, override.variant)
        object.__setattr__(self, "override_subjects", MappingProxyType(subjects))
        values: dict[str, Any] = {}
        for spec in self.variants:
            values.setdefault(spec.key, self._value(spec))  # the first variant of a key wins
        object.__setattr__(self, "values", MappingProxyType(values))

    def value_of(self, variant: str | None) -> Any:
        """What ``get_value`` returns for ``variant`` (None for no variant)."""
        return self.values.get(variant) if variant is not None else None

    def _value(self, spec: VariantSpec) -> Any:
        if spec.value is not None:
            return spec.value
        if self.value_type == "boolean" and self.variant_keys == BOOLEAN_VARIANTS:
            return spec.key == "on"
        return spec.key

    @property
    def has_experiment(self) -> bool:
        """Whether the experiment is one of the rules (else only rules and overrides serve)."""
        return any(rule.type == "experiment" for rule in self.rules)

    @property
    def experiment_rule(self) -> ExperimentRule:
        """The experiment rule (its analysis settings), or the defaults when it has none."""
        for rule in self.rules:
            if isinstance(rule, ExperimentRule):
                return rule
        return EXPERIMENT_ONLY[0]  # type: ignore[return-value]

    @property
    def weights(self) -> list[float]:
        """The configured weights, normalised to sum to 1."""
        total = sum(v.weight for v in self.variants)
        if total <= 0:
            return [1 / len(self.variants)] * len(self.variants)
        return [v.weight / total for v in self.variants]

    @property
    def control(self) -> str:
        """The first variant: what everyone gets when the experiment does not apply."""
        return self.variants[0].key

    @property
    def flag_type(self) -> str:
        """``boolean`` for an off/on flag, else ``multivariate`` (experiments included)."""
        return "boolean" if self.variant_keys == BOOLEAN_VARIANTS else "multivariate"

    @property
    def goal(self) -> MetricSpec | None:
        """The primary metric: the first one that is not a guardrail."""
        return next((m for m in self.metrics if not m.guardrail), None)

    def effective_status(self, now: datetime | None) -> str:
        """``status`` with the schedule applied: a running experiment outside its window is
        ``scheduled`` (before ``start_at``) or ``stopped`` (from ``stop_at``).

        ``now`` None: the current time, read only when there is a schedule to check."""
        if self.status == "running" and (self.start_at is not None or self.stop_at is not None):
            if now is None:
                now = utcnow()
            if self.start_at is not None and now < self.start_at:
                return "scheduled"
            if self.stop_at is not None and now >= self.stop_at:
                return "stopped"
        return self.status

    def is_live(self, now: datetime) -> bool:
        """Whether visitors are being served it: running now, or stopped with a shipped variant.

        Only live flags are listed to anonymous callers (``GET /api/flags``), so drafts, paused,
        scheduled and plainly stopped flags do not reveal their keys.
        """
        status = self.effective_status(now)
        return status == "running" or (status == "stopped" and self.shipped_variant is not None)

    def to_json(self) -> dict[str, Any]:
        """The definition as the REST API and the audit log show it."""
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "type": self.flag_type,
            "variants": [v.model_dump() for v in self.variants],
            "coverage": self.coverage,
            "seed": self.seed,
            "bucket_version": self.bucket_version,
            "status": self.status,
            "shipped_variant": self.shipped_variant,
            "killed": self.killed,
            "conditions": self.conditions,
            "namespace": self.namespace.model_dump() if self.namespace else None,
            "metrics": [m.model_dump(mode="json") for m in self.metrics],
            "start_at": _iso(self.start_at),
            "stop_at": _iso(self.stop_at),
            "started_at": _iso(self.started_at),
            "stopped_at": _iso(self.stopped_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "revision": self.revision,
            "value_type": self.value_type,
            "hash_version": self.hash_version,
            "rules": [rule.model_dump() for rule in self.rules],
            "overrides": [o.model_dump(exclude_none=True) for o in self.overrides],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

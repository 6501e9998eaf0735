"""Feature and experiment evaluation in GrowthBook's model (its SDK specification, 0.8.0).

A feature is a default value plus ordered rules; a rule forces a value (optionally to a hashed
share of subjects: a rollout) or runs an experiment. Definitions are GrowthBook's JSON shapes
(``defaultValue``, ``rules``, ``variations``, ``hashVersion``...), so the same definition can be
served to GrowthBook's own SDKs and decides the same way; GrowthBook's conformance vectors are the
test (tests/test_growthbook_conformance.py). Pure: no database, no request. The caller gives the
attributes, segment lookups, saved groups and sticky-bucket documents, and stores what changed.

Left out on purpose (docs/flags-experiments.md): contextual bandits, URL redirects, visual
editor changes, encrypted payloads, tracking callbacks and remote evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .conditions import SegmentLookup, eval_condition
from .hashing import bucket_ranges, choose_variant, gb_hash, in_namespace, in_range
from .query_force import query_string_override

JsonObject = Mapping[str, Any]
#: Sticky-bucket documents by ``"<attribute>||<value>"``: ``{"attributeName",
#: "attributeValue", "assignments": {"<experiment key>__<bucket version>": "<variation key>"}}``.
StickyDocs = dict[str, dict[str, Any]]


def js_string(value: Any) -> str:
    """An attribute value as JavaScript's string concatenation writes it (hash input)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
            return str(int(value))
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    return str(value)


def truthy(value: Any) -> bool:
    """JavaScript truthiness (a feature is ``on`` when its value is truthy): {} and [] are."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


@dataclass
class EvalContext:
    """What evaluation reads besides the definitions (GrowthBook's SDK context)."""

    attributes: JsonObject = field(default_factory=dict)
    features: Mapping[str, JsonObject] = field(default_factory=dict)
    forced_variations: Mapping[str, int] = field(default_factory=dict)
    #: The page URL for GrowthBook's query-string override ("" = none; off on the server).
    url: str = ""
    enabled: bool = True
    qa_mode: bool = False
    saved_groups: Mapping[str, Any] = field(default_factory=dict)
    in_segment: SegmentLookup | None = None
    #: None: sticky bucketing off. A dict: documents read and updated in place.
    sticky_docs: StickyDocs | None = None


@dataclass(frozen=True)
class ExperimentResult:
    """GrowthBook's experiment result: which variation, and whether the subject is in it."""

    value: Any
    variation_id: int
    in_experiment: bool
    hash_used: bool
    hash_attribute: str
    hash_value: Any
    key: str
    feature_id: str | None = None
    bucket: float | None = None
    name: str | None = None
    passthrough: bool = False
    sticky_bucket_used: bool = False

    def to_json(self) -> dict[str, Any]:
        """The result with GrowthBook's field names."""
        data: dict[str, Any] = {
            "featureId": self.feature_id,
            "value": self.value,
            "variationId": self.variation_id,
            "inExperiment": self.in_experiment,
            "hashUsed": self.hash_used,
            "hashAttribute": self.hash_attribute,
            "hashValue": self.hash_value,
            "key": self.key,
            "stickyBucketUsed": self.sticky_bucket_used,
        }
        if self.bucket is not None:
            data["bucket"] = self.bucket
        if self.name is not None:
            data["name"] = self.name
        if self.passthrough:
            data["passthrough"] = True
        return data


@dataclass(frozen=True)
class FeatureResult:
    """A feature's value and where it came from (``source``, as GrowthBook names them)."""

    value: Any
    source: str
    rule_id: str = ""
    experiment: JsonObject | None = None
    experiment_result: ExperimentResult | None = None

    @property
    def on(self) -> bool:
        return truthy(self.value)

    @property
    def off(self) -> bool:
        return not self.on


class _Cycle(Exception):
    """A prerequisite refers back to a feature being evaluated."""


class Evaluator:
    """Evaluates features and experiments for one context (cheap: create one per subject)."""

    def __init__(self, context: EvalContext) -> None:
        self.context = context
        self._stack: list[str] = []

    # -- attributes --------------------------------------------------------------------------

    def _sticky_enabled(self, definition: JsonObject) -> bool:
        return self.context.sticky_docs is not None and not definition.get("disableStickyBucketing")

    def hash_attribute(self, attribute: str | None, fallback: str | None = None) -> tuple[str, Any]:
        """The attribute that identifies the subject and its value ("" when it has none).

        An empty value leaves the subject out, as in GrowthBook: ``{"id": ""}`` is no subject.
        """
        name = attribute or "id"
        value = self.context.attributes.get(name)
        if not _present(value) and fallback:
            fallback_value = self.context.attributes.get(fallback)
            if _present(fallback_value):
                return fallback, fallback_value
        return name, value if _present(value) else ""

    def _condition(self, condition: Any) -> bool:
        if not condition:
            return True
        return eval_condition(
            self.context.attributes,
            condition,
            in_segment=self.context.in_segment,
            saved_groups=self.context.saved_groups,
        )

    def _filtered_out(self, filters: Sequence[JsonObject]) -> bool:
        for item in filters:
            _, value = self.hash_attribute(item.get("attribute"))
            if not _present(value):
                return True
            n = gb_hash(item.get("seed", ""), js_string(value), int(item.get("hashVersion", 2)))
            if n is None:
                return True
            if not any(in_range(n, bounds) for bounds in item.get("ranges", [])):
                return True
        return False

    def _in_rollout(self, feature_key: str, rule: JsonObject) -> bool:
        bounds = rule.get("range")
        coverage = rule.get("coverage")
        if bounds is None and coverage is None:
            return True
        if bounds is None and coverage == 0:
            return False
        fallback = rule.get("fallbackAttribute") if self._sticky_enabled(rule) else None
        _, value = self.hash_attribute(rule.get("hashAttribute"), fallback)
        if not _present(value):
            return False
        seed = rule.get("seed") or feature_key
        n = gb_hash(seed, js_string(value), int(rule.get("hashVersion", 1)))
        if n is None:
            return False
        if bounds is not None:
            return in_range(n, bounds)
        return coverage is None or n <= float(coverage)

    def _parents_pass(self, parents: Sequence[JsonObject]) -> bool | None:
        """True when every prerequisite holds; False if one fails; None if a gate fails."""
        for parent in parents:
            result = self.eval_feature(str(parent.get("id", "")))
            if result.source == "cyclicPrerequisite":
                raise _Cycle
            if not eval_condition({"value": result.value}, parent.get("condition") or {}):
                return None if parent.get("gate") else False
        return True

    # -- features ----------------------------------------------------------------------------

    def eval_feature(self, key: str) -> FeatureResult:
        """GrowthBook's ``evalFeature``: the first rule that applies, else the default value."""
        feature = self.context.features.get(key)
        if feature is None:
            return FeatureResult(None, "unknownFeature")
        if key in self._stack:
            return FeatureResult(None, "cyclicPrerequisite")
        self._stack.append(key)
        try:
            return self._eval_rules(key, feature)
        except _Cycle:
            return FeatureResult(None, "cyclicPrerequisite")
        finally:
            self._stack.pop()

    def _eval_rules(self, key: str, feature: JsonObject) -> FeatureResult:
        for rule in feature.get("rules") or []:
            rule_id = str(rule.get("id", ""))
            parents = rule.get("parentConditions")
            if parents:
                passed = self._parents_pass(parents)
                if passed is None:
                    return FeatureResult(None, "prerequisite", rule_id)
                if not passed:
                    continue
            if rule.get("filters") and self._filtered_out(rule["filters"]):
                continue
            if "force" in rule:
                if not self._condition(rule.get("condition")):
                    continue
                if not self._in_rollout(key, rule):
                    continue
                return FeatureResult(rule["force"], "force", rule_id)
            variations = rule.get("variations")
            if not variations:
                continue
            experiment = _experiment_from_rule(key, rule)
            result = self._run(experiment, key)
            if result.in_experiment and not result.passthrough:
                return FeatureResult(result.value, "experiment", rule_id, experiment, result)
        return FeatureResult(feature.get("defaultValue"), "defaultValue")

    # -- experiments -------------------------------------------------------------------------

    def run(self, experiment: JsonObject) -> ExperimentResult:
        """GrowthBook's ``run``: the variation a subject gets in an inline experiment."""
        return self._run(experiment, None)

    def _run(self, experiment: JsonObject, feature_id: str | None) -> ExperimentResult:
        key = str(experiment["key"])
        variations = list(experiment.get("variations") or [])
        count = len(variations)

        def leave_out(sticky_used: bool = False) -> ExperimentResult:
            return self._result(experiment, -1, False, feature_id, None, sticky_used)

        if count < 2 or not self.context.enabled:
            return leave_out()
        forced_index = query_string_override(key, self.context.url, count)
        if forced_index is not None:
            return self._result(experiment, forced_index, False, feature_id)
        if key in self.context.forced_variations:
            return self._result(
                experiment, int(self.context.forced_variations[key]), False, feature_id
            )
        if experiment.get("status") == "draft" or experiment.get("active") is False:
            return leave_out()
        sticky = self._sticky_enabled(experiment)
        fallback = experiment.get("fallbackAttribute") if sticky else None
        _, hash_value = self.hash_attribute(experiment.get("hashAttribute"), fallback)
        if not _present(hash_value):
            return leave_out()
        assigned = -1
        found_sticky = False
        version_blocked = False
        if sticky:
            assigned, version_blocked = self._sticky_variation(experiment)
            found_sticky = assigned >= 0
        if not found_sticky:
            if experiment.get("filters"):
                if self._filtered_out(experiment["filters"]):
                    return leave_out()
            elif experiment.get("namespace") and not _in_namespace(
                js_string(hash_value), experiment["namespace"]
            ):
                return leave_out()
            if not self._condition(experiment.get("condition")):
                return leave_out()
            parents = experiment.get("parentConditions")
            if parents:
                try:
                    if not self._parents_pass(parents):
                        return leave_out()
                except _Cycle:
                    return leave_out()
        seed = experiment.get("seed") or key
        n = gb_hash(seed, js_string(hash_value), int(experiment.get("hashVersion", 1)))
        if n is None:
            return leave_out()
        if not found_sticky:
            ranges = experiment.get("ranges") or bucket_ranges(
                count, _coverage(experiment), experiment.get("weights")
            )
            assigned = choose_variant(n, ranges)
        if version_blocked:
            return leave_out(sticky_used=True)
        if assigned < 0:
            return leave_out()
        if "force" in experiment:
            force = experiment["force"]
            return self._result(experiment, -1 if force is None else force, False, feature_id)
        if self.context.qa_mode or experiment.get("status") == "stopped":
            return leave_out()
        result = self._result(experiment, assigned, True, feature_id, n, found_sticky)
        if sticky:
            self._save_sticky(experiment, result)
        return result

    def _result(
        self,
        experiment: JsonObject,
        index: int,
        hash_used: bool,
        feature_id: str | None,
        bucket: float | None = None,
        sticky_used: bool = False,
    ) -> ExperimentResult:
        variations = list(experiment.get("variations") or [])
        in_experiment = 0 <= index < len(variations)
        if not in_experiment:
            index = 0
        fallback = experiment.get("fallbackAttribute") if self._sticky_enabled(experiment) else None
        attribute, value = self.hash_attribute(experiment.get("hashAttribute"), fallback)
        metas = experiment.get("meta") or []
        meta: JsonObject = metas[index] if index < len(metas) else {}
        return ExperimentResult(
            value=variations[index] if variations else None,
            variation_id=index,
            in_experiment=in_experiment,
            hash_used=hash_used,
            hash_attribute=attribute,
            hash_value=value,
            key=str(meta.get("key", index)),
            feature_id=feature_id,
            bucket=bucket,
            name=meta.get("name"),
            passthrough=bool(meta.get("passthrough")),
            sticky_bucket_used=sticky_used,
        )

    # -- sticky bucketing --------------------------------------------------------------------

    def _sticky_assignments(self, experiment: JsonObject) -> dict[str, str]:
        docs = self.context.sticky_docs or {}
        merged: dict[str, str] = {}
        names = [experiment.get("fallbackAttribute"), experiment.get("hashAttribute") or "id"]
        for name in names:
            if not name:
                continue
            value = self.context.attributes.get(name)
            if not _present(value):
                continue
            doc = docs.get(f"{name}||{js_string(value)}")
            if doc:
                merged.update(doc.get("assignments") or {})
        return merged

    def _sticky_variation(self, experiment: JsonObject) -> tuple[int, bool]:
        """The stored variation index (-1: none) and whether the stored version is blocked."""
        key = str(experiment["key"])
        assignments = self._sticky_assignments(experiment)
        for version in range(int(experiment.get("minBucketVersion") or 0)):
            if f"{key}__{version}" in assignments:
                return -1, True
        stored = assignments.get(f"{key}__{int(experiment.get('bucketVersion') or 0)}")
        if stored is None:
            return -1, False
        metas = experiment.get("meta") or []
        for index, meta in enumerate(metas):
            if meta.get("key") == stored:
                return index, False
        return -1, False

    def _save_sticky(self, experiment: JsonObject, result: ExperimentResult) -> None:
        docs = self.context.sticky_docs
        assert docs is not None
        name, value = result.hash_attribute, js_string(result.hash_value)
        doc_key = f"{name}||{value}"
        assignment = f"{experiment['key']}__{int(experiment.get('bucketVersion') or 0)}"
        current = docs.get(doc_key)
        assignments = dict((current or {}).get("assignments") or {})
        if assignments.get(assignment) == result.key:
            return
        assignments[assignment] = result.key
        docs[doc_key] = {"attributeName": name, "attributeValue": value, "assignments": assignments}


def _present(value: Any) -> bool:
    """Whether an attribute identifies a subject: GrowthBook's test is JS truthiness, so an
    empty string, 0, false and null identify nobody."""
    return truthy(value)


def _coverage(experiment: JsonObject) -> float:
    coverage = experiment.get("coverage")
    return 1.0 if coverage is None else float(coverage)


def _in_namespace(value: str, namespace: Sequence[Any]) -> bool:
    name, start, end = namespace[0], float(namespace[1]), float(namespace[2])
    return in_namespace(value, str(name), start, end)


_RULE_EXPERIMENT_FIELDS = (
    "coverage",
    "weights",
    "hashAttribute",
    "fallbackAttribute",
    "disableStickyBucketing",
    "bucketVersion",
    "minBucketVersion",
    "namespace",
    "meta",
    "ranges",
    "name",
    "phase",
    "seed",
    "hashVersion",
    "filters",
    "condition",
)


def _experiment_from_rule(feature_key: str, rule: JsonObject) -> dict[str, Any]:
    """The inline experiment an experiment rule runs (its key defaults to the feature's)."""
    experiment: dict[str, Any] = {
        "key": rule.get("key") or feature_key,
        "variations": rule["variations"],
    }
    for name in _RULE_EXPERIMENT_FIELDS:
        if name in rule:
            experiment[name] = rule[name]
    return experiment

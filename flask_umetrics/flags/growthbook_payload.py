"""Our features as GrowthBook SDK features: the JSON a GrowthBook SDK evaluates the same way.

``growthbook_features`` turns a scope's definitions into GrowthBook's ``features`` payload
(``{"<key>": {"defaultValue": ..., "rules": [...]}}``), so a GrowthBook SDK given the same
attributes (with ``id`` the subject id) serves what the server's hash decides without consent.
What needs our database cannot be expressed and is left out (listed in ``left_out``): overrides
by segment, and rules or experiments whose condition uses ``$inSegment`` / ``$notInSegment``.
Stored assignments (stickiness with consent) are the server's alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .conditions import referenced_segments
from .model import Experiment


@dataclass
class GrowthBookFeatures:
    """The payload's features, and what could not be expressed (``key: reason``)."""

    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: dict[str, list[str]] = field(default_factory=dict)


def growthbook_features(definitions: Mapping[str, Experiment], now: datetime) -> GrowthBookFeatures:
    """Every definition of a scope as a GrowthBook feature, by key."""
    payload = GrowthBookFeatures()
    for key in sorted(definitions):
        notes: list[str] = []
        payload.features[key] = growthbook_feature(definitions[key], now, notes)
        if notes:
            payload.left_out[key] = notes
    return payload


def growthbook_feature(
    experiment: Experiment, now: datetime, left_out: list[str] | None = None
) -> dict[str, Any]:
    """One definition as a GrowthBook feature (``left_out`` collects what was dropped)."""
    notes = left_out if left_out is not None else []
    control = experiment.value_of(experiment.control)
    if experiment.killed:
        return {"defaultValue": control, "rules": []}
    status = experiment.effective_status(now)
    if status != "running":
        if status == "stopped" and experiment.shipped_variant is not None:
            return {"defaultValue": experiment.value_of(experiment.shipped_variant), "rules": []}
        return {"defaultValue": control, "rules": []}
    rules: list[dict[str, Any]] = []
    for index, override in enumerate(experiment.overrides):
        if override.subject_ids is None:
            notes.append(f"overrides.{index}: segment {override.segment!r} needs the database")
            continue
        rules.append(
            {
                "id": f"override-{index}",
                "condition": {"id": {"$in": list(override.subject_ids)}},
                "force": experiment.value_of(override.variant),
            }
        )
    for index, rule in enumerate(experiment.rules):
        if rule.type == "experiment":
            if referenced_segments(experiment.conditions):
                notes.append(f"rules.{index}: the experiment's conditions use segments")
                continue
            rules.append(_experiment_rule(experiment, rule.id))
            continue
        if referenced_segments(rule.condition):
            notes.append(f"rules.{index}: its condition uses segments")
            continue
        data: dict[str, Any] = {"id": rule.id, "force": experiment.value_of(rule.variant)}
        if rule.condition:
            data["condition"] = rule.condition
        if rule.type == "rollout":
            data.update(
                coverage=rule.coverage,
                hashAttribute=rule.hash_attribute,
                seed=rule.seed or experiment.key,
                hashVersion=experiment.hash_version,
            )
        rules.append(data)
    return {"defaultValue": control, "rules": rules}


def _experiment_rule(experiment: Experiment, rule_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": rule_id,
        "key": experiment.key,
        "seed": experiment.seed,
        "hashAttribute": "id",
        "hashVersion": experiment.hash_version,
        "variations": [experiment.value_of(key) for key in experiment.variant_keys],
        "weights": experiment.weights,
        "coverage": experiment.coverage,
        "meta": [{"key": v.key, "name": v.name or v.key} for v in experiment.variants],
    }
    if experiment.conditions:
        data["condition"] = experiment.conditions
    if experiment.namespace is not None:
        namespace = experiment.namespace
        data["namespace"] = [namespace.name, namespace.start, namespace.end]
    minimum = experiment.experiment_rule.min_bucket_version
    if minimum > 0:
        # For SDKs with sticky bucketing: assignments of older versions keep a subject out.
        data["bucketVersion"] = experiment.bucket_version
        data["minBucketVersion"] = minimum
    return data

"""The assignment rules (docs/flags-experiments.md), as one pure function.

No database and no request here: callers pass what they looked up (a stored assignment, an
assignment carried in the consent cookie) and act on what comes back (store, log an exposure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .conditions import eval_condition
from .feature_eval import js_string, truthy
from .hashing import choose_variant, gb_hash, hash_v2_seeded, in_namespace
from .model import Experiment, RolloutRule


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a subject gets for one flag or experiment, and why.

    ``reason`` is one of ``unknown``, ``killed``, ``forced``, ``shipped``, ``not_running``,
    ``scheduled``, ``override``, ``force``, ``rollout``, ``default`` (no rule applied),
    ``no_subject``, ``targeting``, ``namespace``, ``blocked``, ``coverage``, ``sticky``, ``cookie``,
    ``hash``.
    ``value`` is what ``get_value`` returns (the variant's value).
    """

    key: str
    variant: str | None
    in_experiment: bool
    reason: str
    enabled: bool
    bucket_version: int = 0
    #: True when the variant should be remembered (assignment stored, exposure logged).
    record: bool = False
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "enabled": self.enabled,
            "in_experiment": self.in_experiment,
            "value": self.value,
        }


def unknown(key: str) -> Resolution:
    return Resolution(key, None, False, "unknown", False)


def _fixed(experiment: Experiment, variant: str, reason: str) -> Resolution:
    """A variant the subject gets without being in the experiment."""
    return _outcome(experiment, variant, reason, False, False)


def _served(experiment: Experiment, variant: str, reason: str, *, record: bool) -> Resolution:
    """A variant the subject gets as a member of the experiment."""
    return _outcome(experiment, variant, reason, True, record)


def _outcome(
    experiment: Experiment, variant: str, reason: str, in_experiment: bool, record: bool
) -> Resolution:
    """The outcome, built once per definition (``Experiment.resolutions``): the variants and
    reasons come from the definition, so the memo stays small."""
    memo_key = (variant, reason, in_experiment, record)
    result = experiment.resolutions.get(memo_key)
    if result is None:
        result = Resolution(
            experiment.key,
            variant,
            in_experiment,
            reason,
            variant != experiment.control,
            experiment.bucket_version,
            record,
            experiment.value_of(variant),
        )
        experiment.resolutions[memo_key] = result
    return result


def subject_key(value: Any) -> str | None:
    """A subject id as flags see it, as GrowthBook does: an empty or falsy id (``""``, ``0``,
    None) is no subject; a number is its JavaScript text (``42``, not ``42.0``)."""
    if type(value) is str:  # the common case: a non-empty string is itself
        return value or None
    if not truthy(value):
        return None
    return js_string(value)


def decide(
    experiment: Experiment,
    *,
    subject_id: str | None,
    consent: bool,
    attributes: Mapping[str, Any],
    now: datetime | None,
    stored: str | None = None,
    carried: str | None = None,
    in_segment: Callable[[str], bool] | None = None,
    forced: str | None = None,
    blocked: bool = False,
) -> Resolution:
    """Apply the rules in order: kill switch, a variant forced for QA (``forced``), status and
    schedule, overrides (subject ids, then segments), then the feature's rules in order: force,
    rollout, and the experiment (targeting, namespace, stored assignment, cookie, hash).

    ``now`` is the time the schedule is judged at (None: the current time, read only when the
    experiment has a schedule). ``stored`` / ``carried`` are variants already assigned under
    the current bucket version;
    ``blocked``: the subject holds an assignment of a bucket version below the experiment
    rule's ``min_bucket_version`` (GrowthBook's ``minBucketVersion``), which keeps them out of
    the experiment. Only the experiment rule puts a subject in the experiment (stored,
    exposure logged).
    """
    if experiment.killed:
        return _fixed(experiment, experiment.control, "killed")
    keys = experiment.variant_keys
    if forced is not None and forced in keys:
        return _fixed(experiment, forced, "forced")
    status = experiment.effective_status(now)
    if status != "running":
        if status == "stopped" and experiment.shipped_variant is not None:
            return _fixed(experiment, experiment.shipped_variant, "shipped")
        return _fixed(
            experiment, experiment.control, "scheduled" if status == "scheduled" else "not_running"
        )
    if experiment.overrides and subject_id is not None:
        override = experiment.override_subjects.get(subject_id)
        if override is not None:
            return _fixed(experiment, override, "override")
        for spec in experiment.overrides:
            if spec.segment is not None and in_segment is not None and in_segment(spec.segment):
                return _fixed(experiment, spec.variant, "override")
    if experiment.experiment_only:  # what the loop below does for it, without the loop
        return _experiment(
            experiment, subject_id, consent, attributes, stored, carried, in_segment, blocked
        )
    excluded: Resolution | None = None
    for rule, check in zip(experiment.rules, experiment.rule_checks, strict=True):
        if rule.type == "experiment":
            result = _experiment(
                experiment, subject_id, consent, attributes, stored, carried, in_segment, blocked
            )
            if result.in_experiment:
                return result
            excluded = result
        elif not (
            check(attributes)
            if check is not None
            else eval_condition(attributes, rule.condition, in_segment=in_segment)
        ):
            continue
        elif rule.type == "force":
            return _fixed(experiment, rule.variant, "force")
        elif _in_rollout(experiment, rule, attributes):
            return _fixed(experiment, rule.variant, "rollout")
    return excluded or _fixed(experiment, experiment.control, "default")


def _in_rollout(experiment: Experiment, rule: RolloutRule, attributes: Mapping[str, Any]) -> bool:
    """GrowthBook's ``isIncludedInRollout``: hash at most ``coverage`` (so a higher coverage
    keeps everyone a lower one had)."""
    value = attributes.get(rule.hash_attribute)
    if rule.coverage <= 0 or not truthy(value):
        return False
    n = gb_hash(rule.seed or experiment.key, js_string(value), experiment.hash_version)
    return n is not None and n <= rule.coverage


def _experiment(
    experiment: Experiment,
    subject_id: str | None,
    consent: bool,
    attributes: Mapping[str, Any],
    stored: str | None,
    carried: str | None,
    in_segment: Callable[[str], bool] | None,
    blocked: bool = False,
) -> Resolution:
    """The experiment rule: the assignment rules of docs/flags-experiments.md."""
    if subject_id is None:
        return _fixed(experiment, experiment.control, "no_subject")
    check = experiment.condition_check
    if experiment.conditions and not (
        check(attributes)
        if check is not None
        else eval_condition(attributes, experiment.conditions, in_segment=in_segment)
    ):
        return _fixed(experiment, experiment.control, "targeting")
    namespace = experiment.namespace
    if namespace is not None and not in_namespace(
        subject_id, namespace.name, namespace.start, namespace.end
    ):
        return _fixed(experiment, experiment.control, "namespace")
    if blocked:
        return _fixed(experiment, experiment.control, "blocked")
    keys = experiment.variant_keys
    if stored is not None and stored in keys:
        # Stored with consent (maybe on another device): served with or without consent now.
        return _served(experiment, stored, "sticky", record=False)
    if consent and carried is not None and carried in keys:
        return _served(experiment, carried, "cookie", record=True)
    if experiment.hash_version == 2:
        n: float | None = hash_v2_seeded(experiment.seed_state, subject_id)
    else:
        n = gb_hash(experiment.seed, subject_id, experiment.hash_version)
    index = choose_variant(n, experiment.ranges) if n is not None else -1
    if index < 0:
        return _fixed(experiment, experiment.control, "coverage")
    return _served(experiment, keys[index], "hash", record=consent)


def is_blocked(experiment: Experiment, assigned_versions: Iterable[tuple[str, int]]) -> bool:
    """Whether any of the subject's ``(experiment key, bucket version)`` assignments is of this
    experiment under a bucket version below its ``min_bucket_version``."""
    minimum = experiment.experiment_rule.min_bucket_version
    if minimum <= 0:
        return False
    return any(key == experiment.key and version < minimum for key, version in assigned_versions)

"""The assignment rules of DESIGN.md §5 "Assignment and consent", as one pure function.

No database and no request here: callers pass what they looked up (a stored assignment, an
assignment carried in the consent cookie) and act on what comes back (store, log an exposure).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .conditions import eval_condition
from .hashing import choose_variant, hash_v2, in_namespace
from .model import Experiment


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a subject gets for one flag or experiment, and why.

    ``reason`` is one of ``unknown``, ``killed``, ``shipped``, ``not_running``, ``scheduled``,
    ``no_subject``, ``targeting``, ``namespace``, ``coverage``, ``sticky``, ``cookie``, ``hash``.
    """

    key: str
    variant: str | None
    in_experiment: bool
    reason: str
    enabled: bool
    bucket_version: int = 0
    #: True when the variant should be remembered (assignment stored, exposure logged).
    record: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "enabled": self.enabled,
            "in_experiment": self.in_experiment,
        }


def unknown(key: str) -> Resolution:
    return Resolution(key, None, False, "unknown", False)


def _fixed(experiment: Experiment, variant: str, reason: str) -> Resolution:
    enabled = variant != experiment.control
    return Resolution(experiment.key, variant, False, reason, enabled, experiment.bucket_version)


def _served(experiment: Experiment, variant: str, reason: str, *, record: bool) -> Resolution:
    """A variant the subject gets as a member of the experiment."""
    enabled = variant != experiment.control
    return Resolution(
        experiment.key, variant, True, reason, enabled, experiment.bucket_version, record
    )


def decide(
    experiment: Experiment,
    *,
    subject_id: str | None,
    consent: bool,
    attributes: Mapping[str, Any],
    now: datetime,
    stored: str | None = None,
    carried: str | None = None,
    in_segment: Callable[[str], bool] | None = None,
) -> Resolution:
    """Apply the rules in order: kill switch, status and schedule, subject, targeting,
    namespace, the stored assignment, the cookie's assignment, and finally the hash.

    ``stored`` / ``carried`` are variants already assigned under the current bucket version.
    """
    if experiment.killed:
        return _fixed(experiment, experiment.control, "killed")
    status = experiment.effective_status(now)
    if status != "running":
        if status == "stopped" and experiment.shipped_variant is not None:
            return _fixed(experiment, experiment.shipped_variant, "shipped")
        return _fixed(
            experiment, experiment.control, "scheduled" if status == "scheduled" else "not_running"
        )
    if subject_id is None:
        return _fixed(experiment, experiment.control, "no_subject")
    if experiment.conditions and not eval_condition(
        attributes, experiment.conditions, in_segment=in_segment
    ):
        return _fixed(experiment, experiment.control, "targeting")
    namespace = experiment.namespace
    if namespace is not None and not in_namespace(
        subject_id, namespace.name, namespace.start, namespace.end
    ):
        return _fixed(experiment, experiment.control, "namespace")
    keys = experiment.variant_keys
    if consent and stored is not None and stored in keys:
        return _served(experiment, stored, "sticky", record=False)
    if consent and carried is not None and carried in keys:
        return _served(experiment, carried, "cookie", record=True)
    index = choose_variant(hash_v2(experiment.seed, subject_id), experiment.ranges)
    if index < 0:
        return _fixed(experiment, experiment.control, "coverage")
    return _served(experiment, keys[index], "hash", record=consent)

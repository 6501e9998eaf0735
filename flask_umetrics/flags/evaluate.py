"""The public evaluation functions: explicit subjects anywhere, the current subject in a request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import has_request_context

from ..db.types import utcnow
from ..state import UMetricsState, current_state, resolve_scope
from .decide import Resolution, decide, is_blocked, subject_key, unknown
from .recording import Served, in_segment, load_assignments, write_served
from .request import current_flags

_CURRENT = object()


def resolve_variant(
    experiment_key: str,
    *,
    scope_id: str | None = None,
    subject_id: Any,
    consent: bool,
    attributes: Mapping[str, Any] | None = None,
) -> Resolution:
    """The variant a known subject gets, with the stickiness and consent rules
    (docs/flags-experiments.md).

    With ``consent=True`` the stored assignment wins, else the hash decides and the result is
    stored with an exposure. With ``consent=False`` the hash decides and nothing is written.
    ``subject_id`` may be a string or a number (hashed as its decimal text, as GrowthBook);
    an empty or falsy id is no subject.
    """
    raw_subject = subject_id
    subject_id = subject_key(raw_subject)
    state = current_state()
    scope = state.settings.default_scope if scope_id is None else resolve_scope(scope_id)
    experiment = state.flag_cache.get(scope, experiment_key)
    if experiment is None:
        return unknown(experiment_key)
    attrs: Mapping[str, Any] = attributes or {}
    if subject_id is not None and "id" not in attrs:
        attrs = {**attrs, "id": raw_subject}
    stored = None
    blocked = False
    # The clock is read here only to record (consent); decide reads it for a schedule.
    now = utcnow() if consent else None
    needs_lookup = consent and subject_id is not None and experiment.status == "running"
    if needs_lookup and not experiment.killed:
        assert subject_id is not None
        with state.engine.connect() as connection:
            held = load_assignments(connection, scope, subject_id)
        stored = held.get((experiment_key, experiment.bucket_version))
        blocked = is_blocked(experiment, held)
    segment_lookup = None
    if experiment.reads_segments and subject_id is not None:
        segment_lookup = _segment_lookup(state, scope, subject_id)
    result = decide(
        experiment,
        subject_id=subject_id,
        consent=consent,
        attributes=attrs,
        now=now,
        stored=stored,
        in_segment=segment_lookup,
        blocked=blocked,
    )
    if result.record:
        assert subject_id is not None and result.variant is not None and now is not None
        served = Served(
            subject_id, experiment_key, result.bucket_version, result.variant, result.reason, now
        )
        with state.engine.begin() as connection:
            write_served(connection, scope, [served])
    return result


def _segment_lookup(state: UMetricsState, scope: str, subject_id: str) -> Callable[[str], bool]:
    """Whether the subject is in a saved segment, looked up when a rule asks."""

    def lookup(key: str) -> bool:
        with state.engine.connect() as connection:
            return in_segment(connection, scope, subject_id, key)

    return lookup


def current_anonymous_id(*, scope_id: str | None = None) -> str | None:
    """In a request: the consent cookie's anonymous id when the visitor consented, else None.

    Pass it as ``anon_id`` to :func:`identify` at login so the anonymous visitor's events and
    exposures count under the same person as the account.
    """
    flags = current_flags(scope_id)
    cookie = flags.cookie
    return cookie.anon_id if cookie is not None and cookie.consent else None


def get_variant(key: str, *, scope_id: str | None = None) -> str | None:
    """In a request: the current subject's variant of ``key`` (None for an unknown key)."""
    if not has_request_context():
        raise RuntimeError(
            "get_variant(key) needs a request; elsewhere call "
            "resolve_variant(key, subject_id=..., consent=...)"
        )
    return current_flags(scope_id).resolve(key).variant


def get_value(key: str, default: Any = None, *, scope_id: str | None = None) -> Any:
    """In a request: the value the current subject gets for feature ``key`` (its variant's
    value), or ``default`` for an unknown key."""
    if not has_request_context():
        raise RuntimeError(
            "get_value(key) needs a request; elsewhere call "
            "resolve_variant(key, subject_id=..., consent=...).value"
        )
    result = current_flags(scope_id).resolve(key)
    return default if result.reason == "unknown" else result.value


def is_enabled(
    flag_key: str,
    *,
    scope_id: str | None = None,
    subject_id: Any = _CURRENT,
    consent: bool | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the subject gets a variant other than the control (``on`` for a boolean flag).

    Without ``subject_id`` inside a request: the current subject. With it: like
    :func:`resolve_variant` (``consent`` defaults to False: nothing stored).
    """
    if subject_id is _CURRENT:
        if not has_request_context():
            raise RuntimeError("is_enabled(key) without subject_id needs a request")
        return current_flags(scope_id).resolve(flag_key).enabled
    return resolve_variant(
        flag_key,
        scope_id=scope_id,
        subject_id=subject_id,
        consent=bool(consent),
        attributes=attributes,
    ).enabled

"""Server-side tracking: ``track``, ``flush`` (identity calls live in ``identity.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import has_request_context

from ..db.types import utcnow
from ..state import current_state, resolve_scope
from .buffer import add_to_request, flush_request
from .validation import Limits, normalize_event
from .writer import write_events


def track(
    event: str,
    *,
    distinct_id: str,
    properties: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    scope_id: str | None = None,
    session_id: str | None = None,
    uuid: str | None = None,
    active: bool = True,
) -> str:
    """Record an event and return its uuid. Validated now; written in batches (see buffer.py).

    ``active=False`` marks server-generated events that count in volumes but do not make the
    person active.
    """
    state = current_state()
    raw: dict[str, Any] = {"event": event, "distinct_id": distinct_id, "active": active}
    if properties is not None:
        raw["properties"] = dict(properties)
    optional = {"timestamp": timestamp, "session_id": session_id, "uuid": uuid}
    raw.update({name: value for name, value in optional.items() if value is not None})
    row = normalize_event(
        raw, resolve_scope(scope_id), Limits.from_settings(state.settings), utcnow()
    )
    if state.settings["UMETRICS_TRACK_SYNC"]:
        write_events(state.engine, [row], state.event_store)
    elif has_request_context():
        add_to_request([row])
    else:
        state.event_buffer.add([row])
    return str(row["uuid"])


def flush() -> int:
    """Write every event tracked so far (this request's and the process buffer); how many."""
    state = current_state()
    stored = flush_request(state.event_buffer) if has_request_context() else 0
    return stored + state.event_buffer.flush()

"""The audit log: who changed what, with the value before and after."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context
from sqlalchemy import Connection, insert

from .db.tables import audit_log
from .db.types import utcnow


def current_actor(default: str = "system") -> str:
    """The principal of the current request (``key:<id>`` or ``user:<id>``), else ``default``."""
    if has_request_context():
        principal = g.get("umetrics_principal")
        if principal is not None:
            return str(principal.actor)
    return default


def record_audit(
    connection: Connection,
    *,
    scope_id: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    actor: str | None = None,
) -> None:
    """Append one audit row inside the caller's transaction (so it commits with the change)."""
    connection.execute(
        insert(audit_log).values(
            at=utcnow(),
            actor=actor or current_actor(),
            scope_id=scope_id,
            action=action,
            target=target,
            before=before,
            after=after,
        )
    )

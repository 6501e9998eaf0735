"""Saved insights: a report's kind and route parameters with a name, stored per scope, audited.

Deleting an insight removes its tiles from every dashboard (``boards.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ..audit import current_actor, record_audit
from ..db.tables import dashboard_tiles, insights
from ..db.types import utcnow
from ..errors import ValidationError
from ..state import current_state, resolve_scope
from .checks import MAX_DESCRIPTION, MAX_ID, MAX_NAME, check_insight, check_params, check_text


@dataclass(frozen=True)
class Insight:
    """A saved report query: its kind (``trends``, ``funnel``, ...) and route parameters."""

    id: int
    scope_id: str
    name: str
    description: str
    kind: str
    params: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime


def to_insight(row: Any) -> Insight:
    return Insight(
        int(row.id),
        row.scope_id,
        row.name,
        row.description,
        row.kind,
        dict(row.params or {}),
        row.created_by,
        row.created_at,
        row.updated_at,
    )


def insight_row(connection: Connection, scope_id: str, insight_id: int) -> Any:
    if not 1 <= insight_id <= MAX_ID:
        return None
    return connection.execute(
        select(insights).where(insights.c.scope_id == scope_id, insights.c.id == insight_id)
    ).first()


def _insight_audit(insight: Insight | None) -> dict[str, Any] | None:
    if insight is None:
        return None
    return {"name": insight.name, "kind": insight.kind, "params": insight.params}


def insert_insight(
    connection: Connection,
    scope_id: str,
    *,
    kind: str,
    params: dict[str, Any],
    name: str,
    description: str,
    actor: str,
) -> Insight:
    """Insert an already-checked insight (and its audit row) on ``connection``."""
    now = utcnow()
    new_id = connection.execute(
        insert(insights)
        .values(
            scope_id=scope_id,
            name=name,
            description=description,
            kind=kind,
            params=params,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        .returning(insights.c.id)
    ).scalar_one()
    insight = to_insight(insight_row(connection, scope_id, new_id))
    record_audit(
        connection,
        scope_id=scope_id,
        action="insight.create",
        target=str(new_id),
        after=_insight_audit(insight),
        actor=actor,
    )
    return insight


def create_insight(
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    name: str,
    description: str = "",
    scope_id: str | None = None,
    actor: str | None = None,
) -> Insight:
    """Save a report query of ``kind`` with its route's ``params`` (checked by that route)."""
    scope = resolve_scope(scope_id)
    values = check_insight(
        scope, kind=kind, params=params or {}, name=name, description=description
    )
    with current_state().engine.begin() as connection:
        return insert_insight(connection, scope, actor=actor or current_actor(), **values)


def get_insight(insight_id: int, *, scope_id: str | None = None) -> Insight | None:
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        row = insight_row(connection, scope, insight_id)
    return None if row is None else to_insight(row)


def list_insights(*, scope_id: str | None = None) -> list[Insight]:
    scope = resolve_scope(scope_id)
    query = (
        select(insights)
        .where(insights.c.scope_id == scope)
        .order_by(insights.c.name, insights.c.id)
    )
    with current_state().engine.connect() as connection:
        return [to_insight(row) for row in connection.execute(query)]


def update_insight(
    insight_id: int,
    *,
    scope_id: str | None = None,
    actor: str | None = None,
    **changes: Any,
) -> Insight | None:
    """Change any of ``name``, ``description``, ``kind``, ``params`` (params are checked
    against the new kind's route); None when there is no such insight in the scope."""
    scope = resolve_scope(scope_id)
    unknown = set(changes) - {"name", "description", "kind", "params"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "is not a field of an insight")
    with current_state().engine.begin() as connection:
        row = insight_row(connection, scope, insight_id)
        if row is None:
            return None
        before = to_insight(row)
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = check_text(changes["name"], "name", MAX_NAME, required=True)
        if "description" in changes:
            values["description"] = check_text(
                changes["description"], "description", MAX_DESCRIPTION, required=False
            )
        if "kind" in changes or "params" in changes:
            kind = changes.get("kind", before.kind)
            params = changes.get("params", before.params)
            values["kind"] = kind
            values["params"] = check_params(kind, params, scope)
        values["updated_at"] = utcnow()
        connection.execute(update(insights).where(insights.c.id == row.id).values(**values))
        after = to_insight(insight_row(connection, scope, insight_id))
        record_audit(
            connection,
            scope_id=scope,
            action="insight.update",
            target=str(insight_id),
            before=_insight_audit(before),
            after=_insight_audit(after),
            actor=actor,
        )
        return after


def delete_insight(
    insight_id: int, *, scope_id: str | None = None, actor: str | None = None
) -> bool:
    """Delete the insight and its tiles on every dashboard."""
    scope = resolve_scope(scope_id)
    with current_state().engine.begin() as connection:
        row = insight_row(connection, scope, insight_id)
        if row is None:
            return False
        connection.execute(delete(dashboard_tiles).where(dashboard_tiles.c.insight_id == row.id))
        connection.execute(delete(insights).where(insights.c.id == row.id))
        record_audit(
            connection,
            scope_id=scope,
            action="insight.delete",
            target=str(insight_id),
            before=_insight_audit(to_insight(row)),
            actor=actor,
        )
    return True

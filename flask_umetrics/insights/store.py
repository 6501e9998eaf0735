"""Saved insights and dashboards: checked, stored per scope, audited.

An insight's ``params`` are checked by its report route's own query model when it is saved (a
mistake is a ``ValidationError`` naming ``params.<field>``) and stored as that model dumps them,
so what runs later is exactly what was checked. A dashboard is its tiles in order, each an
insight of the same scope with a width (grid columns of 12) and a height (rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic
from sqlalchemy import Connection, delete, insert, select, update

from ..audit import current_actor, record_audit
from ..db.tables import dashboard_tiles, dashboards, insights
from ..db.types import utcnow
from ..errors import ValidationError
from ..queries.filters import PropertyFilter
from ..queries.relative_dates import check_token
from ..state import current_state, resolve_scope
from ..validation import as_utc
from .kinds import insight_kind

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_TILES = 100
GRID_COLUMNS = 12
MAX_HEIGHT = 8
DEFAULT_WIDTH = 6
DEFAULT_HEIGHT = 2
#: Ids are 64-bit: a larger one in a URL matches nothing (and never reaches the database).
MAX_ID = 2**63 - 1


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


@dataclass(frozen=True)
class Tile:
    """One insight on a dashboard, at ``position`` (0-based), ``width`` x ``height``; with the
    dashboard's results asked for, the insight's ``result`` (its route's JSON) or ``error``."""

    id: int
    insight_id: int
    position: int
    width: int
    height: int
    insight: Insight
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Dashboard:
    """A named grid of tiles; ``date_range`` (or ``date_from``/``date_to``) and ``filters``,
    when set, override every tile's."""

    id: int
    scope_id: str
    name: str
    description: str
    date_range: str | None
    date_from: datetime | None
    date_to: datetime | None
    filters: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_at: datetime
    tiles: list[Tile] = field(default_factory=list)


# --- checks -------------------------------------------------------------------------------


def check_text(value: Any, name: str, maximum: int, *, required: bool) -> str:
    """A name or description: text up to ``maximum`` characters (a name not blank)."""
    if not isinstance(value, str) or len(value) > maximum or (required and not value.strip()):
        need = "a non-empty string" if required else "a string"
        raise ValidationError(name, f"must be {need} of at most {maximum} characters")
    return value.strip() if required else value


def validated_query(kind: str, params: Any, scope_id: str) -> pydantic.BaseModel:
    """``params`` parsed by the kind's route model; a mistake names ``params.<field>``."""
    model, _ = insight_kind(kind).route()
    if not isinstance(params, Mapping):
        raise ValidationError("params", "must be a JSON object of the report's parameters")
    if "scope_id" in params:
        raise ValidationError("params.scope_id", "an insight runs in its own scope")
    try:
        return model.model_validate({**params, "scope_id": scope_id})
    except pydantic.ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValidationError(f"params.{where}" if where else "params", error["msg"]) from None


def check_params(kind: str, params: Any, scope_id: str) -> dict[str, Any]:
    """The parameters as the route's model dumps them (only the ones given)."""
    query = validated_query(kind, params, scope_id)
    dumped: dict[str, Any] = query.model_dump(mode="json", exclude_unset=True)
    dumped.pop("scope_id", None)
    return dumped


def check_filters(filters: Any, name: str = "filters") -> list[dict[str, Any]]:
    if filters is None:
        return []
    if not isinstance(filters, list):
        raise ValidationError(name, "must be a list of {key, op, value} objects")
    try:
        return [PropertyFilter.model_validate(f).model_dump(mode="json") for f in filters]
    except pydantic.ValidationError as exc:
        raise ValidationError(name, str(exc.errors()[0]["msg"])) from None


def check_range(
    date_range: str | None, date_from: datetime | None, date_to: datetime | None
) -> tuple[str | None, datetime | None, datetime | None]:
    """A dashboard's range: a relative token, two dates, or none (each tile keeps its own)."""
    if date_range is not None:
        if date_from is not None or date_to is not None:
            raise ValidationError("date_range", "give either date_range or date_from/date_to")
        return check_token(date_range), None, None
    if (date_from is None) != (date_to is None):
        raise ValidationError("date_to" if date_to is None else "date_from", "give both dates")
    if date_from is not None and date_to is not None:
        date_from, date_to = as_utc(date_from, "date_from"), as_utc(date_to, "date_to")
        if date_from >= date_to:
            raise ValidationError("date_from", "must be before date_to")
    return None, date_from, date_to


def _tile_specs(tiles: Any) -> list[tuple[int, int, int]]:
    """``[{insight_id, width?, height?}]`` as ``(insight_id, width, height)``."""
    if not isinstance(tiles, list) or len(tiles) > MAX_TILES:
        raise ValidationError("tiles", f"must be a list of at most {MAX_TILES} tiles")
    specs = []
    for index, tile in enumerate(tiles):
        if not isinstance(tile, Mapping):
            raise ValidationError(f"tiles.{index}", "must be an object {insight_id, width, height}")
        values = []
        for name, default, low, high in (
            ("insight_id", None, 1, MAX_ID),
            ("width", DEFAULT_WIDTH, 1, GRID_COLUMNS),
            ("height", DEFAULT_HEIGHT, 1, MAX_HEIGHT),
        ):
            value = tile.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValidationError(f"tiles.{index}.{name}", f"must be an integer {low}-{high}")
            values.append(value)
        specs.append((values[0], values[1], values[2]))
    return specs


# --- rows -----------------------------------------------------------------------------------


def _to_insight(row: Any) -> Insight:
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


def _insight_row(connection: Connection, scope_id: str, insight_id: int) -> Any:
    if not 1 <= insight_id <= MAX_ID:
        return None
    return connection.execute(
        select(insights).where(insights.c.scope_id == scope_id, insights.c.id == insight_id)
    ).first()


def _dashboard(connection: Connection, scope_id: str, dashboard_id: int) -> Dashboard | None:
    if not 1 <= dashboard_id <= MAX_ID:
        return None
    row = connection.execute(
        select(dashboards).where(dashboards.c.scope_id == scope_id, dashboards.c.id == dashboard_id)
    ).first()
    if row is None:
        return None
    tile_rows = connection.execute(
        select(dashboard_tiles)
        .where(dashboard_tiles.c.dashboard_id == dashboard_id)
        .order_by(dashboard_tiles.c.position, dashboard_tiles.c.id)
    ).all()
    wanted = {t.insight_id for t in tile_rows}
    by_id = {
        int(r.id): _to_insight(r)
        for r in connection.execute(select(insights).where(insights.c.id.in_(wanted)))
    }
    tiles = [
        Tile(int(t.id), int(t.insight_id), position, t.width, t.height, by_id[int(t.insight_id)])
        for position, t in enumerate(tile_rows)
    ]
    return Dashboard(
        int(row.id),
        row.scope_id,
        row.name,
        row.description,
        row.date_range,
        row.date_from,
        row.date_to,
        list(row.filters or []),
        row.created_by,
        row.created_at,
        row.updated_at,
        tiles,
    )


def _insight_audit(insight: Insight | None) -> dict[str, Any] | None:
    if insight is None:
        return None
    return {"name": insight.name, "kind": insight.kind, "params": insight.params}


def _dashboard_audit(dashboard: Dashboard | None) -> dict[str, Any] | None:
    if dashboard is None:
        return None
    return {
        "name": dashboard.name,
        "date_range": dashboard.date_range,
        "filters": dashboard.filters,
        "tiles": [[t.insight_id, t.width, t.height] for t in dashboard.tiles],
    }


# --- insights -------------------------------------------------------------------------------


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
    insight = _to_insight(_insight_row(connection, scope_id, new_id))
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
    name = check_text(name, "name", MAX_NAME, required=True)
    description = check_text(description, "description", MAX_DESCRIPTION, required=False)
    checked = check_params(kind, dict(params or {}), scope)
    with current_state().engine.begin() as connection:
        return insert_insight(
            connection,
            scope,
            kind=kind,
            params=checked,
            name=name,
            description=description,
            actor=actor or current_actor(),
        )


def get_insight(insight_id: int, *, scope_id: str | None = None) -> Insight | None:
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        row = _insight_row(connection, scope, insight_id)
    return None if row is None else _to_insight(row)


def list_insights(*, scope_id: str | None = None) -> list[Insight]:
    scope = resolve_scope(scope_id)
    query = (
        select(insights)
        .where(insights.c.scope_id == scope)
        .order_by(insights.c.name, insights.c.id)
    )
    with current_state().engine.connect() as connection:
        return [_to_insight(row) for row in connection.execute(query)]


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
        row = _insight_row(connection, scope, insight_id)
        if row is None:
            return None
        before = _to_insight(row)
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
        after = _to_insight(_insight_row(connection, scope, insight_id))
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
        row = _insight_row(connection, scope, insight_id)
        if row is None:
            return False
        connection.execute(delete(dashboard_tiles).where(dashboard_tiles.c.insight_id == row.id))
        connection.execute(delete(insights).where(insights.c.id == row.id))
        record_audit(
            connection,
            scope_id=scope,
            action="insight.delete",
            target=str(insight_id),
            before=_insight_audit(_to_insight(row)),
            actor=actor,
        )
    return True


# --- dashboards -----------------------------------------------------------------------------


def _check_dashboard(values: Mapping[str, Any]) -> dict[str, Any]:
    """The stored columns of ``values`` (a subset of the dashboard's fields), checked."""
    checked: dict[str, Any] = {}
    if "name" in values:
        checked["name"] = check_text(values["name"], "name", MAX_NAME, required=True)
    if "description" in values:
        checked["description"] = check_text(
            values["description"] or "", "description", MAX_DESCRIPTION, required=False
        )
    if {"date_range", "date_from", "date_to"} & set(values):
        date_range, date_from, date_to = check_range(
            values.get("date_range"), values.get("date_from"), values.get("date_to")
        )
        checked.update(date_range=date_range, date_from=date_from, date_to=date_to)
    if "filters" in values:
        checked["filters"] = check_filters(values["filters"])
    return checked


def _write_tiles(
    connection: Connection, scope_id: str, dashboard_id: int, tiles: Sequence[Any]
) -> None:
    specs = _tile_specs(list(tiles))
    for index, (insight_id, _, _) in enumerate(specs):
        if _insight_row(connection, scope_id, insight_id) is None:
            raise ValidationError(f"tiles.{index}.insight_id", f"no insight {insight_id} here")
    connection.execute(
        delete(dashboard_tiles).where(dashboard_tiles.c.dashboard_id == dashboard_id)
    )
    if specs:
        connection.execute(
            insert(dashboard_tiles),
            [
                {
                    "dashboard_id": dashboard_id,
                    "insight_id": insight_id,
                    "position": position,
                    "width": width,
                    "height": height,
                }
                for position, (insight_id, width, height) in enumerate(specs)
            ],
        )


def insert_dashboard(
    connection: Connection,
    scope_id: str,
    values: Mapping[str, Any],
    tiles: Sequence[Any],
    actor: str,
) -> Dashboard:
    """Insert a dashboard (``values`` checked here) with its tiles, and its audit row."""
    checked = _check_dashboard({"description": "", "filters": [], **values})
    if "name" not in checked:
        raise ValidationError("name", "is required")
    now = utcnow()
    new_id = connection.execute(
        insert(dashboards)
        .values(scope_id=scope_id, created_by=actor, created_at=now, updated_at=now, **checked)
        .returning(dashboards.c.id)
    ).scalar_one()
    _write_tiles(connection, scope_id, new_id, tiles)
    dashboard = _dashboard(connection, scope_id, new_id)
    assert dashboard is not None
    record_audit(
        connection,
        scope_id=scope_id,
        action="dashboard.create",
        target=str(new_id),
        after=_dashboard_audit(dashboard),
        actor=actor,
    )
    return dashboard


def create_dashboard(
    name: str,
    *,
    description: str = "",
    tiles: Sequence[Mapping[str, Any]] = (),
    date_range: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    filters: Sequence[Mapping[str, Any]] | None = None,
    scope_id: str | None = None,
    actor: str | None = None,
) -> Dashboard:
    """A new dashboard; ``tiles`` are ``{insight_id, width, height}`` in order."""
    scope = resolve_scope(scope_id)
    values = {
        "name": name,
        "description": description,
        "date_range": date_range,
        "date_from": date_from,
        "date_to": date_to,
        "filters": list(filters or []),
    }
    with current_state().engine.begin() as connection:
        return insert_dashboard(connection, scope, values, list(tiles), actor or current_actor())


def get_dashboard(dashboard_id: int, *, scope_id: str | None = None) -> Dashboard | None:
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        return _dashboard(connection, scope, dashboard_id)


def list_dashboards(*, scope_id: str | None = None) -> list[Dashboard]:
    scope = resolve_scope(scope_id)
    query = (
        select(dashboards.c.id)
        .where(dashboards.c.scope_id == scope)
        .order_by(dashboards.c.name, dashboards.c.id)
    )
    with current_state().engine.connect() as connection:
        ids = list(connection.execute(query).scalars())
        return [d for d in (_dashboard(connection, scope, i) for i in ids) if d is not None]


def update_dashboard(
    dashboard_id: int,
    *,
    scope_id: str | None = None,
    actor: str | None = None,
    **changes: Any,
) -> Dashboard | None:
    """Change any of ``name``, ``description``, ``date_range``/``date_from``/``date_to``
    (given together: the ones left out are cleared), ``filters``, and ``tiles`` (the whole
    list, in order: adding, removing, reordering and resizing are all this)."""
    scope = resolve_scope(scope_id)
    fields = {"name", "description", "date_range", "date_from", "date_to", "filters", "tiles"}
    unknown = set(changes) - fields
    if unknown:
        raise ValidationError(sorted(unknown)[0], "is not a field of a dashboard")
    checked = _check_dashboard({k: v for k, v in changes.items() if k != "tiles"})
    with current_state().engine.begin() as connection:
        before = _dashboard(connection, scope, dashboard_id)
        if before is None:
            return None
        connection.execute(
            update(dashboards)
            .where(dashboards.c.id == dashboard_id)
            .values(updated_at=utcnow(), **checked)
        )
        if "tiles" in changes:
            _write_tiles(connection, scope, dashboard_id, changes["tiles"])
        after = _dashboard(connection, scope, dashboard_id)
        record_audit(
            connection,
            scope_id=scope,
            action="dashboard.update",
            target=str(dashboard_id),
            before=_dashboard_audit(before),
            after=_dashboard_audit(after),
            actor=actor,
        )
        return after


def delete_dashboard(
    dashboard_id: int, *, scope_id: str | None = None, actor: str | None = None
) -> bool:
    """Delete the dashboard and its tiles (its insights stay)."""
    scope = resolve_scope(scope_id)
    with current_state().engine.begin() as connection:
        before = _dashboard(connection, scope, dashboard_id)
        if before is None:
            return False
        connection.execute(
            delete(dashboard_tiles).where(dashboard_tiles.c.dashboard_id == dashboard_id)
        )
        connection.execute(delete(dashboards).where(dashboards.c.id == dashboard_id))
        record_audit(
            connection,
            scope_id=scope,
            action="dashboard.delete",
            target=str(dashboard_id),
            before=_dashboard_audit(before),
            actor=actor,
        )
    return True

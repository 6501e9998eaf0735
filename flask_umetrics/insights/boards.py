"""Dashboards: a named, ordered grid of a scope's insights, with a range and filters that
override every tile's; stored per scope, audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, insert, select, update

from ..audit import current_actor, record_audit
from ..db.tables import dashboard_tiles, dashboards, insights
from ..db.types import utcnow
from ..errors import ValidationError
from ..state import current_state, resolve_scope
from .checks import (
    MAX_DESCRIPTION,
    MAX_ID,
    MAX_NAME,
    check_filters,
    check_range,
    check_text,
)
from .store import Insight, to_insight

MAX_TILES = 100
GRID_COLUMNS = 12
MAX_HEIGHT = 8
DEFAULT_WIDTH = 6
DEFAULT_HEIGHT = 2


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


def _tile_query() -> Select[Any]:
    """Tiles with their insight's columns (``tile_id`` is the tile's id, ``id`` the
    insight's), in a dashboard's order: one statement reads both."""
    return (
        select(
            dashboard_tiles.c.dashboard_id,
            dashboard_tiles.c.id.label("tile_id"),
            dashboard_tiles.c.insight_id,
            dashboard_tiles.c.width,
            dashboard_tiles.c.height,
            *insights.c,
        )
        .join(insights, insights.c.id == dashboard_tiles.c.insight_id)
        .order_by(dashboard_tiles.c.dashboard_id, dashboard_tiles.c.position, dashboard_tiles.c.id)
    )


def _to_dashboard(row: Any, tile_rows: Sequence[Any]) -> Dashboard:
    """A dashboard row and its tile rows (from ``_tile_query``, in order)."""
    tiles = [
        Tile(int(t.tile_id), int(t.insight_id), position, t.width, t.height, to_insight(t))
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


def _dashboard(connection: Connection, scope_id: str, dashboard_id: int) -> Dashboard | None:
    if not 1 <= dashboard_id <= MAX_ID:
        return None
    row = connection.execute(
        select(dashboards).where(dashboards.c.scope_id == scope_id, dashboards.c.id == dashboard_id)
    ).first()
    if row is None:
        return None
    tile_rows = connection.execute(
        _tile_query().where(dashboard_tiles.c.dashboard_id == dashboard_id)
    ).all()
    return _to_dashboard(row, tile_rows)


def _dashboard_audit(dashboard: Dashboard | None) -> dict[str, Any] | None:
    if dashboard is None:
        return None
    return {
        "name": dashboard.name,
        "date_range": dashboard.date_range,
        "filters": dashboard.filters,
        "tiles": [[t.insight_id, t.width, t.height] for t in dashboard.tiles],
    }


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
    # One query for every tile's insight (ids are in range: _tile_specs checked them).
    wanted = {insight_id for insight_id, _, _ in specs}
    found = set(
        connection.execute(
            select(insights.c.id).where(insights.c.scope_id == scope_id, insights.c.id.in_(wanted))
        ).scalars()
    )
    for index, (insight_id, _, _) in enumerate(specs):
        if insight_id not in found:
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
    """The scope's dashboards by name, in two statements however many there are."""
    scope = resolve_scope(scope_id)
    query = (
        select(dashboards)
        .where(dashboards.c.scope_id == scope)
        .order_by(dashboards.c.name, dashboards.c.id)
    )
    in_scope = select(dashboards.c.id).where(dashboards.c.scope_id == scope)
    with current_state().engine.connect() as connection:
        rows = connection.execute(query).all()
        if not rows:
            return []
        tile_rows: dict[int, list[Any]] = {}
        for tile in connection.execute(
            _tile_query().where(dashboard_tiles.c.dashboard_id.in_(in_scope))
        ):
            tile_rows.setdefault(int(tile.dashboard_id), []).append(tile)
    return [_to_dashboard(row, tile_rows.get(int(row.id), [])) for row in rows]


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

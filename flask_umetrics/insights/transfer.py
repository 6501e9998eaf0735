"""Insights and dashboards as one JSON document, to copy them to another scope or app.

``{"version": 1, "insights": [{"ref", "name", "description", "kind", "params"}],
"dashboards": [{"name", ..., "tiles": [{"insight": ref, "width", "height"}]}],
"annotations": [{"occurs_at", "text"}]}``: tiles name
their insight by its ``ref`` in the document (its id where it was exported), so an import
creates new rows with new ids and the tiles follow. An import is checked whole before anything
is written, and written in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..annotations import check_occurs_at, check_text, insert_annotation, list_annotations
from ..audit import current_actor
from ..errors import ValidationError
from ..state import current_state, resolve_scope
from .boards import insert_dashboard, list_dashboards
from .checks import check_insight
from .store import insert_insight, list_insights

FORMAT_VERSION = 1


def export_insights(*, scope_id: str | None = None) -> dict[str, Any]:
    """Every insight, dashboard and annotation of the scope as the JSON document above."""
    scope = resolve_scope(scope_id)
    return {
        "version": FORMAT_VERSION,
        "scope_id": scope,
        "insights": [
            {
                "ref": i.id,
                "name": i.name,
                "description": i.description,
                "kind": i.kind,
                "params": i.params,
            }
            for i in list_insights(scope_id=scope)
        ],
        "dashboards": [
            {
                "name": d.name,
                "description": d.description,
                "date_range": d.date_range,
                "date_from": d.date_from.isoformat() if d.date_from else None,
                "date_to": d.date_to.isoformat() if d.date_to else None,
                "filters": d.filters,
                "tiles": [
                    {"insight": t.insight_id, "width": t.width, "height": t.height} for t in d.tiles
                ],
            }
            for d in list_dashboards(scope_id=scope)
        ],
        "annotations": [
            {"occurs_at": a.occurs_at.isoformat(), "text": a.text}
            for a in list_annotations(scope_id=scope)
        ],
    }


def _list(document: Mapping[str, Any], name: str) -> list[Any]:
    items = document.get(name, [])
    if not isinstance(items, list):
        raise ValidationError(name, "must be a list")
    return items


def _date(value: Any, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(name, "must be an ISO 8601 date-time") from None


def import_insights(
    document: Any, *, scope_id: str | None = None, actor: str | None = None
) -> dict[str, int]:
    """Create the document's insights, dashboards and annotations in the scope (always as new
    ones); answers how many of each were created. A mistake names its place
    (``insights.2.params.x``) and nothing is written."""
    scope = resolve_scope(scope_id)
    if not isinstance(document, Mapping):
        raise ValidationError("body", "must be a JSON object {insights, dashboards}")
    if document.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValidationError("version", f"must be {FORMAT_VERSION}")
    planned: list[tuple[Any, dict[str, Any]]] = []
    refs: list[Any] = []
    for index, item in enumerate(_list(document, "insights")):
        where = f"insights.{index}"
        if not isinstance(item, Mapping):
            raise ValidationError(where, "must be an object")
        try:
            values = check_insight(
                scope,
                kind=item.get("kind"),
                params=item.get("params") or {},
                name=item.get("name"),
                description=item.get("description") or "",
            )
        except ValidationError as exc:
            raise ValidationError(f"{where}.{exc.field}", exc.message) from None
        ref = item.get("ref", index)
        if isinstance(ref, bool) or not isinstance(ref, (int, str)) or ref in refs:
            raise ValidationError(f"{where}.ref", "must be a number or text, once per document")
        refs.append(ref)
        planned.append((ref, values))
    boards = _list(document, "dashboards")
    for index, board in enumerate(boards):
        if not isinstance(board, Mapping) or not isinstance(board.get("tiles", []), list):
            raise ValidationError(f"dashboards.{index}", "must be an object with a tiles list")
        for number, tile in enumerate(board.get("tiles", [])):
            if not isinstance(tile, Mapping) or tile.get("insight") not in refs:
                raise ValidationError(
                    f"dashboards.{index}.tiles.{number}.insight",
                    "must be the ref of an insight in this document",
                )
    notes = [_annotation(item, index) for index, item in enumerate(_list(document, "annotations"))]
    who = actor or current_actor()
    with current_state().engine.begin() as connection:
        new_ids = {}
        for ref, values in planned:
            new_ids[ref] = insert_insight(connection, scope, actor=who, **values).id
        for index, board in enumerate(boards):
            values = {
                "name": board.get("name"),
                "description": board.get("description") or "",
                "date_range": board.get("date_range"),
                "date_from": _date(board.get("date_from"), f"dashboards.{index}.date_from"),
                "date_to": _date(board.get("date_to"), f"dashboards.{index}.date_to"),
                "filters": board.get("filters") or [],
            }
            tiles = [
                {
                    "insight_id": new_ids[tile["insight"]],
                    "width": tile.get("width", 6),
                    "height": tile.get("height", 2),
                }
                for tile in board.get("tiles", [])
            ]
            try:
                insert_dashboard(connection, scope, values, tiles, who)
            except ValidationError as exc:
                raise ValidationError(f"dashboards.{index}.{exc.field}", exc.message) from None
        for when, text in notes:
            insert_annotation(connection, scope, occurs_at=when, text=text, actor=who)
    return {"insights": len(planned), "dashboards": len(boards), "annotations": len(notes)}


def _annotation(item: Any, index: int) -> tuple[datetime, str]:
    """An exported annotation's moment (UTC) and text, checked like a new one."""
    where = f"annotations.{index}"
    if not isinstance(item, Mapping):
        raise ValidationError(where, "must be an object {occurs_at, text}")
    when = _date(item.get("occurs_at"), f"{where}.occurs_at")
    if when is None:
        raise ValidationError(f"{where}.occurs_at", "must be an ISO 8601 date-time")
    try:
        return check_occurs_at(when), check_text(item.get("text"))
    except ValidationError as exc:
        raise ValidationError(f"{where}.{exc.field}", exc.message) from None

"""Running a saved insight, alone or as a dashboard tile, through its report route's own code.

The stored parameters are parsed by the route's query model and the route's view function
answers, so ``GET /api/insights/<id>/result`` and the report route with the same parameters
give the same JSON. A dashboard's range and filters override each tile's:

- a range (``date_range``, or ``date_from``/``date_to``) replaces the tile's range;
- a filter replaces the tile's filters on the same property key and is added to the others.

A report without a range (a live feed) or without filters keeps its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic
from flask import g, has_request_context

from ..api.router import APICall, run_view, to_json
from ..errors import APIError, ValidationError
from ..queries.filters import PropertyFilter
from .boards import Dashboard
from .checks import check_filters, check_range, validated_query
from .kinds import insight_kind
from .store import Insight


@dataclass(frozen=True)
class Overrides:
    """What a dashboard (or a caller) lays over an insight's own parameters."""

    date_range: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    filters: tuple[PropertyFilter, ...] = ()

    @classmethod
    def checked(
        cls,
        date_range: str | None = None,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        filters: Sequence[Any] | None = None,
    ) -> Overrides:
        date_range, date_from, date_to = check_range(date_range, date_from, date_to)
        parsed = tuple(PropertyFilter.model_validate(f) for f in check_filters(filters))
        return cls(date_range, date_from, date_to, parsed)

    @classmethod
    def of(cls, dashboard: Dashboard) -> Overrides:
        return cls.checked(
            dashboard.date_range, dashboard.date_from, dashboard.date_to, dashboard.filters
        )

    def apply(self, query: pydantic.BaseModel) -> pydantic.BaseModel:
        """``query`` with this range and these filters laid over its own."""
        fields = type(query).model_fields
        changes: dict[str, Any] = {}
        if "date_range" in fields and (self.date_range or self.date_from):
            changes.update(
                date_range=self.date_range, date_from=self.date_from, date_to=self.date_to
            )
        if self.filters and "filters" in fields:
            keys = {f.key for f in self.filters}
            own = [f for f in getattr(query, "filters", []) if f.key not in keys]
            changes["filters"] = [*own, *self.filters]
        return query.model_copy(update=changes) if changes else query


def insight_query(insight: Insight, overrides: Overrides | None = None) -> pydantic.BaseModel:
    """The insight's parameters parsed by its route's model, with ``overrides`` laid over."""
    query = validated_query(insight.kind, insight.params, insight.scope_id)
    return overrides.apply(query) if overrides is not None else query


def run_insight(insight: Insight, overrides: Overrides | None = None) -> Any:
    """The insight's answer as its report route's JSON."""
    _, endpoint = insight_kind(insight.kind).route()
    principal = g.get("umetrics_principal") if has_request_context() else None
    call = APICall(
        scope_id=insight.scope_id,
        principal=principal,
        query=insight_query(insight, overrides),
        body=None,
    )
    return to_json(run_view(endpoint, call))


def tile_answer(insight: Insight, overrides: Overrides | None) -> dict[str, Any]:
    """``{"result": ...}``, or ``{"error": {...}}`` when this tile cannot run (its segment was
    deleted, its range is too long for the report): one tile never breaks a dashboard."""
    try:
        return {"result": run_insight(insight, overrides), "error": None}
    except ValidationError as exc:
        return {"result": None, "error": {"field": exc.field, "message": exc.message}}
    except APIError as exc:
        return {"result": None, "error": {"field": None, "message": exc.message}}


def dashboard_results(dashboard: Dashboard) -> list[dict[str, Any]]:
    """Every tile's answer, in order, under the dashboard's overrides."""
    overrides = Overrides.of(dashboard)
    return [tile_answer(tile.insight, overrides) for tile in dashboard.tiles]

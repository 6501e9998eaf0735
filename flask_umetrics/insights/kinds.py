"""The kinds of report an insight can save: one registry, mapping a kind to its REST route.

An insight runs through its route's own query model and view function, so a saved insight and
the route answer the same numbers, and a new report becomes savable with one
:func:`register_insight_kind` call (``kind -> /query/<report>``) once its route exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from flask import current_app

from ..errors import ValidationError


@dataclass(frozen=True)
class InsightKind:
    """A savable report: its name, its route rule under ``/api`` and a label for people."""

    name: str
    rule: str
    label: str

    def route(self) -> tuple[type[pydantic.BaseModel], Callable[..., Any]]:
        """The route's query model and its view endpoint (imported late: the routes import
        the query modules, which must not import this one back)."""
        from ..api.routes import router

        for spec in router.specs:
            if spec.rule == self.rule and "GET" in spec.methods and spec.query is not None:
                endpoint = current_app.view_functions[f"{router.blueprint.name}.{spec.endpoint}"]
                return spec.query, endpoint
        raise LookupError(f"insight kind {self.name!r}: no GET route {self.rule!r}")


#: Every kind, by name, in the order the dashboard offers them.
INSIGHT_KINDS: dict[str, InsightKind] = {}


def register_insight_kind(name: str, rule: str, label: str | None = None) -> InsightKind:
    """Make the report at ``rule`` (e.g. ``/query/lifecycle``) savable as kind ``name``."""
    kind = InsightKind(name, rule, label or name.replace("_", " ").capitalize())
    INSIGHT_KINDS[name] = kind
    return kind


def insight_kind(name: str, field: str = "kind") -> InsightKind:
    """The kind called ``name``, or a ``ValidationError`` naming ``field``."""
    try:
        return INSIGHT_KINDS[name]
    except (KeyError, TypeError):
        raise ValidationError(field, f"must be one of {', '.join(INSIGHT_KINDS)}") from None


for _name, _rule, _label in (
    ("trends", "/query/trends", "Trends"),
    ("volume", "/query/volume", "Event volume"),
    ("top", "/query/top", "Top events or values"),
    ("active", "/query/active", "Active persons"),
    ("funnel", "/query/funnel", "Funnel"),
    ("funnel_correlation", "/query/funnel/correlation", "Funnel correlation"),
    ("retention", "/query/retention", "Retention"),
    ("sessions", "/query/sessions", "Sessions"),
    ("paths", "/query/paths", "Paths"),
    ("attribution", "/query/attribution", "Attribution"),
    ("cohorts", "/query/cohorts", "First-seen cohorts"),
    ("summary", "/query/dashboard", "Headline numbers"),
    ("lifecycle", "/query/lifecycle", "Lifecycle"),
    ("stickiness", "/query/stickiness", "Stickiness"),
    ("live", "/query/live", "Live events"),
):
    register_insight_kind(_name, _rule, _label)

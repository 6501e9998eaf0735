"""The checks every saved insight and dashboard passes: names, route parameters, ranges.

An insight's ``params`` are checked by its report route's own query model (a mistake is a
``ValidationError`` naming ``params.<field>``) and stored as that model dumps them, so what runs
later is exactly what was checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pydantic

from ..errors import ValidationError
from ..queries.filters import PropertyFilter
from ..queries.relative_dates import check_token
from ..validation import as_utc
from .kinds import insight_kind

MAX_NAME = 200
MAX_DESCRIPTION = 5000
#: Ids are 64-bit: a larger one in a URL matches nothing (and never reaches the database).
MAX_ID = 2**63 - 1


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


def check_insight(
    scope_id: str, *, kind: Any, params: Any, name: Any, description: Any
) -> dict[str, Any]:
    """An insight's stored fields (``insert_insight``'s keywords), checked in one order: name,
    description, then kind and params; saving and importing both call this, so a mistake is
    named the same way by either."""
    return {
        "name": check_text(name, "name", MAX_NAME, required=True),
        "description": check_text(description, "description", MAX_DESCRIPTION, required=False),
        "kind": kind,
        "params": check_params(kind, params, scope_id),
    }


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

"""Form pieces shared by the report pages (events, funnels, retention).

Report pages are GET forms: their fields are the REST route's query parameters, plus a few
friendlier ones (filter rows, a window with a unit) turned into those parameters here. A bad
value is shown next to the form (the message names the field) instead of an error page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from flask import Response, request

from ...api.reports.basic import TopQuery, query_top
from ...errors import APIError, ValidationError
from ...queries.filters import Operator
from ..reports import run_report

#: The operators of a filter row, in the order the select lists them.
OPERATORS: tuple[str, ...] = Operator.__args__  # type: ignore[attr-defined]
_NUMERIC_OPS = {"gt", "gte", "lt", "lte"}
_LIST_OPS = {"in", "not_in"}
_NO_VALUE_OPS = {"is_set", "is_not_set"}

#: Empty filter rows the form always offers below the filled ones.
BLANK_FILTER_ROWS = 1
#: How many top events the event selects offer.
EVENT_CHOICES = 50


class FormError(Exception):
    """A page's own form field is wrong; the message names the field."""


@dataclass(frozen=True)
class FilterRow:
    key: str
    op: str
    value: str


def filter_rows() -> list[FilterRow]:
    """The filled ``filter_key`` / ``filter_op`` / ``filter_value`` rows of the query string."""
    keys = request.args.getlist("filter_key")
    ops = request.args.getlist("filter_op")
    values = request.args.getlist("filter_value")
    rows = []
    for index, key in enumerate(keys):
        op = ops[index] if index < len(ops) else "eq"
        value = values[index] if index < len(values) else ""
        if key.strip():
            rows.append(FilterRow(key.strip(), op or "eq", value))
    return rows


def _typed(text: str) -> Any:
    """A number when the text is one (``gt 5`` compares numbers), else the text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def filters_param(rows: list[FilterRow]) -> list[str] | None:
    """The ``filters`` parameters of the report: the page's raw JSON ones plus the rows."""
    raw = [text for text in request.args.getlist("filters") if text.strip()]
    items: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=1):
        if row.op not in OPERATORS:
            raise FormError(f"filter {number}: unknown operator {row.op!r}")
        item: dict[str, Any] = {"key": row.key, "op": row.op}
        if row.op in _LIST_OPS:
            item["value"] = [part.strip() for part in row.value.split(",") if part.strip()]
        elif row.op in _NUMERIC_OPS:
            value = _typed(row.value.strip())
            if isinstance(value, str):
                raise FormError(f"filter {number} ({row.key}): '{row.op}' needs a number")
            item["value"] = value
        elif row.op not in _NO_VALUE_OPS:
            item["value"] = row.value
        items.append(item)
    if items:
        raw.append(json.dumps(items))
    return raw or None


def try_report(
    endpoint: Callable[..., Any],
    model: type[pydantic.BaseModel],
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Any, str | None]:
    """The route's answer and no error, or None and the message of a bad parameter."""
    try:
        return run_report(endpoint, model, overrides), None
    except APIError as error:
        if error.status != 400:
            raise
        return None, error.message
    except ValidationError as error:
        return None, str(error)


def form_answer(body: Response | str, error: str | None) -> Response | str:
    """The page, answered 400 when its form was refused (the message is shown above it)."""
    if error is not None and isinstance(body, str):
        return Response(body, status=400, mimetype="text/html")
    return body


def event_choices(selected: list[str | None] | None = None) -> list[str]:
    """Names for the event selects: the top events of the range (most frequent first), plus
    any selected name that is not among them (so the form shows what was asked)."""
    answer, _ = try_report(
        query_top,
        TopQuery,
        {"event": None, "property": None, "filters": None, "limit": EVENT_CHOICES},
    )
    names = [item["key"] for item in answer["items"]] if answer else []
    for name in selected or []:
        if name and name not in names:
            names.append(name)
    return names


def short_time(label: str, interval: str) -> str:
    """A bucket's ISO start as the chart shows it: the date, with the time for hours."""
    return label[:16].replace("T", " ") if interval == "hour" else label[:10]


def series_name(value: str | None, taken: set[str]) -> str:
    """A breakdown value as a unique column and legend name (``(none)`` when missing)."""
    name = "(none)" if value is None else value
    base, suffix = name, 2
    while name in taken:
        name = f"{base} ({suffix})"
        suffix += 1
    taken.add(name)
    return name

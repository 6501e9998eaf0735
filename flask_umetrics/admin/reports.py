"""Run a REST route's report from a dashboard page, so both show the same numbers.

A page passes the route and the parameters it wants; they are validated by the route's own
query model and the route's own view function runs. Only the parameters the model knows are
taken from the page's query string (pages have their own, such as ``format`` or ``stat``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, get_origin

import pydantic
from flask import g, request
from pydantic.fields import FieldInfo
from werkzeug.datastructures import MultiDict

from ..api.router import APICall, parse_query_args, run_view, to_json
from .access import current_scope
from .date_presets import date_presets


def report_args(
    model: type[pydantic.BaseModel], overrides: Mapping[str, Any] | None = None
) -> MultiDict[str, str]:
    """The page's query-string parameters that ``model`` knows, with ``overrides`` applied
    (a list value repeats the parameter, None removes it)."""
    args: MultiDict[str, str] = MultiDict()
    skipped = {"scope_id"}
    if request.args.get("date_range") and "date_range" in model.model_fields:
        skipped |= {"date_from", "date_to"}  # a chosen preset wins over the custom dates
    for name in request.args:
        if name in model.model_fields and name not in skipped:
            for value in request.args.getlist(name):
                if value != "":
                    args.add(name, value)
    for name, value in (overrides or {}).items():
        args.poplist(name)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            args.add(name, str(item))
    return args


def run_report(
    endpoint: Callable[..., Any],
    model: type[pydantic.BaseModel],
    overrides: Mapping[str, Any] | None = None,
    **path_args: Any,
) -> Any:
    """The route's answer as its REST JSON (dicts and lists); bad parameters raise a 400
    ``APIError`` naming the field."""
    query = parse_query_args(model, report_args(model, overrides))
    call = APICall(
        scope_id=current_scope(),
        principal=g.get("umetrics_principal"),
        query=query,
        body=None,
    )
    return to_json(run_view(endpoint, call, **path_args))


def _is_default(field: FieldInfo, value: Any) -> bool:
    """Whether ``value`` (query-string text) is the route's default for ``field``: a form
    submits its every control, and a saved insight keeps only what was chosen. A value the
    field's type does not read is kept (the route names the error)."""
    if field.is_required() or field.annotation is None:
        return False
    try:
        parsed = pydantic.TypeAdapter(field.annotation).validate_python(value)
    except pydantic.ValidationError:
        return False
    return bool(parsed == field.get_default(call_default_factory=True))


def saved_params(
    model: type[pydantic.BaseModel],
    overrides: Mapping[str, Any] | None = None,
    default_range: str = "-30d",
) -> dict[str, Any]:
    """The parameters this page ran ``model``'s route with, as "Save as insight" keeps them:
    only those differing from the route's defaults; a preset's dates become its relative range,
    and the page's default range (no dates in the query string) its token, so the saved insight
    moves with today."""
    args = report_args(model, overrides)
    params: dict[str, Any] = {}
    for name in args:
        field = model.model_fields[name]
        is_list = get_origin(field.annotation) is list
        value = args.getlist(name) if is_list else args.get(name)
        if not _is_default(field, value):
            params[name] = value
    if "date_range" not in model.model_fields or "date_range" in params:
        return params
    chosen = (request.args.get("date_from") or None, request.args.get("date_to") or None)
    if chosen == (None, None):
        token: str | None = default_range
    else:
        token = next(
            (
                p.token
                for p in date_presets()
                if chosen == (p.date_from.isoformat(), p.date_to.isoformat())
            ),
            None,
        )
    if token is not None:
        params.pop("date_from", None)
        params.pop("date_to", None)
        params["date_range"] = token
    return params

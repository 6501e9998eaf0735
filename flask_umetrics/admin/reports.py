"""Run a REST route's report from a dashboard page, so both show the same numbers.

A page passes the route and the parameters it wants; they are validated by the route's own
query model and the route's own view function runs. Only the parameters the model knows are
taken from the page's query string (pages have their own, such as ``format`` or ``stat``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from flask import g, request
from werkzeug.datastructures import MultiDict

from ..api.router import APICall, parse_query_args, run_view, to_json
from .access import current_scope


def report_args(
    model: type[pydantic.BaseModel], overrides: Mapping[str, Any] | None = None
) -> MultiDict[str, str]:
    """The page's query-string parameters that ``model`` knows, with ``overrides`` applied
    (a list value repeats the parameter, None removes it)."""
    args: MultiDict[str, str] = MultiDict()
    for name in request.args:
        if name in model.model_fields and name != "scope_id":
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

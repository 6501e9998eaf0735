"""The OpenAPI 3.1 document of the REST API, built from the route specs and pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from .. import __version__
from .models import ErrorResponse
from .router import RouteSpec

_PATH_ARG = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")
_REF = "#/components/schemas/{model}"


def _schema(model: type[Any], components: dict[str, Any]) -> dict[str, Any]:
    """Register ``model`` (a pydantic model, a dataclass, or a union of them) and return a
    reference to it (unions are returned inline)."""
    schema = TypeAdapter(model).json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    name = getattr(model, "__name__", None)
    if name is None:
        return schema
    components[name] = schema
    return {"$ref": _REF.format(model=name)}


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if prop.get("type") == "array":
            parameter.update(style="form", explode=True)
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


#: What each error status means, for the statuses a route may declare in ``errors``.
ERROR_DESCRIPTIONS = {
    400: "Invalid input; `details` names each field.",
    401: "No valid credentials.",
    404: "No such resource in this scope.",
    409: "The request conflicts with the current state (already exists, not connected...).",
    413: "The body is larger than allowed (`UMETRICS_MAX_BODY_BYTES`).",
    415: "Without an API key (cookie authority), the body must be `application/json`.",
    429: "An upstream quota is exhausted; retry after `Retry-After` seconds.",
    501: "An optional dependency of this feature is not installed.",
    502: "An upstream service answered with an error.",
    503: "The database or an upstream service is unavailable (`database_unavailable`), or a "
    "report ran past `UMETRICS_QUERY_TIMEOUT_SECONDS` (`query_timeout`); retry after "
    "`Retry-After` seconds.",
}
#: The 429 of the rate-limited public routes (``ratelimit.py``).
RATE_LIMITED = "Rate limit reached (`rate_limited`); retry after `Retry-After` seconds."
_RATE_LIMITED_VIEWS = {"flags_for_subject", "consent"}
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}},
    }


def build_openapi(specs: list[RouteSpec], prefix: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    _schema(ErrorResponse, components)
    paths: dict[str, Any] = {}
    for spec in specs:
        path = prefix + _PATH_ARG.sub(r"{\1}", spec.rule)
        for method in spec.methods:
            operation: dict[str, Any] = {
                "operationId": spec.endpoint,
                "summary": spec.summary,
                "tags": [spec.tag],
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in _PATH_ARG.findall(spec.rule)
                ],
                "responses": {"400": _error(ERROR_DESCRIPTIONS[400])},
            }
            if spec.query is not None:
                operation["parameters"] += _query_parameters(spec.query, components)
            if spec.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema(spec.body, components)}},
                }
            errors = set(spec.errors) | {503}  # the database may be unreachable on any route
            if method in _BODY_METHODS:  # the router reads a body's scope_id on these methods
                errors.add(413)
                errors.add(415)  # without a key: JSON only (api/origin.py)
            if _PATH_ARG.search(spec.rule):
                errors.add(404)
            for code in sorted(errors):
                operation["responses"][str(code)] = _error(ERROR_DESCRIPTIONS[code])
            if spec.permission == "ingest" or spec.endpoint in _RATE_LIMITED_VIEWS:
                operation["responses"]["429"] = _error(RATE_LIMITED)
            success: dict[str, Any] = {"description": "Success"}
            if spec.response is not None:
                success["content"] = {
                    "application/json": {"schema": _schema(spec.response, components)}
                }
            operation["responses"][str(spec.status)] = success
            cross_site = (
                "Without an API key, a request from a page on another site (`cross_site_request`)."
            )
            if spec.permission is None:
                operation["security"] = []
                if method in _BODY_METHODS:
                    operation["responses"]["403"] = _error(cross_site)
            else:
                operation["x-umetrics-permission"] = spec.permission
                operation["responses"]["401"] = _error(ERROR_DESCRIPTIONS[401])
                refused = f"The caller lacks {spec.permission} on the scope."
                if method in _BODY_METHODS:
                    refused += " " + cross_site
                operation["responses"]["403"] = _error(refused)
            operation["responses"] = dict(sorted(operation["responses"].items()))
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "flask-umetrics", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "writeKey": {"type": "apiKey", "in": "header", "name": "X-UMetrics-Key"},
            },
        },
        "security": [{"bearer": []}],
    }

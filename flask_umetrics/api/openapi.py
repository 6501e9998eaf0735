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
                "responses": {"400": _error("Invalid input; `details` names each field.")},
            }
            if spec.query is not None:
                operation["parameters"] += _query_parameters(spec.query, components)
            if spec.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema(spec.body, components)}},
                }
                operation["responses"]["413"] = _error("The body is larger than allowed.")
            success: dict[str, Any] = {"description": "Success"}
            if spec.response is not None:
                success["content"] = {
                    "application/json": {"schema": _schema(spec.response, components)}
                }
            operation["responses"][str(spec.status)] = success
            if spec.permission is None:
                operation["security"] = []
            else:
                operation["x-umetrics-permission"] = spec.permission
                operation["responses"]["401"] = _error("No valid credentials.")
                operation["responses"]["403"] = _error(
                    f"The caller lacks {spec.permission} on the scope."
                )
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

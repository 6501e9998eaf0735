"""One decorator for every REST route: authorize, validate with pydantic, answer JSON, document.

Every route declares the permission it needs (or ``public=True``), its query and body models and
its response model. The order is fixed: a state-changing request without an API key (one that
acts with the host's or the visitor's cookies) must come from this site with a JSON body
(``origin.py``); then the scope is read, the caller is authorized on it, then the rest of the
input is validated, so an anonymous caller learns nothing but 401/403.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_origin

import pydantic
from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask_limiter.errors import RateLimitExceeded
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import PathConverter

from ..auth import KEY_PREFIX, Principal, authorize, presented_api_key
from ..db.outage import is_database_unavailable, outage_log
from ..errors import APIError, ValidationError
from ..queries.connection import QueryTimeout
from ..state import current_state
from ..validation import validate_scope_id
from .origin import refuse_cross_site_write

logger = logging.getLogger("flask_umetrics")
M = TypeVar("M", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class RouteSpec:
    """What the OpenAPI document and the authorization test need to know about a route."""

    rule: str
    methods: tuple[str, ...]
    endpoint: str
    summary: str
    permission: str | None
    query: type[pydantic.BaseModel] | None
    body: type[pydantic.BaseModel] | None
    response: Any
    status: int
    tag: str
    #: Error statuses beyond the ones every route may answer (see ``openapi.py``), e.g. 409.
    errors: tuple[int, ...] = ()


@dataclass(frozen=True)
class APICall:
    """The validated input of one request."""

    scope_id: str
    principal: Principal | None
    query: Any
    body: Any

    @property
    def actor(self) -> str | None:
        """Who the audit log names for this call's changes (None: the host's own code)."""
        return self.principal.actor if self.principal else None


def _pydantic_error(exc: pydantic.ValidationError, where: str) -> APIError:
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or where
        details.append({"field": field, "message": error["msg"]})
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return APIError(400, "validation_error", message or f"invalid {where}", details)


def _raw_scope() -> str:
    body_scope = None
    if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
        body = _json_body(optional=True)
        if isinstance(body, dict):
            body_scope = body.get("scope_id")
    query_scope = request.args.get("scope_id")
    if body_scope is not None and query_scope is not None and body_scope != query_scope:
        raise APIError(
            400,
            "validation_error",
            "scope_id: given in the query and the body with different values",
            [{"field": "scope_id", "message": "differs between query and body"}],
        )
    raw = body_scope if body_scope is not None else query_scope
    if raw is None:
        return current_state().settings.default_scope
    try:
        return validate_scope_id(raw)
    except ValidationError as exc:
        raise APIError(
            400, "validation_error", str(exc), [{"field": "scope_id", "message": exc.message}]
        ) from exc


def _body_key(permission: str) -> str | None:
    """An ingestion write key sent as the body's ``api_key`` (browsers cannot set headers on
    ``sendBeacon``), or a client key in the path (GrowthBook SDKs put it there)."""
    if permission == "client":
        key = (request.view_args or {}).get("client_key")
        return key if isinstance(key, str) and key.startswith(f"{KEY_PREFIX}_") else None
    if permission != "ingest" or request.method != "POST":
        return None
    body = _json_body(optional=True)
    key = body.get("api_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None


def _json_body(optional: bool = False) -> Any:
    limit = current_state().settings["UMETRICS_MAX_BODY_BYTES"]
    request.max_content_length = limit
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise APIError(
            413,
            "request_entity_too_large",
            f"The request body is larger than UMETRICS_MAX_BODY_BYTES ({limit} bytes).",
            [{"field": "body", "message": f"at most {limit} bytes"}],
        ) from None
    if not data.strip():
        return None if optional else {}
    try:
        body = request.get_json(force=True, silent=True, cache=True)
    except RecursionError:  # nested thousands of levels deep: the JSON parser gives up
        if optional:
            return None
        raise APIError(400, "invalid_json", "The request body is nested too deeply.") from None
    if body is None:
        if optional:
            return None
        raise APIError(400, "invalid_json", "The request body is not valid JSON.")
    return body


def _nul_field(value: Any, where: str) -> str | None:
    """The name of the first string or key in ``value`` holding a NUL character, else None.

    PostgreSQL cannot store or even compare text with NUL, so every route refuses it up front
    (and SQLite answers the same). Iterative: a payload may nest deeply.
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, name = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return name
        elif isinstance(item, (dict, list)):
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            children: list[tuple[Any, str]] = []
            for key, child in pairs:
                child_name = f"{name}.{key}" if name else str(key)
                if isinstance(key, str) and "\x00" in key:
                    return child_name.replace("\x00", "\\x00")
                children.append((child, child_name))
            stack.extend(reversed(children))  # the first offending field, in document order
    return None


def refuse_nul(value: Any, where: str = "") -> None:
    """Raise a 400 ``APIError`` naming the field when a string in ``value`` holds NUL."""
    field = _nul_field(value, where)
    if field is not None:
        message = "must not contain NUL characters"
        raise APIError(
            400,
            "validation_error",
            f"{field or 'body'}: {message}",
            [{"field": field or "body", "message": message}],
        )


def parse_query_args(model: type[M], args: MultiDict[str, str]) -> M:
    """Validate query-string ``args`` with ``model`` (repeated names fill list fields), or
    raise a 400 ``APIError`` naming each bad field. The dashboard parses its forms with it."""
    values: dict[str, Any] = {}
    for name in args:
        info = model.model_fields.get(name)
        is_list = info is not None and get_origin(info.annotation) is list
        values[name] = args.getlist(name) if is_list else args.get(name)
    refuse_nul(values)
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise _pydantic_error(exc, "query") from exc


def _parse_query(model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    return parse_query_args(model, request.args)


def _parse_body(model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    body = _json_body()
    # A route whose original accepts a bare JSON array (togo's events) takes it as that field.
    bare_list_field = getattr(model, "bare_list_field", None)
    if isinstance(body, list) and bare_list_field is not None:
        body = {bare_list_field: body}
    if not isinstance(body, dict):
        raise APIError(
            400,
            "validation_error",
            "The request body must be a JSON object.",
            [{"field": "body", "message": "must be a JSON object"}],
        )
    # Fields a view checks item by item (an ingest batch rejects single events, not the batch).
    per_item = getattr(model, "nul_checked_per_item", ())
    refuse_nul({name: value for name, value in body.items() if name not in per_item})
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise _pydantic_error(exc, "body") from exc


def to_json(result: Any) -> Any:
    if isinstance(result, pydantic.BaseModel):
        return result.model_dump(mode="json")
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return pydantic.TypeAdapter(type(result)).dump_python(result, mode="json")
    return result


class AnyPathConverter(PathConverter):
    """``<anypath:x>``: like ``path`` but also matching newlines, which an id may hold. With
    werkzeug's ``path`` a distinct id holding ``\\n`` matches no rule of ours, so the host app's
    HTML 404 would answer instead of our JSON."""

    regex = "(?s:[^/].*?)"


def _add_anypath_converter(setup: BlueprintSetupState) -> None:
    setup.app.url_map.converters.setdefault("anypath", AnyPathConverter)


class ApiRouter:
    """A blueprint whose routes all go through :func:`route`'s checks, plus their specs."""

    def __init__(self, name: str, import_name: str) -> None:
        self.blueprint = Blueprint(name, import_name)
        # Recorded before any route, so the converter exists when the rules are bound.
        self.blueprint.record_once(_add_anypath_converter)
        self.specs: list[RouteSpec] = []
        self.blueprint.register_error_handler(APIError, _api_error_response)
        self.blueprint.register_error_handler(ValidationError, _validation_error_response)
        self.blueprint.register_error_handler(HTTPException, _http_error_response)
        self.blueprint.register_error_handler(QueryTimeout, query_timeout_response)
        self.blueprint.register_error_handler(RateLimitExceeded, _rate_limited_response)
        self.blueprint.register_error_handler(Exception, _unexpected_error_response)
        self.blueprint.after_request(_note_success)

    def route(
        self,
        rule: str,
        *,
        methods: tuple[str, ...] = ("GET",),
        summary: str,
        permission: str | None,
        tag: str,
        query: type[pydantic.BaseModel] | None = None,
        body: type[pydantic.BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        scope_resolver: Callable[[], str | None] | None = None,
        errors: tuple[int, ...] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``view(call: APICall, **path_args)``; ``permission=None`` means public.

        ``errors`` lists the statuses the view itself may answer beyond the router's own (400,
        401, 403, 413, and 404 for rules with path arguments), so the OpenAPI document lists them.

        ``scope_resolver`` finds the scope where the request cannot name it (an OAuth callback
        carries it in its signed state); when it returns None the usual ``scope_id`` applies.
        """

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def endpoint(**path_args: Any) -> Response:
                body_key = _body_key(permission) if permission else None
                if permission is None or presented_api_key(permission, body_key=body_key) is None:
                    refuse_cross_site_write()  # cookie authority: same site and JSON only
                resolved = scope_resolver() if scope_resolver is not None else None
                scope_id = resolved if resolved is not None else _raw_scope()
                principal = (
                    authorize(permission, scope_id, body_key=body_key) if permission else None
                )
                refuse_nul(path_args)
                call = APICall(
                    scope_id=scope_id,
                    principal=principal,
                    query=_parse_query(query) if query else None,
                    body=_parse_body(body) if body else None,
                )
                result = view(call, **path_args)
                if isinstance(result, Response):  # streamed downloads pass through as they are
                    return result
                answer = jsonify(to_json(result))
                answer.status_code = status
                return answer

            endpoint.umetrics_permission = permission  # type: ignore[attr-defined]
            endpoint.umetrics_view = view  # type: ignore[attr-defined]
            self.blueprint.add_url_rule(rule, view.__name__, endpoint, methods=list(methods))
            self.specs.append(
                RouteSpec(
                    rule,
                    methods,
                    view.__name__,
                    summary,
                    permission,
                    query,
                    body,
                    response,
                    status,
                    tag,
                    errors,
                )
            )
            return endpoint

        return decorator


def run_view(endpoint: Callable[..., Any], call: APICall, **path_args: Any) -> Any:
    """Run a route's view function on already-validated input, without the HTTP layer: the
    dashboard shows exactly the numbers the REST API answers."""
    return endpoint.umetrics_view(call, **path_args)  # type: ignore[attr-defined]


def error_response(error: APIError) -> Response:
    answer = jsonify(error.to_dict())
    answer.status_code = error.status
    for name, value in error.headers.items():
        answer.headers[name] = value
    return answer


def _api_error_response(error: APIError) -> Response:
    return error_response(error)


def _validation_error_response(error: ValidationError) -> Response:
    return error_response(
        APIError(
            400, "validation_error", str(error), [{"field": error.field, "message": error.message}]
        )
    )


def _http_error_response(error: HTTPException) -> Response:
    code = (error.name or "error").lower().replace(" ", "_")
    answer = error_response(APIError(error.code or 500, code, error.description or code))
    if error.code == 405 and error.valid_methods:  # type: ignore[attr-defined]
        answer.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return answer


def _rate_limited_response(error: RateLimitExceeded) -> Response:
    """429 ``rate_limited`` with ``Retry-After`` (see ``ratelimit.py``)."""
    from .ratelimit import retry_after

    seconds = retry_after()
    return error_response(
        APIError(
            429,
            "rate_limited",
            f"Too many requests: the limit is {error.description}; retry in {seconds} seconds.",
            headers={"Retry-After": seconds},
        )
    )


def _note_success(response: Response) -> Response:
    """A success after database failures ends the outage (logged once, see ``db/outage.py``)."""
    if response.status_code < 300:
        outage_log(current_app._get_current_object()).succeeded()  # type: ignore[attr-defined]
    return response


def database_unavailable_response(error: BaseException) -> Response:
    """503 with ``Retry-After``: the database is down or unreachable. An ingest batch is one
    transaction (stored whole or not at all), so the client sends it again with the same uuids
    and every event is stored once."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    outage_log(app).failed(error, f"{request.method} {request.path}")
    seconds = current_state().settings["UMETRICS_RETRY_AFTER_SECONDS"]
    return error_response(
        APIError(
            503,
            "database_unavailable",
            f"The analytics database is unavailable; retry in {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )
    )


def retry_after_timeout(error: QueryTimeout) -> str:
    """``Retry-After`` of a timed-out report: as long as the report was allowed to run."""
    return str(max(1, math.ceil(error.seconds)))


def query_timeout_response(error: QueryTimeout) -> Response:
    """503 ``query_timeout``: the report ran past ``UMETRICS_QUERY_TIMEOUT_SECONDS``. Not an
    outage (the database answered), so it is logged as one line, not as a failure streak."""
    logger.warning(
        "flask-umetrics: %s %s ran past the %g s report timeout",
        request.method,
        request.path,
        error.seconds,
    )
    return error_response(
        APIError(
            503,
            "query_timeout",
            str(error),
            headers={"Retry-After": retry_after_timeout(error)},
        )
    )


def _unexpected_error_response(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return _http_error_response(error)
    if is_database_unavailable(error):
        return database_unavailable_response(error)
    if current_app.config.get("PROPAGATE_EXCEPTIONS"):
        raise error
    logger.exception("flask-umetrics: unexpected error in %s %s", request.method, request.path)
    return error_response(APIError(500, "internal_error", "An unexpected error occurred."))

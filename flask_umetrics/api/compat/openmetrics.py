"""open-metrics' logging API (``gsabran/open-metrics``) at ``UMETRICS_OPENMETRICS_PATH``.

Its clients send ``GET /v1/<route>?q=<JSON>`` (the browser client does not even URL-encode the
JSON) with a ``sessionId`` that is really a long-lived anonymous id, and read ``ok`` / ``pong``
as plain text. Here the ``sessionId`` is the event's ``distinct_id``; ``setUserId`` merges it
into the user (our ``identify``), so the anonymous past counts under the user. The same payload
may also come as a POST JSON body.

Scope: ``scope_id`` in the payload, else the ``scope_id`` query parameter, else the scope of
the open-metrics key in ``?key=`` or ``UMETRICS_OPENMETRICS_KEY``, else
``UMETRICS_DEFAULT_SCOPE``. Authentication: the scope's open-metrics key (permission
``openmetrics``, public) as ``?key=``, or any write key as ``api_key`` in the payload or the
``X-UMetrics-Key`` header. Unmodified clients can send none of these (the browser client builds
``<server URL>/v1/<route>?q=<JSON>``, the node client ``/v1/<route>?q=<JSON>`` on the server's
host and port), so a host names its open-metrics key in ``UMETRICS_OPENMETRICS_KEY`` and keyless
requests act with it. With ``openmetrics`` or ``ingest``, ``setUserId`` may link a visitor that
is not identified yet, and ``setUserProps`` may set properties of a visitor that is not
identified yet; anything more (a session that already belongs to another user, properties of an
identified user) needs ``identify`` as well (403 ``identify_permission_required``), exactly as
on the native API.
"""

from __future__ import annotations

import functools
import json
import math
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from flask import Blueprint, Response, jsonify, request

from ...auth import (
    IDENTIFY,
    OPENMETRICS,
    Principal,
    authorize,
    may_require,
    presented_key,
    verify_api_key,
)
from ...db.types import utcnow
from ...errors import APIError, PermissionRequired, ValidationError
from ...events import identify, ingest_events, set_person_properties
from ...events.validation import MAX_ID_LENGTH, Limits, normalize_event
from ...queries.sessions import SESSION_PROPS_EVENT
from ...state import current_state
from ...validation import validate_scope_id
from ..origin import refuse_cross_site, refuse_cross_site_write
from ..router import ApiRouter, _json_body, refuse_nul

router = ApiRouter("umetrics_openmetrics", __name__)
PING_EVENT = "$ping"
#: A ``ts`` below this is in seconds, above it in milliseconds (1e11 ms is March 1973).
_MILLISECONDS_FROM = 1e11


@router.blueprint.url_value_preprocessor
def _latin1_query(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Read a query string that is not UTF-8 as Latin-1, before anything parses it.

    open-metrics' node client hands its unencoded JSON to Node, which writes the request path in
    Latin-1 (``"Zürich"`` arrives as the byte 0xFC); werkzeug's ``request.args`` would fail on
    it. Runs before every ``before_request`` (the rate limiter reads the query too)."""
    try:
        request.query_string.decode("utf-8")
    except UnicodeDecodeError:
        request.query_string = request.query_string.decode("latin-1").encode("utf-8")
        request.__dict__.pop("args", None)  # parsed from the bytes above if read already


def create_blueprint() -> Blueprint:
    """The blueprint to register at ``UMETRICS_OPENMETRICS_PATH`` (default ``{prefix}/v1``)."""
    return router.blueprint


def _bad(field: str, message: str) -> APIError:
    return APIError(
        400, "validation_error", f"{field}: {message}", [{"field": field, "message": message}]
    )


def _raw_q() -> str | None:
    """``q`` as sent. Clients that do not encode it leave ``&`` and ``+`` raw inside the JSON,
    so an unencoded ``q`` (starting with ``{``) is read to the end of the query string."""
    query = request.query_string.decode("utf-8", "replace")
    start = 0 if query.startswith("q=") else query.find("&q=") + 1 if "&q=" in query else -1
    if start >= 0 and query[start + 2 : start + 3] == "{":
        return unquote(query[start + 2 :])
    return request.args.get("q")


def _payload() -> dict[str, Any]:
    """The JSON object from ``?q=`` or, for POST, the body; as large and as deeply nested as
    a native API body may be."""
    if request.method == "POST" and "q" not in request.args:
        body = _json_body()  # {} when empty; 413 too large; 400 not JSON or nested too deeply
        if not isinstance(body, dict):
            raise _bad("body", "must be a JSON object")
        return body
    raw = _raw_q()
    if raw is None or not raw.strip():
        return {}
    limit = current_state().settings["UMETRICS_MAX_BODY_BYTES"]
    if len(raw) > limit:
        raise APIError(
            413,
            "request_entity_too_large",
            f"q is larger than UMETRICS_MAX_BODY_BYTES ({limit} bytes).",
            [{"field": "q", "message": f"at most {limit} bytes"}],
        )
    try:
        payload = _loads(raw)
    except ValueError:
        fallback = request.args.get("q")
        try:
            payload = _loads(fallback) if fallback is not None else None
        except ValueError:
            payload = None
        if payload is None:
            raise _bad("q", "must be a URL-encoded JSON object") from None
    if not isinstance(payload, dict):
        raise _bad("q", "must be a JSON object")
    return payload


def _loads(text: str) -> Any:
    """``json.loads``, with a payload nested too deeply for the parser as a 400, not a 500."""
    try:
        return json.loads(text)
    except RecursionError:  # nested thousands of levels deep: the JSON parser gives up
        raise APIError(
            400,
            "invalid_json",
            "q is nested too deeply.",
            [{"field": "q", "message": "nested too deeply"}],
        ) from None


def _scope(payload: dict[str, Any], public_key: str | None) -> str:
    """The scope named by the payload or the query; else the public key's (unmodified clients
    name none); else the default scope."""
    in_payload, in_query = payload.get("scope_id"), request.args.get("scope_id")
    if in_payload is not None and in_query is not None and in_payload != in_query:
        raise _bad("scope_id", "differs between the query and the payload")
    raw = in_payload if in_payload is not None else in_query
    if raw is None:
        info = verify_api_key(public_key) if public_key is not None else None
        return info.scope_id if info is not None else str(current_state().settings.default_scope)
    try:
        return validate_scope_id(raw)
    except ValidationError as exc:
        raise _bad("scope_id", exc.message) from exc


def _authorized(payload: dict[str, Any]) -> str:
    """Authorize open-metrics' calls on the payload's scope; the scope."""
    return _caller(payload).scope_id


def _caller(payload: dict[str, Any]) -> Principal:
    """Authorize open-metrics' calls on the payload's scope; who the caller is.

    A request without a key acts with the host's ``UMETRICS_OPENMETRICS_KEY`` when there is one
    (public, like any open-metrics key). Otherwise the authorizer decides, with the host's
    cookies: as every route here writes, GET included, the request must then come from this
    site or an allowed origin, and a JSON body must say so in its ``Content-Type``
    (``api/origin.py``)."""
    key = payload.get("api_key")
    body_key = key if isinstance(key, str) else None
    public_key = None
    presented, in_url = presented_key(OPENMETRICS, body_key)
    if presented is None:
        public_key = current_state().settings["UMETRICS_OPENMETRICS_KEY"]
        if public_key is None and request.method == "POST" and "q" not in request.args:
            refuse_cross_site_write()
        elif public_key is None:
            refuse_cross_site()
    scope_id = _scope(payload, presented if in_url else public_key)
    principal = authorize(OPENMETRICS, scope_id, body_key=body_key, public_key=public_key)
    refuse_nul(payload)  # PostgreSQL cannot store or compare text with NUL
    return principal


def _text(body: str) -> Response:
    return Response(body, mimetype="text/plain")


def _optional_id(payload: dict[str, Any], *names: str) -> str | None:
    """The first of ``names`` present, checked as an id (numbers are taken as text)."""
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
            raise _bad(name, f"must be a string of 1-{MAX_ID_LENGTH} characters")
        return value
    return None


def _id(payload: dict[str, Any], *names: str) -> str:
    value = _optional_id(payload, *names)
    if value is None:
        raise _bad(names[0], "is required")
    return value


def _route(
    rule: str, *, public: bool = False
) -> Callable[[Callable[[dict[str, Any]], Response]], Callable[[], Response]]:
    """Register ``view(payload)`` for GET and POST; the payload is parsed before auth so the
    key inside it counts, and nothing is read from it before the caller is authorized."""

    def decorator(view: Callable[[dict[str, Any]], Response]) -> Callable[[], Response]:
        @functools.wraps(view)
        def endpoint() -> Response:
            return view(_payload())  # CORS: UMETRICS_ALLOWED_ORIGINS (api/cors.py)

        endpoint.umetrics_permission = None if public else OPENMETRICS  # type: ignore[attr-defined]
        router.blueprint.add_url_rule(rule, view.__name__, endpoint, methods=["GET", "POST"])
        return endpoint

    return decorator


@_route("/ping", public=True)
def ping(payload: dict[str, Any]) -> Response:
    """``pong``. With a ``sessionId`` (and the write key) it also extends that visitor's
    session by an active ``$ping`` event."""
    if "sessionId" in payload:
        scope_id = _authorized(payload)
        session = _id(payload, "sessionId")
        _ingest([{"event": PING_EVENT, "distinct_id": session}], scope_id, "sessionId")
    return _text("pong")


@_route("/createUser")
def create_user(payload: dict[str, Any]) -> Response:
    """Start tracking a visitor: the given ``sessionId``, or a new random one; answers
    ``{"sessionId": id}``."""
    scope_id = _authorized(payload)
    session = _optional_id(payload, "sessionId") or secrets.token_urlsafe(12)
    set_person_properties(session, scope_id=scope_id)  # creates the person, sets nothing
    return jsonify({"sessionId": session})


def _timestamp(value: Any, index: int) -> str | None:
    field = f"events[{index}].ts"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(field, "must be a Unix time in milliseconds")
    seconds = value / 1000 if value >= _MILLISECONDS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError) as exc:
        raise _bad(field, "is out of range") from exc


def _event(raw: Any, index: int, session: str) -> dict[str, Any]:
    """An open-metrics event ``{name, props, ts, options: {active}}`` as ours."""
    if not isinstance(raw, dict):
        raise _bad(f"events[{index}]", "must be a JSON object")
    unknown = sorted(set(raw) - {"name", "props", "ts", "options", "uuid"})
    if unknown:
        raise _bad(f"events[{index}].{unknown[0]}", "is not an open-metrics event field")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise _bad(f"events[{index}].options", "must be a JSON object")
    event: dict[str, Any] = {"event": raw.get("name"), "distinct_id": session}
    if raw.get("props") is not None:
        event["properties"] = raw["props"]
    timestamp = _timestamp(raw.get("ts"), index)
    if timestamp is not None:
        event["timestamp"] = timestamp
    if options.get("active") is False:
        event["active"] = False
    if raw.get("uuid") is not None:
        event["uuid"] = raw["uuid"]
    return event


_EVENT_FIELD_NAMES = {
    "event": "name",
    "properties": "props",
    "timestamp": "ts",
    "active": "options",
    "uuid": "uuid",
}


def _ingest(batch: list[dict[str, Any]], scope_id: str, what: str) -> None:
    """Store all of ``batch`` or nothing: every event is checked before any is written."""
    settings = current_state().settings
    limits, now = Limits.from_settings(settings), utcnow()
    for index, event in enumerate(batch):
        try:
            normalize_event(event, scope_id, limits, now)
        except ValidationError as error:
            if what != "events" and error.field == "distinct_id":
                raise _bad("sessionId", error.message) from error
            if what == "props":
                raise _bad("props", error.message) from error
            name = _EVENT_FIELD_NAMES.get(error.field, error.field)
            raise _bad(f"events[{index}].{name}", error.message) from error
    browser = "Origin" in request.headers or "Sec-Fetch-Site" in request.headers
    dnt = browser and "1" in (request.headers.get("DNT"), request.headers.get("Sec-GPC"))
    ingest_events(
        batch,
        scope_id=scope_id,
        user_agent=request.headers.get("User-Agent") if browser else None,
        do_not_track=dnt,
    )


@_route("/events")
def log_events(payload: dict[str, Any]) -> Response:
    """Log ``events`` for the visitor ``sessionId``. Each event is checked on its own: the
    valid ones are stored and the others listed (``{"accepted", "rejected"}``); when none is
    valid, a 400 naming the first bad field."""
    scope_id = _authorized(payload)
    session = _id(payload, "sessionId")
    raw_events = payload.get("events")
    if not isinstance(raw_events, list):
        raise _bad("events", "must be a list of events")
    limit = current_state().settings["UMETRICS_MAX_BATCH_EVENTS"]
    if len(raw_events) > limit:
        raise _bad("events", f"at most {limit} events per request")
    batch: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        try:
            event = _event(raw, index, session)
            _check(event, scope_id, index)
        except APIError as error:
            detail = error.details[0] if error.details else {"field": f"events[{index}]"}
            rejected.append({"index": index, **detail})
            continue
        batch.append(event)
    if rejected and not batch:  # nothing to store: the first event's error, as a 400
        raise _bad(rejected[0]["field"], rejected[0]["message"])
    if batch:
        _ingest(batch, scope_id, "events")
    if rejected:  # the valid events are stored; the client learns which were not
        return jsonify({"accepted": len(batch), "rejected": rejected})
    return _text("ok")


def _check(event: dict[str, Any], scope_id: str, index: int) -> None:
    """Refuse ``event`` (a 400 naming its open-metrics field) if ingestion would."""
    settings = current_state().settings
    try:
        normalize_event(event, scope_id, Limits.from_settings(settings), utcnow())
    except ValidationError as error:
        if error.field == "distinct_id":
            raise _bad("sessionId", error.message) from error
        name = _EVENT_FIELD_NAMES.get(error.field, error.field)
        raise _bad(f"events[{index}].{name}", error.message) from error


@may_require(IDENTIFY)
@_route("/setUserId")
def set_user_id(payload: dict[str, Any]) -> Response:
    """Link the visitor ``sessionId`` to the user ``uid`` (or ``userId``): a retroactive
    merge, so the visitor's earlier events count under the user."""
    caller = _caller(payload)
    session = _id(payload, "sessionId")
    user_id = _id(payload, "uid", "userId")
    try:
        identify(user_id, anon_id=session, scope_id=caller.scope_id, caller=caller)
    except PermissionRequired as exc:
        raise exc.for_field("sessionId") if exc.field == "anon_id" else exc from None
    return _text("ok")


@may_require(IDENTIFY)
@_route("/setUserProps")
def set_user_props(payload: dict[str, Any]) -> Response:
    """Set ``props`` on the visitor's person (after a merge: the user's)."""
    caller = _caller(payload)
    session = _id(payload, "sessionId")
    props = payload.get("props")
    if props is None or props == {}:
        return _text("ok")  # nothing to set: a no-op, as in open-metrics
    if not isinstance(props, dict):
        raise _bad("props", "must be a JSON object")
    try:
        set_person_properties(session, set=props, scope_id=caller.scope_id, caller=caller)
    except PermissionRequired as exc:
        raise exc.for_field(exc.field.replace("set", "props", 1)) from None
    except ValidationError as exc:
        raise _bad("props", exc.message) from exc
    return _text("ok")


@_route("/setSessionProps")
def set_session_props(payload: dict[str, Any]) -> Response:
    """Set ``props`` on the visitor's current session: stored as an inactive
    ``$session_props`` event (it neither starts nor extends a session), shown in the person
    timeline and merged into that session's ``properties``. Empty or missing ``props``: a
    no-op, as in open-metrics."""
    scope_id = _authorized(payload)
    session = _id(payload, "sessionId")
    props = payload.get("props")
    if props is None or props == {}:
        return _text("ok")
    if not isinstance(props, dict):
        raise _bad("props", "must be a JSON object")
    event = {
        "event": SESSION_PROPS_EVENT,
        "distinct_id": session,
        "properties": props,
        "active": False,
    }
    _ingest([event], scope_id, "props")
    return _text("ok")

"""A local stand-in for Google's Measurement Protocol endpoints, for tests.

``/mp/collect`` answers 204 like Google; ``/debug/mp/collect`` answers 200 with
``{"validationMessages": [...]}`` in Google's documented shape (``fieldPath``, ``description``,
``validationCode``) for the rules the real validation server applies. Every request is recorded,
and :meth:`FakeMeasurementProtocol.fail_next` scripts error statuses for retry tests.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
_RESERVED_EVENTS = {"session_start", "first_visit", "user_engagement", "first_open", "error"}
_RESERVED_PARAMS = {"firebase_conversion"}
#: The item fields Google documents for ecommerce events.
_ITEM_FIELDS = {
    "item_id", "item_name", "affiliation", "coupon", "creative_name", "creative_slot",
    "discount", "index", "item_brand", "item_category", "item_category2", "item_category3",
    "item_category4", "item_category5", "item_list_id", "item_list_name", "item_variant",
    "location_id", "price", "quantity", "promotion_id", "promotion_name",
}  # fmt: skip
_CONSENT_FIELDS = {"ad_user_data", "ad_personalization"}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


def message(path: str, description: str, code: str) -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


def validate(body: Any) -> list[dict[str, str]]:
    """What Google's validation server says about one request body (the rules tests use)."""
    if not isinstance(body, dict):
        return [message("", "Unable to parse Measurement Protocol JSON payload.", "VALUE_INVALID")]
    messages: list[dict[str, str]] = []
    if not body.get("client_id"):
        messages.append(message("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED"))
    events = body.get("events")
    if not isinstance(events, list) or not events:
        messages.append(
            message("events", "Measurement requires at least one event.", "VALUE_REQUIRED")
        )
        return messages
    if len(events) > 25:
        messages.append(
            message(
                "events",
                f"Measurement has [{len(events)}] events which exceeds the maximum of [25].",
                "EXCEEDED_MAX_ENTITIES",
            )
        )
    for index, event in enumerate(events):
        name = str(event.get("name", ""))
        if _NAME.fullmatch(name) is None:
            messages.append(
                message(
                    "events",
                    f"Event at index: [{index}] has invalid name [{name}]. Names must start "
                    "with an alphabetic character and contain only alphanumeric characters "
                    "and underscores.",
                    "NAME_INVALID",
                )
            )
        elif name in _RESERVED_EVENTS or name.startswith(_RESERVED_PREFIXES):
            messages.append(
                message(
                    "events",
                    f"Event at index: [{index}] has name [{name}] which is reserved.",
                    "NAME_RESERVED",
                )
            )
        params = event.get("params") or {}
        if len(params) > 25:
            messages.append(
                message(
                    "events.params",
                    f"Event at index: [{index}] has [{len(params)}] params which exceeds the "
                    "maximum of [25].",
                    "EXCEEDED_MAX_ENTITIES",
                )
            )
        for key, value in params.items():
            messages.extend(_param_messages(index, key, value))
    consent = body.get("consent")
    if consent is not None:
        if not isinstance(consent, dict):
            messages.append(message("consent", "Consent must be an object.", "VALUE_INVALID"))
        else:
            for key, value in consent.items():
                if key not in _CONSENT_FIELDS or value not in ("GRANTED", "DENIED"):
                    messages.append(
                        message(
                            f"consent.{key}",
                            f"Consent [{key}] must be one of [GRANTED, DENIED].",
                            "VALUE_INVALID",
                        )
                    )
    return messages


def _name_messages(path: str, kind: str, name: str) -> list[dict[str, str]]:
    if _NAME.fullmatch(name) is None:
        return [
            message(
                path,
                f"{kind} [{name}] has an invalid name. Names must be at most 40 characters, "
                "start with an alphabetic character and contain only alphanumeric characters "
                "and underscores.",
                "NAME_INVALID",
            )
        ]
    if name.startswith(_RESERVED_PREFIXES) or name in _RESERVED_PARAMS:
        return [message(path, f"{kind} [{name}] has a reserved name.", "NAME_RESERVED")]
    return []


def _value_messages(path: str, index: int, key: str, value: Any) -> list[dict[str, str]]:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return [
            message(
                path,
                f"Event at index: [{index}] has param [{key}] which is not a string or a number.",
                "VALUE_INVALID",
            )
        ]
    if isinstance(value, str) and len(value) > 100:
        return [
            message(
                path,
                f"Event at index: [{index}] has param [{key}] with a value longer than [100] "
                "characters.",
                "VALUE_OUT_OF_BOUNDS",
            )
        ]
    return []


def _param_messages(index: int, key: str, value: Any) -> list[dict[str, str]]:
    path = f"events.params.{key}"
    found = _name_messages(path, "Param", key)
    if found:
        return found
    if key != "items":
        return _value_messages(path, index, key, value)
    if not isinstance(value, list):
        return [message(path, "Items must be an array of objects.", "VALUE_INVALID")]
    if len(value) > 200:
        return [
            message(
                path,
                f"Event at index: [{index}] has [{len(value)}] items which exceeds the maximum "
                "of [200].",
                "EXCEEDED_MAX_ENTITIES",
            )
        ]
    messages: list[dict[str, str]] = []
    for position, item in enumerate(value):
        item_path = f"{path}[{position}]"
        if not isinstance(item, dict):
            messages.append(message(item_path, "Item must be an object.", "VALUE_INVALID"))
            continue
        if not item.get("item_id") and not item.get("item_name"):
            messages.append(
                message(item_path, "Item requires an item_id or an item_name.", "VALUE_REQUIRED")
            )
        custom = [name for name in item if name not in _ITEM_FIELDS]
        if len(custom) > 27:
            messages.append(
                message(
                    item_path,
                    f"Item has [{len(custom)}] custom parameters which exceeds the maximum of "
                    "[27].",
                    "EXCEEDED_MAX_ENTITIES",
                )
            )
        for name, item_value in item.items():
            field_path = f"{item_path}.{name}"
            messages.extend(_name_messages(field_path, "Item param", str(name)))
            messages.extend(
                _value_messages(field_path, index, f"items[{position}].{name}", item_value)
            )
    return messages


class FakeMeasurementProtocol:
    """A threaded HTTP server on 127.0.0.1 (a free port); use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the default writes request lines (with the secret) to stderr."""

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status``."""
        with self._lock:
            self._failures.extend([status] * times)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    handler.command,
                    parts.path,
                    dict(urllib.parse.parse_qsl(parts.query)),
                    dict(handler.headers.items()),
                    body,
                )
            )
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            self._answer(handler, failure, b'{"error": "scripted failure"}')
        elif parts.path == "/mp/collect":
            self._answer(handler, 204, b"")
        elif parts.path == "/debug/mp/collect":
            answer = json.dumps({"validationMessages": validate(body)}).encode()
            self._answer(handler, 200, answer)
        else:
            self._answer(handler, 404, b"")

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        if body:
            handler.send_header("Content-Type", "application/json")
        if status != 204:
            handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if body:
            handler.wfile.write(body)
        handler.close_connection = True

    def __enter__(self) -> FakeMeasurementProtocol:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

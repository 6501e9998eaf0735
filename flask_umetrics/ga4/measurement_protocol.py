"""Forward selected first-party events to GA4 through the Measurement Protocol.

GA4 accepts malformed Measurement Protocol hits with a 2xx and then silently drops them, so every
event is checked here against Google's documented limits before it leaves: an event that breaks
one is skipped and reported with a message naming the field, never dropped without a word.
Requests carry at most 25 events; ``/debug/mp/collect`` answers are parsed so a dry run shows
what Google would reject. The API secret travels in the query string, so every URL that reaches a
log line or an error message is redacted first. Only the standard library is used (urllib).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..db.types import utcnow
from ..errors import UMetricsError, ValidationError
from ..events.validation import to_micros
from .gtag import is_measurement_id

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://www.google-analytics.com"
MAX_EVENTS_PER_REQUEST = 25
MAX_PARAMS_PER_EVENT = 25
MAX_NAME_LENGTH = 40
MAX_STRING_VALUE_LENGTH = 100
#: Google refuses request bodies of 130 kB or more.
MAX_BODY_BYTES = 130_000
#: Events may be backdated at most 72 hours.
MAX_BACKDATE_MICROS = 72 * 3600 * 1_000_000
#: Clock skew tolerated for events stamped slightly in the future.
MAX_FUTURE_SKEW_MICROS = 60 * 1_000_000

RESERVED_PREFIXES = ("google_", "ga_", "firebase_")
#: Event names the Measurement Protocol reserves (Google's reference, "Reserved names").
RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview",
        "ad_click",
        "ad_exposure",
        "ad_impression",
        "ad_query",
        "ad_reward",
        "adunit_exposure",
        "app_background",
        "app_clear_data",
        "app_exception",
        "app_install",
        "app_remove",
        "app_store_refund",
        "app_uninstall",
        "app_update",
        "app_upgrade",
        "dynamic_link_app_open",
        "dynamic_link_app_update",
        "dynamic_link_first_open",
        "error",
        "firebase_campaign",
        "firebase_in_app_message_action",
        "firebase_in_app_message_dismiss",
        "firebase_in_app_message_impression",
        "first_open",
        "first_visit",
        "in_app_purchase",
        "notification_dismiss",
        "notification_foreground",
        "notification_open",
        "notification_receive",
        "notification_send",
        "os_update",
        "session_start",
        "session_start_with_rollout",
        "user_engagement",
    }
)
RESERVED_PARAM_NAMES = frozenset({"firebase_conversion"})
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_REDACTED = "REDACTED"


# -- validation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MPValidationMessage:
    """One problem, in the shape of Google's ``validationMessages`` entries."""

    field_path: str
    description: str
    validation_code: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MPValidationMessage:
        return cls(
            str(data.get("fieldPath", "")),
            str(data.get("description", "")),
            str(data.get("validationCode", "")),
        )

    def to_json(self) -> dict[str, str]:
        return {
            "fieldPath": self.field_path,
            "description": self.description,
            "validationCode": self.validation_code,
        }


class MPEventInvalid(ValidationError):
    """An event GA4 would drop; ``messages`` lists every problem, ``field`` names the first."""

    def __init__(self, messages: Sequence[MPValidationMessage]) -> None:
        first = messages[0]
        super().__init__(first.field_path, first.description)
        self.messages = tuple(messages)


def _name_problem(kind: str, name: str, path: str) -> MPValidationMessage | None:
    if len(name) > MAX_NAME_LENGTH:
        return MPValidationMessage(
            path,
            f"{kind} name {name[:MAX_NAME_LENGTH]!r}… is longer than {MAX_NAME_LENGTH} characters",
            "NAME_INVALID",
        )
    if _NAME.fullmatch(name) is None:
        return MPValidationMessage(
            path,
            f"{kind} name {name!r} must start with a letter and use only letters, digits and "
            "underscores",
            "NAME_INVALID",
        )
    if name.startswith(RESERVED_PREFIXES):
        return MPValidationMessage(
            path,
            f"{kind} name {name!r} uses a reserved prefix ({', '.join(RESERVED_PREFIXES)})",
            "NAME_RESERVED",
        )
    return None


#: Item fields GA4 documents for ecommerce ``items`` (besides up to 27 custom item parameters).
ITEM_FIELDS = frozenset(
    {
        "item_id",
        "item_name",
        "affiliation",
        "coupon",
        "creative_name",
        "creative_slot",
        "discount",
        "index",
        "item_brand",
        "item_category",
        "item_category2",
        "item_category3",
        "item_category4",
        "item_category5",
        "item_list_id",
        "item_list_name",
        "item_variant",
        "location_id",
        "price",
        "promotion_id",
        "promotion_name",
        "quantity",
    }
)
#: Items one event may carry.
MAX_ITEMS_PER_EVENT = 200
#: Custom (undocumented) parameters one item may carry.
MAX_CUSTOM_ITEM_PARAMS = 27
#: The one parameter GA4 takes as a list (of item objects).
ITEMS_PARAM = "items"


def _scalar(value: Any, path: str) -> tuple[Any, MPValidationMessage | None]:
    """``value`` as GA4 takes a parameter value: text or a finite number; booleans become
    ``"true"`` / ``"false"`` as gtag.js sends them. ``None`` means "leave the parameter out"."""
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None, MPValidationMessage(path, "must be a finite number", "VALUE_INVALID")
        return value, None
    if isinstance(value, str):
        if len(value) > MAX_STRING_VALUE_LENGTH:
            return None, MPValidationMessage(
                path,
                f"is {len(value)} characters long; at most {MAX_STRING_VALUE_LENGTH} are allowed",
                "VALUE_OUT_OF_BOUNDS",
            )
        return value, None
    kind = "list" if isinstance(value, (list, tuple)) else type(value).__name__
    return None, MPValidationMessage(
        path, f"must be a string, a number or a boolean, got {kind}", "VALUE_INVALID"
    )


def _clean_item(item: Any, path: str) -> tuple[dict[str, Any] | None, list[MPValidationMessage]]:
    """One ``items`` entry by GA4's item rules: an object with ``item_id`` or ``item_name``,
    documented fields plus at most 27 custom ones, each a valid name and value."""
    if not isinstance(item, Mapping):
        return None, [MPValidationMessage(path, "an item must be an object", "VALUE_INVALID")]
    problems: list[MPValidationMessage] = []
    cleaned: dict[str, Any] = {}
    custom = 0
    for key, value in item.items():
        field_path = f"{path}.{key}"
        if not isinstance(key, str):
            problems.append(
                MPValidationMessage(path, "item field name is not text", "NAME_INVALID")
            )
            continue
        problem = _name_problem("item parameter", key, field_path)
        if problem is not None:
            problems.append(problem)
            continue
        if value is None:
            continue
        scalar, problem = _scalar(value, field_path)
        if problem is not None:
            problems.append(problem)
            continue
        if key not in ITEM_FIELDS:
            custom += 1
            if custom > MAX_CUSTOM_ITEM_PARAMS:
                problems.append(
                    MPValidationMessage(
                        field_path,
                        f"more than {MAX_CUSTOM_ITEM_PARAMS} custom item parameters",
                        "EXCEEDED_MAX_ENTITIES",
                    )
                )
                continue
        cleaned[key] = scalar
    if not any(
        isinstance(cleaned.get(key), str) and cleaned[key] for key in ("item_id", "item_name")
    ):
        problems.append(
            MPValidationMessage(path, "an item needs an item_id or an item_name", "VALUE_REQUIRED")
        )
        return None, problems
    return cleaned, problems


def _clean_items(value: Any) -> tuple[list[dict[str, Any]] | None, list[MPValidationMessage]]:
    path = f"params.{ITEMS_PARAM}"
    if not isinstance(value, (list, tuple)):
        return None, [MPValidationMessage(path, "must be a list of item objects", "VALUE_INVALID")]
    problems: list[MPValidationMessage] = []
    items: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        if index >= MAX_ITEMS_PER_EVENT:
            problems.append(
                MPValidationMessage(
                    path,
                    f"{len(value)} items; at most {MAX_ITEMS_PER_EVENT} are sent",
                    "EXCEEDED_MAX_ENTITIES",
                )
            )
            break
        cleaned, item_problems = _clean_item(item, f"{path}[{index}]")
        problems.extend(item_problems)
        if cleaned is not None:
            items.append(cleaned)
    return (items or None), problems


def clean_params(
    properties: Mapping[str, Any], *, reserved_slots: int = 0
) -> tuple[dict[str, Any], list[MPValidationMessage]]:
    """The parameters GA4 takes from ``properties``, and a message for each one left out.

    A bad parameter costs only itself, never the event: names GA4 refuses, values that are
    neither text nor numbers nor booleans, text over 100 characters and the parameters past the
    25th (``reserved_slots`` of the 25 are kept for parameters the caller adds) are dropped.
    ``None`` values are left out silently; ``items`` is cleaned by GA4's item rules.
    """
    problems: list[MPValidationMessage] = []
    params: dict[str, Any] = {}
    room = MAX_PARAMS_PER_EVENT - reserved_slots
    for key, value in properties.items():
        if not isinstance(key, str):
            problems.append(
                MPValidationMessage("params", f"parameter name {key!r} is not text", "NAME_INVALID")
            )
            continue
        path = f"params.{key}"
        problem = _name_problem("parameter", key, path)
        if problem is None and key in RESERVED_PARAM_NAMES:
            problem = MPValidationMessage(
                path, f"parameter name {key!r} is reserved", "NAME_RESERVED"
            )
        if problem is not None:
            problems.append(problem)
            continue
        if value is None:
            continue
        cleaned: Any
        if key == ITEMS_PARAM:
            cleaned, found = _clean_items(value)
            problems.extend(found)
        else:
            cleaned, problem = _scalar(value, path)
            if problem is not None:
                problems.append(problem)
        if cleaned is None:
            continue
        if len(params) >= room:
            problems.append(
                MPValidationMessage(
                    path,
                    f"past the {room} parameters an event may carry here "
                    f"(GA4 takes {MAX_PARAMS_PER_EVENT})",
                    "EXCEEDED_MAX_ENTITIES",
                )
            )
            continue
        params[key] = cleaned
    return params, problems


def _timestamp_micros(
    timestamp: datetime | int | None, now: datetime | None
) -> tuple[int | None, MPValidationMessage | None]:
    if timestamp is None:
        return None, None
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, datetime)):
        problem = MPValidationMessage(
            "timestamp", "must be a datetime or microseconds since the epoch", "VALUE_INVALID"
        )
        return None, problem
    micros = to_micros(timestamp) if isinstance(timestamp, datetime) else timestamp
    now_micros = to_micros(now or utcnow())
    if micros < now_micros - MAX_BACKDATE_MICROS:
        return micros, MPValidationMessage(
            "timestamp", "is more than 72 hours in the past", "VALUE_OUT_OF_BOUNDS"
        )
    if micros > now_micros + MAX_FUTURE_SKEW_MICROS:
        return micros, MPValidationMessage("timestamp", "is in the future", "VALUE_OUT_OF_BOUNDS")
    return micros, None


def _event_name_problem(event_name: Any) -> MPValidationMessage | None:
    if not isinstance(event_name, str):
        return MPValidationMessage("name", "event name is not text", "NAME_INVALID")
    problem = _name_problem("event", event_name, "name")
    if problem is None and event_name in RESERVED_EVENT_NAMES:
        problem = MPValidationMessage(
            "name", f"event name {event_name!r} is reserved", "NAME_RESERVED"
        )
    return problem


@dataclass(frozen=True)
class PreparedEvent:
    """A Measurement Protocol event and the parameters left out of it (with why)."""

    event: dict[str, Any]
    dropped: tuple[MPValidationMessage, ...] = ()


def prepare_mp_event(
    event_name: str,
    properties: Mapping[str, Any] | None,
    timestamp: datetime | int | None,
    *,
    now: datetime | None = None,
    extra_params: Mapping[str, Any] | None = None,
) -> PreparedEvent:
    """A Measurement Protocol event GA4 accepts, leaving out (and reporting) bad parameters.

    Only what makes the whole event unusable raises :class:`MPEventInvalid`: a bad or reserved
    event name, a timestamp outside GA4's 72 hours. ``extra_params`` (e.g. ``session_id``,
    ``engagement_time_msec``) are added after the properties and always fit.
    """
    problems: list[MPValidationMessage] = []
    problem = _event_name_problem(event_name)
    if problem is not None:
        problems.append(problem)
    micros, problem = _timestamp_micros(timestamp, now)
    if problem is not None:
        problems.append(problem)
    if problems:
        raise MPEventInvalid(problems)
    extra = dict(extra_params or {})
    own = {key: value for key, value in (properties or {}).items() if key not in extra}
    params, dropped = clean_params(own, reserved_slots=len(extra))
    params.update(extra)
    event: dict[str, Any] = {"name": event_name, "params": params}
    if micros is not None:
        event["timestamp_micros"] = micros
    return PreparedEvent(event, tuple(dropped))


def to_mp_event(
    event_name: str,
    properties: Mapping[str, Any] | None,
    timestamp: datetime | int | None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One Measurement Protocol event: ``{"name", "params", "timestamp_micros"?}``, strictly.

    ``timestamp`` is a datetime or microseconds since the epoch (how events are stored); it must
    lie within the 72 hours GA4 accepts. Raises :class:`MPEventInvalid` listing every problem,
    parameters included (:func:`prepare_mp_event` drops bad parameters instead).
    """
    problems: list[MPValidationMessage] = []
    problem = _event_name_problem(event_name)
    if problem is not None:
        problems.append(problem)
    params, dropped = clean_params(dict(properties or {}))
    problems.extend(dropped)
    micros, problem = _timestamp_micros(timestamp, now)
    if problem is not None:
        problems.append(problem)
    if problems:
        raise MPEventInvalid(problems)
    event: dict[str, Any] = {"name": event_name, "params": params}
    if micros is not None:
        event["timestamp_micros"] = micros
    return event


# -- batching ----------------------------------------------------------------------------------


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def build_payloads(
    client_id: str,
    events: Iterable[Mapping[str, Any]],
    *,
    user_id: str | None = None,
    timestamp_micros: int | None = None,
    consent: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Request bodies for one client: at most 25 events and under 130 kB each, order kept.

    ``events`` are :func:`to_mp_event` results. ``timestamp_micros`` is the request-level time
    (events may carry their own, which wins); ``consent`` is the body's ``consent`` object
    (``ad_user_data`` / ``ad_personalization``: ``GRANTED`` or ``DENIED``).
    """
    if not isinstance(client_id, str) or not client_id:
        raise ValidationError("client_id", "is required")
    base: dict[str, Any] = {"client_id": client_id}
    if user_id is not None:
        base["user_id"] = user_id
    if consent is not None:
        base["consent"] = dict(consent)
    if timestamp_micros is not None:
        base["timestamp_micros"] = timestamp_micros
    empty_size = _json_size({**base, "events": []})
    payloads: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    size = empty_size
    for event in events:
        event_size = _json_size(event) + (1 if batch else 0)
        if batch and (len(batch) == MAX_EVENTS_PER_REQUEST or size + event_size >= MAX_BODY_BYTES):
            payloads.append({**base, "events": batch})
            batch, size = [], empty_size
            event_size -= 1
        if empty_size + event_size >= MAX_BODY_BYTES:
            raise ValidationError("events", "one event alone exceeds the 130 kB request limit")
        batch.append(dict(event))
        size += event_size
    if batch:
        payloads.append({**base, "events": batch})
    return payloads


# -- sending -----------------------------------------------------------------------------------


class MeasurementProtocolError(UMetricsError):
    """Some payloads could not be delivered; the message holds redacted details only."""


def redact_url(url: str) -> str:
    """``url`` with the ``api_secret`` query value replaced, for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    query = [
        (key, _REDACTED if key == "api_secret" else value)
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _scrub(text: str, secret: str) -> str:
    """Remove the secret (raw or URL-encoded) from free text such as an OS error message."""
    for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
        if form:
            text = text.replace(form, _REDACTED)
    return text


@dataclass(frozen=True)
class PayloadOutcome:
    """What happened to one request body."""

    index: int
    events: int
    attempts: int
    status: int | None
    ok: bool
    error: str | None = None
    validation_messages: tuple[MPValidationMessage, ...] = ()


@dataclass
class SendReport:
    """Per-payload outcomes of one :func:`send` call, with totals."""

    debug: bool
    outcomes: list[PayloadOutcome] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """HTTP requests made, retries included."""
        return sum(outcome.attempts for outcome in self.outcomes)

    @property
    def events_sent(self) -> int:
        return sum(outcome.events for outcome in self.outcomes if outcome.ok)

    @property
    def events_failed(self) -> int:
        return sum(outcome.events for outcome in self.outcomes if not outcome.ok)

    @property
    def validation_messages(self) -> list[MPValidationMessage]:
        return [message for outcome in self.outcomes for message in outcome.validation_messages]

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)

    def raise_for_failures(self) -> None:
        """Raise :class:`MeasurementProtocolError` when any payload failed (details redacted)."""
        failed = [outcome for outcome in self.outcomes if not outcome.ok]
        if failed:
            details = "; ".join(
                f"payload {o.index}: "
                + (o.error or f"{len(o.validation_messages)} validation messages")
                for o in failed
            )
            raise MeasurementProtocolError(
                f"{len(failed)} of {len(self.outcomes)} Measurement Protocol payloads failed: "
                f"{details}"
            )


def collect_url(endpoint: str, measurement_id: str, api_secret: str, *, debug: bool) -> str:
    """``{endpoint}/mp/collect`` (or ``/debug/mp/collect``) with the two query parameters."""
    path = "/debug/mp/collect" if debug else "/mp/collect"
    query = urllib.parse.urlencode({"measurement_id": measurement_id, "api_secret": api_secret})
    return f"{endpoint.rstrip('/')}{path}?{query}"


def _post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.read()


def _parse_validation(body: bytes) -> tuple[MPValidationMessage, ...] | None:
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    messages = answer.get("validationMessages", [])
    if not isinstance(messages, list):
        return None
    return tuple(MPValidationMessage.from_json(m) for m in messages if isinstance(m, dict))


def _send_one(
    index: int,
    payload: Mapping[str, Any],
    url: str,
    secret: str,
    *,
    debug: bool,
    timeout: float,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> PayloadOutcome:
    body = json.dumps(payload, separators=(",", ":")).encode()
    events = len(payload.get("events", []))
    shown = redact_url(url)
    attempt = 0
    while True:
        attempt += 1
        logger.debug(
            "GA4 Measurement Protocol POST %s: payload %d, %d events, attempt %d",
            shown,
            index,
            events,
            attempt,
        )
        status: int | None
        error: str | None
        try:
            status, answer = _post(url, body, timeout)
        except (OSError, http.client.HTTPException) as exc:
            status, answer = None, b""
            error = _scrub(f"no answer ({type(exc).__name__}: {exc})", secret)
        else:
            error = None if 200 <= status < 300 else f"HTTP {status}"
        retryable = status is None or status >= 500
        if error is None:
            messages: tuple[MPValidationMessage, ...] = ()
            if debug:
                parsed = _parse_validation(answer)
                if parsed is None:
                    error = "unreadable validation answer"
                    retryable = False
                else:
                    messages = parsed
            if error is None:
                logger.debug("GA4 Measurement Protocol payload %d answered %s", index, status)
                return PayloadOutcome(index, events, attempt, status, not messages, None, messages)
        if retryable and attempt <= retries:
            delay = backoff * 2 ** (attempt - 1)
            logger.warning(
                "GA4 Measurement Protocol POST %s: payload %d failed (%s); retrying in %.1fs",
                shown,
                index,
                error,
                delay,
            )
            sleep(delay)
            continue
        logger.warning(
            "GA4 Measurement Protocol POST %s: payload %d failed (%s) after %d attempts",
            shown,
            index,
            error,
            attempt,
        )
        return PayloadOutcome(index, events, attempt, status, False, error)


def send(
    measurement_id: str,
    api_secret: str,
    payloads: Sequence[Mapping[str, Any]],
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    debug: bool = False,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """POST each payload; 5xx answers and network errors are retried ``retries`` times, 4xx never.

    With ``debug`` the validation server is used and its ``validationMessages`` are parsed into
    the report (a payload with messages counts as failed). Failures are reported, not raised.
    """
    if not is_measurement_id(measurement_id):
        raise ValidationError("measurement_id", "must be a GA4 measurement id (G-…)")
    if not isinstance(api_secret, str) or not api_secret:
        raise ValidationError("api_secret", "is required")
    if not endpoint.startswith(("https://", "http://")):
        raise ValidationError("endpoint", "must be an http(s) URL")
    if retries < 0:
        raise ValidationError("retries", "must not be negative")
    url = collect_url(endpoint, measurement_id, api_secret, debug=debug)
    report = SendReport(debug=debug)
    for index, payload in enumerate(payloads):
        report.outcomes.append(
            _send_one(
                index,
                payload,
                url,
                api_secret,
                debug=debug,
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                sleep=sleep,
            )
        )
    return report


# -- forwarding stored events ------------------------------------------------------------------


class _Settings(Protocol):
    def __getitem__(self, name: str, /) -> Any: ...


def parse_event_names(value: str | Iterable[str]) -> frozenset[str]:
    """``UMETRICS_GA4_FORWARD_EVENTS`` (comma-separated) as a set of names."""
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(name.strip() for name in items if name.strip())


def pseudonymous_client_id(scope_id: str, distinct_id: str) -> str:
    """A stable GA4 client id that does not reveal the first-party distinct id."""
    digest = hashlib.sha256(f"{scope_id}\x00{distinct_id}".encode()).hexdigest()
    return digest[:32]


#: gtag.js's client id: two dot-separated numbers (random, first-visit time), as in ``_ga``.
_GTAG_CLIENT_ID = re.compile(r"[0-9]{1,20}\.[0-9]{1,20}")
#: The ``_ga`` cookie: ``GA1.<domain depth>.<client id>``.
_GA_COOKIE = re.compile(r"GA[0-9]\.[0-9]+\.([0-9]{1,20}\.[0-9]{1,20})")


def gtag_client_id(value: object) -> str | None:
    """The gtag client id in a ``_ga`` cookie value or a bare client id; None if neither."""
    if not isinstance(value, str):
        return None
    if _GTAG_CLIENT_ID.fullmatch(value):
        return value
    match = _GA_COOKIE.fullmatch(value)
    return match.group(1) if match else None


#: Consent Mode answers the body's ``consent`` object carries.
GRANTED, DENIED = "GRANTED", "DENIED"
#: What this extension sends without an advertising choice: the gtag snippet's defaults.
DEFAULT_CONSENT = {"ad_user_data": DENIED, "ad_personalization": DENIED}
#: ``engagement_time_msec`` sent when an event does not carry its own (GA4 needs > 0 for
#: Realtime and engaged sessions).
DEFAULT_ENGAGEMENT_MSEC = 1


@dataclass(frozen=True)
class SkippedEvent:
    """An event that failed validation and was not sent (or, in ``adjusted``, was sent
    without the parameters ``messages`` name)."""

    index: int
    uuid: str | None
    event: str
    messages: tuple[MPValidationMessage, ...]


@dataclass
class ForwardResult:
    """Counts of one :meth:`MeasurementProtocolForwarder.forward` call."""

    sent: int = 0
    skipped_invalid: int = 0
    failed: int = 0
    not_selected: int = 0
    skipped: list[SkippedEvent] = field(default_factory=list)
    adjusted: list[SkippedEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    report: SendReport | None = None
    #: Per payload, in ``report.outcomes`` order: the input indexes of its events.
    payload_events: list[list[int]] = field(default_factory=list)


def _engagement(properties: Mapping[str, Any]) -> int:
    value = properties.get("engagement_time_msec")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DEFAULT_ENGAGEMENT_MSEC
    if math.isfinite(value) and value >= 1:
        return int(value)
    return DEFAULT_ENGAGEMENT_MSEC


def _session_param(value: object) -> str | int | None:
    """A stored session id as GA4's ``session_id`` (text up to 100 characters)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    if not text:
        return None
    if len(text) > MAX_STRING_VALUE_LENGTH:
        return hashlib.sha256(text.encode()).hexdigest()[:32]
    return text


class MeasurementProtocolForwarder:
    """Validates, batches and sends stored first-party events whose name is selected.

    ``measurement_id_for_scope`` / ``api_secret_for_scope`` look up a scope's GA4 stream and
    Measurement Protocol secret (``None`` = not connected); they are asked only when there is
    something to send. Events are mappings with ``event``, ``distinct_id``, ``ts`` (microseconds)
    and ``properties``, and optionally ``uuid``, ``session_id`` (sent as GA4's ``session_id``),
    ``ga_client_id`` (the visitor's gtag ``_ga`` client id, used as ``client_id`` so browser and
    server hits are one user; else the pseudonymous id) and ``consent`` (the body's ``consent``
    object; default :data:`DEFAULT_CONSENT`). Every event carries ``engagement_time_msec``.
    """

    def __init__(
        self,
        *,
        measurement_id_for_scope: Callable[[str], str | None],
        api_secret_for_scope: Callable[[str], str | None],
        event_names: str | Iterable[str],
        endpoint: str = DEFAULT_ENDPOINT,
        debug: bool = False,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        client_id_for: Callable[[str, str], str] = pseudonymous_client_id,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._measurement_id_for_scope = measurement_id_for_scope
        self._api_secret_for_scope = api_secret_for_scope
        self.event_names = parse_event_names(event_names)
        self.endpoint = endpoint
        self.debug = debug
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._client_id_for = client_id_for
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: _Settings,
        *,
        measurement_id_for_scope: Callable[[str], str | None],
        api_secret_for_scope: Callable[[str], str | None],
        **options: Any,
    ) -> MeasurementProtocolForwarder:
        """A forwarder for ``UMETRICS_GA4_FORWARD_EVENTS`` and ``UMETRICS_GA4_MP_ENDPOINT``."""
        return cls(
            measurement_id_for_scope=measurement_id_for_scope,
            api_secret_for_scope=api_secret_for_scope,
            event_names=settings["UMETRICS_GA4_FORWARD_EVENTS"],
            endpoint=settings["UMETRICS_GA4_MP_ENDPOINT"],
            **options,
        )

    def __repr__(self) -> str:
        names = ",".join(sorted(self.event_names))
        return f"<MeasurementProtocolForwarder events={names!r} endpoint={self.endpoint!r}>"

    def selects(self, event_name: str) -> bool:
        return event_name in self.event_names

    def forward(self, scope_id: str, events: Iterable[Mapping[str, Any]]) -> ForwardResult:
        """Send the selected, valid events of ``scope_id``; never raises for delivery problems.

        One request body per GA4 client (and consent): GA4 reads ``client_id`` per request.
        """
        result = ForwardResult()
        now = self._clock()
        groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, dict[str, Any]]]]
        groups = {}
        for index, row in enumerate(events):
            name = row["event"]
            if not self.selects(name):
                result.not_selected += 1
                continue
            properties = dict(row.get("properties") or {})
            extra: dict[str, Any] = {}
            session = _session_param(row.get("session_id"))
            if session is not None:
                extra["session_id"] = session
            extra["engagement_time_msec"] = _engagement(properties)
            try:
                prepared = prepare_mp_event(
                    name, properties, row.get("ts"), now=now, extra_params=extra
                )
            except MPEventInvalid as exc:
                result.skipped_invalid += 1
                result.skipped.append(SkippedEvent(index, row.get("uuid"), name, exc.messages))
                logger.info(
                    "GA4 forwarding skipped event %d (%s): %s",
                    index,
                    name,
                    "; ".join(f"{m.field_path}: {m.description}" for m in exc.messages),
                )
                continue
            if prepared.dropped:
                result.adjusted.append(SkippedEvent(index, row.get("uuid"), name, prepared.dropped))
            client_id = gtag_client_id(row.get("ga_client_id")) or self._client_id_for(
                scope_id, str(row["distinct_id"])
            )
            consent = tuple(sorted(dict(row.get("consent") or DEFAULT_CONSENT).items()))
            groups.setdefault((client_id, consent), []).append((index, prepared.event))
        pending = sum(len(batch) for batch in groups.values())
        if not pending:
            return result
        measurement_id = self._measurement_id_for_scope(scope_id)
        api_secret = self._api_secret_for_scope(scope_id)
        if not is_measurement_id(measurement_id) or not api_secret:
            result.failed += pending
            result.errors.append(
                f"scope {scope_id!r} has no GA4 measurement id or Measurement Protocol secret"
            )
            logger.warning("GA4 forwarding: %s", result.errors[-1])
            return result
        assert measurement_id is not None
        payloads: list[dict[str, Any]] = []
        for (client_id, consent), batch in groups.items():
            indexes = [index for index, _ in batch]
            built = build_payloads(client_id, [e for _, e in batch], consent=dict(consent))
            for payload in built:
                count = len(payload["events"])
                result.payload_events.append(indexes[:count])
                indexes = indexes[count:]
            payloads.extend(built)
        report = send(
            measurement_id,
            api_secret,
            payloads,
            endpoint=self.endpoint,
            debug=self.debug,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            sleep=self._sleep,
        )
        result.report = report
        result.sent += report.events_sent
        result.failed += report.events_failed
        result.errors.extend(
            f"payload {o.index}: {o.error}" for o in report.outcomes if o.error is not None
        )
        return result

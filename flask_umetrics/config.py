"""Configuration: every ``UMETRICS_*`` key, its default, and where a value may come from.

Precedence: explicit ``app.config`` > environment > INI file > default.
The resolved value is written back with ``app.config.setdefault`` so the host can read it.
Secrets (cookie keys, encryption keys, OAuth client secret) are never config keys: they are
read from the environment by the feature that needs them.
"""

from __future__ import annotations

import configparser
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigurationError


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected a boolean (true/false, yes/no, 1/0, on/off)")


def _int_at_least(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        number = int(str(value).strip()) if not isinstance(value, int) else value
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")
    number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    if not number >= 0 or number == float("inf"):
        raise ValueError("must be a finite number of seconds, at least 0")
    return number


def _rate_limits(value: Any) -> str:
    """Flask-Limiter limit strings (``100 per minute;1000/hour``), checked at start-up."""
    from limits import parse_many

    text = str(value).strip()
    try:
        parse_many(text)
    except ValueError as exc:
        raise ValueError(f"is not a rate limit like '100 per minute': {exc}") from None
    return text


def _float_at_least(minimum: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else value
        if not math.isfinite(number) or number < minimum:
            raise ValueError(f"must be a number of at least {minimum}")
        return float(number)

    return parse


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _str(value: Any) -> str:
    return str(value).strip()


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _url_prefix(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not text.startswith("/"):
        raise ValueError("must start with '/'")
    return text


def _mount_path(value: Any) -> str | None:
    """A URL path to mount routes at: ``/a/b`` (``/`` is the root); empty or None: default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not text.startswith("/") or any(c in text for c in "?#<> \\"):
        raise ValueError("must be a URL path starting with '/', e.g. /v1")
    return text.rstrip("/")


def _timezone(value: Any) -> str:
    text = str(value).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {text!r}") from exc
    return text


SCOPE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def _scope_id(value: Any) -> str:
    text = str(value).strip()
    if not SCOPE_ID_PATTERN.match(text):
        raise ValueError("must be 1-64 characters of letters, digits, '_', '.', ':' or '-'")
    return text


def _scope_list(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [_scope_id(item) for item in items if str(item).strip()]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` as a browser writes it in ``Origin``: lower case, no default
    port. Raises ValueError for anything that is not exactly an http(s) origin."""
    raw = text.strip()
    parts = urlsplit(raw.removesuffix("/"))
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{raw!r} is not an origin like https://app.example.com")
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc or "*" in raw:
        raise ValueError(
            f"{raw!r} is not an origin: scheme://host[:port] only, no path, wildcard or user"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{raw!r} has an invalid port") from exc
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _origin_list(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
    return list(dict.fromkeys(normalize_origin(str(item)) for item in items if str(item).strip()))


def _schedule(value: Any) -> str:
    # Imported lazily: parsing a schedule needs APScheduler's trigger classes.
    from .scheduler.schedules import Schedule

    text = str(value).strip()
    if text and text.lower() != "off":
        Schedule.parse(text, "UTC")
    return "" if text.lower() == "off" else text


def _cluster_name(value: Any) -> str | None:
    text = _optional_str(value)
    if text is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", text):
        raise ValueError("must be a ClickHouse cluster name (letters, digits, '_', '.', '-')")
    return text


@dataclass(frozen=True)
class ConfigKey:
    """One ``UMETRICS_*`` setting and where it may be written in the INI file."""

    name: str
    section: str
    option: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    # [env]
    ConfigKey(
        "UMETRICS_DATABASE_URL",
        "env",
        "database_url",
        None,
        _optional_str,
        "SQLAlchemy URL of the umetrics database when no Flask-SQLAlchemy `db` is passed. "
        "Default: `sqlite:///<instance_path>/umetrics.db`.",
    ),
    ConfigKey(
        "UMETRICS_SQLALCHEMY_BIND",
        "env",
        "sqlalchemy_bind",
        None,
        _optional_str,
        "Bind key of the host's Flask-SQLAlchemy `db` to use (default: its main engine).",
    ),
    ConfigKey(
        "UMETRICS_AUTO_MIGRATE",
        "env",
        "auto_migrate",
        False,
        _parse_bool,
        "Apply pending migrations during `init_app` (handy for small apps and tests; "
        "production should run `flask umetrics db upgrade`).",
    ),
    ConfigKey(
        "UMETRICS_URL_PREFIX",
        "env",
        "url_prefix",
        "/umetrics",
        _url_prefix,
        "URL prefix of the REST API (`{prefix}/api`) and the dashboard (`{prefix}/admin`).",
    ),
    ConfigKey(
        "UMETRICS_ENABLE_API",
        "env",
        "enable_api",
        True,
        _parse_bool,
        "Register the REST blueprint.",
    ),
    ConfigKey(
        "UMETRICS_ENABLE_ADMIN",
        "env",
        "enable_admin",
        True,
        _parse_bool,
        "Register the dashboard at `{prefix}/admin/` and the browser client at "
        "`{prefix}/static/umetrics.js`.",
    ),
    ConfigKey(
        "UMETRICS_ADMIN_LOGIN_URL",
        "env",
        "admin_login_url",
        None,
        _optional_str,
        "Where the dashboard sends visitors who are not logged in (with `?next=`); unset: a "
        "401 page.",
    ),
    ConfigKey(
        "UMETRICS_MAX_BODY_BYTES",
        "env",
        "max_body_bytes",
        1_048_576,
        _int_at_least(1024),
        "Largest request body the REST API reads; larger ones get 413.",
    ),
    ConfigKey(
        "UMETRICS_RETRY_AFTER_SECONDS",
        "env",
        "retry_after_seconds",
        5,
        _int_at_least(1),
        "`Retry-After` of the 503 `database_unavailable` answer a REST request gets while the "
        "database is down or unreachable (clients retry the same batch; uuids make it safe).",
    ),
    ConfigKey(
        "UMETRICS_MAX_REPORT_DAYS",
        "env",
        "max_report_days",
        3660,
        _int_at_least(1),
        "Longest range (`date_to - date_from`, in days) a report accepts; longer ones get 400 "
        "naming `date_from`.",
    ),
    ConfigKey(
        "UMETRICS_MAX_REPORT_BUCKETS",
        "env",
        "max_report_buckets",
        5000,
        _int_at_least(1),
        "Most calendar buckets (hours, days, weeks, months) one report series may have; more "
        "get 400 naming `interval` (or `period`). Breakdowns and retention may hold at most "
        "20 times this many cells in all.",
    ),
    ConfigKey(
        "UMETRICS_QUERY_TIMEOUT_SECONDS",
        "env",
        "query_timeout_seconds",
        30,
        _seconds,
        "Statement timeout of report queries (not ingestion); a report that runs longer "
        "answers 503 `query_timeout` with `Retry-After`. 0 = no timeout.",
    ),
    ConfigKey(
        "UMETRICS_RATELIMIT_ENABLED",
        "env",
        "ratelimit_enabled",
        True,
        _parse_bool,
        "Rate-limit the public endpoints (events, identify, flags, consent, compat ingest) per "
        "client IP and per API key with Flask-Limiter; past a limit they answer 429.",
    ),
    ConfigKey(
        "UMETRICS_RATELIMIT_STORAGE_URI",
        "env",
        "ratelimit_storage_uri",
        "memory://",
        _str,
        "Where the rate-limit counters live: `memory://` (per process) or a shared store such "
        "as `redis://127.0.0.1:6379` (needs the `redis` package) so several workers share one "
        "budget.",
    ),
    ConfigKey(
        "UMETRICS_RATELIMIT_INGEST",
        "env",
        "ratelimit_ingest",
        "600 per minute",
        _rate_limits,
        "Limit per client IP on the ingestion endpoints (`/api/events`, `/api/identify`, togo "
        "and open-metrics writes); `;` separates several limits.",
    ),
    ConfigKey(
        "UMETRICS_RATELIMIT_PUBLIC",
        "env",
        "ratelimit_public",
        "600 per minute",
        _rate_limits,
        "Limit per client IP on the anonymous endpoints (`/api/flags`, `/api/consent`).",
    ),
    ConfigKey(
        "UMETRICS_RATELIMIT_PER_KEY",
        "env",
        "ratelimit_per_key",
        "6000 per minute",
        _rate_limits,
        "Limit per API key (all client IPs together) on the ingestion endpoints: what one "
        "leaked or public write key can send.",
    ),
    ConfigKey(
        "UMETRICS_ENABLE_TOGO_API",
        "env",
        "enable_togo_api",
        False,
        _parse_bool,
        "Serve togo analytics' REST shapes under `{prefix}/api/analytics/...`.",
    ),
    ConfigKey(
        "UMETRICS_ENABLE_OPENMETRICS_API",
        "env",
        "enable_openmetrics_api",
        False,
        _parse_bool,
        "Serve open-metrics' `/v1/...` API under `{prefix}/v1/...`.",
    ),
    ConfigKey(
        "UMETRICS_TOGO_API_PATH",
        "env",
        "togo_api_path",
        None,
        _mount_path,
        "Where togo's routes are served (default `{prefix}/api/analytics`); `/api/analytics` "
        "serves them where unmodified togo clients call them.",
    ),
    ConfigKey(
        "UMETRICS_OPENMETRICS_PATH",
        "env",
        "openmetrics_path",
        None,
        _mount_path,
        "Where open-metrics' routes are served (default `{prefix}/v1`); `/v1` serves them at "
        "the root, where open-metrics' node client (which drops its server URL's path) calls.",
    ),
    ConfigKey(
        "UMETRICS_OPENMETRICS_KEY",
        "env",
        "openmetrics_key",
        None,
        _optional_str,
        "An `openmetrics` key (`flask umetrics keys create --permission openmetrics`) that "
        "open-metrics' routes act with when a request carries no key: its unmodified clients can "
        "send neither a header nor `?key=`. Public, like the key: it writes open-metrics calls "
        "into the key's scope only.",
    ),
    ConfigKey(
        "UMETRICS_API_KEY_CACHE_SECONDS",
        "env",
        "api_key_cache_seconds",
        10,
        _int_at_least(0),
        "How long a process trusts an API key it has verified (saves a query per request); "
        "a revocation reaches other processes within this time. 0 = check every request.",
    ),
    ConfigKey(
        "UMETRICS_DEFAULT_SCOPE",
        "env",
        "default_scope",
        "default",
        _scope_id,
        "Scope used when a call or request names none.",
    ),
    ConfigKey(
        "UMETRICS_TIMEZONE",
        "env",
        "timezone",
        "UTC",
        _timezone,
        "IANA time zone of calendar buckets and cron schedules.",
    ),
    ConfigKey(
        "UMETRICS_SESSION_TIMEOUT",
        "env",
        "session_timeout",
        1800,
        _int_at_least(1),
        "Seconds of inactivity that split two sessions.",
    ),
    ConfigKey(
        "UMETRICS_SCHEDULER",
        "env",
        "scheduler",
        "off",
        _choice("off", "inprocess"),
        "`inprocess` runs the scheduled jobs inside the web processes (one leader elected "
        "through the database); `off` leaves them to `flask umetrics scheduler`.",
    ),
    ConfigKey(
        "UMETRICS_SCHEDULER_LEASE_SECONDS",
        "env",
        "scheduler_lease_seconds",
        60,
        _int_at_least(5),
        "How long a scheduler leadership or a job claim lasts without renewal; a crashed "
        "leader is replaced after at most this long.",
    ),
    ConfigKey(
        "UMETRICS_MAX_BATCH_EVENTS",
        "env",
        "max_batch_events",
        1000,
        _int_at_least(1),
        "Most events one ingestion request may carry.",
    ),
    ConfigKey(
        "UMETRICS_MAX_EVENT_NAME_LENGTH",
        "env",
        "max_event_name_length",
        200,
        _int_at_least(1),
        "Longest event name accepted (at most 200).",
    ),
    ConfigKey(
        "UMETRICS_MAX_PROPERTIES_BYTES",
        "env",
        "max_properties_bytes",
        32768,
        _int_at_least(64),
        "Largest JSON size of one event's or person's properties.",
    ),
    ConfigKey(
        "UMETRICS_MAX_PROPERTIES_DEPTH",
        "env",
        "max_properties_depth",
        5,
        _int_at_least(1),
        "Deepest nesting of objects and lists in properties.",
    ),
    ConfigKey(
        "UMETRICS_MAX_EVENT_AGE_DAYS",
        "env",
        "max_event_age_days",
        400,
        _int_at_least(0),
        "Events older than this are refused at ingestion (0 = any age; imports ignore it).",
    ),
    ConfigKey(
        "UMETRICS_MAX_EVENT_FUTURE_SECONDS",
        "env",
        "max_event_future_seconds",
        3600,
        _int_at_least(0),
        "How far in the future (clock skew) an event timestamp may be.",
    ),
    ConfigKey(
        "UMETRICS_TRACK_SYNC",
        "env",
        "track_sync",
        False,
        _parse_bool,
        "`track()` writes each event at once instead of buffering (scripts, tests).",
    ),
    ConfigKey(
        "UMETRICS_TRACK_BUFFER_SIZE",
        "env",
        "track_buffer_size",
        100,
        _int_at_least(1),
        "Events tracked outside requests are written in batches of this size ...",
    ),
    ConfigKey(
        "UMETRICS_TRACK_FLUSH_SECONDS",
        "env",
        "track_flush_seconds",
        2,
        _int_at_least(1),
        "... or after this many seconds, whichever comes first.",
    ),
    ConfigKey(
        "UMETRICS_FILTER_BOTS",
        "env",
        "filter_bots",
        True,
        _parse_bool,
        "Drop events whose user agent is a known crawler (they are counted, not stored).",
    ),
    ConfigKey(
        "UMETRICS_BROWSER_WRITE_KEY",
        "env",
        "browser_write_key",
        None,
        _optional_str,
        "Ingest key of the default scope written into pages by `{{ umetrics_snippet() }}` for "
        "the browser client (public by nature: it writes events and links visitors that are not "
        "identified yet to users, and cannot rewrite identified persons).",
    ),
    ConfigKey(
        "UMETRICS_ALLOWED_ORIGINS",
        "env",
        "allowed_origins",
        [],
        _origin_list,
        "Other origins (`https://app.example.com`, comma-separated) whose pages may use the "
        "browser endpoints (events, identify, flags, consent, compat ingestion) through CORS "
        "with credentials, and whose cookie-authenticated writes are not refused as cross-site. "
        "Default: this site's own origin only.",
    ),
    ConfigKey(
        "UMETRICS_RESPECT_DNT",
        "env",
        "respect_dnt",
        True,
        _parse_bool,
        "Drop browser events sent with `DNT: 1` or `Sec-GPC: 1` (counted, not stored).",
    ),
    # [stats]
    ConfigKey(
        "UMETRICS_SNAPSHOT_SCOPES",
        "stats",
        "snapshot_scopes",
        [],
        _scope_list,
        "Comma-separated scopes the scheduler snapshots (default: the default scope).",
    ),
    ConfigKey(
        "UMETRICS_SNAPSHOT_SCHEDULE",
        "stats",
        "snapshot_schedule",
        "0 * * * *",
        _schedule,
        "When collectors run: a crontab line (`0 * * * *`), `every 15m` (s/m/h/d), or `off`.",
    ),
    ConfigKey(
        "UMETRICS_BUILTIN_COLLECTORS",
        "stats",
        "builtin_collectors",
        True,
        _parse_bool,
        "Register the event-fed collectors `events.dau`, `events.wau`, `events.mau`, "
        "`events.events_today` and `events.new_persons_today`.",
    ),
    ConfigKey(
        "UMETRICS_STAT_SERIES_MAX_LIMIT",
        "stats",
        "series_max_limit",
        1000,
        _int_at_least(1),
        "Largest `limit` a stat series request may ask for.",
    ),
    # [retention]
    ConfigKey(
        "UMETRICS_PRUNE_SCHEDULE",
        "retention",
        "prune_schedule",
        "30 3 * * *",
        _schedule,
        "When retention pruning runs (crontab, `every ...`, or `off`).",
    ),
    ConfigKey(
        "UMETRICS_PRUNE_BATCH_SIZE",
        "retention",
        "batch_size",
        5000,
        _int_at_least(1),
        "Rows deleted per statement while pruning.",
    ),
    ConfigKey(
        "UMETRICS_RETENTION_STAT_READINGS_DAYS",
        "retention",
        "stat_readings_days",
        730,
        _int_at_least(0),
        "Days stat readings are kept (0 = forever).",
    ),
    ConfigKey(
        "UMETRICS_RETENTION_EVENTS_DAYS",
        "retention",
        "events_days",
        730,
        _int_at_least(0),
        "Days events are kept (0 = forever).",
    ),
    ConfigKey(
        "UMETRICS_RETENTION_EXPOSURES_DAYS",
        "retention",
        "exposures_days",
        730,
        _int_at_least(0),
        "Days experiment exposures are kept (0 = forever); results only count kept exposures.",
    ),
    ConfigKey(
        "UMETRICS_RETENTION_GA4_CACHE_DAYS",
        "retention",
        "ga4_cache_days",
        30,
        _int_at_least(0),
        "Days cached GA4 report answers are kept (0 = forever); stale answers serve quota errors.",
    ),
    ConfigKey(
        "UMETRICS_RETENTION_COLLECTOR_RUNS_DAYS",
        "retention",
        "collector_runs_days",
        90,
        _int_at_least(0),
        "Days snapshot and collector run records are kept (0 = forever).",
    ),
    ConfigKey(
        "UMETRICS_RETENTION_JOB_RUNS_DAYS",
        "retention",
        "job_runs_days",
        90,
        _int_at_least(0),
        "Days scheduler job run records are kept (0 = forever).",
    ),
    # [ab_cookie]
    ConfigKey(
        "UMETRICS_COOKIE_NAME",
        "ab_cookie",
        "name",
        "umetrics_consent",
        _str,
        "Name of the encrypted consent / assignment cookie.",
    ),
    ConfigKey(
        "UMETRICS_COOKIE_MAX_AGE_DAYS",
        "ab_cookie",
        "max_age_days",
        365,
        _int_at_least(1),
        "Lifetime of the consent cookie in days.",
    ),
    ConfigKey(
        "UMETRICS_CONSENT_REQUIRED",
        "ab_cookie",
        "consent_required",
        True,
        _parse_bool,
        "Without a consent cookie, treat visitors as not consenting (nothing stored, no cookie). "
        "Set false only where you have another legal basis; DNT / GPC still opt out.",
    ),
    ConfigKey(
        "UMETRICS_FLAGS_REFRESH_SECONDS",
        "ab_cookie",
        "flags_refresh_seconds",
        5,
        _int_at_least(0),
        "How often a process checks whether flag definitions changed in another process.",
    ),
    ConfigKey(
        "UMETRICS_ALLOW_URL_FORCE",
        "ab_cookie",
        "allow_url_force",
        False,
        _parse_bool,
        "QA: let ?umetrics_force=<key>:<variant> on a page or on /api/flags force a variant for "
        "that request (never stored, never an exposure; the kill switch still wins). Off by "
        "default: anyone who can open a URL could pick their variant.",
    ),
    ConfigKey(
        "UMETRICS_FLAG_CACHE_SCOPES",
        "ab_cookie",
        "flag_cache_scopes",
        1000,
        _int_at_least(1),
        "How many scopes' flag definitions a process keeps in memory (least recently used "
        "dropped first); as many flagless scopes are remembered apart.",
    ),
    # [ga4]
    ConfigKey(
        "UMETRICS_GA4_TRANSPORT",
        "ga4",
        "transport",
        "grpc",
        _choice("grpc", "rest"),
        "Transport of the Google Analytics clients.",
    ),
    ConfigKey(
        "UMETRICS_GA4_DATA_ENDPOINT",
        "ga4",
        "data_endpoint",
        None,
        _optional_str,
        "Override of the GA4 Data API endpoint (host:port), e.g. a local test server.",
    ),
    ConfigKey(
        "UMETRICS_GA4_ADMIN_ENDPOINT",
        "ga4",
        "admin_endpoint",
        None,
        _optional_str,
        "Override of the GA4 Admin API endpoint (host:port).",
    ),
    ConfigKey(
        "UMETRICS_GA4_CACHE_TTL",
        "ga4",
        "cache_ttl",
        3600,
        _int_at_least(0),
        "Seconds a GA4 report stays fresh in the cache.",
    ),
    ConfigKey(
        "UMETRICS_GA4_GRPC_INSECURE",
        "ga4",
        "grpc_insecure",
        False,
        _parse_bool,
        "Use a plaintext gRPC channel to the endpoint overrides (local test servers only).",
    ),
    ConfigKey(
        "UMETRICS_GA4_TIMEOUT",
        "ga4",
        "timeout",
        20.0,
        _float_at_least(0.1),
        "Seconds one Google API call may take (a stalled call never holds a web worker).",
    ),
    ConfigKey(
        "UMETRICS_GA4_RETRY_SECONDS",
        "ga4",
        "retry_seconds",
        30.0,
        _float_at_least(0.0),
        "Seconds Google reads are retried with backoff on UNAVAILABLE, DEADLINE_EXCEEDED and "
        "INTERNAL (creating things is never retried).",
    ),
    ConfigKey(
        "UMETRICS_GA4_OAUTH_CLIENT_ID",
        "ga4",
        "oauth_client_id",
        None,
        _optional_str,
        "OAuth client id of a Google Cloud web app (the secret comes only from the environment: "
        "UMETRICS_GA4_OAUTH_CLIENT_SECRET).",
    ),
    ConfigKey(
        "UMETRICS_GA4_OAUTH_AUTH_URI",
        "ga4",
        "oauth_auth_uri",
        "https://accounts.google.com/o/oauth2/auth",
        _str,
        "Google's OAuth authorization endpoint (overridable for tests).",
    ),
    ConfigKey(
        "UMETRICS_GA4_OAUTH_TOKEN_URI",
        "ga4",
        "oauth_token_uri",
        "https://oauth2.googleapis.com/token",
        _str,
        "Google's OAuth token endpoint (overridable for tests).",
    ),
    ConfigKey(
        "UMETRICS_GA4_OAUTH_REVOKE_URI",
        "ga4",
        "oauth_revoke_uri",
        "https://oauth2.googleapis.com/revoke",
        _str,
        "Google's OAuth token revocation endpoint, called on disconnect.",
    ),
    ConfigKey(
        "UMETRICS_GA4_OAUTH_REDIRECT_URI",
        "ga4",
        "oauth_redirect_uri",
        None,
        _optional_str,
        "The one OAuth redirect URI registered at Google for the dashboard and REST flows "
        "(default: the dashboard's ``…/admin/ga4/oauth/callback`` built from the request; "
        "behind a TLS proxy use ProxyFix or set this to the exact https URL).",
    ),
    ConfigKey(
        "UMETRICS_GA4_MP_ENDPOINT",
        "ga4",
        "mp_endpoint",
        "https://www.google-analytics.com",
        _str,
        "Base URL of the Measurement Protocol (``/mp/collect``, ``/debug/mp/collect``).",
    ),
    ConfigKey(
        "UMETRICS_GA4_FORWARD_EVENTS",
        "ga4",
        "forward_events",
        "",
        _str,
        "Comma-separated first-party event names forwarded to GA4 through the Measurement "
        "Protocol (empty = none).",
    ),
    ConfigKey(
        "UMETRICS_GA4_FORWARD_SCHEDULE",
        "ga4",
        "forward_schedule",
        "every 5m",
        _schedule,
        "When the `ga4-forward` job sends new `UMETRICS_GA4_FORWARD_EVENTS` events to GA4 (`off` "
        "to disable; the job only exists when events are selected).",
    ),
    ConfigKey(
        "UMETRICS_GA4_SYNC_SCHEDULE",
        "ga4",
        "sync_schedule",
        "0 3 * * *",
        _schedule,
        "When the GA4 daily figures are pulled into the stat store (`off` to disable).",
    ),
    ConfigKey(
        "UMETRICS_GA4_SYNC_DAYS",
        "ga4",
        "sync_days",
        3,
        _int_at_least(1),
        "How many past days each GA4 sync (re)reads (GA4 revises recent days).",
    ),
    # [clickhouse]
    ConfigKey(
        "UMETRICS_EVENT_STORE",
        "clickhouse",
        "event_store",
        "sql",
        _choice("sql", "clickhouse"),
        "Where events live: `sql` (the umetrics SQL database) or `clickhouse` "
        "(`UMETRICS_CLICKHOUSE_URL`; persons, flags, stats, keys and GA4 stay in SQL). "
        "See docs/clickhouse.md.",
    ),
    ConfigKey(
        "UMETRICS_CLICKHOUSE_URL",
        "clickhouse",
        "url",
        None,
        _optional_str,
        "`clickhouse://user:password@host:8123/database`, `https://user:password@host:8443/"
        "database` (a server or ClickHouse Cloud), or `chdb:///path/to/dir` (the embedded "
        "engine: one process only). Checked by `init_app`; its password is never shown.",
    ),
    ConfigKey(
        "UMETRICS_CLICKHOUSE_CLUSTER",
        "clickhouse",
        "cluster",
        None,
        _cluster_name,
        "ClickHouse cluster name: the schema is created `ON CLUSTER` with replicated tables "
        "and a Distributed events table (a server only, not chdb).",
    ),
    ConfigKey(
        "UMETRICS_CLICKHOUSE_SQUASH_SCHEDULE",
        "clickhouse",
        "squash_schedule",
        "every 1h",
        _schedule,
        "When the events of merged persons are rewritten to the surviving person (crontab, "
        "`every ...`, or `off`); until then ClickHouse reports read persons through the "
        "distinct-id map, slower. Runs only with `UMETRICS_EVENT_STORE=clickhouse`.",
    ),
)

KEYS_BY_NAME: dict[str, ConfigKey] = {key.name: key for key in CONFIG_KEYS}
CONFIG_FILE_KEY = "UMETRICS_CONFIG_FILE"


def _read_ini(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if not Path(path).is_file():
        raise ConfigurationError(f"{CONFIG_FILE_KEY}: file {path!r} does not exist")
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigurationError(f"{CONFIG_FILE_KEY}: cannot parse {path!r}: {exc}") from exc
    known = {(key.section, key.option) for key in CONFIG_KEYS}
    sections = {key.section for key in CONFIG_KEYS}
    for section in parser.sections():
        if section not in sections:
            raise ConfigurationError(f"{path}: unknown section [{section}]")
        for option in parser.options(section):
            if (section, option) not in known:
                raise ConfigurationError(f"{path}: unknown key {option!r} in [{section}]")
    return parser


def resolve_config(
    app_config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return every ``UMETRICS_*`` value, validated, with its source applied in precedence order.

    Raises ``ConfigurationError`` naming the key when a value is invalid.
    """
    environ = os.environ if environ is None else environ
    ini_path = app_config.get(CONFIG_FILE_KEY) or environ.get(CONFIG_FILE_KEY)
    ini = _read_ini(str(ini_path)) if ini_path else None
    resolved: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        if key.name in app_config:
            raw, origin = app_config[key.name], "app.config"
        elif key.name in environ:
            raw, origin = environ[key.name], "environment"
        elif ini is not None and ini.has_option(key.section, key.option):
            raw, origin = ini.get(key.section, key.option), f"[{key.section}] {key.option}"
        else:
            resolved[key.name] = key.default
            continue
        try:
            resolved[key.name] = key.parse(raw)
        except (ValueError, TypeError, ConfigurationError) as exc:
            raise ConfigurationError(
                f"{key.name} (from {origin}) is invalid: {exc}; got {raw!r}"
            ) from exc
    return resolved


@dataclass(frozen=True)
class Settings:
    """The validated settings of one app, read once in ``init_app``."""

    values: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @cached_property
    def default_scope(self) -> str:
        # Read on every flag evaluation; the values never change after init_app.
        return str(self.values["UMETRICS_DEFAULT_SCOPE"])

    @property
    def snapshot_scopes(self) -> list[str]:
        scopes = list(self.values["UMETRICS_SNAPSHOT_SCOPES"])
        return scopes or [self.default_scope]

    @property
    def timezone(self) -> str:
        return str(self.values["UMETRICS_TIMEZONE"])

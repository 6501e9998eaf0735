"""The per-app state kept in ``app.extensions["umetrics"]``, and how to reach it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import Engine

from .config import Settings

if TYPE_CHECKING:
    from .auth import ApiKeyInfo
    from .engines import EventStore
    from .events.buffer import EventBuffer
    from .extension import UMetrics
    from .flags.cache import FlagCache
    from .flags.cookie import CookieKeyring
    from .scheduler.runner import SchedulerRunner
    from .stats.collectors import CollectorRegistry

EXTENSION_KEY = "umetrics"


@dataclass
class UMetricsState:
    """Everything one app needs: settings, the engine, collectors, and the running scheduler."""

    extension: UMetrics
    settings: Settings
    engine: Engine
    collectors: CollectorRegistry
    owns_engine: bool
    event_buffer: EventBuffer
    flag_cache: FlagCache
    cookie_keyring: CookieKeyring
    #: Where events are written: the SQL database or ClickHouse (``UMETRICS_EVENT_STORE``).
    event_store: EventStore
    scheduler: SchedulerRunner | None = None
    #: Flask-Limiter's limiter of the public endpoints (``api/ratelimit.py``), None when off.
    rate_limiter: Any = None
    warned: set[str] = field(default_factory=set)
    #: sha256 of a verified API key -> (trusted until, monotonic clock; the key's record)
    verified_keys: dict[str, tuple[float, ApiKeyInfo]] = field(default_factory=dict)


def current_state() -> UMetricsState:
    """The umetrics state of ``current_app``; a clear error outside an app or before init_app."""
    try:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    except RuntimeError as exc:
        raise RuntimeError(
            "flask-umetrics needs an application context: call this inside a request, "
            "a CLI command, or `with app.app_context():`"
        ) from exc
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise RuntimeError(
            f"flask-umetrics is not initialised on app {app.name!r}: call UMetrics().init_app(app)"
        )
    return state  # type: ignore[no-any-return]


def resolve_scope(scope_id: str | None) -> str:
    """The given scope, or ``UMETRICS_DEFAULT_SCOPE``, validated."""
    if scope_id is None:
        return current_state().settings.default_scope
    from .validation import validate_scope_id

    return validate_scope_id(scope_id)

"""The ``UMetrics`` extension: ``init_app`` reads the config, picks the engine, wires routes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .admin.snippet import install_snippet_helper
from .config import Settings, resolve_config
from .db import migrate
from .db.engine import create_umetrics_engine
from .db.errors import describe_database_error
from .errors import ConfigurationError
from .events.buffer import EventBuffer, install_request_flush
from .events.collectors import register_builtin_collectors
from .flags.cache import FlagCache
from .flags.cookie import CookieKeyring
from .flags.request import install_flag_finish
from .flags.templates import install_template_helpers
from .ga4.gtag import install_gtag_helper
from .ga4.service import measurement_id_for
from .state import EXTENSION_KEY, UMetricsState
from .stats.collectors import CollectFunction, CollectorRegistry, StatCollector
from .warn_once import install_startup_warnings

if TYPE_CHECKING:
    from .engines import EventStore

AuthorizerCallback = Callable[[str, str], bool]
SubjectLoader = Callable[[], "tuple[str | None, dict[str, Any]]"]
ConsentLoader = Callable[[], "bool | None"]
F = TypeVar("F", bound=Callable[..., Any])


class UMetrics:
    """First-party product analytics for a Flask app.

    ``UMetrics(app, db=db)`` or ``umetrics = UMetrics()`` then ``umetrics.init_app(app, db=db)``.
    The extension object keeps no app: per-app state lives in ``app.extensions["umetrics"]``, so
    one extension may serve several apps in a process.
    """

    def __init__(self, app: Flask | None = None, *, db: Any = None) -> None:
        self.authorizer_callback: AuthorizerCallback | None = None
        self.subject_loader_callback: SubjectLoader | None = None
        self.consent_loader_callback: ConsentLoader | None = None
        self.collectors = CollectorRegistry()
        if app is not None:
            self.init_app(app, db=db)

    # -- registration -----------------------------------------------------------------------

    def authorizer(self, callback: AuthorizerCallback) -> AuthorizerCallback:
        """Register ``can(permission, scope_id) -> bool``, called inside requests without a key."""
        self.authorizer_callback = callback
        return callback

    def subject_loader(self, callback: SubjectLoader) -> SubjectLoader:
        """Register ``subject() -> (subject_id | None, attributes)`` for the current request."""
        self.subject_loader_callback = callback
        return callback

    def consent_loader(self, callback: ConsentLoader) -> ConsentLoader:
        """Register ``consent() -> bool | None`` for the current request: True or False decides
        (e.g. a logged-in user accepted terms that cover experiments), None defers to the
        consent cookie. Nothing is written to the browser because of it."""
        self.consent_loader_callback = callback
        return callback

    def current_subject_id(self) -> str | None:
        """The subject id the registered loader gives for this request, if any."""
        if self.subject_loader_callback is None:
            return None
        subject_id, _attributes = self.subject_loader_callback()
        return subject_id

    def register_stat_collector(
        self,
        key: str,
        collect: CollectFunction,
        *,
        label: str | None = None,
        format: str = "number",
    ) -> StatCollector:
        """Register a collector for every app this extension serves."""
        return self.collectors.register(key, collect, label=label, format=format)

    def stat_collector(
        self, key: str, *, label: str | None = None, format: str = "number"
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`register_stat_collector`."""

        def decorator(collect: F) -> F:
            self.register_stat_collector(key, collect, label=label, format=format)
            return collect

        return decorator

    # -- wiring -----------------------------------------------------------------------------

    def init_app(self, app: Flask, *, db: Any = None) -> None:
        """Read the configuration, choose the engine, and register the blueprint and CLI."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"flask-umetrics is already initialised on app {app.name!r}; "
                "call init_app once per app"
            )
        values = resolve_config(app.config)
        for name, value in values.items():
            app.config.setdefault(name, value)
        settings = Settings(values)
        engine, owns_engine = _choose_engine(app, db, settings)
        event_store = _choose_event_store(settings)
        buffer = EventBuffer(
            engine,
            event_store,
            size=settings["UMETRICS_TRACK_BUFFER_SIZE"],
            interval=settings["UMETRICS_TRACK_FLUSH_SECONDS"],
        )
        keyring = CookieKeyring.from_environ(os.environ)
        state = UMetricsState(
            extension=self,
            settings=settings,
            engine=engine,
            collectors=CollectorRegistry(parent=self.collectors),
            owns_engine=owns_engine,
            event_buffer=buffer,
            flag_cache=FlagCache(
                engine,
                settings["UMETRICS_FLAGS_REFRESH_SECONDS"],
                settings["UMETRICS_FLAG_CACHE_SCOPES"],
            ),
            cookie_keyring=keyring,
            event_store=event_store,
        )
        install_request_flush(app, buffer)
        install_flag_finish(app)
        install_template_helpers(app)
        install_gtag_helper(app, measurement_id_for)
        install_snippet_helper(app)
        install_startup_warnings(app)
        app.extensions[EXTENSION_KEY] = state
        if settings["UMETRICS_BUILTIN_COLLECTORS"]:
            register_builtin_collectors(state.collectors)
        if settings["UMETRICS_AUTO_MIGRATE"]:
            try:
                migrate.upgrade(engine)
            except SQLAlchemyError as exc:
                raise ConfigurationError(
                    f"UMETRICS_AUTO_MIGRATE: {describe_database_error(engine, exc)}"
                ) from exc
            if settings["UMETRICS_EVENT_STORE"] == "clickhouse":
                from .engines.clickhouse import upgrade_schema

                upgrade_schema(event_store)

        from .api import create_api_blueprint
        from .cli import umetrics_cli
        from .scheduler.runner import start_in_process_scheduler

        if settings["UMETRICS_ENABLE_API"]:
            app.register_blueprint(
                create_api_blueprint(), url_prefix=settings["UMETRICS_URL_PREFIX"] + "/api"
            )
        if settings["UMETRICS_ENABLE_ADMIN"]:
            from .admin import create_admin_blueprint, create_client_blueprint

            prefix = settings["UMETRICS_URL_PREFIX"]
            app.register_blueprint(create_admin_blueprint(), url_prefix=prefix + "/admin")
            app.register_blueprint(create_client_blueprint(), url_prefix=prefix)
        if settings["UMETRICS_ENABLE_TOGO_API"]:
            from .api.compat import togo

            togo_path = settings["UMETRICS_TOGO_API_PATH"]
            if togo_path is None:
                togo_path = settings["UMETRICS_URL_PREFIX"] + "/api/analytics"
            app.register_blueprint(togo.create_blueprint(), url_prefix=togo_path)
        if settings["UMETRICS_ENABLE_OPENMETRICS_API"]:
            from .api.compat import log_redaction, openmetrics

            v1_path = settings["UMETRICS_OPENMETRICS_PATH"]
            if v1_path is None:
                v1_path = settings["UMETRICS_URL_PREFIX"] + "/v1"
            app.register_blueprint(openmetrics.create_blueprint(), url_prefix=v1_path)
            log_redaction.install()  # its key may come as ?key=
        if (
            settings["UMETRICS_ENABLE_API"]
            or settings["UMETRICS_ENABLE_TOGO_API"]
            or (settings["UMETRICS_ENABLE_OPENMETRICS_API"])
        ):
            from .api.cors import install_cors

            install_cors(app, settings["UMETRICS_ALLOWED_ORIGINS"])

        from .api.ratelimit import install_rate_limits

        state.rate_limiter = install_rate_limits(app, settings)
        if "umetrics" not in app.cli.commands:
            app.cli.add_command(umetrics_cli)
        if settings["UMETRICS_SCHEDULER"] == "inprocess":
            start_in_process_scheduler(app)


def _choose_event_store(settings: Settings) -> EventStore:
    """Events in SQL (default), or in ClickHouse; nothing of ClickHouse is imported for SQL."""
    if settings["UMETRICS_EVENT_STORE"] == "clickhouse":
        from .engines.clickhouse import store_from_settings

        return store_from_settings(settings)
    from .engines.sql.store import SqlEventStore

    return SqlEventStore()


def _choose_engine(app: Flask, db: Any, settings: Settings) -> tuple[Engine, bool]:
    """The host's Flask-SQLAlchemy engine when ``db`` is given, else our own."""
    if db is not None:
        bind = settings["UMETRICS_SQLALCHEMY_BIND"]
        if "sqlalchemy" not in app.extensions:
            raise ConfigurationError(
                "init_app(app, db=db): call db.init_app(app) before umetrics.init_app(app)"
            )
        with app.app_context():
            engines = db.engines
            if bind not in engines:
                raise ConfigurationError(
                    f"UMETRICS_SQLALCHEMY_BIND is invalid: the db has no bind {bind!r}"
                )
            return engines[bind], False
    url = settings["UMETRICS_DATABASE_URL"]
    if url is None:
        os.makedirs(app.instance_path, exist_ok=True)
        url = "sqlite:///" + os.path.join(app.instance_path, "umetrics.db")
    try:
        return create_umetrics_engine(url), True
    except Exception as exc:
        raise ConfigurationError(f"UMETRICS_DATABASE_URL is invalid: {exc}") from exc

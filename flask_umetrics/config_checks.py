"""Configuration gaps: what is missing or half-set, what it breaks, and how to fix it.

``flask umetrics doctor`` prints every finding; the web process logs the static ones once (see
:mod:`flask_umetrics.warn_once`). Static checks read only the app's config, the registered
callbacks and the environment; :func:`database_findings` also asks the database (is it reachable,
is the schema current, has the scheduler run, can stored GA4 secrets be read).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .crypto import KeyRing
from .db import migrate
from .db.errors import describe_database_error
from .db.tables import api_keys, ga4_connections, job_runs
from .db.types import utcnow
from .errors import ConfigurationError
from .flags.cookie import ENV_CURRENT as COOKIE_KEY_CURRENT
from .state import EXTENSION_KEY, UMetricsState

#: ``problem``: something does not work as the host likely expects (doctor exits 1);
#: ``note``: worth knowing, fine for some apps.
Severity = Literal["problem", "note"]
GA4_CLIENT_SECRET_ENV = "UMETRICS_GA4_OAUTH_CLIENT_SECRET"
#: The scheduler counts as not running when no job started within this time (the default
#: schedules run hourly and daily).
SCHEDULER_SILENCE = timedelta(hours=25)
_NEW_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True)
class Finding:
    """One gap: a stable ``code``, what is wrong, and the fix."""

    code: str
    severity: Severity
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem} Fix: {self.fix}"


def _state(app: Flask) -> UMetricsState:
    state: UMetricsState = app.extensions[EXTENSION_KEY]
    return state


def static_findings(app: Flask, environ: dict[str, str] | None = None) -> list[Finding]:
    """Gaps visible without the database, in the order a newcomer should fix them."""
    env = dict(os.environ if environ is None else environ)
    state = _state(app)
    settings = state.settings
    extension = state.extension
    found: list[Finding] = []
    if settings["UMETRICS_ENABLE_ADMIN"] and not app.secret_key:
        found.append(
            Finding(
                "secret_key",
                "problem",
                "SECRET_KEY is not set: every dashboard page answers 500 (its forms are signed "
                "with it, and the host's login session needs it too).",
                "set app.config['SECRET_KEY'] to a random secret kept outside the code, e.g. "
                f"from `{_NEW_SECRET}`, or UMETRICS_ENABLE_ADMIN=False.",
            )
        )
    if extension.authorizer_callback is None:
        found.append(
            Finding(
                "authorizer",
                "problem",
                "No @umetrics.authorizer is registered: the dashboard and every REST request "
                "without an API key are refused (401).",
                "register `@umetrics.authorizer def can(permission, scope_id) -> bool` "
                "(e.g. `return current_user.is_admin`).",
            )
        )
    cookie_ok = state.cookie_keyring.can_write
    if not cookie_ok:
        found.append(
            Finding(
                "cookie_key",
                "problem",
                f"No consent-cookie key ({COOKIE_KEY_CURRENT}): anonymous visitors cannot "
                "consent, get control variants, and no cookie is set.",
                "run `flask umetrics gen-cookie-key` and put the two lines it prints in the "
                "environment of every process.",
            )
        )
    if settings["UMETRICS_CONSENT_REQUIRED"] and extension.consent_loader_callback is None:
        if not cookie_ok:
            found.append(
                Finding(
                    "no_exposures",
                    "problem",
                    "Consent is required (UMETRICS_CONSENT_REQUIRED) but nobody can give it: "
                    "no @umetrics.consent_loader and no consent-cookie key, so flags serve "
                    "control variants and record no exposures.",
                    "register `@umetrics.consent_loader` (True for users who accepted your "
                    "terms) and/or set the consent-cookie key; or UMETRICS_CONSENT_REQUIRED="
                    "false where you have another legal basis.",
                )
            )
        else:
            found.append(
                Finding(
                    "consent_loader",
                    "note",
                    "No @umetrics.consent_loader: logged-in users count as consenting only "
                    "after they answer the consent banner (POST /umetrics/api/consent), so flags "
                    "record no exposures for the others.",
                    "register `@umetrics.consent_loader def consent() -> bool | None` (True for "
                    "users who accepted your terms, None to let the cookie decide).",
                )
            )
    if not settings["UMETRICS_BROWSER_WRITE_KEY"]:
        found.append(
            Finding(
                "browser_write_key",
                "note",
                "UMETRICS_BROWSER_WRITE_KEY is not set: `{{ umetrics_snippet() }}` renders "
                "nothing (the browser client is off).",
                "create an ingest key (`flask umetrics keys create --permission ingest`) and set "
                "UMETRICS_BROWSER_WRITE_KEY to it, if your pages use the snippet.",
            )
        )
    found.extend(_ga4_findings(app, env))
    return found


def _wants_ga4(app: Flask, env: Mapping[str, str]) -> bool:
    """Whether the host configured GA4 (OAuth client or forwarding): then the static checks
    cover the libraries and the encryption key."""
    settings = _state(app).settings
    return bool(
        settings["UMETRICS_GA4_OAUTH_CLIENT_ID"]
        or env.get(GA4_CLIENT_SECRET_ENV, "").strip()
        or settings["UMETRICS_GA4_FORWARD_EVENTS"].strip()
    )


def _ga4_findings(app: Flask, env: dict[str, str]) -> list[Finding]:
    settings = _state(app).settings
    client_id = settings["UMETRICS_GA4_OAUTH_CLIENT_ID"]
    client_secret = env.get(GA4_CLIENT_SECRET_ENV, "").strip()
    found: list[Finding] = []
    if not _wants_ga4(app, env):
        return found
    from .ga4.service import ga4_available

    if not ga4_available():
        found.append(
            Finding(
                "ga4_libraries",
                "problem",
                "GA4 is configured but the Google client libraries are not installed.",
                "pip install 'flask-umetrics[ga4]'.",
            )
        )
    if client_id and not client_secret:
        found.append(
            Finding(
                "ga4_client_secret",
                "problem",
                f"UMETRICS_GA4_OAUTH_CLIENT_ID is set but {GA4_CLIENT_SECRET_ENV} is not: "
                "'Connect with Google' fails.",
                f"set {GA4_CLIENT_SECRET_ENV} in the environment (the OAuth client's secret).",
            )
        )
    if client_secret and not client_id:
        found.append(
            Finding(
                "ga4_client_id",
                "problem",
                f"{GA4_CLIENT_SECRET_ENV} is set but UMETRICS_GA4_OAUTH_CLIENT_ID is not: "
                "'Connect with Google' is off.",
                "set UMETRICS_GA4_OAUTH_CLIENT_ID to the OAuth client's id.",
            )
        )
    try:
        can_encrypt = KeyRing.from_environ(env).can_write
    except ConfigurationError as exc:
        found.append(
            Finding(
                "encryption_key",
                "problem",
                f"The GA4 encryption key is invalid: {exc}.",
                "fix the variable it names (a key is the base64 of 32 random bytes: "
                "`openssl rand -base64 32`).",
            )
        )
        return found
    if not can_encrypt:
        found.append(
            Finding(
                "encryption_key",
                "problem",
                f"GA4 is configured but {KeyRing.env_current()} is not set: Google credentials "
                "and Measurement Protocol secrets cannot be stored.",
                f"set {KeyRing.env_current()}=k1 and {KeyRing.ENV_PREFIX}k1=<the output of "
                "`openssl rand -base64 32`> in the environment.",
            )
        )
    return found


def database_findings(app: Flask) -> list[Finding]:
    """Gaps only the database shows; an unreachable database is one finding, not a traceback."""
    state = _state(app)
    engine = state.engine
    try:
        revision = migrate.current_revision(engine)
    except SQLAlchemyError as exc:
        return [
            Finding(
                "database",
                "problem",
                describe_database_error(engine, exc),
                "check UMETRICS_DATABASE_URL (or the db passed to init_app), that the server "
                "runs and that the database exists (e.g. `createdb <name>`).",
            )
        ]
    head = migrate.head_revision()
    if revision != head:
        return [
            Finding(
                "schema",
                "problem",
                f"The umetrics tables are at revision {revision or 'none (empty)'}, this "
                f"release needs {head}.",
                "run `flask umetrics db upgrade`.",
            )
        ]
    found: list[Finding] = []
    with engine.connect() as connection:
        key_count = connection.execute(
            select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
        ).scalar_one()
        last_job = connection.execute(select(func.max(job_runs.c.started_at))).scalar_one()
        stored_ga4 = connection.execute(
            select(func.count()).select_from(ga4_connections)
        ).scalar_one()
    if key_count == 0:
        found.append(
            Finding(
                "api_keys",
                "note",
                "No active API key: REST clients, scripts and the browser client have none "
                "to use (the dashboard works through the authorizer).",
                "`flask umetrics keys create --permission metrics.view` (or ingest / identify "
                f"/ metrics.manage); the scope is {state.settings.default_scope!r} unless you "
                "pass --scope.",
            )
        )
    settings = state.settings
    if settings["UMETRICS_SNAPSHOT_SCHEDULE"] or settings["UMETRICS_PRUNE_SCHEDULE"]:
        silent = last_job is None or utcnow() - last_job > SCHEDULER_SILENCE
        if silent:
            since = (
                "has never run" if last_job is None else f"last ran {last_job:%Y-%m-%d %H:%M} UTC"
            )
            found.append(
                Finding(
                    "scheduler",
                    "problem",
                    f"The scheduler {since} (UMETRICS_SCHEDULER={settings['UMETRICS_SCHEDULER']}"
                    "): stat snapshots and retention pruning are not happening.",
                    "run `flask umetrics scheduler` as a service (one or more, a leader is "
                    "elected), or set UMETRICS_SCHEDULER=inprocess for a single small app.",
                )
            )
    # With GA4 configured, a missing or invalid key is already the static "encryption_key".
    if stored_ga4 and not _wants_ga4(app, os.environ):
        try:
            readable = KeyRing.from_environ(os.environ).can_write
        except ConfigurationError:
            readable = False
        if not readable:
            found.append(
                Finding(
                    "ga4_secrets",
                    "problem",
                    f"{stored_ga4} GA4 connection(s) are stored but {KeyRing.env_current()} is "
                    "not set: their credentials cannot be read, syncs and forwarding fail.",
                    f"set {KeyRing.env_current()} and the {KeyRing.ENV_PREFIX}<id> the "
                    "connections were stored with.",
                )
            )
    return found

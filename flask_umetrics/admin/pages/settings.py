"""Settings: the scope's API keys (create, revoke) and write keys, and the privacy settings.

A new key is shown once, in the answer to the POST that created it (status 201): it never goes
into the session or a flash message, so no cookie ever carries it. Consent and retention
settings are read-only here (they come from the config); secrets, which only the environment
holds, are shown as configured or not, never their value.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from ...api.keys import CreateKeyBody, KeysQuery, keys_list
from ...api.router import parse_query_args, to_json
from ...auth import OPENMETRICS, PERMISSIONS, issue_api_key, revoke_api_key
from ...config import CONFIG_KEYS
from ...crypto import KeyRing
from ...errors import APIError, ConfigurationError
from ...flags.cookie import ENV_CURRENT as COOKIE_KEY_CURRENT
from ...ga4.connections import CLIENT_SECRET_ENV
from ...state import current_state
from ..access import actor, can_manage, current_scope
from ..errors import AdminError
from ..page import Table, render_page
from ..reports import run_report
from . import Page

#: Config sections shown whole, and single keys from ``[env]`` that decide what is collected.
SECTIONS = ("ab_cookie", "retention")
PRIVACY_KEYS = ("UMETRICS_RESPECT_DNT", "UMETRICS_FILTER_BOTS", "UMETRICS_SESSION_TIMEOUT")
KEY_COLUMNS = ["name", "permission", "key_id", "created", "created_by", "last_used"]


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def config_table() -> Table:
    settings = current_state().settings
    chosen = [key for key in CONFIG_KEYS if key.name in PRIVACY_KEYS or key.section in SECTIONS]
    return Table(
        "config",
        "Consent and retention settings",
        ["key", "value", "meaning"],
        [[key.name, _config_value(settings[key.name]), key.doc] for key in chosen],
    )


def _encryption_key_state() -> str:
    try:
        ring = KeyRing.from_environ(os.environ)
    except ConfigurationError:
        return "misconfigured"
    return "yes" if ring.can_write else "no"


def secrets_table() -> Table:
    """Whether each secret is configured; the values never leave the environment."""
    cookie_ring = current_state().cookie_keyring
    rows = [
        [
            "Consent cookie key",
            f"{COOKIE_KEY_CURRENT} and UMETRICS_COOKIE_KEY_<id>",
            "yes" if cookie_ring.can_write else "no",
        ],
        [
            "Encryption key (GA4 secrets)",
            f"{KeyRing.env_current()} and {KeyRing.ENV_PREFIX}<id>",
            _encryption_key_state(),
        ],
        [
            "GA4 OAuth client secret",
            CLIENT_SECRET_ENV,
            "yes" if os.environ.get(CLIENT_SECRET_ENV, "").strip() else "no",
        ],
        [
            "Flask SECRET_KEY (dashboard forms)",
            "app.config",
            "yes" if current_app.secret_key else "no",
        ],
    ]
    return Table(
        "secrets", "Secrets (from the environment)", ["secret", "where", "configured"], rows
    )


def _key_table(key: str, title: str, keys: list[dict[str, Any]]) -> Table:
    return Table(
        key,
        title,
        KEY_COLUMNS,
        [
            [
                k["name"],
                k["permission"],
                k["key_id"],
                k["created_at"],
                k["created_by"] or "",
                k["last_used_at"] or "",
            ]
            for k in keys
        ],
    )


#: Write keys, public by design (pages and open-metrics' URLs carry them): listed apart.
_PUBLIC_KEYS = ("ingest", OPENMETRICS)


def _page(*, created: dict[str, Any] | None = None, error: str | None = None) -> Response | str:
    tables = [config_table(), secrets_table()]
    write_keys = api_keys = None
    if can_manage():
        keys = run_report(keys_list, KeysQuery, {"include_revoked": None})["keys"]
        write_keys = _key_table(
            "write-keys", "Write keys", [k for k in keys if k["permission"] in _PUBLIC_KEYS]
        )
        api_keys = _key_table(
            "api-keys", "API keys", [k for k in keys if k["permission"] not in _PUBLIC_KEYS]
        )
        tables += [write_keys, api_keys]
    prefix = current_state().settings["UMETRICS_URL_PREFIX"]
    return render_page(
        "settings.html",
        title="Settings",
        tables=tables,
        config=tables[0],
        secrets=tables[1],
        write_keys=write_keys,
        api_keys=api_keys,
        permissions=PERMISSIONS,
        created=created,
        error=error,
        client_url=prefix + "/static/umetrics.js",
        events_url=prefix + "/api/events",
        default_scope=current_state().settings.default_scope,
        browser_key_set=bool(current_state().settings["UMETRICS_BROWSER_WRITE_KEY"]),
    )


def settings() -> ResponseReturnValue:
    return _page()


def create_key() -> ResponseReturnValue:
    """Create a key and show it in this answer only (201), never through a redirect."""
    form: MultiDict[str, str] = MultiDict(
        {"permission": request.form.get("permission", ""), "name": request.form.get("name", "")}
    )
    try:
        body = parse_query_args(CreateKeyBody, form)
    except APIError as exc:
        page = _page(error=exc.message)
        return page, 400
    raw, info = issue_api_key(
        current_scope(), body.permission, name=body.name.strip(), created_by=actor()
    )
    page = _page(created={"key": raw, "info": to_json(info)})
    return page, 201


def revoke_key(key_id: str) -> ResponseReturnValue:
    if not revoke_api_key(key_id, scope_id=current_scope(), actor=actor()):
        raise AdminError(404, f"key_id: no active API key {key_id!r} in this scope")
    flash(f"Revoked API key {key_id}.", "info")
    scope = request.args.get("scope_id") or request.form.get("scope_id")
    return redirect(url_for("umetrics_admin.settings", scope_id=scope or None))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/settings", "settings", settings)
    bp.add_url_rule("/settings/keys", "settings_create_key", create_key, methods=["POST"])
    bp.add_url_rule(
        "/settings/keys/<key_id>/revoke", "settings_revoke_key", revoke_key, methods=["POST"]
    )


PAGE = Page("umetrics_admin.settings", "Settings", register)

"""One call per GA4 action for a scope: fetch its credentials and property, call Google, store.

The REST routes and the CLI are thin layers over these functions.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..errors import APIError
from ..state import current_state, resolve_scope

if TYPE_CHECKING:
    from .connections import Connection


def ga4_available() -> bool:
    """Whether the Google client libraries (the ``ga4`` extra) are installed."""
    try:
        import google.analytics.admin_v1beta
        import google.analytics.data_v1beta  # noqa: F401
    except ImportError:
        return False
    return True


def require_libraries() -> None:
    if not ga4_available():
        raise APIError(
            501,
            "ga4_not_installed",
            "The GA4 connector needs the Google client libraries: pip install flask-umetrics[ga4]",
        )


def connection_json(connection: Any) -> dict[str, Any] | None:
    """A connection as responses show it (never credentials or the MP secret)."""
    if connection is None:
        return None

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "auth_kind": connection.auth_kind,
        "principal": connection.principal,
        "oauth_scopes": list(connection.oauth_scopes),
        "can_provision": connection.can_provision,
        "account_id": connection.account_id,
        "property_id": connection.property_id,
        "property_name": connection.property_name,
        "stream_id": connection.stream_id,
        "measurement_id": connection.measurement_id,
        "has_mp_secret": connection.has_mp_secret,
        "time_zone": connection.time_zone,
        "currency": connection.currency,
        "connected_by": connection.connected_by,
        "connected_at": iso(connection.connected_at),
        "last_sync_at": iso(connection.last_sync_at),
        "last_error": connection.last_error,
    }


def _can_encrypt() -> bool:
    from ..errors import ConfigurationError
    from .secrets import keyring

    try:
        return keyring().can_write
    except ConfigurationError:
        return False


def status(scope_id: str | None = None) -> dict[str, Any]:
    """Whether GA4 is usable and connected for the scope, and what is linked."""
    import os

    settings = current_state().settings
    available = ga4_available()
    connection = None
    if available:
        from .connections import get_connection

        connection = get_connection(resolve_scope(scope_id))
    return {
        "available": available,
        "oauth_configured": bool(
            settings["UMETRICS_GA4_OAUTH_CLIENT_ID"]
            and os.environ.get("UMETRICS_GA4_OAUTH_CLIENT_SECRET")
        ),
        "encryption_configured": _can_encrypt(),
        "connected": connection is not None,
        "connection": connection_json(connection),
    }


def accounts(scope_id: str | None = None) -> list[dict[str, Any]]:
    """The GA4 accounts and properties the scope's credentials can see."""
    require_libraries()
    from .admin import list_account_summaries
    from .clients import google_errors
    from .connections import load_credentials

    scope = resolve_scope(scope_id)
    with google_errors():
        found = list_account_summaries(load_credentials(scope), current_state().settings)
    return [
        {
            "account_id": account.account_id,
            "display_name": account.display_name,
            "properties": [
                {"property_id": p.property_id, "display_name": p.display_name}
                for p in account.properties
            ],
        }
        for account in found
    ]


def link(scope_id: str | None, property_id: str, *, actor: str | None = None) -> dict[str, Any]:
    """Link an existing property (checked with Google) and its first web stream, and give it a
    Measurement Protocol secret when the credentials may create one (else say why not)."""
    require_libraries()
    from .admin import get_property
    from .clients import google_errors
    from .connections import get_connection, load_credentials, set_property

    scope = resolve_scope(scope_id)
    with google_errors():
        details = get_property(load_credentials(scope), current_state().settings, property_id)
    stream = details.web_streams[0] if details.web_streams else None
    connection = set_property(
        scope,
        details.property.property_id,
        account_id=details.property.account_id,
        property_name=details.property.display_name,
        stream_id=stream.stream_id if stream else None,
        measurement_id=stream.measurement_id if stream else None,
        time_zone=details.property.time_zone or None,
        currency=details.property.currency_code or None,
        actor=actor,
    )
    forwarding = _link_mp_secret(scope, connection, actor=actor)
    return {"connection": connection_json(get_connection(scope)), "forwarding": forwarding}


def _link_mp_secret(scope: str, connection: Any, *, actor: str | None) -> dict[str, Any]:
    """Create or reuse the linked stream's MP secret; ``{"ready", "reason"}`` for the answer."""
    from .admin import ensure_mp_secret
    from .connections import load_credentials, set_mp_secret

    if connection.stream_id is None:
        return {"ready": False, "reason": "the property has no web stream: provision one"}
    if connection.has_mp_secret:
        return {"ready": True, "reason": None}
    if not connection.can_provision:
        return {
            "ready": False,
            "reason": "these credentials may only read: reconnect with provisioning "
            "(analytics.edit) to create a Measurement Protocol secret",
        }
    try:
        secret, _ = ensure_mp_secret(
            load_credentials(scope, edit=True),
            current_state().settings,
            connection.property_id,
            connection.stream_id,
        )
    except APIError as exc:
        return {
            "ready": False,
            "reason": f"Google refused to create a Measurement Protocol secret: {exc.message}",
        }
    set_mp_secret(scope, secret, actor=actor)
    return {"ready": True, "reason": None}


def provision(
    scope_id: str | None,
    *,
    account_id: str,
    display_name: str,
    site_url: str,
    time_zone: str,
    currency: str,
    property_id: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Create (or reuse) a property, a web stream and an MP secret, and link them.

    ``property_id`` targets a known property (of ``account_id``) instead of matching by name.
    """
    require_libraries()
    from .admin import provision as provision_property
    from .clients import google_errors
    from .connections import get_connection, load_credentials, set_mp_secret, set_property

    scope = resolve_scope(scope_id)
    current = get_connection(scope)
    if current is not None and not current.can_provision:
        raise APIError(
            403,
            "ga4_needs_edit_scope",
            "These credentials may only read: reconnect with provisioning (analytics.edit).",
        )
    with google_errors():
        result = provision_property(
            load_credentials(scope, edit=True),
            current_state().settings,
            account_id=account_id,
            display_name=display_name,
            site_url=site_url,
            time_zone=time_zone,
            currency=currency,
            property_id=property_id,
        )
    set_property(
        scope,
        result.property_id,
        account_id=result.account_id,
        property_name=result.property_name,
        stream_id=result.stream_id,
        measurement_id=result.measurement_id,
        time_zone=result.time_zone or None,
        currency=result.currency_code or None,
        actor=actor,
    )
    set_mp_secret(scope, result.mp_secret, actor=actor)
    return {"provisioned": result.public(), "connection": connection_json(get_connection(scope))}


def _linked_report_arguments(scope: str, connection: Connection) -> dict[str, Any]:
    """What ``run_report``/``run_reports`` need beyond the request: the linked property, its
    credentials, time zone and currency (a 409 when no property is linked yet)."""
    from .connections import load_credentials

    if connection.property_id is None:
        raise APIError(409, "ga4_not_linked", "Link or provision a GA4 property first.")
    state = current_state()
    return {
        "credentials": load_credentials(scope),
        "property_id": connection.property_id,
        "settings": state.settings,
        "engine": state.engine,
        "time_zone": connection.time_zone,
        "currency": connection.currency,
    }


def report(name: str, scope_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """A Data API report for the scope's linked property (cached; stale on quota errors)."""
    require_libraries()
    from .connections import require_connection
    from .reports import run_report, validate_params

    scope = resolve_scope(scope_id)
    connection = require_connection(scope)
    validate_params(name, params, current_state().settings, time_zone=connection.time_zone)
    return run_report(name, scope, params, **_linked_report_arguments(scope, connection))


def reports(names: list[str], scope_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """Several dated reports in one ``batchRunReports`` call (the dashboard's three); each
    value is the report's answer or the :class:`APIError` it failed with."""
    require_libraries()
    from .connections import require_connection
    from .reports import run_reports

    scope = resolve_scope(scope_id)
    connection = require_connection(scope)
    return run_reports(names, scope, params, **_linked_report_arguments(scope, connection))


def measurement_id_for(scope_id: str) -> str | None:
    """The linked web stream's measurement id (for the gtag snippet), or None."""
    if not ga4_available():
        return None
    from .connections import get_connection

    connection = get_connection(scope_id)
    return connection.measurement_id if connection is not None else None

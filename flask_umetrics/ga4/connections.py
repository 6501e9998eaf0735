"""One GA4 connection per scope: the Google identity, the linked property, and its secrets.

The credentials (a service-account key or an OAuth refresh token) and the Measurement Protocol
secret are stored encrypted (:mod:`.secrets`) and only ever leave this module as Google
credential objects or, for the MP secret, to the code that sends events. :class:`Connection`,
what routes and the admin UI see, has no secret in it. Every change writes an audit row that
says what changed but never carries a secret.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection as DBConnection
from sqlalchemy import Row, delete, insert, select, update

from ..audit import current_actor, record_audit
from ..db.tables import ga4_connections, ga4_oauth_flows, ga4_report_cache
from ..db.types import utcnow
from ..errors import APIError, ValidationError
from ..state import current_state, resolve_scope
from .secrets import (
    SecretUnavailableError,
    credentials_purpose,
    decrypt_secret,
    encrypt_secret,
    mp_secret_purpose,
)

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

logger = logging.getLogger(__name__)

ANALYTICS_READONLY = "https://www.googleapis.com/auth/analytics.readonly"
ANALYTICS_EDIT = "https://www.googleapis.com/auth/analytics.edit"
#: Where the OAuth client secret comes from (never a config key).
CLIENT_SECRET_ENV = "UMETRICS_GA4_OAUTH_CLIENT_SECRET"

SERVICE_ACCOUNT = "service_account"
OAUTH = "oauth"
#: Fields a service-account key must have, in the order they are checked.
SERVICE_ACCOUNT_FIELDS = ("type", "client_email", "private_key", "token_uri")
REVOKE_TIMEOUT_SECONDS = 10

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_HTTP_URL = re.compile(r"https?://[^\s/?#]+[^\s]*")
_PROPERTY_ID = re.compile(r"(?:properties/)?(\d{1,20})")
_ACCOUNT_ID = re.compile(r"(?:accounts/)?(\d{1,20})")
_STREAM_ID = re.compile(r"(?:properties/\d{1,20}/dataStreams/)?(\d{1,20})")
_MEASUREMENT_ID = re.compile(r"G-[A-Z0-9]{4,20}")


@dataclass(frozen=True)
class Connection:
    """A scope's GA4 connection as routes may show it: no credentials, no MP secret."""

    scope_id: str
    auth_kind: str
    principal: str | None
    oauth_scopes: tuple[str, ...]
    account_id: str | None
    property_id: str | None
    property_name: str | None
    stream_id: str | None
    measurement_id: str | None
    has_mp_secret: bool
    #: The property's reporting time zone (IANA) and currency (ISO 4217), as GA4 said at link.
    time_zone: str | None
    currency: str | None
    connected_by: str
    connected_at: datetime
    updated_at: datetime
    last_sync_at: datetime | None
    last_error: str | None

    @property
    def can_provision(self) -> bool:
        """Whether these credentials may create properties (analytics.edit for OAuth)."""
        return self.auth_kind == SERVICE_ACCOUNT or ANALYTICS_EDIT in self.oauth_scopes


def parse_service_account(info_json: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The service-account key as a dict, checked enough to be usable.

    Raises :class:`ValidationError` naming the first bad field; messages never echo a value
    from the key.
    """
    if isinstance(info_json, (str, bytes)):
        try:
            info = json.loads(info_json)
        except (ValueError, RecursionError):
            raise ValidationError("credentials", "is not valid JSON") from None
    elif isinstance(info_json, Mapping):
        info = dict(info_json)
    else:
        raise ValidationError("credentials", "must be a service-account key (a JSON object)")
    if not isinstance(info, dict):
        raise ValidationError("credentials", "must be a service-account key (a JSON object)")
    for name in SERVICE_ACCOUNT_FIELDS:
        value = info.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(name, "is missing from the service-account key")
    if info["type"] != SERVICE_ACCOUNT:
        raise ValidationError(
            "type", 'must be "service_account" (download a key of a Google Cloud service account)'
        )
    if not _EMAIL.fullmatch(info["client_email"]):
        raise ValidationError("client_email", "is not an e-mail address")
    if not _HTTP_URL.fullmatch(info["token_uri"]):
        raise ValidationError("token_uri", "must be an http(s) URL")
    _check_private_key(info["private_key"])
    return info


def save_service_account(
    scope_id: str | None, info_json: str | bytes | Mapping[str, Any], *, actor: str | None = None
) -> Connection:
    """Connect ``scope_id`` with a service-account key (replacing any earlier credentials)."""
    scope = resolve_scope(scope_id)
    info = parse_service_account(info_json)
    plaintext = json.dumps(info, separators=(",", ":"), sort_keys=True)
    token = encrypt_secret(plaintext, purpose=credentials_purpose(scope))
    return _save_credentials(
        scope,
        SERVICE_ACCOUNT,
        token,
        principal=info["client_email"],
        scopes=(),
        refresh_token=None,
        actor=actor,
    )


def save_oauth_tokens(
    scope_id: str | None,
    *,
    refresh_token: str,
    client_id: str,
    scopes: Sequence[str],
    principal: str | None = None,
    actor: str | None = None,
) -> Connection:
    """Connect ``scope_id`` with an OAuth refresh token granted to ``client_id`` for ``scopes``."""
    scope = resolve_scope(scope_id)
    if not isinstance(refresh_token, str) or not refresh_token:
        raise ValidationError("refresh_token", "must be a non-empty string")
    if not isinstance(client_id, str) or not client_id:
        raise ValidationError("client_id", "must be a non-empty string")
    granted = tuple(dict.fromkeys(str(s) for s in scopes))
    if ANALYTICS_READONLY not in granted and ANALYTICS_EDIT not in granted:
        raise ValidationError("scopes", f"must include {ANALYTICS_READONLY}")
    plaintext = json.dumps({"client_id": client_id, "refresh_token": refresh_token})
    token = encrypt_secret(plaintext, purpose=credentials_purpose(scope))
    return _save_credentials(
        scope,
        OAUTH,
        token,
        principal=principal,
        scopes=granted,
        refresh_token=refresh_token,
        actor=actor,
    )


def get_connection(scope_id: str | None) -> Connection | None:
    """The scope's connection without secrets, or None when it is not connected."""
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        row = _select_row(connection, scope)
    return None if row is None else _to_connection(row)


def require_connection(scope_id: str | None) -> Connection:
    """As :func:`get_connection`, but a 409 when the scope is not connected."""
    found = get_connection(scope_id)
    if found is None:
        raise _not_connected(resolve_scope(scope_id))
    return found


def load_credentials(scope_id: str | None, *, edit: bool = False) -> Credentials:
    """Google credentials for the scope's connection (not yet refreshed).

    ``edit=True`` asks for ``analytics.edit`` too (provisioning); an OAuth grant without it is a
    409 asking to reconnect with provisioning.
    """
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        row = _select_row(connection, scope)
    if row is None:
        raise _not_connected(scope)
    payload = json.loads(
        decrypt_secret(row.credentials_encrypted, purpose=credentials_purpose(scope))
    )
    if row.auth_kind == SERVICE_ACCOUNT:
        from google.oauth2 import service_account

        wanted = [ANALYTICS_READONLY, ANALYTICS_EDIT] if edit else [ANALYTICS_READONLY]
        credentials: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            payload, scopes=wanted
        )
        return credentials
    granted = list(row.oauth_scopes or ())
    if edit and ANALYTICS_EDIT not in granted:
        raise APIError(
            409,
            "ga4_scope_missing",
            "The Google account was connected without permission to create properties: "
            "connect again with provisioning enabled.",
        )
    from google.oauth2.credentials import Credentials as UserCredentials

    return UserCredentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=payload["refresh_token"],
        token_uri=current_state().settings["UMETRICS_GA4_OAUTH_TOKEN_URI"],
        client_id=payload["client_id"],
        client_secret=oauth_client_secret(),
        scopes=granted,
    )


def oauth_client_secret() -> str:
    """``UMETRICS_GA4_OAUTH_CLIENT_SECRET`` from the environment; a 409 naming it when unset."""
    secret = os.environ.get(CLIENT_SECRET_ENV, "").strip()
    if not secret:
        raise APIError(
            409,
            "ga4_oauth_not_configured",
            f"Google sign-in is not configured: set {CLIENT_SECRET_ENV} in the environment "
            "(and UMETRICS_GA4_OAUTH_CLIENT_ID in the configuration).",
        )
    return secret


def _optional_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValidationError(
            "time_zone", "must be an IANA time zone such as Europe/Berlin"
        ) from exc
    return value


def _optional_currency(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise ValidationError("currency", "must be an ISO 4217 code such as EUR")
    return value


def set_property(
    scope_id: str | None,
    property_id: str,
    *,
    account_id: str | None = None,
    property_name: str | None = None,
    stream_id: str | None = None,
    measurement_id: str | None = None,
    time_zone: str | None = None,
    currency: str | None = None,
    actor: str | None = None,
) -> Connection:
    """Link the scope's connection to a GA4 property (and optionally its web stream).

    ``time_zone`` / ``currency`` are the property's reporting time zone and currency.

    Linking another property forgets the old stream, measurement id and MP secret, and drops the
    scope's cached reports (they were about the old property).
    """
    scope = resolve_scope(scope_id)
    values: dict[str, Any] = {
        "property_id": _id_field("property_id", property_id, _PROPERTY_ID),
        "account_id": _optional_id("account_id", account_id, _ACCOUNT_ID),
        "stream_id": _optional_id("stream_id", stream_id, _STREAM_ID),
        "property_name": _optional_text("property_name", property_name, 200),
        "measurement_id": None,
        "time_zone": _optional_zone(time_zone),
        "currency": _optional_currency(currency),
    }
    if measurement_id is not None:
        if not isinstance(measurement_id, str) or not _MEASUREMENT_ID.fullmatch(measurement_id):
            raise ValidationError("measurement_id", "must look like G-XXXXXXXXXX")
        values["measurement_id"] = measurement_id
    with current_state().engine.begin() as connection:
        row = _select_row(connection, scope, for_update=True)
        if row is None:
            raise _not_connected(scope)
        changed_property = row.property_id != values["property_id"]
        if not changed_property:
            # Relinking the same property keeps what the caller did not name.
            values = {k: v if v is not None else getattr(row, k) for k, v in values.items()}
        else:
            values["mp_secret_encrypted"] = None
            connection.execute(delete(ga4_report_cache).where(ga4_report_cache.c.scope_id == scope))
        values["updated_at"] = utcnow()
        connection.execute(
            update(ga4_connections).where(ga4_connections.c.scope_id == scope).values(values)
        )
        record_audit(
            connection,
            scope_id=scope,
            action="ga4.link_property",
            target=f"properties/{values['property_id']}",
            before=_link_summary(row._mapping),
            after=_link_summary(values),
            actor=actor,
        )
    return require_connection(scope)


def set_mp_secret(scope_id: str | None, secret: str | None, *, actor: str | None = None) -> None:
    """Store (or with None, forget) the scope's Measurement Protocol API secret, encrypted."""
    scope = resolve_scope(scope_id)
    token = None
    if secret is not None:
        if not isinstance(secret, str) or not 1 <= len(secret) <= 200 or secret != secret.strip():
            raise ValidationError("mp_secret", "must be 1-200 characters without outer spaces")
        token = encrypt_secret(secret, purpose=mp_secret_purpose(scope))
    with current_state().engine.begin() as connection:
        result = connection.execute(
            update(ga4_connections)
            .where(ga4_connections.c.scope_id == scope)
            .values(mp_secret_encrypted=token, updated_at=utcnow())
        )
        if not result.rowcount:
            raise _not_connected(scope)
        record_audit(
            connection,
            scope_id=scope,
            action="ga4.mp_secret",
            target="ga4",
            after={"mp_secret": "set" if token else "cleared"},
            actor=actor,
        )


def get_mp_secret(scope_id: str | None) -> str | None:
    """The scope's Measurement Protocol API secret, or None when there is none."""
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        token = connection.execute(
            select(ga4_connections.c.mp_secret_encrypted).where(ga4_connections.c.scope_id == scope)
        ).scalar()
    return None if token is None else decrypt_secret(token, purpose=mp_secret_purpose(scope))


def mark_sync(scope_id: str | None, *, at: datetime, error: str | None = None) -> None:
    """Record a GA4 sync: success moves ``last_sync_at``; a failure only sets ``last_error``."""
    scope = resolve_scope(scope_id)
    values: dict[str, Any] = {"last_error": None if error is None else error[:2000]}
    if error is None:
        values["last_sync_at"] = at
    with current_state().engine.begin() as connection:
        connection.execute(
            update(ga4_connections).where(ga4_connections.c.scope_id == scope).values(values)
        )


def disconnect(scope_id: str | None, *, actor: str | None = None) -> bool:
    """Revoke an OAuth grant at Google, then delete the connection, its cache and open flows.

    A failed revocation is logged (without the token) and the connection is deleted anyway: the
    user asked for the app to forget it. False when the scope was not connected.
    """
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        row = _select_row(connection, scope)
    if row is None:
        return False
    refresh_token = _stored_refresh_token(row, scope)
    if refresh_token is not None:
        revoke_token(refresh_token)
    with current_state().engine.begin() as connection:
        deleted = connection.execute(
            delete(ga4_connections).where(ga4_connections.c.scope_id == scope)
        ).rowcount
        connection.execute(delete(ga4_report_cache).where(ga4_report_cache.c.scope_id == scope))
        connection.execute(delete(ga4_oauth_flows).where(ga4_oauth_flows.c.scope_id == scope))
        if deleted:
            record_audit(
                connection,
                scope_id=scope,
                action="ga4.disconnect",
                target="ga4",
                before={**_identity_summary(row._mapping), **_link_summary(row._mapping)},
                after={"revoked": refresh_token is not None},
                actor=actor,
            )
    return bool(deleted)


def revoke_token(token: str) -> bool:
    """POST ``token`` to the configured revocation endpoint; False (logged) when it fails."""
    url = current_state().settings["UMETRICS_GA4_OAUTH_REVOKE_URI"]
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode({"token": token}).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=REVOKE_TIMEOUT_SECONDS) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        logger.warning("GA4: revoking the OAuth grant at %s failed: HTTP %s", url, exc.code)
        return False
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        logger.warning("GA4: revoking the OAuth grant at %s failed: %s", url, type(reason).__name__)
        return False
    return True


# --- storage -----------------------------------------------------------------------------------


def _save_credentials(
    scope: str,
    auth_kind: str,
    token: str,
    *,
    principal: str | None,
    scopes: tuple[str, ...],
    refresh_token: str | None,
    actor: str | None,
) -> Connection:
    """Insert or replace the scope's credentials, keeping the linked property.

    A replaced OAuth grant is revoked (after the commit) unless it is the same refresh token.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "auth_kind": auth_kind,
        "credentials_encrypted": token,
        "principal": principal,
        "oauth_scopes": list(scopes) if auth_kind == OAUTH else None,
        "updated_at": now,
        "last_error": None,
    }
    replaced_token: str | None = None
    with current_state().engine.begin() as connection:
        old = _select_row(connection, scope, for_update=True)
        if old is None:
            connection.execute(
                insert(ga4_connections).values(
                    scope_id=scope,
                    connected_by=actor or current_actor(),
                    connected_at=now,
                    **values,
                )
            )
        else:
            replaced_token = _stored_refresh_token(old, scope)
            connection.execute(
                update(ga4_connections)
                .where(ga4_connections.c.scope_id == scope)
                .values(connected_by=actor or current_actor(), connected_at=now, **values)
            )
        record_audit(
            connection,
            scope_id=scope,
            action="ga4.connect",
            target=f"{auth_kind}:{principal or ''}",
            before=None if old is None else _identity_summary(old._mapping),
            after={"auth_kind": auth_kind, "principal": principal, "oauth_scopes": list(scopes)},
            actor=actor,
        )
    if replaced_token is not None and replaced_token != refresh_token:
        revoke_token(replaced_token)
    return require_connection(scope)


def _stored_refresh_token(row: Row[Any], scope: str) -> str | None:
    """The OAuth refresh token of a stored row, or None (service account, or undecryptable)."""
    if row.auth_kind != OAUTH:
        return None
    try:
        plaintext = decrypt_secret(row.credentials_encrypted, purpose=credentials_purpose(scope))
        token = json.loads(plaintext).get("refresh_token")
    except SecretUnavailableError:
        logger.warning("GA4 scope %s: the stored OAuth grant cannot be decrypted", scope)
        return None
    return token if isinstance(token, str) else None


def _select_row(
    connection: DBConnection, scope: str, *, for_update: bool = False
) -> Row[Any] | None:
    query = select(ga4_connections).where(ga4_connections.c.scope_id == scope)
    if for_update:
        query = query.with_for_update()
    return connection.execute(query).first()


def _to_connection(row: Row[Any]) -> Connection:
    return Connection(
        scope_id=row.scope_id,
        auth_kind=row.auth_kind,
        principal=row.principal,
        oauth_scopes=tuple(row.oauth_scopes or ()),
        account_id=row.account_id,
        property_id=row.property_id,
        property_name=row.property_name,
        stream_id=row.stream_id,
        measurement_id=row.measurement_id,
        has_mp_secret=row.mp_secret_encrypted is not None,
        time_zone=row.time_zone,
        currency=row.currency,
        connected_by=row.connected_by,
        connected_at=row.connected_at,
        updated_at=row.updated_at,
        last_sync_at=row.last_sync_at,
        last_error=row.last_error,
    )


def _identity_summary(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {"auth_kind": values["auth_kind"], "principal": values["principal"]}


def _link_summary(values: Mapping[Any, Any]) -> dict[str, Any]:
    names = ("account_id", "property_id", "property_name", "stream_id", "measurement_id")
    return {name: values.get(name) for name in names}


def _not_connected(scope: str) -> APIError:
    return APIError(
        409, "ga4_not_connected", f"Scope {scope!r} has no Google Analytics connection."
    )


def _check_private_key(pem: str) -> None:
    """The key must load as an RSA private key; the error never shows any of it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValidationError("private_key", "is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError("private_key", "must be an RSA key")


def _id_field(field: str, value: Any, pattern: re.Pattern[str]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = pattern.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(field, "must be a numeric GA4 id")
    return match.group(1)


def _optional_id(field: str, value: Any, pattern: re.Pattern[str]) -> str | None:
    return None if value is None else _id_field(field, value, pattern)


def _optional_text(field: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(field, f"must be text of at most {limit} characters")
    return value

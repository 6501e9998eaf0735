"""Permissions on scopes: the host's authorizer callback, and hashed per-scope API keys.

A request is allowed when it carries a valid API key for the scope whose permission covers the
one required, or, without a key, when the host's ``@umetrics.authorizer`` says yes. With neither,
everything is denied (and a warning is logged once).

Some routes need more for some inputs: ``/api/identify`` needs ``ingest``, but merging two
identified persons or changing an identified person's properties also needs ``identify``. The
view asks :func:`holds` for it (a key: its grants; a host user: the authorizer is asked
``("identify", scope_id)``) and declares it with :func:`may_require`, so the authorization
matrix test finds it.

open-metrics' clients can set no header and build their URLs themselves, so its routes also take
a key as ``?key=`` (and the host may name one, ``UMETRICS_OPENMETRICS_KEY``, for requests that
carry none). Only a key of permission ``openmetrics`` travels that way: it can do nothing but
open-metrics' calls on its own scope, so it is public like the browser's write key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar, get_args

from flask import g, request
from sqlalchemy import and_, insert, select, update

from .audit import record_audit
from .db.tables import api_keys
from .db.types import utcnow
from .errors import APIError, ValidationError
from .state import current_state, resolve_scope

logger = logging.getLogger("flask_umetrics")

Permission = Literal[
    "ingest", "identify", "metrics.view", "metrics.manage", "client", "openmetrics"
]
PERMISSIONS: tuple[str, ...] = get_args(Permission)
#: Merging identified persons and changing identified persons' properties (see events/identity).
IDENTIFY = "identify"
#: open-metrics' calls (``/v1``): what an ``openmetrics`` key can do, and any write key too.
OPENMETRICS = "openmetrics"
#: Where the host's authorizer is asked another permission: a request without a key on
#: open-metrics' routes writes events, so the authorizer is asked ``ingest``.
AUTHORIZER_ASKS = {OPENMETRICS: "ingest"}

#: What each key permission lets its holder do. An ingest key (public: the browser's write key)
#: writes events and links fresh anonymous ids to a user, nothing more; ``identify`` (server-side
#: keys) may also rewrite identified persons; a client key can only read its scope's GrowthBook
#: SDK payload (features, as an SDK evaluates them); an open-metrics key (public, sent in URLs)
#: only open-metrics' calls, with the ingest key's limits on identities.
GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest", OPENMETRICS}),
    "identify": frozenset({"identify", "ingest", OPENMETRICS}),
    "metrics.view": frozenset({"metrics.view", "client"}),
    "metrics.manage": frozenset(
        {"metrics.manage", "metrics.view", "ingest", "identify", "client", OPENMETRICS}
    ),
    "client": frozenset({"client"}),
    OPENMETRICS: frozenset({OPENMETRICS}),
}
#: Permissions whose keys also come as ``X-UMetrics-Key`` or the body's ``api_key``.
_WRITE_PERMISSIONS = frozenset({"ingest", OPENMETRICS})

KEY_PREFIX = "umk"
_LAST_USED_RESOLUTION = timedelta(minutes=1)
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as stored: everything but the secret."""

    key_id: str
    scope_id: str
    permission: str
    name: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an API key or the host app's user."""

    kind: Literal["key", "user"]
    identifier: str
    scope_id: str
    #: A key's granted permissions; None for a host user (the authorizer is asked each time).
    grants: frozenset[str] | None = None

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.identifier}"


def _hash_key(raw_key: str) -> str:
    # Keys carry 192 random bits, so a fast hash is safe; there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def _check_permission(permission: str, field: str = "permission") -> str:
    if permission not in PERMISSIONS:
        raise ValidationError(field, f"must be one of {', '.join(PERMISSIONS)}")
    return permission


def create_api_key(
    scope_id: str | None = None,
    permission: str = "metrics.view",
    *,
    name: str = "",
    created_by: str | None = None,
) -> str:
    """Create a key for ``scope_id`` with ``permission`` and return it; it is shown only once.

    ``permission``: ``ingest`` (a write key, public in browsers), ``identify`` (server-side:
    also merges identified persons and sets their properties), ``metrics.view`` or
    ``metrics.manage`` (everything), ``client`` (GrowthBook SDK payload), ``openmetrics``
    (open-metrics' calls only; public, may be sent as ``?key=``); see :data:`GRANTS`.
    """
    return issue_api_key(scope_id, permission, name=name, created_by=created_by)[0]


def issue_api_key(
    scope_id: str | None, permission: str, *, name: str = "", created_by: str | None = None
) -> tuple[str, ApiKeyInfo]:
    """Create a key and return it with its stored record."""
    scope = resolve_scope(scope_id)
    _check_permission(permission)
    if len(name) > 200:
        raise ValidationError("name", "must be at most 200 characters")
    key_id = secrets.token_hex(8)
    raw_key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
    now = utcnow()
    with current_state().engine.begin() as connection:
        connection.execute(
            insert(api_keys).values(
                key_id=key_id,
                scope_id=scope,
                permission=permission,
                name=name,
                key_hash=_hash_key(raw_key),
                created_at=now,
                created_by=created_by,
            )
        )
        record_audit(
            connection,
            scope_id=scope,
            action="api_key.create",
            target=key_id,
            after={"permission": permission, "name": name},
            actor=created_by,
        )
    info = ApiKeyInfo(key_id, scope, permission, name, now, created_by, None, None)
    return raw_key, info


def _row_to_info(row: object) -> ApiKeyInfo:
    mapping = row._mapping  # type: ignore[attr-defined]
    return ApiKeyInfo(**{name: mapping[name] for name in ApiKeyInfo.__dataclass_fields__})


def list_api_keys(
    scope_id: str | None = None, *, include_revoked: bool = False
) -> list[ApiKeyInfo]:
    """Keys of one scope (or of every scope when ``scope_id`` is None), oldest first."""
    columns = [api_keys.c[name] for name in ApiKeyInfo.__dataclass_fields__]
    query = select(*columns).order_by(api_keys.c.created_at, api_keys.c.key_id)
    if scope_id is not None:
        query = query.where(api_keys.c.scope_id == resolve_scope(scope_id))
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    with current_state().engine.connect() as connection:
        return [_row_to_info(row) for row in connection.execute(query)]


def revoke_api_key(key_id: str, *, scope_id: str | None = None, actor: str | None = None) -> bool:
    """Revoke a key; False when no active key has that id (in ``scope_id``, when given)."""
    condition = and_(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
    if scope_id is not None:
        condition = and_(condition, api_keys.c.scope_id == resolve_scope(scope_id))
    with current_state().engine.begin() as connection:
        row = connection.execute(select(api_keys.c.scope_id).where(condition)).first()
        if row is None:
            return False
        connection.execute(update(api_keys).where(condition).values(revoked_at=utcnow()))
        record_audit(
            connection,
            scope_id=row.scope_id,
            action="api_key.revoke",
            target=key_id,
            before={"revoked": False},
            after={"revoked": True},
            actor=actor,
        )
    current_state().verified_keys.clear()
    return True


def verify_api_key(raw_key: str) -> ApiKeyInfo | None:
    """The active key matching ``raw_key``, or None. Constant-time comparison of the hash.

    A verified key is trusted for ``UMETRICS_API_KEY_CACHE_SECONDS`` by this process (revoking
    in this process drops it at once), so busy ingestion costs no key lookup per request.
    """
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 16:
        return None
    if not set(parts[1]) <= _HEX_DIGITS:  # e.g. a NUL byte, which PostgreSQL cannot compare
        return None
    state = current_state()
    digest = _hash_key(raw_key)
    cached = state.verified_keys.get(digest)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    info = _lookup_api_key(digest, parts[1])
    ttl = state.settings["UMETRICS_API_KEY_CACHE_SECONDS"]
    if info is not None and ttl > 0:
        state.verified_keys[digest] = (time.monotonic() + ttl, info)
    return info


def _lookup_api_key(digest: str, key_id: str) -> ApiKeyInfo | None:
    columns = [api_keys.c[name] for name in ApiKeyInfo.__dataclass_fields__]
    engine = current_state().engine
    with engine.connect() as connection:
        row = connection.execute(
            select(*columns, api_keys.c.key_hash).where(api_keys.c.key_id == key_id)
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    info = _row_to_info(row)
    now = utcnow()
    if info.last_used_at is None or now - info.last_used_at > _LAST_USED_RESOLUTION:
        with engine.begin() as connection:
            connection.execute(
                update(api_keys).where(api_keys.c.key_id == key_id).values(last_used_at=now)
            )
    return info


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def url_key() -> str | None:
    """The ``?key=`` of the request: asked for by open-metrics' routes only (:data:`OPENMETRICS`),
    whose clients cannot set headers; anywhere else it is no credential."""
    return request.args.get("key") or None


def presented_key(permission: str, body_key: str | None = None) -> tuple[str | None, bool]:
    """The key presented for ``permission`` (see :func:`presented_api_key`) and whether it came
    in the URL (``?key=``, which only an ``openmetrics`` key may)."""
    token = _bearer_token()
    if token is None and permission in _WRITE_PERMISSIONS:
        token = request.headers.get("X-UMetrics-Key") or body_key or None
    elif token is None and permission == "client":
        token = body_key  # the GrowthBook SDK payload's client key, from the path
    if token is None and permission == OPENMETRICS:
        token = url_key()
        return token, token is not None
    return token, False


def presented_api_key(permission: str, *, body_key: str | None = None) -> str | None:
    """The API key the current request presents for ``permission``, if any: a bearer token, or
    for ingestion also ``X-UMetrics-Key`` or the body's ``api_key``, for open-metrics' calls
    also ``?key=``. Without one the request acts with the host's cookies (the authorizer),
    which a page on another site can make the browser send (see ``api/origin.py``)."""
    return presented_key(permission, body_key)[0]


def authorize(
    permission: str,
    scope_id: str,
    *,
    body_key: str | None = None,
    public_key: str | None = None,
) -> Principal:
    """Allow the current request ``permission`` on ``scope_id`` or raise a 401/403 ``APIError``.

    Ingestion may also carry its write key in ``X-UMetrics-Key`` or the body's ``api_key``; the
    GrowthBook SDK payload its client key in the path (passed as ``body_key``); open-metrics'
    calls ``?key=``. ``public_key`` acts for a request that presents no key (the host's
    ``UMETRICS_OPENMETRICS_KEY``). A key in the URL or from ``public_key`` must be an
    ``openmetrics`` key: URLs end up in logs, histories and ``Referer`` headers.
    """
    token, public = presented_key(permission, body_key)
    if token is None and public_key is not None:
        token, public = public_key, True
    if token is not None:
        info = verify_api_key(token)
        if info is None:
            raise APIError(
                401,
                "invalid_api_key",
                "The API key is not valid or has been revoked.",
                headers={"WWW-Authenticate": 'Bearer realm="umetrics"'},
            )
        if public and info.permission != OPENMETRICS:
            raise APIError(
                403,
                "key_not_public",
                f"A {info.permission!r} key cannot be sent in the URL or set as "
                "UMETRICS_OPENMETRICS_KEY (only an 'openmetrics' key can): send it in "
                "X-UMetrics-Key.",
            )
        if info.scope_id != scope_id:
            raise APIError(
                403,
                "wrong_scope",
                f"This API key belongs to another scope and cannot access scope {scope_id!r}.",
            )
        grants = GRANTS.get(info.permission, frozenset())
        if permission not in grants:
            raise APIError(
                403,
                "insufficient_permission",
                f"This API key has {info.permission!r}; the request needs {permission!r}.",
            )
        principal = Principal("key", info.key_id, scope_id, grants)
        g.umetrics_principal = principal
        return principal

    state = current_state()
    authorizer = state.extension.authorizer_callback
    if authorizer is None:
        if "no_authorizer" not in state.warned:
            state.warned.add("no_authorizer")
            logger.warning(
                "flask-umetrics: no @umetrics.authorizer is registered, so every request "
                "without an API key is denied."
            )
        raise APIError(
            401,
            "authentication_required",
            "Authentication required: send an API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="umetrics"'},
        )
    if not authorizer(AUTHORIZER_ASKS.get(permission, permission), scope_id):
        if state.extension.subject_loader_callback is not None and (
            state.extension.current_subject_id() is None
        ):
            # The host's subject loader says nobody is logged in: ask for credentials.
            raise APIError(
                401,
                "authentication_required",
                "Authentication required: log in, or send an API key as 'Authorization: Bearer'.",
                headers={"WWW-Authenticate": 'Bearer realm="umetrics"'},
            )
        raise APIError(403, "forbidden", f"You do not have {permission!r} on scope {scope_id!r}.")
    subject_id = state.extension.current_subject_id()
    principal = Principal("user", subject_id or "anonymous", scope_id)
    g.umetrics_principal = principal
    return principal


def holds(principal: Principal, permission: str) -> bool:
    """Whether the already authorized caller also holds ``permission`` on its scope.

    A key holds what :data:`GRANTS` gives its permission; a host user what the host's
    ``@umetrics.authorizer`` answers for ``(permission, scope_id)``, asked now.
    """
    if principal.grants is not None:
        return permission in principal.grants
    authorizer = current_state().extension.authorizer_callback
    return authorizer is not None and bool(authorizer(permission, principal.scope_id))


F = TypeVar("F", bound=Callable[..., object])


def may_require(*permissions: str) -> Callable[[F], F]:
    """Mark a route whose view needs ``permissions`` too for some inputs (and checks them with
    :func:`holds`); the authorization matrix test sends such a route those inputs."""

    def mark(endpoint: F) -> F:
        endpoint.umetrics_may_require = permissions  # type: ignore[attr-defined]
        return endpoint

    return mark

"""Encryption at rest of the GA4 secrets: credentials, Measurement Protocol secrets, PKCE verifiers.

A database dump must not hand out access to someone's Google Analytics, so every secret is
encrypted with AES-256-GCM under ``UMETRICS_ENCRYPTION_KEY_<id>`` keys from the environment
(see :mod:`flask_umetrics.crypto`), with a purpose string as associated data so a ciphertext
cannot be moved to another scope or column. The key ring is read lazily, once per app, so apps
that never use GA4 need no key; :func:`reencrypt_all` moves stored secrets to the current key
after a rotation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import Column, Table, select, update

from ..audit import record_audit
from ..crypto import KeyRing, key_id_of
from ..db.tables import ga4_connections, ga4_oauth_flows
from ..errors import APIError
from ..state import current_state

#: ``app.extensions`` entry for GA4 per-app objects (shared by the ga4 modules).
EXTENSION_KEY = "umetrics.ga4"
ENV_CURRENT = KeyRing.env_current()


class SecretUnavailableError(APIError):
    """A secret cannot be written or read with the configured keys (a server setting, not a bug).

    Answered as 503 so a route can let it through; the message says which variable to set and
    never contains key material or the secret.
    """

    def __init__(self, message: str) -> None:
        super().__init__(503, "encryption_unavailable", message)


def credentials_purpose(scope_id: str) -> str:
    """Associated data of a scope's stored Google credentials."""
    return f"ga4-credentials:{scope_id}"


def mp_secret_purpose(scope_id: str) -> str:
    """Associated data of a scope's Measurement Protocol API secret."""
    return f"ga4-mp-secret:{scope_id}"


def verifier_purpose(state_id: str) -> str:
    """Associated data of an OAuth flow's PKCE code verifier."""
    return f"ga4-oauth-verifier:{state_id}"


def keyring() -> KeyRing:
    """The current app's key ring, read from ``os.environ`` on first use and kept per app.

    Raises :class:`~flask_umetrics.errors.ConfigurationError` naming the variable for a
    malformed key.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    shared: dict[str, object] = app.extensions.setdefault(EXTENSION_KEY, {})
    ring = shared.get("keyring")
    if not isinstance(ring, KeyRing):
        ring = KeyRing.from_environ(os.environ)
        shared["keyring"] = ring
    return ring


def encrypt_secret(plaintext: str, *, purpose: str) -> str:
    """``plaintext`` encrypted under the current key, bound to ``purpose``."""
    ring = keyring()
    if not ring.can_write:
        raise SecretUnavailableError(
            f"No encryption key for GA4 secrets: set {ENV_CURRENT}=<id> and "
            f"{KeyRing.ENV_PREFIX}<id>=<base64 of 32 random bytes> in the environment "
            "(e.g. the output of `openssl rand -base64 32`)."
        )
    return ring.encrypt(plaintext.encode("utf-8"), associated_data=purpose.encode("utf-8"))


def decrypt_secret(token: str, *, purpose: str) -> str:
    """The plaintext of ``token``; a clear error when no configured key can open it."""
    ring = keyring()
    plaintext = ring.decrypt(token, associated_data=purpose.encode("utf-8"))
    if plaintext is None:
        key_id = key_id_of(token) if isinstance(token, str) else None
        if not ring.keys:
            hint = f"no key is configured: set {ENV_CURRENT} and {KeyRing.ENV_PREFIX}<id>"
        elif key_id is not None and key_id not in ring.keys:
            hint = f"it was written under key id {key_id!r}: set {KeyRing.ENV_PREFIX}{key_id}"
        else:
            hint = "the key does not match or the stored value was altered"
        raise SecretUnavailableError(
            f"A stored GA4 secret ({purpose}) cannot be decrypted: {hint}."
        )
    return plaintext.decode("utf-8")


@dataclass(frozen=True)
class ReencryptResult:
    """How many stored secrets moved to the current key, per kind."""

    key_id: str
    credentials: int
    mp_secrets: int
    oauth_verifiers: int

    @property
    def total(self) -> int:
        return self.credentials + self.mp_secrets + self.oauth_verifiers


def reencrypt_all(*, actor: str | None = None) -> ReencryptResult:
    """Rewrite every stored GA4 secret that is not under the current key with the current key.

    Runs in one transaction, so a secret no configured key can open stops the rotation with
    nothing changed. Each row is updated only if it still holds the value read (a concurrent
    reconnect wins). One audit row per scope whose secrets moved; no secret is in it.
    """
    ring = keyring()
    if ring.current_id is None:
        raise SecretUnavailableError(f"Set {ENV_CURRENT} to the key id secrets should move to.")
    current = ring.current_id
    counts = {"credentials": 0, "mp_secrets": 0, "oauth_verifiers": 0}
    moved_scopes: dict[str, int] = {}
    columns: list[tuple[str, Table, Column[Any], Column[Any], Callable[[str], str]]] = [
        ("credentials", ga4_connections, ga4_connections.c.scope_id,
         ga4_connections.c.credentials_encrypted, credentials_purpose),
        ("mp_secrets", ga4_connections, ga4_connections.c.scope_id,
         ga4_connections.c.mp_secret_encrypted, mp_secret_purpose),
        ("oauth_verifiers", ga4_oauth_flows, ga4_oauth_flows.c.state_id,
         ga4_oauth_flows.c.code_verifier_encrypted, verifier_purpose),
    ]  # fmt: skip
    with current_state().engine.begin() as connection:
        for kind, table, key_column, secret_column, purpose_of in columns:
            rows = connection.execute(
                select(key_column, secret_column, table.c.scope_id).where(
                    secret_column.is_not(None)
                )
            ).all()
            for row_key, token, scope_id in rows:
                if key_id_of(token) == current:
                    continue
                purpose = purpose_of(row_key)
                fresh = encrypt_secret(decrypt_secret(token, purpose=purpose), purpose=purpose)
                result = connection.execute(
                    update(table)
                    .where(key_column == row_key, secret_column == token)
                    .values({secret_column.name: fresh})
                )
                if result.rowcount:
                    counts[kind] += 1
                    moved_scopes[scope_id] = moved_scopes.get(scope_id, 0) + 1
        for scope_id, moved in sorted(moved_scopes.items()):
            record_audit(
                connection,
                scope_id=scope_id,
                action="ga4.reencrypt",
                target="ga4",
                after={"key_id": current, "secrets": moved},
                actor=actor,
            )
    return ReencryptResult(key_id=current, **counts)

"""The environment and config GA4 tests share: encryption keys, the OAuth client secret, and an
app pointed at the local fake Google servers."""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from .ga4_fake_oauth import FakeGoogleOAuth
from .ga4_fake_server import FakeGA4, running_fake


def use_keys(monkeypatch: pytest.MonkeyPatch, current: str | None, **keys: bytes) -> None:
    """Exactly these encryption keys in the environment (apps made afterwards read them)."""
    for name in list(os.environ):
        if name.startswith("UMETRICS_ENCRYPTION_KEY_"):
            monkeypatch.delenv(name)
    for key_id, key in keys.items():
        monkeypatch.setenv(f"UMETRICS_ENCRYPTION_KEY_{key_id}", base64.b64encode(key).decode())
    if current is not None:
        monkeypatch.setenv("UMETRICS_ENCRYPTION_KEY_CURRENT", current)


def use_oauth_client(monkeypatch: pytest.MonkeyPatch, client_secret: str) -> None:
    """The OAuth client secret (environment only), and plain HTTP for the local fake."""
    monkeypatch.setenv("UMETRICS_GA4_OAUTH_CLIENT_SECRET", client_secret)
    # The fake speaks plain HTTP on 127.0.0.1; oauthlib insists on https unless told otherwise.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def fake_google_config(oauth: FakeGoogleOAuth, ga4: FakeGA4, client_id: str) -> dict[str, Any]:
    """App config talking to the fake OAuth server and the fake GA4 gRPC server, uncached."""
    return {
        "UMETRICS_TIMEZONE": "UTC",
        "UMETRICS_GA4_OAUTH_CLIENT_ID": client_id,
        "UMETRICS_GA4_OAUTH_AUTH_URI": oauth.auth_uri,
        "UMETRICS_GA4_OAUTH_TOKEN_URI": oauth.token_uri,
        "UMETRICS_GA4_OAUTH_REVOKE_URI": oauth.revoke_uri,
        "UMETRICS_GA4_ADMIN_ENDPOINT": ga4.grpc_endpoint,
        "UMETRICS_GA4_DATA_ENDPOINT": ga4.grpc_endpoint,
        "UMETRICS_GA4_GRPC_INSECURE": True,
        "UMETRICS_GA4_CACHE_TTL": 0,
    }


@contextmanager
def fake_google(client_id: str, client_secret: str) -> Iterator[tuple[FakeGoogleOAuth, FakeGA4]]:
    """The fake OAuth server and the fake GA4 server, running, with account 100 ("Acme")."""
    oauth = FakeGoogleOAuth(client_id=client_id, client_secret=client_secret)
    with oauth, running_fake() as ga4:
        ga4.add_account("100", "Acme")
        yield oauth, ga4


def fake_property_id(fake: FakeGA4) -> str:
    """The id of the fake's first property."""
    return next(iter(fake.properties)).split("/")[1]


def run_fake_report(
    app: Flask, fake: FakeGA4, name: str, params: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """``reports.run_report`` for scope "default" on the fake's first property, as of ``now``."""
    from google.auth.credentials import AnonymousCredentials

    from flask_umetrics.ga4 import reports
    from flask_umetrics.state import current_state

    with app.app_context():
        state = current_state()
        return reports.run_report(
            name,
            "default",
            params,
            credentials=AnonymousCredentials(),
            property_id=fake_property_id(fake),
            settings=state.settings,
            engine=state.engine,
            now=now,
        )

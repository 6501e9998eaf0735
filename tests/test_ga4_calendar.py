"""The property's own calendar: GA4 cuts days in the property's reporting time zone, so report
ranges, the sync's "yesterday" and the stored day stamps follow it, not ``UMETRICS_TIMEZONE``.
A property in America/Los_Angeles, an app in UTC, and a moment when the two dates differ."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from flask_umetrics import create_api_key
from flask_umetrics.db.tables import stat_readings
from flask_umetrics.ga4.sync import sync_scope
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .ga4_env import fake_google, fake_google_config, use_keys, use_oauth_client
from .ga4_fake_oauth import FakeGoogleOAuth
from .ga4_fake_server import FakeGA4

CLIENT_ID = "calendar-client.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-calendar-secret"
BASE = "/umetrics/api/ga4"
#: 05:00 UTC on 2 March 2024 is still 21:00 on 1 March in Los Angeles (PST, UTC-8).
NOW = dt.datetime(2024, 3, 2, 5, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogleOAuth, FakeGA4]]:
    with fake_google(CLIENT_ID, CLIENT_SECRET) as servers:
        yield servers


@pytest.fixture
def app(
    make_app: AppFactory, google: tuple[FakeGoogleOAuth, FakeGA4], monkeypatch: pytest.MonkeyPatch
) -> Flask:
    oauth, ga4 = google
    use_keys(monkeypatch, "k1", k1=b"c" * 32)
    use_oauth_client(monkeypatch, CLIENT_SECRET)
    config = fake_google_config(oauth, ga4, CLIENT_ID)
    assert config["UMETRICS_TIMEZONE"] == "UTC"  # the app's calendar; the property's differs
    return make_app(
        SECRET_KEY="calendar-secret",
        UMETRICS_GA4_SYNC_DAYS=2,
        **config,
    )


def test_a_los_angeles_property_syncs_and_reports_its_own_days(
    app: Flask, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    oauth, ga4 = google
    property_id = ga4.add_property(
        "100", "LA shop", time_zone="America/Los_Angeles", currency="USD"
    )
    ga4.add_web_stream(property_id, "https://la.example", "LA web")
    with app.app_context():
        manage = {"Authorization": f"Bearer {create_api_key('default', 'metrics.manage')}"}
    client = app.test_client()
    started = client.post(f"{BASE}/oauth/start", json={}, headers=manage)
    callback = oauth.consent(started.json["authorization_url"])
    assert (
        client.get(f"{BASE}/oauth/callback", query_string=callback, headers=manage).status_code
        == 200
    )

    linked = client.post(f"{BASE}/link", json={"property_id": property_id}, headers=manage)
    assert linked.status_code == 200, linked.json
    connection = linked.json["connection"]
    assert (connection["time_zone"], connection["currency"]) == ("America/Los_Angeles", "USD")

    with app.app_context():
        result = sync_scope(now=NOW)
        # "Yesterday" in Los Angeles is 29 February (in UTC it would be 1 March).
        assert (result.date_from, result.date_to, result.error) == (
            "2024-02-28",
            "2024-02-29",
            None,
        )
        (request,) = ga4.requests("RunReport")
        assert (request.date_ranges[0].start_date, request.date_ranges[0].end_date) == (
            "2024-02-28",
            "2024-02-29",
        )
        with current_state().engine.connect() as db:
            stamps = sorted(
                {
                    row.captured_at
                    for row in db.execute(
                        select(stat_readings.c.captured_at).where(stat_readings.c.source == "ga4")
                    )
                }
            )
        # Each day is stored at its midnight in Los Angeles: 08:00 UTC.
        assert stamps == [
            dt.datetime(2024, 2, 28, 8, 0, tzinfo=dt.timezone.utc),
            dt.datetime(2024, 2, 29, 8, 0, tzinfo=dt.timezone.utc),
        ]

        from flask_umetrics.ga4.reports import validate_params

        # A report without dates ends "today" in Los Angeles: 1 March, not 2 March.
        params = validate_params(
            "traffic", {}, current_state().settings, NOW, time_zone="America/Los_Angeles"
        )
        assert params["date_to"] == "2024-03-01"

    answer = client.get(
        f"{BASE}/reports/traffic",
        query_string={"date_from": "2024-02-28", "date_to": "2024-02-29"},
        headers=manage,
    )
    assert answer.status_code == 200, answer.json
    assert (answer.json["time_zone"], answer.json["currency"]) == ("America/Los_Angeles", "USD")

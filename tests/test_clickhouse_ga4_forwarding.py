"""GA4 forwarding reading events from the ClickHouse event store: once each behind a watermark
that is the ingestion sequence, person consent read from SQL, old events stepped over.

Events carry ``"$consent": true`` so they are forwarded under either consent rule (opt-out, or
the opt-in the GA4 work brings); the refusing person is skipped under both."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import flush, set_person_properties, track
from flask_umetrics.db.types import utcnow
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url
from flask_umetrics.ga4.forwarding import SKIP_NO_CONSENT, SKIP_TOO_OLD, forward_scope

from .conftest import AppFactory
from .ga4_env import use_keys
from .ga4_fake_mp import FakeMeasurementProtocol
from .test_ga4_forwarding import FORWARDED, SCOPE, client, connect, counts, fake, sent_events

__all__ = ["fake"]  # the fake Measurement Protocol server fixture
YES = {"$consent": True}
#: GA4 needs an engagement time to report an event; events without their own get 1 ms.
ENGAGED = {"engagement_time_msec": 1}


@pytest.fixture
def app(
    make_clickhouse_app: AppFactory, fake: FakeMeasurementProtocol, monkeypatch: pytest.MonkeyPatch
) -> Flask:
    use_keys(monkeypatch, "k1", k1=b"f" * 32)
    return make_clickhouse_app(
        UMETRICS_DEFAULT_SCOPE=SCOPE,
        UMETRICS_GA4_FORWARD_EVENTS=FORWARDED,
        UMETRICS_GA4_MP_ENDPOINT=fake.base_url,
        UMETRICS_GA4_FORWARD_SCHEDULE="off",
    )


def seqs(url: str, event: str | None = None) -> list[int]:
    sql = "SELECT seq FROM umetrics_events" + (" WHERE event = {e:String}" if event else "")
    result = get_client(parse_clickhouse_url(url)).query(
        sql + " ORDER BY seq", parameters={"e": event} if event else {}
    )
    return [int(row[0]) for row in result.result_rows]


def test_clickhouse_events_are_forwarded_once_then_only_new_ones(
    app: Flask, fake: FakeMeasurementProtocol, clickhouse_url: str
) -> None:
    with app.app_context():
        connect()
        set_person_properties("refuser", set={"$consent": False})
        track("purchase", distinct_id="u1", properties={"value": 1, **YES})
        track("page_view", distinct_id="u1", properties=YES)  # not selected
        track("sign_up", distinct_id="u2", properties={"method": "mail", **YES})
        track("purchase", distinct_id="refuser", properties={"value": 9, **YES})
        flush()
        first = forward_scope(SCOPE)
        assert counts(first) == (2, 0, {SKIP_NO_CONSENT: 1}, 0)
        assert first.watermark == seqs(clickhouse_url, "purchase")[-1]
        again = forward_scope(SCOPE)
        assert counts(again) == (0, 0, {}, 0) and again.requests == 0
        track("purchase", distinct_id="u2", properties={"value": 3, **YES})
        flush()
        third = forward_scope(SCOPE)
        assert counts(third) == (1, 0, {}, 0)
        assert third.watermark == seqs(clickhouse_url)[-1]
    sent: list[tuple[str, list[Any]]] = [
        (c, [(e["name"], e["params"]) for e in batch]) for c, batch in sent_events(fake)
    ]
    assert sent == [
        (client("u1"), [("purchase", {"value": 1, **ENGAGED})]),
        (client("u2"), [("sign_up", {"method": "mail", **ENGAGED})]),
        (client("u2"), [("purchase", {"value": 3, **ENGAGED})]),
    ]


def test_events_older_than_72_hours_are_stepped_over(
    app: Flask, fake: FakeMeasurementProtocol, clickhouse_url: str
) -> None:
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        connect()
        for days in (10, 9, 4):
            track(
                "purchase", distinct_id="u1", properties=YES, timestamp=now - timedelta(days=days)
            )
        track("purchase", distinct_id="u1", properties={"value": 1, **YES}, timestamp=now)
        flush()
        result = forward_scope(SCOPE, now=now + timedelta(minutes=1))
        assert counts(result) == (1, 0, {SKIP_TOO_OLD: 3}, 0)
        assert result.watermark == seqs(clickhouse_url)[-1]
    assert [[e["params"] for e in batch] for _, batch in sent_events(fake)] == [
        [{"value": 1, **ENGAGED}]
    ]

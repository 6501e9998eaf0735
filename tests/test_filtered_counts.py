"""Events dropped at ingestion (bot user agents, Do-Not-Track) are counted per scope and day, and
the overview says how many the date range lost (issue 14: headless browsers were dropped with
nothing showing it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.events.filtered import filtered_totals
from flask_umetrics.events.ingest import ingest_events
from flask_umetrics.state import current_state

from .conftest import AppFactory

CRAWLER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
ZONE = "Europe/Berlin"


def _event(n: int) -> dict[str, object]:
    return {"event": "view", "distinct_id": f"v{n}", "uuid": f"u{n}"}


def _app(make_app: AppFactory) -> Flask:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "metrics.view")
    extension.subject_loader(lambda: ("viewer", {}))
    return make_app(extension, SECRET_KEY="test-secret", UMETRICS_TIMEZONE=ZONE)


def test_dropped_events_are_counted_per_scope_day_and_reason(make_app: AppFactory) -> None:
    app = _app(make_app)
    today = datetime.now(timezone.utc).astimezone(ZoneInfo(ZONE)).date()
    with app.app_context():
        kept = ingest_events([_event(1), _event(2)], scope_id="default", user_agent=BROWSER)
        bots = ingest_events(
            [_event(3), _event(4), _event(5)], scope_id="default", user_agent=CRAWLER
        )
        more = ingest_events([_event(6)], scope_id="default", user_agent=CRAWLER)
        dnt = ingest_events([_event(7), _event(8)], scope_id="default", do_not_track=True)
        ingest_events([_event(9)], scope_id="other", user_agent=CRAWLER)
        assert (kept.accepted, bots.filtered, more.filtered, dnt.filtered) == (2, 3, 1, 2)
        engine = current_state().engine
        assert filtered_totals(engine, "default", today, today) == {"bot": 4, "dnt": 2}
        assert filtered_totals(engine, "other", today, today) == {"bot": 1, "dnt": 0}
        yesterday = today - timedelta(days=1)
        assert filtered_totals(engine, "default", yesterday, yesterday) == {"bot": 0, "dnt": 0}


def test_overview_shows_what_the_range_lost(make_app: AppFactory) -> None:
    app = _app(make_app)
    with app.app_context():
        ingest_events([_event(1), _event(2), _event(3)], scope_id="default", user_agent=CRAWLER)
        ingest_events([_event(4)], scope_id="default", do_not_track=True)
    client = app.test_client()
    page = client.get("/umetrics/admin/").get_data(as_text=True)
    assert '<span data-testid="filtered-bot">3</span> bot events' in page
    assert '<span data-testid="filtered-dnt">1</span> Do-Not-Track event' in page
    # A range that ends before today lost nothing.
    old = client.get("/umetrics/admin/?date_from=2026-01-01&date_to=2026-01-08")
    assert '<span data-testid="filtered-bot">0</span>' in old.get_data(as_text=True)

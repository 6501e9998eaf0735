"""The dashboard written for people (issue 14), with Flask's test client: human column labels
(CSV keeps the REST names), local times without microseconds, properties as key/value lists,
date presets, retention's default range per period, and the formatting rules themselves."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.admin import formatting
from flask_umetrics.admin.date_presets import date_presets
from flask_umetrics.admin.pages.retention import default_range

from .conftest import AppFactory
from .events_data import load

ADMIN = "/umetrics/admin"
ROWS = [
    ("a", "view", "2026-03-02T10:00:00.123456", {"plan": "pro", "utm_source": "news"}),
    ("a", "signup", "2026-03-02T10:30"),
    ("b", "view", "2026-03-02T11:00"),
]


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "metrics.view")
    extension.subject_loader(lambda: ("viewer", {}))
    app = make_app(extension, SECRET_KEY="test-secret", UMETRICS_TIMEZONE="Europe/Berlin")
    load(app, ROWS)
    return app


def _headers(page: str, key: str) -> list[str]:
    table = page.split(f'data-testid="table-{key}"', 1)[1].split("</thead>", 1)[0]
    return re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table)


def test_funnel_columns_have_labels_and_the_csv_keeps_the_field_names(app: Flask) -> None:
    client = app.test_client()
    path = f"{ADMIN}/funnels?date_from=2026-03-01&date_to=2026-03-04&step=view&step=signup"
    page = client.get(path).get_data(as_text=True)
    assert _headers(page, "funnel") == [
        "Step",
        "Count",
        "Conversion from start",
        "Conversion from previous step",
        "Dropped off",
        "Drop-off rate",
        "Median time from previous step",
    ]
    csv = client.get(path + "&format=csv&table=funnel").get_data(as_text=True)
    assert csv.splitlines()[0] == (
        "step,count,conversion_from_start,conversion_from_previous,drop_off,drop_off_share,"
        "median_seconds_from_previous"
    )
    assert "<td>30 min</td>" in page.replace('<td class="um-num">', "<td>")  # 1,800 s


def test_person_page_shows_local_times_and_properties_as_a_list(app: Flask) -> None:
    page = app.test_client().get(f"{ADMIN}/person?distinct_id=a").get_data(as_text=True)
    # 10:00:00.123456 UTC is 11:00:00 in Berlin (winter time); the exact instant in the title.
    assert (
        '<time datetime="2026-03-02T10:00:00.123456+00:00" '
        'title="2026-03-02 10:00:00.123456 UTC">2026-03-02 11:00:00</time>'
    ) in page
    assert ".123456</time>" not in page and "T10:00" not in page.split("<time")[0]
    assert "<dt>plan</dt><dd>pro</dd>" in page and "<dt>utm_source</dt><dd>news</dd>" in page
    assert '{"plan"' not in page  # no raw JSON
    assert _headers(page, "timeline") == [
        "Time",
        "Event",
        "Distinct id",
        "Session id",
        "Properties",
    ]


def test_the_people_list_has_local_times_and_labels(app: Flask) -> None:
    page = app.test_client().get(f"{ADMIN}/people").get_data(as_text=True)
    assert _headers(page, "people")[:4] == [
        "Distinct id",
        "Distinct ids",
        "Properties",
        "First seen",
    ]
    assert ">2026-03-02 11:30</time>" in page  # a's last event, 10:30 UTC


def test_date_presets_are_calendar_days_with_an_exclusive_end(app: Flask) -> None:
    with app.test_request_context("/umetrics/admin/events?date_from=2026-02-26&date_to=2026-03-05"):
        presets = {
            p.label: (p.date_from, p.date_to, p.active) for p in date_presets(date(2026, 3, 4))
        }
    assert presets == {
        "Today": (date(2026, 3, 4), date(2026, 3, 5), False),
        "Yesterday": (date(2026, 3, 3), date(2026, 3, 4), False),
        "Last 7 days": (date(2026, 2, 26), date(2026, 3, 5), True),
        "Last 30 days": (date(2026, 2, 3), date(2026, 3, 5), False),
        "Last 90 days": (date(2025, 12, 5), date(2026, 3, 5), False),
        "This month": (date(2026, 3, 1), date(2026, 3, 5), False),
        "Last month": (date(2026, 2, 1), date(2026, 3, 1), False),
        "Last 12 months": (date(2025, 4, 1), date(2026, 3, 5), False),
    }
    with app.test_request_context("/umetrics/admin/events?date_range=-7d&date_from=2026-01-01"):
        active = [p.label for p in date_presets(date(2026, 3, 4)) if p.active]
    assert active == ["Last 7 days"]  # the token wins over dates a form also sent
    page = app.test_client().get(f"{ADMIN}/events?event=view").get_data(as_text=True)
    today = datetime.now(timezone.utc).astimezone(formatting.ZoneInfo("Europe/Berlin")).date()
    week = f'data-from="{today - timedelta(days=6)}" data-to="{today + timedelta(days=1)}"'
    assert f'<option value="-7d" {week}>Last 7 days</option>' in page


def test_retention_defaults_to_twelve_weeks_or_months(app: Flask) -> None:
    with app.test_request_context("/umetrics/admin/retention"):
        assert default_range("month", date(2026, 3, 4)) == {
            "date_from": "2025-04-01",
            "date_to": "2026-03-05",
            "periods": 11,
        }
        assert default_range("week", date(2026, 3, 4)) == {
            "date_from": "2025-12-15",  # the Monday 11 weeks before this week's
            "date_to": "2026-03-05",
            "periods": 11,
        }
        assert default_range("day", date(2026, 3, 4)) == {}
    with app.test_request_context("/umetrics/admin/retention?week_start=sunday"):
        assert default_range("week", date(2026, 3, 4))["date_from"] == "2025-12-14"  # a Sunday
        assert default_range("hour", date(2026, 3, 4)) == {
            "date_from": "2026-03-03",  # yesterday and today: 48 hourly cohorts
            "date_to": "2026-03-05",
        }
    with app.test_request_context("/umetrics/admin/retention?date_from=2026-03-01"):
        assert default_range("month", date(2026, 3, 4)) == {}
    client = app.test_client()
    for period in ("week", "month"):
        page = client.get(f"{ADMIN}/retention?period={period}").get_data(as_text=True)
        assert page.count('<th scope="row">') == 12, period
        assert f"Showing the last 12 {period}s" in page


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (42, "42 s"),
        (200, "3 min 20 s"),
        (120, "2 min"),
        (3900, "1 h 5 min"),
        (7200, "2 h"),
        (118800, "1 d 9 h"),
        (None, "\u2014"),
    ],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert formatting.duration(seconds) == text


def test_numbers_and_percentages() -> None:
    assert formatting.number(1234567) == "1,234,567"
    assert formatting.number(7.0) == "7"
    assert formatting.number(2.5) == "2.50"
    assert formatting.number(0.00001, 4) == "< 0.0001"  # a tiny p-value is not 0.0000
    assert formatting.percent(1.0) == "100%"
    assert formatting.percent(0.125) == "12.5%"
    assert formatting.percent(0.2044) == "20.4%"
    assert formatting.column_label("ci_low") == "CI low"
    assert formatting.column_label("signed_up") == "signed_up"  # data stays as sent
    assert formatting.doc_text("Drop `DNT: 1` <b>") == "Drop <code>DNT: 1</code> &lt;b&gt;"


def test_empty_pages_say_what_to_do(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "metrics.view")
    extension.subject_loader(lambda: ("viewer", {}))
    client = make_app(extension, SECRET_KEY="test-secret").test_client()
    overview = client.get(f"{ADMIN}/").get_data(as_text=True)
    assert 'data-testid="no-events"' in overview and 'track("signed_up", distinct_id' in overview
    funnels = client.get(f"{ADMIN}/funnels").get_data(as_text=True)
    assert "No events in this range yet: send one with" in funnels
    people = client.get(f"{ADMIN}/people").get_data(as_text=True)
    assert "No persons yet: a person is created by the first event" in people


def test_the_live_feed_links_each_distinct_id_to_its_person(make_app: AppFactory) -> None:
    """The overview's live rows open the person behind them (any id, quoted in the URL); the
    feed's refresh builds the same link from ``data-person-url`` (tests/browser)."""
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "metrics.view")
    extension.subject_loader(lambda: ("viewer", {}))
    app = make_app(extension, SECRET_KEY="test-secret")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    load(app, [("a b/?&", "view", (now - timedelta(minutes=2)).isoformat())])
    page = app.test_client().get(f"{ADMIN}/?scope_id=default").get_data(as_text=True)
    feed = page.split('data-testid="live-feed"', 1)[1].split("</table>", 1)[0]
    assert 'data-person-url="/umetrics/admin/person?scope_id=default"' in feed
    link = "/umetrics/admin/person?distinct_id=a+b/?%26&amp;scope_id=default"
    assert f'<td><a href="{link}">a b/?&amp;</a></td>' in feed
    person = app.test_client().get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert "<h1>Person a b/?&amp;</h1>" in person


def test_a_daily_stat_trend_is_labelled_by_day(app: Flask) -> None:
    """One reading a day (the demo's and a daily snapshot's shape): the trend's labels are
    local dates, not the same clock time repeated; two readings on one day keep their times."""
    from flask_umetrics import record_stat

    start = datetime(2026, 3, 1, 6, 11, tzinfo=timezone.utc)  # 07:11 in Berlin
    with app.app_context():
        for day in range(3):
            record_stat("mrr", 100.0 + day, captured_at=start + timedelta(days=day))
    path = f"{ADMIN}/?stat=mrr&format=csv&table=stat-trend"
    rows = app.test_client().get(path).get_data(as_text=True).splitlines()
    assert rows[1:] == ["2026-03-01,100", "2026-03-02,101", "2026-03-03,102"]
    with app.app_context():
        record_stat("mrr", 99.0, captured_at=start + timedelta(days=2, hours=5))
    rows = app.test_client().get(path).get_data(as_text=True).splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [
        "2026-03-01 07:11",
        "2026-03-02 07:11",
        "2026-03-03 07:11",
        "2026-03-03 12:11",
    ]

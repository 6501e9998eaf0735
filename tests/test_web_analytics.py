"""The web overview on hand-built page views with known answers, on every event store."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.user_agent import parse_user_agent
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.web import WebResult, web_overview

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def view(path: str, agent: str | None = None, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"$pathname": path, **extra}
    if agent:
        properties["$user_agent"] = agent
    return properties


EVENTS = [
    # a, Chrome on Windows: a 300 s visit from Google over three pages, then an email bounce.
    (
        "a",
        "$pageview",
        "2026-03-02T10:00",
        view("/", CHROME_WINDOWS, **{"$referrer": "https://www.google.com/search?q=x"}),
    ),
    ("a", "$pageview", "2026-03-02T10:01", view("/pricing", CHROME_WINDOWS)),
    ("a", "$pageview", "2026-03-02T10:05", view("/signup", CHROME_WINDOWS)),
    (
        "a",
        "$pageview",
        "2026-03-03T12:00",
        view(
            "/pricing",
            CHROME_WINDOWS,
            utm_source="Newsletter",
            utm_medium="email",
            utm_campaign="spring",
        ),
    ),
    # b, Safari on an iPhone: from Hacker News, one page view and a click 30 s later.
    (
        "b",
        "$pageview",
        "2026-03-02T11:00",
        view("/", SAFARI_IPHONE, **{"$referrer": "https://news.ycombinator.com/item?id=1"}),
    ),
    ("b", "click", "2026-03-02T11:00:30", {"$user_agent": SAFARI_IPHONE}),
    # c, no user agent: a direct bounce, then a client session of two docs pages (600 s).
    ("c", "$pageview", "2026-03-03T09:00", view("/")),
    ("c", "$pageview", "2026-03-03T15:00", view("/docs"), None, "s1"),
    ("c", "$pageview", "2026-03-03T15:10", view("/docs/api"), None, "s1"),
    ("c", "email_sent", "2026-03-03T16:00", None, False),  # inactive: no session
    # d: in the previous range only; e: at date_to (exclusive).
    ("d", "$pageview", "2026-03-01T10:00", view("/")),
    ("e", "$pageview", "2026-03-04T00:00", view("/")),
]


def run(
    app: Flask, date_from: str = "2026-03-02", date_to: str = "2026-03-04", **options: Any
) -> WebResult:
    with app.app_context():
        ctx = report_context(
            date_from=at(date_from), date_to=at(date_to), filters=options.pop("filters", None)
        )
        return web_overview(ctx, **options)


def rows(result: WebResult, name: str) -> list[tuple[str, Any, Any]]:
    return [(row.key, row.visitors, row.pageviews) for row in result.breakdowns[name]]


def test_totals_change_and_series(app: Flask) -> None:
    load(app, EVENTS)
    result = run(app)
    totals = result.totals
    assert (totals.visitors, totals.pageviews, totals.sessions) == (3, 8, 5)
    assert totals.bounce_rate == pytest.approx(0.4)  # a's email visit, c's first
    assert totals.visit_duration == pytest.approx((300 + 0 + 30 + 0 + 600) / 5)
    before = result.previous
    assert (before.visitors, before.pageviews, before.sessions) == (1, 1, 1)
    assert (before.bounce_rate, before.visit_duration) == (1.0, 0.0)
    assert result.change["visitors"] == 2.0 and result.change["pageviews"] == 7.0
    assert result.change["sessions"] == 4.0
    assert result.change["bounce_rate"] == pytest.approx(-0.6)
    assert result.change["visit_duration"] is None  # nothing to compare with
    assert [(p.date[:10], p.visitors, p.pageviews) for p in result.series] == [
        ("2026-03-02", 2, 4),
        ("2026-03-03", 2, 4),
    ]


def test_breakdowns(app: Flask) -> None:
    load(app, EVENTS)
    result = run(app)
    assert rows(result, "pages") == [
        ("/", 3, 3),
        ("/pricing", 1, 2),
        ("/docs", 1, 1),
        ("/docs/api", 1, 1),
        ("/signup", 1, 1),
    ]
    assert rows(result, "entry_pages") == [("/", 3, 5), ("/docs", 1, 2), ("/pricing", 1, 1)]
    assert rows(result, "exit_pages") == [
        ("/", 2, 2),
        ("/signup", 1, 3),
        ("/docs/api", 1, 2),
        ("/pricing", 1, 1),
    ]
    assert rows(result, "referrers") == [("google.com", 1, 3), ("news.ycombinator.com", 1, 1)]
    assert rows(result, "utm_sources") == [("newsletter", 1, 1)]
    assert rows(result, "utm_mediums") == [("email", 1, 1)]
    assert rows(result, "utm_campaigns") == [("spring", 1, 1)]
    assert rows(result, "channels") == [
        ("direct", 1, 3),
        ("organic_search", 1, 3),
        ("email", 1, 1),
        ("referral", 1, 1),
    ]
    assert rows(result, "browsers") == [("Chrome", 1, 4), ("Mobile Safari", 1, 1)]
    assert rows(result, "operating_systems") == [("Windows", 1, 4), ("iOS", 1, 1)]
    assert rows(result, "device_types") == [("desktop", 1, 4), ("mobile", 1, 1)]
    limited = run(app, limit=2)
    assert rows(limited, "pages") == [("/", 3, 3), ("/pricing", 1, 2)]
    assert rows(limited, "exit_pages") == [("/", 2, 2), ("/signup", 1, 3)]
    # A tie of visitors and page views: by key.
    assert rows(limited, "channels") == [("direct", 1, 3), ("organic_search", 1, 3)]
    # Each session starting in the range has one entry, one exit and one channel.
    for name in ("entry_pages", "exit_pages", "channels"):
        assert sum(row[2] for row in rows(result, name)) == 8, name


def test_sessions_at_the_range_edges(app: Flask) -> None:
    """A session starting before the range is no visit, even with page views in it; one
    starting in it keeps its page views after ``date_to`` (and no later session's); a client
    session interleaved with a timeout-split one keeps its own page views."""
    load(
        app,
        [
            ("f", "$pageview", "2026-03-01T23:50", view("/old")),
            ("f", "$pageview", "2026-03-02T00:05", view("/late")),
            ("f", "$pageview", "2026-03-02T10:00", view("/b1")),
            ("f", "$pageview", "2026-03-02T10:05", view("/c1"), None, "s9"),
            ("f", "$pageview", "2026-03-02T10:10", view("/b2")),
            ("f", "$pageview", "2026-03-02T10:20", view("/c2"), None, "s9"),
            ("f", "$pageview", "2026-03-03T23:50", view("/x")),
            ("f", "$pageview", "2026-03-04T00:10", view("/y")),
            ("f", "$pageview", "2026-03-04T05:00", view("/z")),  # a session after the range
        ],
    )
    result = run(app)
    totals = result.totals
    assert (totals.visitors, totals.pageviews, totals.sessions) == (1, 6, 3)
    assert (totals.bounce_rate, totals.visit_duration) == (0.0, (600 + 900 + 1200) / 3)
    assert (result.previous.visitors, result.previous.pageviews) == (1, 1)
    assert rows(result, "pages") == [
        (page, 1, 1) for page in ("/b1", "/b2", "/c1", "/c2", "/late", "/x")
    ]
    assert rows(result, "entry_pages") == [("/b1", 1, 2), ("/c1", 1, 2), ("/x", 1, 2)]
    assert rows(result, "exit_pages") == [("/b2", 1, 2), ("/c2", 1, 2), ("/y", 1, 2)]
    assert rows(result, "channels") == [("direct", 1, 6)]


def test_two_statements_on_clickhouse(
    app: Flask, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On ClickHouse every page view and visit card comes from one statement, the session
    numbers of both ranges from another."""
    if backend != "clickhouse":
        pytest.skip("ClickHouse statements")
    from flask_umetrics.engines.clickhouse import runner, sessions, web

    statements: list[str] = []

    def counted(sql: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return runner.rows(sql, *args, **kwargs)

    monkeypatch.setattr(web, "rows", counted)
    monkeypatch.setattr(sessions, "rows", counted)
    load(app, EVENTS)
    result = run(app)
    assert (result.totals.visitors, result.previous.visitors) == (3, 1)
    assert len(statements) == 2


def test_merged_persons_are_one_visitor(app: Flask) -> None:
    load(
        app,
        [
            ("anon", "$pageview", "2026-03-02T10:00", view("/")),
            ("user", "$pageview", "2026-03-03T10:00", view("/app")),
        ],
    )
    assert run(app).totals.visitors == 2
    with app.app_context():
        identify("user", anon_id="anon")
    result = run(app)
    assert (result.totals.visitors, result.totals.pageviews) == (1, 2)
    assert rows(result, "pages") == [("/", 1, 1), ("/app", 1, 1)]


def test_filters_apply_to_every_number(app: Flask) -> None:
    load(app, EVENTS)
    chrome = run(app, filters=[{"key": "$browser", "value": "Chrome"}])
    totals = chrome.totals
    assert (totals.visitors, totals.pageviews, totals.sessions) == (1, 4, 2)
    assert (totals.bounce_rate, totals.visit_duration) == (0.5, 150.0)
    assert rows(chrome, "pages") == [("/pricing", 1, 2), ("/", 1, 1), ("/signup", 1, 1)]
    assert rows(chrome, "channels") == [("organic_search", 1, 3), ("email", 1, 1)]
    assert rows(chrome, "browsers") == [("Chrome", 1, 4)]
    assert chrome.previous.visitors == 0 and chrome.change["visitors"] is None


def test_own_hosts_are_not_referrers(app: Flask) -> None:
    load(app, EVENTS)
    assert rows(run(app, own_hosts=("google.com",)), "referrers") == [
        ("news.ycombinator.com", 1, 1)
    ]


def test_dropped_bots_are_counted(app: Flask) -> None:
    load(app, [("bot", "$pageview", "2026-03-02T10:00", view("/", GOOGLEBOT))])
    with app.app_context():
        result = web_overview(report_context())  # the last 30 days: bots are counted today
    assert result.filtered == {"bot": 1, "dnt": 0}
    assert result.totals.pageviews == 0
    assert run(app).filtered == {"bot": 0, "dnt": 0}


def test_bad_input(app: Flask) -> None:
    with pytest.raises(ValidationError) as limit:
        run(app, limit=0)
    assert limit.value.field == "limit"
    with pytest.raises(ValidationError) as interval:
        run(app, interval="year")
    assert interval.value.field == "interval"


def test_rest(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, EVENTS)
    client = app.test_client()
    base = "/umetrics/api/query/web?date_from=2026-03-02&date_to=2026-03-04"
    answer = client.get(base + "&limit=1")
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["totals"]["visitors"] == 3 and body["totals"]["pageviews"] == 8
    assert body["breakdowns"]["pages"] == [{"key": "/", "visitors": 3, "pageviews": 3}]
    assert body["filtered"] == {"bot": 0, "dnt": 0}
    chrome = client.get(base + '&filters={"key":"$os","value":"iOS"}').json
    assert chrome["totals"]["visitors"] == 1 and chrome["totals"]["pageviews"] == 1
    bad = client.get(base + "&limit=500")
    assert bad.status_code == 400 and "limit" in bad.get_data(as_text=True)


def test_user_agents_are_parsed_at_ingestion() -> None:
    assert parse_user_agent(CHROME_WINDOWS) == (
        ("$browser", "Chrome"),
        ("$os", "Windows"),
        ("$device_type", "desktop"),
    )
    assert dict(parse_user_agent(SAFARI_IPHONE))["$device_type"] == "mobile"
    assert dict(parse_user_agent(ANDROID_TABLET)) == {
        "$browser": "Chrome",
        "$os": "Android",
        "$device_type": "tablet",
    }
    assert parse_user_agent("test-agent/1.0") == ()


def test_web_page(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "metrics.view")
    extension.subject_loader(lambda: ("viewer", {}))
    app = make_app(extension, SECRET_KEY="test-secret")
    load(app, EVENTS)
    client = app.test_client()
    page = client.get("/umetrics/admin/web?date_from=2026-03-02&date_to=2026-03-04")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="web-value-visitors" data-value="3"' in html
    assert 'data-testid="web-value-pageviews" data-value="8"' in html
    assert 'data-testid="chart-web-visitors"' in html and "+200%" in html
    # The chart's legend and table read "Visitors" and "Page views"; the CSV keeps the names.
    spec = html.split('data-testid="chart-web-visitors"', 1)[1].split('class="um-chart-spec">')[1]
    legend = [d["label"] for d in json.loads(unescape(spec.split("</script>")[0]))["datasets"]]
    assert legend == ["Visitors", "Page views"]
    head = spec.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert re.findall(r'<th scope="col">([^<]+)</th>', head) == ["Time", "Visitors", "Page views"]
    csv_path = "/umetrics/admin/web?date_from=2026-03-02&date_to=2026-03-04&format=csv&table="
    csv_text = client.get(csv_path + "web-visitors").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "time,visitors,pageviews"
    assert "-60.0 points" in html and "0 bot events" in html
    # Channels show their labels; the key stays in the title (the API keeps the keys).
    channels = html[html.index('data-testid="table-channels"') :]
    channels = channels[: channels.index("</table>")]
    assert re.findall(r'<span title="(\w+)">([^<]+)</span>', channels) == [
        ("direct", "Direct"),
        ("organic_search", "Organic search"),
        ("email", "Email"),
        ("referral", "Referral"),
    ]
    # A browser row links to the page filtered on it; its chip links back without it.
    chrome = re.search(r'href="([^"]+)" title="Filter on this">Chrome<', html)
    assert chrome is not None
    filtered = client.get(unescape(chrome.group(1)))
    text = filtered.get_data(as_text=True)
    assert 'data-testid="web-value-pageviews" data-value="4"' in text
    chip = re.search(r'class="um-chip" href="([^"]+)" data-testid="web-chip"', text)
    assert chip is not None and "$browser = Chrome" in text
    back = client.get(unescape(chip.group(1))).get_data(as_text=True)
    assert 'data-testid="web-value-pageviews" data-value="8"' in back
    bad = client.get("/umetrics/admin/web?limit=0")
    assert bad.status_code == 400 and "limit" in bad.get_data(as_text=True)
    denied = UMetrics()
    denied.authorizer(lambda permission, scope_id: False)
    denied.subject_loader(lambda: ("viewer", {}))
    other = make_app(denied, SECRET_KEY="test-secret").test_client().get("/umetrics/admin/web")
    assert other.status_code == 403 and "metrics.view" in other.text

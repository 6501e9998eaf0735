"""Events, Funnels and Retention dashboard pages with Flask's test client, on hand-built events:
who may see them, the CSV of every table, and bad form input shown next to the form."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics import UMetrics

from .conftest import AppFactory
from .events_data import load

ADMIN = "/umetrics/admin"
RANGE = "date_from=2026-03-02&date_to=2026-03-04"
ROWS = [
    ("a", "view", "2026-03-02T10:00", {"plan": "pro", "n": 5}),
    ("a", "signup", "2026-03-02T10:30"),
    ("a", "buy", "2026-03-02T13:00"),
    ("b", "view", "2026-03-02T11:00", {"plan": "free", "n": 2}),
    ("b", "signup", "2026-03-03T11:00"),
    ("c", "view", "2026-03-03T09:00", {"plan": "pro", "n": 7}),
    ("a", "view", "2026-03-03T12:00", {"plan": "pro", "n": 1}),
]


def _app(make_app: AppFactory, *, allowed: set[str]) -> Flask:
    extension = UMetrics()
    user = {"name": "viewer"}
    extension.authorizer(lambda permission, scope_id: permission in allowed)
    extension.subject_loader(lambda: (user["name"], {}))
    app = make_app(extension, SECRET_KEY="test-secret")
    load(app, ROWS)
    return app


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    return _app(make_app, allowed={"metrics.view"}).test_client()


def _csv(client: FlaskClient, path: str, table: str) -> list[list[str]]:
    answer = client.get(f"{ADMIN}{path}&format=csv&table={table}")
    assert answer.status_code == 200, answer.text
    assert answer.mimetype == "text/csv"
    assert f'filename="umetrics-{table}.csv"' in answer.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(answer.text)))


def test_report_pages_need_metrics_view(make_app: AppFactory) -> None:
    client = _app(make_app, allowed=set()).test_client()
    for path in ("/events?event=view", "/funnels?step=view&step=signup", "/retention?period=day"):
        answer = client.get(ADMIN + path)
        assert answer.status_code == 403, path
        assert "metrics.view" in answer.text and answer.mimetype == "text/html"
        assert client.get(ADMIN + path + "&format=csv&table=x").status_code == 403


def test_events_trends_breakdown_as_csv(client: FlaskClient) -> None:
    path = f"/events?{RANGE}&event=view&breakdown=plan"
    assert _csv(client, path, "trends") == [
        ["time", "pro", "free"],
        ["2026-03-02", "1", "1"],
        ["2026-03-03", "2", "0"],
    ]
    assert _csv(client, path, "trend-totals") == [["plan", "total"], ["pro", "3"], ["free", "1"]]
    # The breakdown property's top values, and the top events of the range.
    assert _csv(client, path, "top-values") == [["plan", "count"], ["pro", "3"], ["free", "1"]]
    assert _csv(client, path, "top-events") == [
        ["event", "count"],
        ["view", "4"],
        ["signup", "2"],
        ["buy", "1"],
    ]
    page = client.get(ADMIN + path).text
    assert 'data-testid="table-trends"' in page and '<option value="view" selected>' in page


def test_events_math_with_filter_rows(client: FlaskClient) -> None:
    path = (
        f"/events?{RANGE}&event=view&math=sum&property=n"
        "&filter_key=n&filter_op=gt&filter_value=4&filter_key=&filter_op=eq&filter_value="
    )
    assert _csv(client, path, "trends") == [
        ["time", "Sum of property"],
        ["2026-03-02", "5"],
        ["2026-03-03", "7"],
    ]
    listed = f"/events?{RANGE}&event=view&filter_key=plan&filter_op=in&filter_value=free,%20pro"
    assert _csv(client, listed, "trend-totals") == [["series", "total"], ["Total events", "4"]]
    raw = f'/events?{RANGE}&filters=[{{"key":"plan","op":"eq","value":"free"}}]'
    assert _csv(client, raw, "trend-totals") == [["series", "total"], ["Total events", "1"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("math=sum", "property: math &#39;sum&#39; needs a numeric property"),
        ("interval=year", "interval:"),
        (
            "filter_key=n&filter_op=gt&filter_value=many",
            "filter 1 (n): &#39;gt&#39; needs a number",
        ),
        ("filter_key=n&filter_op=like&filter_value=x", "filter 1: unknown operator"),
        ("filters=not-json", "filters"),
    ],
)
def test_events_bad_input_is_shown_with_the_form(
    client: FlaskClient, query: str, message: str
) -> None:
    answer = client.get(f"{ADMIN}/events?{RANGE}&{query}")
    assert answer.status_code == 400
    assert 'data-testid="form-error"' in answer.text and message in answer.text
    assert '<form class="um-form um-range"' in answer.text


def test_funnel_table_and_window_units(client: FlaskClient) -> None:
    path = f"/funnels?{RANGE}&step=view&step=signup&step=buy"
    rows = _csv(client, path, "funnel")
    assert rows[0] == [
        "step",
        "count",
        "conversion_from_start",
        "conversion_from_previous",
        "drop_off",
        "drop_off_share",
        "median_seconds_from_previous",
    ]
    parsed = [[row[0], *(float(cell) if cell else None for cell in row[1:])] for row in rows[1:]]
    third, two_thirds = pytest.approx(1 / 3), pytest.approx(2 / 3)
    assert parsed == [
        ["1. view", 3, 1, 1, 0, 0, None],
        ["2. signup", 2, two_thirds, two_thirds, 1, third, 44100],
        ["3. buy", 1, third, 0.5, 1, 0.5, 9000],
    ]
    page = client.get(ADMIN + path).text
    assert '<strong data-testid="funnel-window">14 days</strong>' in page
    assert "<td>2. signup</td>" in page and "12 h 15 min" in page  # 44,100 s

    # One hour: a's purchase (3 h after the view) and b's sign-up (next day) fall outside.
    hour = f"{path}&window_value=1&window_unit=hours"
    assert [row[:2] for row in _csv(client, hour, "funnel")[1:]] == [
        ["1. view", "3"],
        ["2. signup", "1"],
        ["3. buy", "0"],
    ]
    assert '<strong data-testid="funnel-window">1 hour</strong>' in client.get(ADMIN + hour).text
    seconds = f"{path}&window=5400"  # the route's own parameter works too
    assert '<strong data-testid="funnel-window">90 minutes</strong>' in (
        client.get(ADMIN + seconds).text
    )


def test_funnel_breakdown_csv(client: FlaskClient) -> None:
    path = f"/funnels?{RANGE}&step=view&step=signup&breakdown=plan"
    assert _csv(client, path, "funnel-breakdown") == [
        ["step", "pro", "free"],
        ["1. view", "2", "1"],
        ["2. signup", "1", "1"],
    ]
    assert _csv(client, path, "funnel-breakdown-conversion")[2] == ["2. signup", "0.5", "1"]


def test_funnel_without_steps_offers_a_suggestion(client: FlaskClient) -> None:
    page = client.get(f"{ADMIN}/funnels?{RANGE}")
    assert page.status_code == 200
    # No demo funnel in this scope: the top events of the range are offered.
    assert f"{ADMIN}/funnels?step=view&amp;step=signup&amp;step=buy" in page.text
    assert 'data-testid="table-funnel"' not in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("step=view", "step:"),
        ("step=view&step=signup&window_value=soon", "window: must be a number"),
        ("step=view&step=signup&window_value=2&window_unit=weeks", "window_unit:"),
        ("step=view&step=signup&order=random", "order:"),
    ],
)
def test_funnel_bad_input(client: FlaskClient, query: str, message: str) -> None:
    answer = client.get(f"{ADMIN}/funnels?{RANGE}&{query}")
    assert answer.status_code == 400
    assert 'data-testid="form-error"' in answer.text and message in answer.text


def test_retention_counts_and_heat_map(client: FlaskClient) -> None:
    path = f"/retention?{RANGE}&period=day&periods=1&start_event=view"
    assert _csv(client, path, "retention") == [
        ["cohort", "size", "day 0", "day 1"],
        ["2026-03-02", "2", "2", "2"],
        ["2026-03-03", "1", "1", "0"],
    ]
    # Both cohorts have reached both periods (2026 March is past): the curve is 3/3 then 2/3.
    curve = _csv(client, path, "retention-curve")
    assert curve[0] == ["period", "retained"] and curve[1] == ["day 0", "1"]
    assert float(curve[2][1]) == pytest.approx(2 / 3)
    page = client.get(ADMIN + path).text
    # The tint is a class (the CSP forbids style attributes): 20 steps of 5%.
    assert 'class="um-cell um-heat-20 um-dark" data-count="2" data-fraction="1.0"' in page
    assert 'class="um-cell um-heat-0" data-count="0" data-fraction="0.0"' in page
    assert "style=" not in page
    stylesheet = client.get(ADMIN + "/assets/admin.css")
    assert all(f".um-heat td.um-heat-{n} " in stylesheet.text for n in range(21))
    stylesheet.close()
    assert '<span class="um-count">2</span><span class="um-share">100%</span>' in page
    assert '<a href="/umetrics/admin/retention?' in page and "period=week" in page


def test_retention_bad_input_and_unknown_table(client: FlaskClient) -> None:
    answer = client.get(f"{ADMIN}/retention?{RANGE}&periods=99")
    assert answer.status_code == 400 and "periods:" in answer.text
    missing = client.get(f"{ADMIN}/retention?{RANGE}&format=csv&table=nope")
    assert missing.status_code == 404


FORMULA_PLANS = ['=HYPERLINK("http://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\ry"]


def test_csv_escapes_formulas_in_headers_and_cells(make_app: AppFactory) -> None:
    """Breakdown values are ingested text: as column names (trends) and as cells (totals) they
    must reach the spreadsheet quoted, so none of them runs as a formula."""
    app = _app(make_app, allowed={"metrics.view"})
    rows = [
        (f"u{index}", "hit", "2026-03-02T10:00", {"plan": plan})
        for index, plan in enumerate(FORMULA_PLANS)
    ]
    load(app, rows)
    client = app.test_client()
    path = f"/events?{RANGE}&event=hit&breakdown=plan&interval=day"
    table = _csv(client, path, "trends")
    assert sorted(table[0][1:]) == sorted("'" + plan for plan in FORMULA_PLANS)
    assert table[0][0] == "time"
    assert table[1][0] == "2026-03-02" and table[1][1:] == ["1"] * 6
    totals = _csv(client, path, "trend-totals")
    assert totals[0] == ["plan", "total"]
    assert sorted(totals[1:]) == sorted(["'" + plan, "1"] for plan in FORMULA_PLANS)


def test_retention_breakdown_rolling_and_week_start_controls(client: FlaskClient) -> None:
    path = f"/retention?{RANGE}&period=day&periods=1&start_event=view&breakdown=plan"
    assert _csv(client, path, "retention-0") == [
        ["cohort", "size", "day 0", "day 1"],
        ["2026-03-02", "1", "1", "1"],  # a (pro on a's first view)
        ["2026-03-03", "1", "1", "0"],  # c
    ]
    assert _csv(client, path, "retention-1")[1] == ["2026-03-02", "1", "1", "1"]  # b (free)
    curve = _csv(client, path, "retention-curve")
    assert curve[0] == ["period", "retained", "plan = pro", "plan = free"]
    assert curve[1] == ["day 0", "1", "1", "1"]
    page = client.get(ADMIN + path).text
    assert 'data-testid="retention-breakdowns"' in page and "plan = pro" in page
    links = [
        part.split('"')[0]
        for part in page.split('href="')[1:]
        if "/persons-behind/retention" in part
    ]
    assert links and not any("breakdown" in link for link in links)  # the whole cell
    for control in ('name="week_start"', 'name="windows"', 'name="breakdown"'):
        assert control in page
    rolling = f"/retention?{RANGE}&period=day&periods=1&start_event=view&windows=rolling"
    # a: first view Mar 2 10:00, back Mar 3 12:00 (26 h: window 1); b: signup 24 h later.
    assert _csv(client, rolling, "retention")[1] == ["2026-03-02", "2", "2", "2"]
    assert "rolling windows" in client.get(ADMIN + rolling).text
    sunday = client.get(f"{ADMIN}/retention?period=week&week_start=sunday").text
    assert "weeks from Sunday" in sunday
    hourly = client.get(f"{ADMIN}/retention?period=hour")
    assert hourly.status_code == 200 and "Showing the last 48 hours" in hourly.text


def test_funnel_shows_events_that_predict_conversion(client: FlaskClient) -> None:
    # view -> buy in 4 hours: a converts (signup in between), b and c drop (b's signup is the
    # next day, outside the window): signup (1, 0): (2/1) / (1/3) = 6, whatever the breakdown.
    path = f"/funnels?{RANGE}&step=view&step=buy&window_value=4&window_unit=hours&breakdown=plan"
    assert _csv(client, path, "funnel-correlation") == [
        ["event", "predicts", "odds ratio", "converted who did it", "dropped who did it"],
        ["signup", "conversion", "6", "1", "0"],
    ]
    page = client.get(ADMIN + path).text
    assert 'data-testid="funnel-correlation"' in page and "Events that predict conversion" in page
    assert '<strong data-testid="funnel-correlation-converted">1</strong>' in page
    assert '<strong data-testid="funnel-correlation-dropped">2</strong>' in page
    assert "<td>signup</td>" in page and "<td>conversion</td>" in page
    # Not in the other views.
    trends = client.get(f"{ADMIN}{path.replace('&breakdown=plan', '')}&mode=trends").text
    assert 'data-testid="funnel-correlation"' not in trends


def test_attribution_without_a_conversion_event_offers_the_top_events(
    make_app: AppFactory,
) -> None:
    """The empty Attribution page says what a conversion event is and offers the range's most
    frequent events as links (automatic ``$`` events are visits, not conversions)."""
    app = _app(make_app, allowed={"metrics.view"})
    load(app, [("d", "$pageview", "2026-03-02T09:00"), ("e", "$pageview", "2026-03-02T09:05")])
    page = app.test_client().get(f"{ADMIN}/attribution?{RANGE}").text
    assert 'data-testid="attribution-suggestions"' in page
    offered = re.findall(
        r'<a href="([^"]+)" data-testid="attribution-suggestion">([^<]+)</a>', page
    )
    assert [name for _, name in offered] == ["view", "signup", "buy"]  # 4, 2 and 1 events
    opened = app.test_client().get(html.unescape(offered[1][0]))
    assert opened.status_code == 200
    assert 'data-testid="attribution-conversions">2<' in opened.text  # a and b signed up


def test_top_events_open_their_trend_over_the_same_range(client: FlaskClient) -> None:
    """A top event (its row, or its bar) opens the Events page on that event, keeping the
    range (and, from the Events page, its filters)."""
    overview = html.unescape(client.get(f"{ADMIN}/?{RANGE}").text)
    table = overview.split('data-testid="table-top-events"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<td><a href="([^"]+)">([^<]+)</a></td>', table)
    assert [name for _, name in rows] == ["view", "signup", "buy"]
    assert rows[1][0] == f"{ADMIN}/events?date_from=2026-03-02&date_to=2026-03-04&event=signup"
    spec = overview.split('data-testid="chart-top-events"', 1)[1].split('class="um-chart-spec">')[1]
    assert json.loads(spec.split("</script>")[0])["links"] == [link for link, _ in rows]
    trend = client.get(rows[1][0]).text
    assert 'data-testid="chart-trends"' in trend
    filtered = f"{ADMIN}/events?{RANGE}&filters=%5B%5D&event=view"
    events = html.unescape(client.get(filtered).text)
    table = events.split('data-testid="table-top-events"', 1)[1].split("</table>", 1)[0]
    link = re.findall(r'<td><a href="([^"]+)">signup</a></td>', table)
    assert link == [
        f"{ADMIN}/events?date_from=2026-03-02&date_to=2026-03-04&filters=%5B%5D&event=signup"
    ]


def test_the_trend_chart_names_its_event(client: FlaskClient) -> None:
    """ "Total events" alone does not say of what: the Events page's chart title names the
    chosen event (all events: the math only; several series: their own labels)."""

    def title(query: str) -> str:
        page = client.get(f"{ADMIN}/events?{RANGE}{query}").text
        chart = page.split('data-testid="chart-trends"', 1)[1]
        found = re.search(r'<span class="um-chart-title">([^<]*)</span>', chart)
        assert found is not None, query
        return html.unescape(found.group(1))

    assert title("&event=signup") == "signup: Total events"
    assert title("&event=view&math=unique_persons&breakdown=plan") == (
        "view: Unique persons by plan"
    )
    assert title("") == "Total events"
    assert title('&event=view&series=[{"event":"view"},{"event":"buy"}]') == "Several series"

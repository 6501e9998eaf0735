"""Attribution on hand-built touchpoints whose credits are known by construction."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.attribution import CHANNEL_LABELS, AttributionResult, attribution
from flask_umetrics.queries.context import report_context

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

DAY = ("2026-03-10", "2026-03-11")


def credits(result: AttributionResult) -> list[tuple[str, float, float]]:
    return [(row.key, row.conversions, row.value) for row in result.rows]


def run(app: Flask, span: tuple[str, str] = DAY, **kwargs: Any) -> AttributionResult:
    with app.app_context():
        ctx = report_context(date_from=at(span[0]), date_to=at(span[1]))
        return attribution(ctx, conversion_event="purchase", **kwargs)


CHANNEL_TOUCHES: list[tuple[dict[str, Any] | None, str]] = [
    ({"utm_medium": "cpc"}, "paid_search"),
    ({"utm_medium": "CPC", "utm_source": "google"}, "paid_search"),  # case-insensitive
    ({"utm_medium": "cpc", "utm_source": "facebook"}, "paid_search"),  # first rule wins
    ({"utm_medium": "banner"}, "display"),
    ({"utm_medium": "social"}, "social"),
    ({"utm_source": "facebook"}, "social"),
    ({"$referrer": "https://l.facebook.com/l.php?u=x"}, "social"),
    ({"referrer": "https://t.co/abc"}, "social"),
    ({"$referrer": "x.com/home"}, "social"),  # no scheme
    ({"utm_medium": "email"}, "email"),
    ({"utm_source": "newsletter"}, "email"),
    ({"utm_medium": "affiliate"}, "affiliate"),
    ({"$referrer": "https://www.google.co.uk/search?q=x"}, "organic_search"),
    ({"$referrer": "https://duckduckgo.com/"}, "organic_search"),
    ({"$referrer": "", "referrer": "https://BING.com:443/"}, "organic_search"),
    ({"utm_source": "google", "utm_medium": "organic"}, "other_campaign"),  # utm wins
    ({"utm_campaign": "spring"}, "other_campaign"),
    ({"$referrer": "https://blog.example.org/post"}, "referral"),
    ({"$referrer": "https://notgoogle.com/"}, "referral"),
    ({"$referrer": "https://www.myshop.com/cart"}, "direct"),  # own host: not a touchpoint
    ({"$referrer": "https://shop.myshop.com:8443/x"}, "direct"),  # own subdomain
    ({"$referrer": "$direct"}, "direct"),
    ({"utm_source": "  "}, "direct"),  # blank values are absent
    (None, "direct"),
]


def test_every_channel_has_a_label() -> None:
    """The rules' channels (each one reached by a touch above, on every engine) are exactly
    the keys the dashboard has labels for."""
    assert {channel for _, channel in CHANNEL_TOUCHES} == set(CHANNEL_LABELS)
    assert all(label[0].isupper() and "_" not in label for label in CHANNEL_LABELS.values())


def test_each_channel_rule(app: Flask) -> None:
    """One scope per rule (so each answer is checked on its own), then all in one scope."""
    everything = []
    for i, (properties, _) in enumerate(CHANNEL_TOUCHES):
        rows = [
            (f"p{i}", "landing", "2026-03-10T09:00", properties),
            (f"p{i}", "purchase", "2026-03-10T10:00"),
        ]
        load(app, rows, scope_id=f"rule{i}")
        everything += rows
    load(app, everything)
    with app.app_context():
        for i, (properties, channel) in enumerate(CHANNEL_TOUCHES):
            ctx = report_context(scope_id=f"rule{i}", date_from=at(DAY[0]), date_to=at(DAY[1]))
            result = attribution(ctx, conversion_event="purchase", own_hosts=("myshop.com",))
            assert credits(result) == [(channel, 1.0, 0.0)], properties
    result = run(app, own_hosts=("https://www.MyShop.com/",))  # normalised like referrers
    expected: dict[str, int] = {}
    for _, channel in CHANNEL_TOUCHES:
        expected[channel] = expected.get(channel, 0) + 1
    assert result.conversions == len(CHANNEL_TOUCHES)
    assert credits(result) == sorted(
        ((key, float(n), 0.0) for key, n in expected.items()), key=lambda r: (-r[1], r[0])
    )
    assert [row.key for row in result.rows][:4] == [
        "direct",
        "social",
        "organic_search",
        "paid_search",
    ]
    # Without own hosts, the shop's own referrers are ordinary referrals.
    plain = {row.key: row.conversions for row in run(app).rows}
    assert plain["referral"] == 4 and plain["direct"] == 3


def test_models_with_one_two_and_three_touchpoints(app: Flask) -> None:
    load(
        app,
        [
            ("a", "landing", "2026-03-09T08:00", {"utm_medium": "cpc"}),
            ("a", "purchase", "2026-03-10T08:00", {"amount": 30}),
            ("b", "landing", "2026-03-01T08:00", {"utm_medium": "email"}),
            ("b", "landing", "2026-03-05T08:00", {"utm_source": "reddit"}),
            ("b", "purchase", "2026-03-10T09:00", {"amount": 10}),
            ("c", "landing", "2026-03-02T08:00", {"utm_medium": "display"}),
            ("c", "landing", "2026-03-03T08:00", {"utm_medium": "affiliate"}),
            ("c", "landing", "2026-03-04T08:00", {"$referrer": "https://news.ycombinator.com/"}),
            ("c", "purchase", "2026-03-10T10:00", {"amount": 90}),
        ],
    )
    first = run(app, model="first_touch", value_property="amount")
    assert credits(first) == [
        ("display", 1.0, 90.0),
        ("email", 1.0, 10.0),
        ("paid_search", 1.0, 30.0),
    ]
    assert first.model == "first_touch" and first.conversions == 3
    last = run(app, model="last_touch", value_property="amount")
    assert credits(last) == [
        ("paid_search", 1.0, 30.0),
        ("referral", 1.0, 90.0),
        ("social", 1.0, 10.0),
    ]
    linear = run(app, model="linear", value_property="amount")
    assert credits(linear) == [
        ("paid_search", 1.0, 30.0),
        ("email", 0.5, 5.0),
        ("social", 0.5, 5.0),
        ("affiliate", 1 / 3, 30.0),
        ("display", 1 / 3, 30.0),
        ("referral", 1 / 3, 30.0),
    ]
    assert sum(row.conversions for row in linear.rows) == pytest.approx(3)
    # Without a value property every value is 0.
    assert [row.value for row in run(app, model="linear").rows] == [0.0] * 6


def test_linear_credits_one_channel_twice_and_every_conversion(app: Flask) -> None:
    load(
        app,
        [
            ("d", "landing", "2026-03-08T08:00", {"utm_medium": "cpc", "utm_campaign": "x"}),
            ("d", "landing", "2026-03-09T08:00", {"utm_medium": "ppc"}),
            ("d", "landing", "2026-03-09T09:00", {"utm_medium": "email"}),
            ("d", "purchase", "2026-03-10T08:00", {"amount": 60}),
            ("d", "purchase", "2026-03-10T09:00", {"amount": "12"}),  # text: no value
            ("e", "purchase", "2026-03-10T10:00", {"amount": 7.5}),
        ],
    )
    linear = run(app, model="linear", value_property="amount")
    # Each of d's two purchases splits 1 over the same three touchpoints.
    assert credits(linear) == [
        ("paid_search", 4 / 3, 40.0),
        ("direct", 1.0, 7.5),
        ("email", 2 / 3, 20.0),
    ]
    assert linear.conversions == 3
    last = run(app, value_property="amount")  # last_touch is the default
    assert credits(last) == [("email", 2.0, 60.0), ("direct", 1.0, 7.5)]


def test_lookback_edges_and_touchpoints_after_the_conversion(app: Flask) -> None:
    conversion = "2026-03-31T12:00:00"
    load(
        app,
        [
            ("in", "landing", "2026-03-01T12:00:00", {"utm_medium": "cpc"}),  # exactly 30 days
            ("in", "purchase", conversion),
            ("out", "landing", "2026-03-01T11:59:59.999999", {"utm_medium": "cpc"}),  # 1 µs more
            ("out", "purchase", conversion),
            ("same", "purchase", conversion, {"utm_source": "newsletter"}),  # carries its utm
            ("after", "landing", "2026-03-31T12:00:00.000001", {"utm_medium": "display"}),
            ("after", "purchase", conversion),
            ("early", "purchase", "2026-03-30T23:59:59.999999"),  # before date_from
            ("late", "purchase", "2026-04-01T00:00:00"),  # date_to is exclusive
        ],
    )
    span = ("2026-03-31", "2026-04-01")
    result = run(app, span)
    assert credits(result) == [("direct", 2.0, 0.0), ("email", 1.0, 0.0), ("paid_search", 1.0, 0.0)]
    assert result.lookback_days == 30
    shorter = run(app, span, lookback_days=29)
    assert credits(shorter) == [("direct", 3.0, 0.0), ("email", 1.0, 0.0)]
    zero = run(app, span, lookback_days=0, model="first_touch")  # only the same instant
    assert credits(zero) == [("direct", 3.0, 0.0), ("email", 1.0, 0.0)]


def test_merges_after_the_events_are_retroactive(app: Flask) -> None:
    load(
        app,
        [
            ("anon-1", "landing", "2026-03-09T08:00", {"utm_source": "newsletter"}),
            ("user-1", "purchase", "2026-03-10T08:00"),
            ("anon-2", "landing", "2026-03-09T08:00", {"$referrer": "https://google.com/"}),
            ("anon-2", "landing", "2026-03-09T09:00", {"utm_medium": "banner"}),
            ("user-2", "purchase", "2026-03-10T09:00"),
        ],
    )
    assert credits(run(app, model="linear")) == [("direct", 2.0, 0.0)]
    with app.app_context():
        identify("user-1", anon_id="anon-1")
        identify("user-2", anon_id="anon-2")
    assert credits(run(app, model="linear")) == [
        ("email", 1.0, 0.0),
        ("display", 0.5, 0.0),
        ("organic_search", 0.5, 0.0),
    ]


def test_ties_in_time_are_broken_by_id(app: Flask) -> None:
    load(app, [("t", "landing", "2026-03-10T08:00", {"utm_source": "facebook"})])
    load(app, [("t", "pageview", "2026-03-10T08:00", {"utm_medium": "email"})])  # later id
    load(app, [("t", "purchase", "2026-03-10T09:00")])
    assert credits(run(app, model="first_touch")) == [("social", 1.0, 0.0)]
    assert credits(run(app, model="last_touch")) == [("email", 1.0, 0.0)]
    assert credits(run(app, model="linear")) == [("email", 0.5, 0.0), ("social", 0.5, 0.0)]


def test_group_by_source_and_campaign(app: Flask) -> None:
    load(
        app,
        [
            (
                "a",
                "landing",
                "2026-03-09T08:00",
                {"utm_source": "Google", "utm_campaign": "Spring"},
            ),
            ("a", "purchase", "2026-03-10T08:00"),
            ("b", "landing", "2026-03-09T08:00", {"$referrer": "https://www.Reddit.com/r/x"}),
            ("b", "purchase", "2026-03-10T08:00"),
            ("c", "landing", "2026-03-09T08:00", {"utm_medium": "email"}),
            ("c", "purchase", "2026-03-10T08:00"),
            ("d", "landing", "2026-03-09T08:00", {"utm_source": "google", "utm_campaign": "Fall"}),
            ("d", "purchase", "2026-03-10T08:00"),
            ("e", "purchase", "2026-03-10T08:00"),
        ],
    )
    source = run(app, group_by="source")
    assert source.group_by == "source"
    assert credits(source) == [
        ("google", 2.0, 0.0),
        ("(none)", 1.0, 0.0),
        ("direct", 1.0, 0.0),
        ("reddit.com", 1.0, 0.0),
    ]
    assert credits(run(app, group_by="campaign")) == [
        ("(none)", 2.0, 0.0),
        ("Fall", 1.0, 0.0),
        ("Spring", 1.0, 0.0),
        ("direct", 1.0, 0.0),
    ]


def test_filters_apply_to_conversions_and_sampling_scales(app: Flask) -> None:
    load(
        app,
        [
            ("a", "landing", "2026-03-09T08:00", {"utm_medium": "cpc", "plan": "free"}),
            ("a", "purchase", "2026-03-10T08:00", {"plan": "pro", "amount": 5}),
            ("b", "purchase", "2026-03-10T08:00", {"plan": "free", "amount": 3}),
        ],
    )
    with app.app_context():
        ctx = report_context(
            date_from=at(DAY[0]),
            date_to=at(DAY[1]),
            filters=[{"key": "plan", "value": "pro"}],
        )
        result = attribution(ctx, conversion_event="purchase", value_property="amount")
        assert credits(result) == [("paid_search", 1.0, 5.0)]
        assert result.sampled is None
        everyone = report_context(date_from=at(DAY[0]), date_to=at(DAY[1]), sample=1.0)
        assert attribution(everyone, conversion_event="purchase").conversions == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "u_shaped"}, "model"),
        ({"group_by": "medium"}, "group_by"),
        ({"lookback_days": -1}, "lookback_days"),
        ({"own_hosts": ("https:///",)}, "own_hosts"),
        ({"conversion_event": ""}, "conversion_event"),
    ],
)
def test_bad_arguments(app: Flask, kwargs: dict[str, Any], field: str) -> None:
    with app.app_context():
        ctx = report_context(date_from=at(DAY[0]), date_to=at(DAY[1]))
        with pytest.raises(ValidationError) as error:
            attribution(ctx, **{"conversion_event": "purchase", **kwargs})
        assert error.value.field == field


def test_attribution_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(
        app,
        [
            ("a", "landing", "2026-03-09T08:00", {"$referrer": "https://app.myshop.com/"}),
            ("a", "landing", "2026-03-09T09:00", {"utm_medium": "cpc"}),
            ("a", "purchase", "2026-03-10T08:00", {"amount": 8}),
            ("b", "landing", "2026-03-09T09:00", {"$referrer": "https://myshop.com/"}),
            ("b", "purchase", "2026-03-10T08:00", {"amount": 2}),
        ],
    )
    client = app.test_client()
    base = "/umetrics/api/query/attribution?date_from=2026-03-10&date_to=2026-03-11"
    answer = client.get(
        f"{base}&conversion_event=purchase&model=linear&value_property=amount"
        "&own_hosts=myshop.com,other.org"
    )
    assert answer.status_code == 200, answer.json
    assert answer.json == {
        "model": "linear",
        "group_by": "channel",
        "conversions": 2,
        "lookback_days": 30,
        "sampled": None,
        "rows": [
            {"key": "direct", "conversions": 1.0, "value": 2.0},
            {"key": "paid_search", "conversions": 1.0, "value": 8.0},
        ],
    }
    repeated = client.get(f"{base}&conversion_event=purchase&own_hosts=x.org&own_hosts=myshop.com")
    assert [row["key"] for row in repeated.json["rows"]] == ["direct", "paid_search"]
    plain = client.get(f"{base}&conversion_event=purchase&model=first_touch&group_by=source")
    assert plain.json["rows"] == [
        {"key": "app.myshop.com", "conversions": 1.0, "value": 0.0},
        {"key": "myshop.com", "conversions": 1.0, "value": 0.0},
    ]
    for bad, field in [
        ("", "conversion_event"),
        ("conversion_event=purchase&model=u_shaped", "model"),
        ("conversion_event=purchase&group_by=medium", "group_by"),
        ("conversion_event=purchase&lookback_days=-1", "lookback_days"),
        ("conversion_event=purchase&own_hosts=/", "own_hosts"),
    ]:
        response = client.get(f"{base}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


def test_sampling_keeps_whole_persons_and_scales(app: Flask) -> None:
    rows = []
    for i in range(200):
        rows.append((f"p{i}", "landing", "2026-03-10T08:00", {"utm_medium": "cpc"}))
        rows.append((f"p{i}", "purchase", "2026-03-10T09:00", {"amount": 1}))
    load(app, rows)
    with app.app_context():
        half = report_context(date_from=at(DAY[0]), date_to=at(DAY[1]), sample=0.5)
        result = attribution(half, conversion_event="purchase", value_property="amount")
    assert result.sampled == 0.5
    assert 140 <= result.conversions <= 260 and result.conversions % 2 == 0
    # Every kept conversion found its person's touchpoint: nothing falls to "direct".
    assert credits(result) == [("paid_search", result.conversions, result.conversions)]

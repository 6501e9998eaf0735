"""The demo's saved insights and its two dashboards, "Product" and "Web".

Built with the public Python API (``create_insight``, ``create_dashboard``), the way a host app
would ship dashboards of its own. Every insight keeps a relative range, so the dashboards show
the last weeks whenever the demo is opened.
"""

from __future__ import annotations

from typing import Any

from flask_umetrics import (
    create_dashboard,
    create_insight,
    delete_dashboard,
    delete_insight,
    list_dashboards,
    list_insights,
)

from .analytics import SCOPE

FUNNEL = ["$pageview", "signed_up", "note_created", "plan_upgraded"]
#: name, kind, route parameters, description
Spec = tuple[str, str, dict[str, Any], str]
PRODUCT: list[tuple[Spec, int, int]] = [
    (("Sign-up funnel", "funnel", {"step": FUNNEL, "date_range": "-30d"},
      "Visitors who sign up, write a note and upgrade, within 14 days."), 12, 2),
    (("Sign-ups per day", "trends", {"event": "signed_up", "date_range": "-30d"}, ""), 6, 2),
    (("Daily active users", "active", {"series": "dau", "date_range": "-30d"}, ""), 6, 2),
    (("Weekly retention", "retention",
      {"start_event": "signed_up", "return_event": "note_created", "period": "week",
       "date_range": "-12w"}, "Share of each week's sign-ups writing notes later."), 6, 2),
    (("Upgrades by plan", "trends",
      {"event": "plan_upgraded", "breakdown": "plan", "interval": "week", "date_range": "-12w"},
      ""), 6, 2),
]  # fmt: skip
WEB: list[tuple[Spec, int, int]] = [
    (("Page views", "trends", {"event": "$pageview", "date_range": "-30d"}, ""), 8, 2),
    (("Sessions", "sessions", {"date_range": "-30d"}, "Sessions starting in the range."), 4, 2),
    (("Top pages", "top", {"event": "$pageview", "property": "$pathname", "date_range": "-30d"},
      ""), 4, 2),
    (("Referrers", "top", {"event": "$pageview", "property": "$referrer", "date_range": "-30d"},
      ""), 4, 2),
    (("UTM sources", "top", {"event": "$pageview", "property": "utm_source", "date_range": "-30d"},
      ""), 4, 2),
    (("UTM campaigns", "top",
      {"event": "$pageview", "property": "utm_campaign", "date_range": "-30d"}, ""), 6, 2),
    (("Channels of sign-ups", "attribution",
      {"conversion_event": "signed_up", "date_range": "-30d"}, "Last touch."), 6, 2),
]  # fmt: skip


def wipe_dashboards() -> None:
    """Remove the demo scope's dashboards and insights (before seeding again)."""
    for dashboard in list_dashboards(scope_id=SCOPE):
        delete_dashboard(dashboard.id, scope_id=SCOPE, actor="seed-demo")
    for insight in list_insights(scope_id=SCOPE):
        delete_insight(insight.id, scope_id=SCOPE, actor="seed-demo")


def create_demo_dashboards() -> list[str]:
    """Create the insights and the two dashboards; their names, in order."""
    names = []
    for name, tiles, description in (
        ("Product", PRODUCT, "Sign-ups, activation, retention and upgrades."),
        ("Web", WEB, "Traffic: page views, sessions, pages, referrers and campaigns."),
    ):
        specs = []
        for (title, kind, params, about), width, height in tiles:
            insight = create_insight(
                kind, params, name=title, description=about, scope_id=SCOPE, actor="seed-demo"
            )
            specs.append({"insight_id": insight.id, "width": width, "height": height})
        create_dashboard(
            name, description=description, tiles=specs, scope_id=SCOPE, actor="seed-demo"
        )
        names.append(name)
    return names

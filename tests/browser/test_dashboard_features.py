"""The Features pages in Chromium: a feature created in the UI with a targeted rollout rule,
switched off and on in place from the list, then given an override; after each step the public
``GET /api/flags`` answers each logged-in subject what the page says it should."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from .conftest import ADMIN, LiveApp, login, screenshot

KEY = "ui-beta"


def demo_users(live: LiveApp) -> list[tuple[str, str]]:
    """(id, e-mail) of two demo users who are not staff: their e-mail domain is not Acme's."""
    from example_app.models import User

    with live.app.app_context():
        users = User.query.filter(~User.email.like("%@example.com")).order_by(User.id).limit(2)
        return [(str(user.id), user.email) for user in users]


@pytest.fixture
def others(browser: Browser, live_app: LiveApp) -> Iterator[list[tuple[str, BrowserContext]]]:
    """Two other demo users, each logged in in a browser of their own."""
    contexts = []
    for user_id, email in demo_users(live_app):
        context = browser.new_context()
        login(context.new_page(), live_app, email, ADMIN[1])
        contexts.append((user_id, context))
    yield contexts
    for _, context in contexts:
        context.close()


def served(context: BrowserContext, live: LiveApp) -> str:
    """The variant ``GET /api/flags`` serves the context's logged-in user."""
    answer = context.request.get(f"{live.url}/umetrics/api/flags?keys={KEY}")
    assert answer.ok, answer.status
    return str(answer.json()["flags"][KEY]["variant"])


def test_a_feature_built_switched_and_overridden_in_the_ui(
    page: Page, live_app: LiveApp, others: list[tuple[str, BrowserContext]]
) -> None:
    (pinned_id, pinned), (_, outsider) = others
    login(page, live_app)  # the admin: e-mail domain example.com, the matching subject

    def flags() -> tuple[str, str, str]:
        return served(page.context, live_app), served(pinned, live_app), served(outsider, live_app)

    page.goto(live_app.url + "/umetrics/admin/features")
    page.click("[data-testid='new-feature']")
    page.fill("#feature-key", KEY)
    page.fill("#feature-name", "Beta navigation")
    page.click("[data-testid='create-feature']")
    page.wait_for_url(f"**/features/{KEY}")
    expect(page.locator("[data-testid='feature-state']")).to_have_text("Off (never started)")
    expect(page.locator("[data-no-rules]")).to_be_visible()
    assert "It is not running" in (page.text_content("[data-testid='no-exposures']") or "")

    # A rollout rule to 100% of the subjects whose e-mail domain is example.com.
    page.click("[data-testid='add-rule']")
    rule = page.locator("[data-testid='rule-0']")
    expect(rule.locator("[data-rule-kind]")).to_have_value("rollout")
    rule.locator("[data-coverage]").fill("100")
    expect(rule.locator("[data-coverage-out]")).to_have_text("100%")
    rule.locator("[data-add-condition]").click()
    rule.locator("[data-attr]").fill("email_domain")
    rule.locator("[data-value]").fill("example.com")
    condition = rule.locator("[data-condition]")
    assert json.loads(condition.input_value()) == {"email_domain": "example.com"}
    expect(rule.locator("[data-targeting-summary]")).to_have_text("email_domain equals example.com")
    # A second rule, moved first, then removed again: the order is what the page shows.
    page.click("[data-testid='add-rule']")
    second = page.locator("[data-testid='rule-1']")
    second.locator("[data-rule-kind]").select_option("force")
    second.locator("[data-rule-up]").click()
    kinds = page.locator("[data-rules] [data-rule-kind]")
    assert [kinds.nth(i).input_value() for i in range(2)] == ["force", "rollout"]
    page.locator("[data-testid='rule-0'] [data-testid='rule-remove']").click()
    assert kinds.count() == 1
    page.click("[data-testid='save-rules']")
    page.wait_for_url(f"**/features/{KEY}")
    stored = live_app.api(f"/umetrics/api/experiments/{KEY}?scope_id=acme")
    assert [(r["type"], r["variant"], r["coverage"], r["condition"]) for r in stored["rules"]] == [
        ("rollout", "on", 1.0, {"email_domain": "example.com"})
    ]
    # Loaded again, the condition is a row again; JSON too complex for rows says so.
    rule = page.locator("[data-testid='rule-0']")
    expect(rule.locator("[data-attr]")).to_have_value("email_domain")
    expect(rule.locator("[data-op]")).to_have_value("eq")
    screenshot(page, "feature")
    # Every operator of the rows, compiled as typed; then the same JSON read back into rows.
    rows = [
        ("plan", "in", "pro, team"),
        ("plan", "nin", "free"),
        ("email", "contains", "a.b+c"),
        ("email", "regex", "^ad"),
        ("seats", "gt", "5"),
        ("seats", "lt", "50.5"),
        ("company", "exists", ""),
        ("", "segment", "beta-testers"),
        ("country", "ne", "DE"),
    ]
    for attribute, operator, value in rows:
        rule.locator("[data-add-condition]").click()
        row = rule.locator(".um-cond-row").last
        row.locator("[data-op]").select_option(operator)
        if attribute:
            row.locator("[data-attr]").fill(attribute)
        if value:
            row.locator("[data-value]").fill(value)
    compiled = {
        "$and": [
            {"email_domain": "example.com"},
            {"plan": {"$in": ["pro", "team"]}},
            {"plan": {"$nin": ["free"]}},
            {"email": {"$regex": "a\\.b\\+c"}},
            {"email": {"$regex": "^ad"}},
            {"seats": {"$gt": 5}},
            {"seats": {"$lt": 50.5}},
            {"company": {"$exists": True}},
            {"$inSegment": "beta-testers"},
            {"country": {"$ne": "DE"}},
        ]
    }
    assert json.loads(rule.locator("[data-condition]").input_value()) == compiled
    rule.locator("summary").click()
    rule.locator("[data-condition]").fill(json.dumps(compiled))
    derived = rule.locator(".um-cond-row")
    expect(derived).to_have_count(10)
    assert [
        (
            derived.nth(i).locator("[data-attr]").input_value(),
            derived.nth(i).locator("[data-op]").input_value(),
            derived.nth(i).locator("[data-value]").input_value(),
        )
        for i in range(1, 10)
    ] == [("", "segment", v) if o == "segment" else (a, o, v) for a, o, v in rows]
    rule.locator("[data-condition]").fill('{"$or": [{"a": 1}, {"b": 2}]}')
    expect(rule.locator("[data-targeting-summary]")).to_contain_text("edited as JSON")
    expect(rule.locator("[data-attr]")).to_have_count(0)
    assert flags() == ("off", "off", "off")  # a new feature is off

    # The switch on the list, in place (no reload): on, off, on.
    page.goto(live_app.url + "/umetrics/admin/features")
    switch = page.locator(f"[data-testid='toggle-{KEY}']")
    state = page.locator(f"[data-testid='state-{KEY}']")
    expect(switch).to_have_attribute("aria-checked", "false")
    page.evaluate("window.__stayed = true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(state).to_have_text("On: serving its rules")
    assert page.evaluate("window.__stayed") is True
    assert flags() == ("on", "off", "off")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(state).to_contain_text("switched off")
    assert flags() == ("off", "off", "off")
    screenshot(page, "features")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    assert flags() == ("on", "off", "off")
    assert page.evaluate("window.__stayed") is True

    # An override pins one non-matching subject to on.
    page.click(f"[data-testid='feature-{KEY}'] a")
    page.fill("#override-subjects", pinned_id)
    page.select_option("#override-variant", "on")
    page.click("[data-testid='add-override']")
    page.wait_for_url(f"**/features/{KEY}")
    expect(page.locator("[data-testid='table-overrides'] tbody tr")).to_have_count(1)
    expect(page.locator("[data-testid='table-overrides']")).to_contain_text(pinned_id)
    assert flags() == ("on", "on", "off")

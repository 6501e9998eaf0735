"""People, Paths, Attribution and Settings pages in Chromium: numbers equal the REST answers,
a person is deleted and an API key created, used and revoked through the UI."""

from __future__ import annotations

from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import Page, expect

from flask_umetrics.admin.formatting import column_label

from .conftest import LiveApp, login, number, screenshot, table_rows

ADMIN = "/umetrics/admin"


def status_of(url: str, headers: dict[str, str]) -> int:
    try:
        with urlopen(Request(url, headers=headers), timeout=30) as response:
            return int(response.status)
    except HTTPError as error:
        error.close()
        return int(error.code)


def test_people_search_by_distinct_id_and_property(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(live_app.url + ADMIN + "/people")
    page.fill("input[name=property]", "plan")
    page.fill("input[name=value]", "pro")
    page.click("[data-testid=people-search] button[type=submit]")
    page.wait_for_load_state()
    rest = live_app.api("/umetrics/api/persons?scope_id=acme&property=plan&value=pro&limit=50")
    assert rest["total"] > 0
    assert number(page.text_content("[data-testid=people-total]") or "") == rest["total"]
    rows = table_rows(page, "people")
    assert [row[0] for row in rows] == [p["distinct_ids"][0] for p in rest["persons"]]
    assert [number(row[5]) for row in rows] == [p["events"] for p in rest["persons"]]

    # An anonymous id finds the signed-up person it was merged into.
    page.fill("input[name=property]", "")
    page.fill("input[name=value]", "")
    page.fill("input[name=distinct_id]", "v-demo-2")
    page.click("[data-testid=people-search] button[type=submit]")
    page.wait_for_load_state()
    assert number(page.text_content("[data-testid=people-total]") or "") == 1
    assert table_rows(page, "people")[0][0] == "2"


def test_person_timeline_equals_the_rest_timeline(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(live_app.url + ADMIN + "/people?distinct_id=4")
    page.click("[data-testid=person-link]")
    page.wait_for_load_state()
    rest = live_app.api("/umetrics/api/persons/4/timeline?scope_id=acme&limit=50")
    shown = table_rows(page, "timeline")
    # Shown to the second in the app's zone (the demo's is UTC); the exact instant in datetime=.
    assert [(row[0], row[1], row[2]) for row in shown] == [
        (e["timestamp"][:19].replace("T", " "), e["event"], e["distinct_id"])
        for e in rest["events"]
    ]
    exact = page.eval_on_selector_all(
        "[data-testid='table-timeline'] tbody td:first-child time",
        "times => times.map(t => t.getAttribute('datetime'))",
    )
    assert exact == [e["timestamp"] for e in rest["events"]]
    assert [row[0] for row in table_rows(page, "distinct-ids")] == rest["person"]["distinct_ids"]
    assert len(table_rows(page, "sessions")) == len(rest["sessions"])


def test_delete_a_person_through_the_ui(page: Page, live_app: LiveApp) -> None:
    assert live_app.api("/umetrics/api/persons/5/timeline?scope_id=acme")["events"]
    login(page, live_app)
    page.goto(live_app.url + ADMIN + "/person?distinct_id=5")
    page.fill("[data-testid=person-delete-confirm]", "wrong")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid=person-delete-form] button[type=submit]")
    page.wait_for_load_state()
    assert "nothing was deleted" in (page.text_content("[data-testid=form-error]") or "")
    assert live_app.api("/umetrics/api/persons/5/timeline?scope_id=acme")["events"]

    dialogs: list[str] = []

    def accept(dialog):  # type: ignore[no-untyped-def]
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.fill("[data-testid=person-delete-confirm]", "5")
    page.click("[data-testid=person-delete-form] button[type=submit]")
    page.wait_for_url("**/admin/people**")
    assert dialogs and "cannot be undone" in dialogs[0]
    assert "Deleted the person of '5'" in (page.text_content(".um-flash") or "")
    with pytest.raises(HTTPError) as gone:
        live_app.api("/umetrics/api/persons/5/timeline?scope_id=acme")
    gone.value.close()
    assert gone.value.code == 404
    with pytest.raises(HTTPError) as exported:
        live_app.api("/umetrics/api/persons/v-demo-5/export?scope_id=acme")
    exported.value.close()
    assert exported.value.code == 404


def test_paths_and_attribution_equal_the_rest_answers(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    query = "start_event=signed_up&steps=3&limit=5"
    page.goto(live_app.url + ADMIN + "/paths?" + query)
    rest = live_app.api("/umetrics/api/query/paths?scope_id=acme&" + query)
    assert rest["steps"][0]["transitions"]
    shown = table_rows(page, "paths")
    assert [(number(r[0]), r[1], r[2], number(r[3])) for r in shown] == [
        (step["step"], t["from"], t["to"], t["persons"])
        for step in rest["steps"]
        for t in step["transitions"]
    ]
    expect(page.locator("canvas[data-drawn]").nth(0)).to_be_attached()

    page.goto(live_app.url + ADMIN + "/attribution")
    page.fill("input[name=conversion_event]", "plan_upgraded")
    page.select_option("select[name=model]", "first_touch")
    page.fill("input[name=value_property]", "value")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    rest_attr = live_app.api(
        "/umetrics/api/query/attribution?scope_id=acme&conversion_event=plan_upgraded"
        "&model=first_touch&value_property=value"
    )
    assert rest_attr["conversions"] > 0
    shown_total = page.text_content("[data-testid=attribution-conversions]") or ""
    assert number(shown_total) == rest_attr["conversions"]
    rows = table_rows(page, "attribution")
    # The page shows the formatter's channel labels (the CSV keeps the REST names).
    assert all(column_label(r["key"]) != r["key"] for r in rest_attr["rows"])
    assert [(r[0], number(r[1]), number(r[2])) for r in rows] == [
        (column_label(r["key"]), round(r["conversions"], 2), round(r["value"], 2))
        for r in rest_attr["rows"]
    ]
    expect(page.locator("canvas[data-drawn]").nth(0)).to_be_attached()


def test_create_use_and_revoke_an_api_key(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(live_app.url + ADMIN + "/settings")
    assert "UMETRICS_RETENTION_EVENTS_DAYS" in (
        page.text_content("[data-testid=table-config]") or ""
    )
    page.fill("[data-testid=key-name]", "browser test <script>alert(1)</script>")
    page.select_option("[data-testid=key-permission]", "metrics.view")
    page.click("[data-testid=create-key-form] button[type=submit]")
    page.wait_for_load_state()
    key = (page.text_content("[data-testid=created-key]") or "").strip()
    assert key.startswith("umk_")
    dashboard = live_app.url + "/umetrics/api/query/dashboard?scope_id=acme"
    bearer = {"Authorization": f"Bearer {key}"}
    assert status_of(dashboard, bearer) == 200

    page.goto(live_app.url + ADMIN + "/settings")
    assert key not in page.content()  # shown once only
    key_id = key.split("_")[1]
    row = table_rows(page, "api-keys")
    assert ["browser test <script>alert(1)</script>", "metrics.view", key_id] in [
        r[:3] for r in row
    ]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"[data-testid=revoke-{quote(key_id)}] button")
    page.wait_for_load_state()
    assert f"Revoked API key {key_id}." in (page.text_content(".um-flash") or "")
    assert status_of(dashboard, bearer) == 401


def test_paths_flow_diagram_is_drawn(page: Page, live_app: LiveApp) -> None:
    errors: list[str] = []
    # Script errors and failed loads (the browser's own /favicon.ico request aside).
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 else None)
    login(page, live_app)
    page.goto(live_app.url + ADMIN + "/paths?scope_id=acme&steps=4")
    page.select_option("select[name=pathnames]", "true")
    page.select_option("select[name=unit]", "person")
    page.fill("input[name=end_event]", "signed_up")
    page.fill("textarea[name=cleaning_lines]", "^/app.* => /app")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    canvas = page.locator("[data-testid=paths-sankey] canvas")
    expect(canvas).to_have_attribute("data-drawn", "1")
    box = canvas.bounding_box()
    assert box is not None and box["height"] > 300
    rest = live_app.api(
        "/umetrics/api/query/paths?scope_id=acme&steps=4&pathnames=true&unit=person"
        "&end_event=signed_up&cleaning=" + quote('[{"pattern": "^/app.*", "replacement": "/app"}]')
    )
    shown = table_rows(page, "paths")
    assert rest["steps"][0]["transitions"]
    assert [(number(r[0]), r[1], r[2], number(r[3])) for r in shown] == [
        (step["step"], t["from"], t["to"], t["persons"])
        for step in rest["steps"]
        for t in step["transitions"]
    ]
    assert not errors, errors
    screenshot(page, "paths")

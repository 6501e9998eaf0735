"""The Experiments pages in Chromium: the demo experiment's results are the REST API's numbers,
and an experiment created and started through the forms is what the API then serves."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import LiveApp, login, number, screenshot, table_rows

DEMO = "pricing-page"  # example_app/experiments.py


def data_values(page: Page, key: str) -> list[list[str | None]]:
    """Each cell's unrounded ``data-value`` (None for text cells) of table ``key``."""
    return page.eval_on_selector_all(
        f"[data-testid='table-{key}'] tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.dataset.value ?? null))",
    )


def value(text: str | None) -> float | None:
    return None if text in (None, "") else float(text)


def test_demo_results_match_the_api(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}/umetrics/admin/experiments/{DEMO}")
    api = live_app.api(f"/umetrics/api/experiments/{DEMO}/results?scope_id=acme")
    shown = table_rows(page, "metric-0")
    raw = data_values(page, "metric-0")
    assert (
        [row[0] for row in shown]
        == [v["key"] for v in api["variants"]]
        == [
            "control",
            "annual-first",
        ]
    )
    for text, cells, variant in zip(shown, raw, api["variants"], strict=True):
        assert number(text[1]) == variant["exposures"] > 0
        assert value(cells[3]) == variant["mean"]
        assert value(cells[8]) == variant["p_value"]
        assert [value(cells[6]), value(cells[7])] == (variant["ci"] or [None, None])
        if variant["p_value"] is not None:
            assert text[8] == f"{variant['p_value']:,.4f}"
    assert api["variants"][0]["ci"] is None and api["variants"][1]["ci"] is not None
    total = sum(v["exposures"] for v in api["variants"])
    assert number(page.text_content("[data-testid='kpi-exposures']") or "") == total
    warned = page.query_selector("[data-testid='srm-warning']") is not None
    assert warned == bool(api["srm"] and api["srm"]["flagged"])
    interval = table_rows(page, "ci-0")
    assert interval[0][1:] == ["—", "—"]  # control: no interval
    for verdict in api["verdicts"]:
        shown_verdict = page.locator(f"[data-testid='verdict-{verdict['variant']}']")
        expect(shown_verdict).to_have_text(verdict["text"])
        expect(shown_verdict).to_have_attribute("data-kind", verdict["kind"])
    expect(page.locator("[data-testid='sample-size']")).to_contain_text("Planned sample: ")
    expect(page.locator("canvas[data-drawn]").nth(3)).to_be_attached()
    screenshot(page, "experiment")


def test_create_and_start_an_experiment_through_the_ui(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(live_app.url + "/umetrics/admin/experiments")
    page.click("[data-testid='new-experiment']")
    page.fill("#exp-key", "signup-button")
    page.fill("#exp-name", "<img src=x onerror=window.__xss=1>Signup button")
    keys = page.locator("input[name='variant_key']")
    weights = page.locator("input[name='variant_weight']")
    assert keys.count() == 3  # control, treatment and a spare row
    keys.nth(0).fill("control")
    weights.nth(0).fill("1")
    keys.nth(1).fill("big")
    weights.nth(1).fill("2")
    page.click("#um-add-variant")  # JavaScript adds a fourth row
    assert keys.count() == 4
    keys.nth(3).fill("small")
    weights.nth(3).fill("1")
    page.locator("input[name='metric_event']").nth(0).fill("plan_upgraded")
    page.get_by_label("One-sided test").check()
    page.get_by_label("Minimum detectable effect (relative)").fill("0.1")
    screenshot(page, "experiment-form")
    page.click("[data-testid='save-experiment']")
    page.wait_for_url("**/experiments/signup-button")
    assert "draft" in (page.text_content("[data-testid='experiment-status']") or "")
    assert "<img src=x onerror=window.__xss=1>Signup button" in (page.text_content("h2") or "")
    page.click("[data-testid='action-start']")
    page.wait_for_load_state()
    assert "running" in (page.text_content("[data-testid='experiment-status']") or "")
    assert page.evaluate("window.__xss") is None

    stored = live_app.api("/umetrics/api/experiments/signup-button?scope_id=acme")
    assert stored["status"] == "running"
    assert [(v["key"], v["weight"]) for v in stored["variants"]] == [
        ("control", 1.0),
        ("big", 2.0),
        ("small", 1.0),
    ]
    assert [(m["key"], m["kind"], m["guardrail"]) for m in stored["metrics"]] == [
        ("plan_upgraded", "conversion", False)
    ]
    [rule] = stored["rules"]
    assert (rule["one_sided"], rule["mde"], rule["min_bucket_version"]) == (True, 0.1, 0)
    page.goto(live_app.url + "/umetrics/admin/experiments")
    assert page.text_content("[data-testid='status-signup-button']") == "running"

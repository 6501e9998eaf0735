"""The consent-gated gtag.js snippet and its Jinja helper."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask, render_template_string, request
from markupsafe import Markup

from flask_umetrics.errors import ValidationError
from flask_umetrics.ga4.gtag import gtag_snippet, install_gtag_helper

from .conftest import AppFactory

MID = "G-ABC123XYZ9"
CONSENT_JS = (
    '{"ad_storage": "denied", "ad_user_data": "denied", "ad_personalization": "denied", '
    '"analytics_storage": "granted"}'
)


def expected(nonce: str = "", config: str = f"gtag('config', \"{MID}\");") -> str:
    attr = f' nonce="{nonce}"' if nonce else ""
    return (
        f'<script async src="https://www.googletagmanager.com/gtag/js?id={MID}"{attr}>'
        "</script>\n"
        f"<script{attr}>\n"
        "  window.dataLayer = window.dataLayer || [];\n"
        "  function gtag(){dataLayer.push(arguments);}\n"
        f"  gtag('consent', 'default', {CONSENT_JS});\n"
        "  gtag('js', new Date());\n"
        f"  {config}\n"
        "</script>"
    )


def test_snippet_with_consent_is_exact() -> None:
    snippet = gtag_snippet(MID, consent=True)
    assert isinstance(snippet, Markup)
    assert str(snippet) == expected()


def test_snippet_with_nonce_and_debug() -> None:
    snippet = gtag_snippet(MID, consent=True, nonce="r4nd0m+/Nonce==", debug=True)
    assert str(snippet) == expected(
        nonce="r4nd0m+/Nonce==", config=f'gtag(\'config\', "{MID}", {{"debug_mode": true}});'
    )
    assert snippet.count('nonce="r4nd0m+/Nonce=="') == 2


def test_no_consent_means_no_snippet() -> None:
    assert gtag_snippet(MID, consent=False) == Markup("")
    assert gtag_snippet(MID, consent=False, nonce="abc", debug=True) == Markup("")


@pytest.mark.parametrize(
    "measurement_id",
    [
        None,
        "",
        "UA-12345-1",
        "AW-123456789",
        "G-abc123",
        "G-ABC",
        "G-" + "A" * 21,
        "G-ABCD\n",
        " G-ABCD1234",
        'G-1"><script>alert(1)</script>',
        "G-1234</script><script>alert(1)//",
    ],
)
def test_invalid_or_malicious_ids_emit_nothing(measurement_id: str | None) -> None:
    assert gtag_snippet(measurement_id, consent=True) == Markup("")


def test_a_nonce_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        gtag_snippet(MID, consent=True, nonce='x" onload="alert(1)')
    assert caught.value.field == "nonce"


# -- through the Jinja helper in a request -----------------------------------------------------


@pytest.fixture
def cookie_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "v1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_v1", base64.b64encode(bytes(range(32))).decode())


def gtag_app(make_app: AppFactory, lookups: list[str], **config: Any) -> Flask:
    app = make_app(**config)

    def measurement_id_for_scope(scope_id: str) -> str | None:
        lookups.append(scope_id)
        return {"default": MID, "shop": 'G-1"><script>'}.get(scope_id)

    install_gtag_helper(app, measurement_id_for_scope)

    @app.get("/page")
    def page() -> str:
        scope = request.args.get("scope")
        return render_template_string(
            "<head>{{ umetrics_gtag(scope, nonce='n0nce') }}</head>", scope=scope
        )

    return app


def test_helper_renders_only_after_consent(make_app: AppFactory, cookie_keys: None) -> None:
    lookups: list[str] = []
    app = gtag_app(make_app, lookups)
    client = app.test_client()
    assert client.get("/page").text == "<head></head>"
    assert lookups == []  # no consent: the measurement id is not even looked up

    answer = client.post("/umetrics/api/consent", json={"consent": True})
    assert answer.json["consent"] is True and answer.json["cookie"] is True
    assert client.get("/page").text == f"<head>{expected(nonce='n0nce')}</head>"
    assert lookups == ["default"]
    # Another scope with a malicious stored id, and an unknown scope: nothing injected.
    assert client.get("/page?scope=shop").text == "<head></head>"
    assert client.get("/page?scope=blog").text == "<head></head>"
    assert lookups == ["default", "shop", "blog"]

    client.post("/umetrics/api/consent", json={"consent": False})
    assert client.get("/page").text == "<head></head>"
    assert lookups == ["default", "shop", "blog"]


def test_helper_respects_do_not_track_when_consent_is_implied(
    make_app: AppFactory, cookie_keys: None
) -> None:
    lookups: list[str] = []
    app = gtag_app(make_app, lookups, UMETRICS_CONSENT_REQUIRED=False)
    client = app.test_client()
    assert client.get("/page").text == f"<head>{expected(nonce='n0nce')}</head>"
    assert client.get("/page", headers={"DNT": "1"}).text == "<head></head>"
    assert client.get("/page", headers={"Sec-GPC": "1"}).text == "<head></head>"
    assert lookups == ["default"]


def test_helper_outside_a_request_renders_nothing(make_app: AppFactory) -> None:
    app = gtag_app(make_app, [])
    with app.app_context():
        assert render_template_string("{{ umetrics_gtag() }}") == ""

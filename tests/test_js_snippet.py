"""The ``umetrics_snippet()`` Jinja helper and the public ``umetrics.js``."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from flask import Flask, render_template_string

from flask_umetrics import UMetrics
from flask_umetrics.admin.snippet import umetrics_snippet
from flask_umetrics.errors import ConfigurationError, ValidationError

from .conftest import AppFactory

KEY = "umk_test_write_key"


def render(app: Flask, template: str, path: str = "/", **headers: str) -> str:
    with app.test_request_context(path, headers=headers):
        return render_template_string(template)


def config_of(html: str) -> dict[str, Any]:
    """The options object the snippet hands to the client."""
    match = re.search(r"u\.config=(\{.*?\})\}\(window\);</script>", html)
    assert match is not None, html
    return dict(json.loads(match.group(1)))


def test_snippet_writes_the_stub_the_options_and_the_script(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_BROWSER_WRITE_KEY=KEY, UMETRICS_DEFAULT_SCOPE="shop")
    html = render(app, "{{ umetrics_snippet(flush_interval=500, track_before_consent=True) }}")
    assert html.count("<script") == 2
    assert html.endswith('<script async src="/umetrics/static/umetrics.js"></script>')
    assert config_of(html) == {
        "api": "/umetrics",
        "writeKey": KEY,
        "scopeId": "shop",
        "sessionTimeout": 1800,
        "flushInterval": 500,
        "trackBeforeConsent": True,
        "consent": None,  # no consent cookie: undecided
    }


def test_options_are_escaped_for_a_script_element(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_BROWSER_WRITE_KEY=KEY)
    payload = "</script><script>alert('x')</script>&"
    with app.test_request_context("/"):
        html = str(umetrics_snippet(identify=payload, traits={"name": payload}))
    assert "</script><script>alert" not in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(\\u0027x\\u0027)" in html
    assert "\\u0026" in html and "&" not in html.replace("&&", "")
    config = config_of(html)
    assert config["identify"] == payload and config["traits"] == {"name": payload}


def test_explicit_arguments_win(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_BROWSER_WRITE_KEY=KEY)
    html = render(
        app,
        "{{ umetrics_snippet(write_key='other', scope_id='tenant-2', consent=false, "
        "nonce='abc123==') }}",
    )
    config = config_of(html)
    assert (config["writeKey"], config["scopeId"], config["consent"]) == (
        "other",
        "tenant-2",
        False,
    )
    assert html.count(' nonce="abc123=="') == 2


def test_consent_from_the_server_side(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.consent_loader(lambda: True)  # e.g. a logged-in user who accepted the terms
    app = make_app(extension, UMETRICS_BROWSER_WRITE_KEY=KEY)
    assert config_of(render(app, "{{ umetrics_snippet() }}"))["consent"] is True
    no_consent_needed = make_app(UMETRICS_BROWSER_WRITE_KEY=KEY, UMETRICS_CONSENT_REQUIRED=False)
    assert config_of(render(no_consent_needed, "{{ umetrics_snippet() }}"))["consent"] is True
    opted_out = render(no_consent_needed, "{{ umetrics_snippet() }}", DNT="1")
    assert config_of(opted_out)["consent"] is None


def test_bad_arguments_are_refused(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_BROWSER_WRITE_KEY=KEY)
    with pytest.raises(TypeError, match="unknown option 'flushInterval'"):
        render(app, "{{ umetrics_snippet(flushInterval=5) }}")
    with pytest.raises(ValidationError, match="nonce"):
        render(app, "{{ umetrics_snippet(nonce='\"><script>') }}")
    with pytest.raises(ValidationError, match="scope_id"):
        render(app, "{{ umetrics_snippet(scope_id='no spaces') }}")


def test_a_missing_key_names_the_setting(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()  # TESTING: a clear error
    with pytest.raises(ConfigurationError, match="UMETRICS_BROWSER_WRITE_KEY"):
        render(app, "{{ umetrics_snippet() }}")
    production = make_app(TESTING=False)
    with caplog.at_level(logging.WARNING):
        html = render(production, "<p>{{ umetrics_snippet() }}</p>")
    assert (
        html
        == "<p><!-- umetrics: browser client off, UMETRICS_BROWSER_WRITE_KEY is not set --></p>"
    )
    assert any("UMETRICS_BROWSER_WRITE_KEY" in r.getMessage() for r in caplog.records)


def test_the_script_is_public_javascript(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: False)
    app = make_app(extension, UMETRICS_URL_PREFIX="/stats")
    with app.test_client().get("/stats/static/umetrics.js") as response:
        assert response.status_code == 200
        assert response.mimetype in ("text/javascript", "application/javascript")
        source = response.get_data(as_text=True)
    assert source.startswith("/*!\n * umetrics.js") and "sendBeacon" in source
    with app.test_request_context("/"):
        html = str(umetrics_snippet(write_key=KEY))
    assert '<script async src="/stats/static/umetrics.js"></script>' in html
    assert config_of(html)["api"] == "/stats"


def test_the_example_app_loads_the_seeded_key_and_leaves_page_views_to_the_client(
    tmp_path: Any,
) -> None:
    from sqlalchemy import func, select

    from example_app import create_app, tracking
    from flask_umetrics.db.tables import events

    tracking.write_browser_key(str(tmp_path), "umk_seeded")
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_AUTO_MIGRATE": True}
    )
    assert app.config["UMETRICS_BROWSER_WRITE_KEY"] == "umk_seeded"
    client = app.test_client()
    html = client.get("/pricing").get_data(as_text=True)
    assert config_of(html)["writeKey"] == "umk_seeded"
    assert 'data-umetrics-event="pricing_cta_clicked"' in html
    assert client.get_cookie("acme_visitor") is None  # no server-side page view, no cookie
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events)).scalar_one() == 0

    explicit = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_BROWSER_WRITE_KEY": "mine"}
    )
    assert explicit.config["UMETRICS_BROWSER_WRITE_KEY"] == "mine"

"""Start-up that explains itself: ``flask umetrics doctor``, warnings logged once, readable
database errors, and the dashboard's page for a missing SECRET_KEY."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from flask import Flask, render_template_string

from flask_umetrics import ConfigurationError, UMetrics, create_api_key
from flask_umetrics.flags.cookie import generate_cookie_key

from .conftest import AppFactory, allow_all, postgres_url

COOKIE_ENV = {"UMETRICS_COOKIE_KEY_CURRENT": "t1", "UMETRICS_COOKIE_KEY_t1": generate_cookie_key()}


def _codes(output: str) -> list[str]:
    """The ``[code]`` of every finding line, in order."""
    return [
        line.split("[", 1)[1].split("]", 1)[0]
        for line in output.splitlines()
        if line.startswith(("PROBLEM ", "NOTE "))
    ]


@pytest.fixture
def no_cookie_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("UMETRICS_COOKIE_KEY_") or name.startswith("UMETRICS_ENCRYPTION_KEY_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("UMETRICS_GA4_OAUTH_CLIENT_SECRET", raising=False)


@pytest.fixture
def cookie_key(no_cookie_key: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in COOKIE_ENV.items():
        monkeypatch.setenv(name, value)


def test_doctor_lists_every_gap_of_a_bare_app_and_fails(
    make_app: AppFactory, no_cookie_key: None
) -> None:
    app = make_app()
    result = app.test_cli_runner().invoke(args=["umetrics", "doctor"])
    assert result.exit_code == 1, result.output
    assert _codes(result.output) == [
        "secret_key",
        "authorizer",
        "cookie_key",
        "no_exposures",
        "browser_write_key",
        "api_keys",
        "scheduler",
    ]
    assert "5 problem(s), 2 note(s)" in result.output
    # Every finding says how to fix it.
    assert result.output.count("fix: ") == 7
    assert "flask umetrics gen-cookie-key" in result.output
    assert "@umetrics.consent_loader" in result.output
    assert "flask umetrics scheduler" in result.output


def test_doctor_passes_once_everything_is_set(make_app: AppFactory, cookie_key: None) -> None:
    extension = UMetrics()
    allow_all(extension)
    extension.consent_loader(lambda: None)
    app = make_app(extension, SECRET_KEY="s3cret", UMETRICS_BROWSER_WRITE_KEY="um_x")
    runner = app.test_cli_runner()
    before = runner.invoke(args=["umetrics", "doctor"])
    assert before.exit_code == 1
    assert _codes(before.output) == ["api_keys", "scheduler"]
    with app.app_context():
        create_api_key("default", "metrics.view")
    assert runner.invoke(args=["umetrics", "scheduler", "--once"]).exit_code == 0
    after = runner.invoke(args=["umetrics", "doctor"])
    assert after.exit_code == 0, after.output
    assert after.output == "ok: no configuration gap found\n"


def test_doctor_consent_without_loader_is_a_note_when_cookies_can_consent(
    make_app: AppFactory, cookie_key: None
) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension, SECRET_KEY="s", UMETRICS_BROWSER_WRITE_KEY="um_x")
    result = app.test_cli_runner().invoke(args=["umetrics", "doctor"])
    assert _codes(result.output)[:1] == ["consent_loader"]
    assert "NOTE     [consent_loader]" in result.output
    # Consent not required: no consent finding at all.
    other = make_app(
        extension,
        SECRET_KEY="s",
        UMETRICS_BROWSER_WRITE_KEY="um_x",
        UMETRICS_CONSENT_REQUIRED=False,
    )
    assert "consent_loader" not in _codes(
        other.test_cli_runner().invoke(args=["umetrics", "doctor"]).output
    )


def test_doctor_names_a_half_configured_ga4(
    make_app: AppFactory, cookie_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    extension = UMetrics()
    allow_all(extension)
    extension.consent_loader(lambda: None)
    base = {"SECRET_KEY": "s", "UMETRICS_BROWSER_WRITE_KEY": "um_x"}
    app = make_app(extension, UMETRICS_GA4_OAUTH_CLIENT_ID="id.apps.example", **base)
    codes = _codes(app.test_cli_runner().invoke(args=["umetrics", "doctor"]).output)
    assert codes[:2] == ["ga4_client_secret", "encryption_key"]
    monkeypatch.setenv("UMETRICS_GA4_OAUTH_CLIENT_SECRET", "shh")
    monkeypatch.setenv("UMETRICS_ENCRYPTION_KEY_CURRENT", "k1")
    monkeypatch.setenv("UMETRICS_ENCRYPTION_KEY_k1", "A" * 43 + "=")
    output = app.test_cli_runner().invoke(args=["umetrics", "doctor"]).output
    assert not [code for code in _codes(output) if code.startswith(("ga4", "encryption"))]
    assert "shh" not in output
    secret_only = make_app(extension, **base)
    monkeypatch.delenv("UMETRICS_ENCRYPTION_KEY_CURRENT")
    codes = _codes(secret_only.test_cli_runner().invoke(args=["umetrics", "doctor"]).output)
    assert codes[:2] == ["ga4_client_id", "encryption_key"]


def test_doctor_reports_an_unreachable_database_in_one_line(
    tmp_path: Path, no_cookie_key: None
) -> None:
    app = Flask("unreachable", instance_path=str(tmp_path))
    app.config.update(UMETRICS_DATABASE_URL=f"sqlite:///{tmp_path}/missing/dir/um.db")
    UMetrics(app)
    result = app.test_cli_runner().invoke(args=["umetrics", "doctor"])
    assert result.exit_code == 1
    assert "[database] Cannot use the umetrics database at sqlite:///" in result.output
    assert "unable to open database file" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["db", "upgrade"], ["db", "current"], ["keys", "list"]])
def test_cli_commands_explain_a_missing_sqlite_directory(
    tmp_path: Path, command: list[str]
) -> None:
    app = Flask("unreachable", instance_path=str(tmp_path))
    app.config.update(UMETRICS_DATABASE_URL=f"sqlite:///{tmp_path}/missing/dir/um.db")
    UMetrics(app)
    result = app.test_cli_runner().invoke(args=["umetrics", *command])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: Cannot use the umetrics database at sqlite:///")
    assert "unable to open database file" in result.output
    assert "Traceback" not in result.output and "sqlalchemy" not in result.output


def test_cli_explains_a_postgres_database_that_does_not_exist(tmp_path: Path) -> None:
    url = postgres_url()
    if url is None:
        pytest.skip("UMETRICS_TEST_POSTGRES_URL is not set")
    from sqlalchemy.engine import make_url

    missing = make_url(url).set(database="umetrics_no_such_database", password="pw-secret")
    app = Flask("missing_db", instance_path=str(tmp_path))
    app.config.update(UMETRICS_DATABASE_URL=missing.render_as_string(hide_password=False))
    UMetrics(app)
    result = app.test_cli_runner().invoke(args=["umetrics", "db", "upgrade"])
    assert result.exit_code == 1
    assert 'database "umetrics_no_such_database" does not exist' in result.output
    assert "pw-secret" not in result.output and ":***@" in result.output
    assert "Traceback" not in result.output


# -- warnings ---------------------------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage())


def test_startup_gaps_are_logged_at_the_first_request_once_per_process(
    make_app: AppFactory, no_cookie_key: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_umetrics"):
        first = make_app()
        assert _warnings(caplog, "consent-cookie key") == 0  # nothing at init_app
        for _ in range(3):
            first.test_client().get("/nothing-here")
        second = make_app()
        second.test_client().get("/nothing-here")
    assert _warnings(caplog, "No consent-cookie key (UMETRICS_COOKIE_KEY_CURRENT)") == 1
    assert _warnings(caplog, "SECRET_KEY is not set") == 1
    assert _warnings(caplog, "nobody can give it") == 1
    assert _warnings(caplog, "flask umetrics doctor") == 3
    # The missing authorizer is logged by the refused request itself, not at start.
    assert _warnings(caplog, "authorizer") == 0


@pytest.mark.parametrize(
    "command",
    [["umetrics", "gen-cookie-key"], ["umetrics", "db", "current"], ["umetrics", "config"]],
)
def test_cli_commands_log_no_configuration_warning(
    make_app: AppFactory,
    no_cookie_key: None,
    caplog: pytest.LogCaptureFixture,
    command: list[str],
) -> None:
    with caplog.at_level(logging.DEBUG, logger="flask_umetrics"):
        app = make_app()
        result = app.test_cli_runner().invoke(args=command)
    assert result.exit_code == 0, result.output
    assert [r.getMessage() for r in caplog.records] == []
    assert "consent-cookie key" not in result.output


def test_snippet_without_key_warns_once_not_per_request(
    make_app: AppFactory, cookie_key: None, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(TESTING=False)
    with caplog.at_level(logging.WARNING, logger="flask_umetrics"):
        for _ in range(5):
            with app.test_request_context("/"):
                html = render_template_string("{{ umetrics_snippet() }}")
            assert "browser client off" in html
    assert _warnings(caplog, "umetrics_snippet(): no write key") == 1


# -- the dashboard without SECRET_KEY ---------------------------------------------------------


def test_dashboard_without_secret_key_says_so(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    page = app.test_client().get("/umetrics/admin/")
    assert page.status_code == 500
    text = page.get_data(as_text=True)
    assert "needs the app&#39;s SECRET_KEY" in text or "needs the app's SECRET_KEY" in text
    assert "secrets.token_urlsafe(32)" in text
    # A host that sets the key after init_app gets a working dashboard.
    app.config["SECRET_KEY"] = "set-after-init-app"
    assert app.test_client().get("/umetrics/admin/").status_code == 200


def test_seed_demo_logs_no_configuration_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo's seed creates the consent-cookie key: no warning that it is missing."""
    from example_app import create_app

    monkeypatch.delenv("UMETRICS_COOKIE_KEY_CURRENT", raising=False)
    monkeypatch.delenv("UMETRICS_COOKIE_KEY_demo", raising=False)
    with caplog.at_level(logging.WARNING):
        app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")})
        runner = app.test_cli_runner()
        assert runner.invoke(args=["umetrics", "db", "upgrade"]).exit_code == 0
        seeded = runner.invoke(args=["seed-demo", "--days", "3", "--users", "5"])
    assert seeded.exit_code == 0, seeded.output
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "consent-cookie key (" not in seeded.output


def test_auto_migrate_on_an_unreachable_database_is_a_configuration_error(tmp_path: Path) -> None:
    app = Flask("auto_migrate", instance_path=str(tmp_path))
    app.config.update(
        UMETRICS_DATABASE_URL=f"sqlite:///{tmp_path}/missing/um.db", UMETRICS_AUTO_MIGRATE=True
    )
    with pytest.raises(ConfigurationError) as caught:
        UMetrics(app)
    assert str(caught.value) == (
        f"UMETRICS_AUTO_MIGRATE: Cannot use the umetrics database at sqlite:///{tmp_path}/missing/"
        "um.db: unable to open database file."
    )


def test_doctor_names_unreadable_stored_ga4_secrets_once(
    make_app: AppFactory, cookie_key: None
) -> None:
    """A stored GA4 connection with no encryption key is "ga4_secrets"; when GA4 is also
    configured, the static "encryption_key" says it and "ga4_secrets" does not repeat it."""
    from flask_umetrics.db.tables import ga4_connections
    from flask_umetrics.db.types import utcnow
    from flask_umetrics.state import EXTENSION_KEY

    extension = UMetrics()
    allow_all(extension)
    extension.consent_loader(lambda: None)
    base = {"SECRET_KEY": "s", "UMETRICS_BROWSER_WRITE_KEY": "um_x"}
    app = make_app(extension, **base)
    row = {
        "scope_id": "default",
        "auth_kind": "oauth",
        "credentials_encrypted": "k1:opaque",
        "connected_by": "test",
        "connected_at": utcnow(),
        "updated_at": utcnow(),
    }
    with app.extensions[EXTENSION_KEY].engine.begin() as connection:
        connection.execute(ga4_connections.insert().values(**row))
    codes = _codes(app.test_cli_runner().invoke(args=["umetrics", "doctor"]).output)
    assert "ga4_secrets" in codes and "encryption_key" not in codes
    # (The same database, so the same stored connection.)
    configured = make_app(extension, UMETRICS_GA4_OAUTH_CLIENT_ID="id.apps.example", **base)
    codes = _codes(configured.test_cli_runner().invoke(args=["umetrics", "doctor"]).output)
    assert "encryption_key" in codes and "ga4_secrets" not in codes

"""Configuration: defaults, precedence (app.config > environment > INI > default), validation."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from flask import Flask

from flask_umetrics import ConfigurationError, UMetrics
from flask_umetrics.config import CONFIG_KEYS, resolve_config

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "config" / "umetrics.ini.sample"


def test_defaults() -> None:
    values = resolve_config({}, environ={})
    assert values["UMETRICS_URL_PREFIX"] == "/umetrics"
    assert values["UMETRICS_DEFAULT_SCOPE"] == "default"
    assert values["UMETRICS_SESSION_TIMEOUT"] == 1800
    assert values["UMETRICS_SNAPSHOT_SCOPES"] == []
    assert values["UMETRICS_SCHEDULER"] == "off"
    assert values["UMETRICS_DATABASE_URL"] is None
    assert set(values) == {key.name for key in CONFIG_KEYS}


def test_precedence(tmp_path: Path) -> None:
    ini = tmp_path / "umetrics.ini"
    ini.write_text(
        "[env]\ndefault_scope = from-ini\ntimezone = Asia/Tokyo\n"
        "session_timeout = 600\n[stats]\nsnapshot_scopes = a, b\n"
    )
    environ = {
        "UMETRICS_CONFIG_FILE": str(ini),
        "UMETRICS_DEFAULT_SCOPE": "from-env",
        "UMETRICS_TIMEZONE": "Europe/Paris",
    }
    values = resolve_config({"UMETRICS_DEFAULT_SCOPE": "from-app"}, environ=environ)
    assert values["UMETRICS_DEFAULT_SCOPE"] == "from-app"  # app.config beats everything
    assert values["UMETRICS_TIMEZONE"] == "Europe/Paris"  # environment beats INI
    assert values["UMETRICS_SESSION_TIMEOUT"] == 600  # INI beats the default
    assert values["UMETRICS_SNAPSHOT_SCOPES"] == ["a", "b"]
    assert values["UMETRICS_URL_PREFIX"] == "/umetrics"  # default


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"UMETRICS_SESSION_TIMEOUT": "soon"}, "UMETRICS_SESSION_TIMEOUT"),
        ({"UMETRICS_SESSION_TIMEOUT": 0}, "UMETRICS_SESSION_TIMEOUT"),
        ({"UMETRICS_TIMEZONE": "Mars/Olympus"}, "UMETRICS_TIMEZONE"),
        ({"UMETRICS_URL_PREFIX": "metrics"}, "UMETRICS_URL_PREFIX"),
        ({"UMETRICS_SCHEDULER": "sometimes"}, "UMETRICS_SCHEDULER"),
        ({"UMETRICS_AUTO_MIGRATE": "perhaps"}, "UMETRICS_AUTO_MIGRATE"),
        ({"UMETRICS_SNAPSHOT_SCHEDULE": "hourly-ish"}, "UMETRICS_SNAPSHOT_SCHEDULE"),
        ({"UMETRICS_SNAPSHOT_SCOPES": "ok, not ok"}, "UMETRICS_SNAPSHOT_SCOPES"),
        ({"UMETRICS_DEFAULT_SCOPE": ""}, "UMETRICS_DEFAULT_SCOPE"),
        ({"UMETRICS_RETENTION_STAT_READINGS_DAYS": -1}, "UMETRICS_RETENTION_STAT_READINGS_DAYS"),
    ],
)
def test_bad_values_stop_start_up_naming_the_key(config: dict, named: str) -> None:
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=named):
        UMetrics(app)
    assert "umetrics" not in app.extensions


def test_environment_values_are_validated_too() -> None:
    with pytest.raises(ConfigurationError, match=r"UMETRICS_MAX_BODY_BYTES \(from environment\)"):
        resolve_config({}, environ={"UMETRICS_MAX_BODY_BYTES": "12"})


def test_ini_problems_are_named(tmp_path: Path) -> None:
    ini = tmp_path / "bad.ini"
    ini.write_text("[stats]\nsnapshot_schedul = 0 * * * *\n")
    with pytest.raises(ConfigurationError, match="unknown key 'snapshot_schedul' in \\[stats\\]"):
        resolve_config({"UMETRICS_CONFIG_FILE": str(ini)}, environ={})
    ini.write_text("[metrics]\nx = 1\n")
    with pytest.raises(ConfigurationError, match=r"unknown section \[metrics\]"):
        resolve_config({"UMETRICS_CONFIG_FILE": str(ini)}, environ={})
    ini.write_text("[retention]\nbatch_size = many\n")
    with pytest.raises(ConfigurationError, match=r"UMETRICS_PRUNE_BATCH_SIZE \(from \[retention\]"):
        resolve_config({"UMETRICS_CONFIG_FILE": str(ini)}, environ={})
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_config({"UMETRICS_CONFIG_FILE": str(tmp_path / "missing.ini")}, environ={})


def test_resolved_values_are_visible_in_app_config(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["UMETRICS_SESSION_TIMEOUT"] = "900"
    UMetrics(app)
    assert app.config["UMETRICS_URL_PREFIX"] == "/umetrics"  # setdefault wrote the default
    assert app.config["UMETRICS_SESSION_TIMEOUT"] == "900"  # the host's own value is untouched
    assert app.extensions["umetrics"].settings["UMETRICS_SESSION_TIMEOUT"] == 900


def test_sample_ini_has_every_key_with_its_default() -> None:
    text = SAMPLE.read_text()
    parser = configparser.ConfigParser(interpolation=None)
    # Every key is present, commented out, in its section: uncomment them all and parse.
    parser.read_string(re.sub(r"^;\s?(\w+ =)", r"\1", text, flags=re.MULTILINE))
    for key in CONFIG_KEYS:
        assert parser.has_option(key.section, key.option), key.name
    assert sorted(parser.sections()) == [
        "ab_cookie",
        "clickhouse",
        "env",
        "ga4",
        "retention",
        "stats",
    ]
    values = resolve_config({}, environ={})
    defaults = resolve_config({}, environ={})
    for key in CONFIG_KEYS:
        raw = parser.get(key.section, key.option)
        if raw != "":
            assert key.parse(raw) == defaults[key.name], key.name
    assert values == defaults


def test_readme_documents_every_key() -> None:
    readme = (ROOT / "README.md").read_text()
    for key in CONFIG_KEYS:
        assert f"`{key.name}`" in readme, key.name

"""``flask umetrics gen-cookie-key`` and ``flask umetrics experiments ...``."""

from __future__ import annotations

import json

from flask import Flask

from flask_umetrics import get_experiment, resolve_variant
from flask_umetrics.flags.cookie import CookieKeyring


def test_gen_cookie_key_prints_a_usable_key(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["umetrics", "gen-cookie-key", "--key-id", "v7"])
    assert result.exit_code == 0, result.output
    environ = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    assert set(environ) == {"UMETRICS_COOKIE_KEY_CURRENT", "UMETRICS_COOKIE_KEY_v7"}
    keyring = CookieKeyring.from_environ(environ)
    assert keyring.can_write and keyring.current_id == "v7"


def test_experiment_lifecycle_from_the_cli(app: Flask) -> None:
    runner = app.test_cli_runner()
    definition = json.dumps(
        {"key": "nav", "variants": [{"key": "old"}, {"key": "new"}], "goal": {"event": "signup"}}
    )
    created = runner.invoke(args=["umetrics", "experiments", "create", "-"], input=definition)
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["status"] == "draft"
    again = runner.invoke(args=["umetrics", "experiments", "create", "-"], input=definition)
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(args=["umetrics", "experiments", "create", "-"], input="{nope")
    assert bad.exit_code == 1 and "not valid JSON" in bad.output
    assert runner.invoke(args=["umetrics", "experiments", "start", "nav"]).exit_code == 0
    listed = runner.invoke(args=["umetrics", "experiments", "list"])
    assert listed.output.split("\t")[:3] == ["nav", "experiment", "running"]
    with app.app_context():
        for i in range(6):
            resolve_variant("nav", subject_id=f"u{i}", consent=True)
    results = runner.invoke(args=["umetrics", "experiments", "results", "nav"])
    assert results.exit_code == 0, results.output
    lines = results.output.splitlines()
    assert lines[0] == "nav: goal signup, status running"
    exposed = sum(int(line.split()[1]) for line in lines[2:4])
    assert exposed == 6
    assert lines[-1].startswith("SRM p-value")
    stopped = runner.invoke(args=["umetrics", "experiments", "stop", "nav", "--ship", "new"])
    assert stopped.exit_code == 0 and '"stopped"' in stopped.output
    with app.app_context():
        experiment = get_experiment("nav")
        assert experiment is not None and experiment.shipped_variant == "new"
    missing = runner.invoke(args=["umetrics", "experiments", "start", "ghost"])
    assert missing.exit_code == 1 and "ghost" in missing.output

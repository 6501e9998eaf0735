"""``flask umetrics gen-cookie-key`` and ``flask umetrics experiments ...``."""

from __future__ import annotations

import json

from flask import Flask

from flask_umetrics import experiment_results, get_experiment, resolve_variant
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
    with app.app_context():
        experiment = get_experiment("nav")
        assert experiment is not None
        two_sided = experiment_results(experiment)
        one_sided = experiment_results(experiment, one_sided=True)
    # The verdict as the API words it (its head: the traffic estimate moves with the clock).
    assert lines[4].split(";")[0] == two_sided["verdicts"][0]["text"].split(";")[0]
    assert lines[-1].startswith("SRM p-value")
    answer = runner.invoke(args=["umetrics", "experiments", "results", "nav", "--one-sided"])
    assert answer.exit_code == 0, answer.output
    verdict = answer.output.splitlines()[4]
    assert verdict.split(";")[0] == one_sided["verdicts"][0]["text"].split(";")[0]
    stopped = runner.invoke(args=["umetrics", "experiments", "stop", "nav", "--ship", "new"])
    assert stopped.exit_code == 0 and '"stopped"' in stopped.output
    with app.app_context():
        experiment = get_experiment("nav")
        assert experiment is not None and experiment.shipped_variant == "new"
    missing = runner.invoke(args=["umetrics", "experiments", "start", "ghost"])
    assert missing.exit_code == 1 and "ghost" in missing.output


def test_feature_rules_and_toggle_from_the_cli(app: Flask) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["umetrics", "experiments", "create", "-"], input='{"key": "nav", "kind": "flag"}'
    )
    assert created.exit_code == 0, created.output
    assert runner.invoke(args=["umetrics", "experiments", "start", "nav"]).exit_code == 0
    changes = json.dumps(
        {
            "rules": [{"type": "force", "variant": "on"}],
            "overrides": [{"subject_ids": ["qa"], "variant": "off"}],
        }
    )
    updated = runner.invoke(args=["umetrics", "experiments", "update", "nav", "-"], input=changes)
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.output)["rules"][0]["type"] == "force"
    with app.app_context():
        assert resolve_variant("nav", subject_id="anyone", consent=False).variant == "on"
        assert resolve_variant("nav", subject_id="qa", consent=False).variant == "off"
    off = runner.invoke(args=["umetrics", "experiments", "toggle", "nav", "off"])
    assert (off.exit_code, off.output.strip()) == (0, "false")
    with app.app_context():
        assert resolve_variant("nav", subject_id="anyone", consent=False).reason == "killed"
    on = runner.invoke(args=["umetrics", "experiments", "toggle", "nav", "on"])
    assert (on.exit_code, on.output.strip()) == (0, "true")
    bad = runner.invoke(
        args=["umetrics", "experiments", "update", "nav", "-"],
        input='{"rules": [{"type": "force", "variant": "maybe"}]}',
    )
    assert bad.exit_code == 1 and "rules.0.variant" in bad.output
    invalid = runner.invoke(
        args=["umetrics", "experiments", "update", "nav", "-"], input='{"rules": [{"type": 1}]}'
    )
    assert invalid.exit_code == 1 and "invalid: rules.0" in invalid.output

"""The example app with demo data, as tests of the demo and the browser tests start it."""

from __future__ import annotations

from pathlib import Path

from flask import Flask


def seeded_demo(instance: Path, *, days: int, users: int) -> Flask:
    """The example app on ``instance``, migrated and seeded by its own CLI (``seed-demo``)."""
    from example_app import create_app

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance)})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["umetrics", "db", "upgrade"]).exit_code == 0
    seeded = runner.invoke(args=["seed-demo", "--days", str(days), "--users", str(users)])
    assert seeded.exit_code == 0, seeded.output
    return app

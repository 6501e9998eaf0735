"""The example app with demo data, as tests of the demo and the browser tests start it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask


def seeded_demo(instance: Path, *, days: int, users: int, **config: Any) -> Flask:
    """The example app on ``instance`` (``config`` added to its settings), migrated and seeded
    by its own CLI (``db upgrade`` then ``seed-demo``)."""
    from example_app import create_app

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance), **config})
    runner = app.test_cli_runner()
    upgraded = runner.invoke(args=["umetrics", "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    seeded = runner.invoke(args=["seed-demo", "--days", str(days), "--users", str(users)])
    assert seeded.exit_code == 0, seeded.output
    return app

"""``flask umetrics ga4 ...`` commands."""

from __future__ import annotations

import json

from flask import Flask

from flask_umetrics.crypto import KeyRing


def test_gen_encryption_key_status_and_sync_without_a_link(app: Flask) -> None:
    runner = app.test_cli_runner()
    generated = runner.invoke(args=["umetrics", "ga4", "gen-encryption-key", "--key-id", "k9"])
    assert generated.exit_code == 0, generated.output
    environ = dict(line.split("=", 1) for line in generated.stdout.strip().splitlines())
    assert set(environ) == {"UMETRICS_ENCRYPTION_KEY_CURRENT", "UMETRICS_ENCRYPTION_KEY_k9"}
    keyring = KeyRing.from_environ(environ)
    assert keyring.can_write and keyring.current_id == "k9"
    status = runner.invoke(args=["umetrics", "ga4", "status"])
    assert status.exit_code == 0, status.output
    answer = json.loads(status.output)
    assert (answer["available"], answer["connected"], answer["connection"]) == (True, False, None)
    synced = runner.invoke(args=["umetrics", "ga4", "sync"])
    assert synced.exit_code == 0 and synced.output.strip() == "no scope has a linked GA4 property"
    one = runner.invoke(args=["umetrics", "ga4", "sync", "--scope", "default"])
    assert one.exit_code == 1 and "connect" in one.output.lower()

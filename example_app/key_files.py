"""Public keys that ``seed-demo`` saves into ``instance/`` and ``create_app`` loads back.

Each file holds one ``SETTING=value`` line (and comments). A setting the app config or the
environment already has wins: production sets its keys from its secret store.
"""

from __future__ import annotations

import os

from flask import Flask


def write_key_file(instance_path: str, filename: str, setting: str, key: str, about: str) -> str:
    """Save ``setting=key`` with the comment ``about`` where :func:`load_key_file` finds it."""
    os.makedirs(instance_path, exist_ok=True)
    path = os.path.join(instance_path, filename)
    comments = "".join(f"# {line}\n" for line in about.splitlines())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(f"{comments}{setting}={key}\n")
    return path


def load_key_file(app: Flask, filename: str, setting: str) -> bool:
    """Put the saved key into ``app.config`` unless the config or the environment has one; True
    when it did. Call before ``umetrics.init_app`` reads the settings."""
    path = os.path.join(app.instance_path, filename)
    if app.config.get(setting) or os.environ.get(setting):
        return False
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, sep, value = line.strip().partition("=")
            if sep and name == setting and value:
                app.config[setting] = value
                return True
    return False

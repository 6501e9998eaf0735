"""The app's ``SECRET_KEY``: from the environment, else generated once into ``instance/``.

Flask signs the session cookie with it, and the session says who is logged in, so a key anyone
can read (a constant in the source) lets anyone forge an admin session. Production sets
``EXAMPLE_SECRET_KEY`` from its secret store; without it, the first start writes a random key to
``instance/secret-key.txt`` (mode 0600) and every later start, and every other process of the
same checkout, reuses it, so sessions survive restarts.
"""

from __future__ import annotations

import contextlib
import os
import secrets

ENV_NAME = "EXAMPLE_SECRET_KEY"
KEY_FILE = "secret-key.txt"
_KEY_BYTES = 32


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        key = handle.read().strip()
    if len(key) < _KEY_BYTES:
        raise RuntimeError(f"{path} holds no usable secret key: delete it to generate a new one")
    return key


def instance_secret_key(instance_path: str) -> str:
    """The key stored in ``instance_path``, created there (0600) on first use.

    The file appears with its content in one step (written to a private temporary file, then
    hard-linked into place, which fails if another process won the race), so no process ever
    reads a half-written key.
    """
    path = os.path.join(instance_path, KEY_FILE)
    if os.path.exists(path):
        return _read(path)
    os.makedirs(instance_path, mode=0o700, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(_KEY_BYTES) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read(path)


def secret_key(instance_path: str, environ: dict[str, str] | None = None) -> str:
    """``EXAMPLE_SECRET_KEY`` when set, else the instance folder's generated key."""
    configured = (os.environ if environ is None else environ).get(ENV_NAME, "")
    return configured or instance_secret_key(instance_path)

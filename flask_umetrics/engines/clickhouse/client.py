"""The ClickHouse connection: parsing ``UMETRICS_CLICKHOUSE_URL``, one client per process, the
fork guard of the embedded engine.

``clickhouse_connect`` (and, for ``chdb://``, ``chdb``) is imported only here and only when a
client is first needed, so an app on the SQL store never loads either. The password lives in one
private attribute: ``repr``, ``str``, log lines and error messages show the URL without it.

chdb runs ClickHouse inside this process, one process per data directory, and a process forked
after chdb was loaded hangs on its first chdb call. So the process that loads chdb registers an
``os.register_at_fork`` hook: in a forked child every use raises a ``ConfigurationError`` that
names the cause (``gunicorn --preload``, a multiprocessing fork) instead of hanging.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ...errors import ConfigurationError

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

_SCHEMES = {"clickhouse": "http", "http": "http", "https": "https", "chdb": "chdb"}
_DEFAULT_PORTS = {"http": 8123, "https": 8443}


@dataclass(frozen=True)
class ClickHouseURL:
    """A parsed ``UMETRICS_CLICKHOUSE_URL``; its ``repr`` never shows the password."""

    interface: str  # "http", "https" or "chdb"
    host: str | None
    port: int | None
    username: str | None
    database: str
    path: str | None  # the data directory of chdb
    _password: str | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        return self.interface == "chdb"

    def redacted(self) -> str:
        """The URL as it may be logged: the password replaced by ``***``."""
        if self.embedded:
            return f"chdb://{self.path}"
        scheme = "https" if self.interface == "https" else "clickhouse"
        user = ""
        if self.username is not None:
            user = self.username + (":***" if self._password else "") + "@"
        return f"{scheme}://{user}{self.host}:{self.port}/{self.database}"

    def __str__(self) -> str:
        return self.redacted()

    def client_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``clickhouse_connect.get_client`` (holding the password)."""
        if self.embedded:
            return {"interface": "chdb", "path": self.path, "database": self.database}
        return {
            "interface": self.interface,
            "host": self.host,
            "port": self.port,
            "username": self.username or "default",
            "password": self._password or "",
            "database": self.database,
            # No HTTP session: a session serialises queries, and the client is shared by threads.
            "autogenerate_session_id": False,
        }


def parse_clickhouse_url(url: str) -> ClickHouseURL:
    """Parse and check the URL; a ``ConfigurationError`` (without the password) if invalid."""
    key = "UMETRICS_CLICKHOUSE_URL"
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{key} is invalid: not a URL (a bad port?)") from None
    interface = _SCHEMES.get(scheme)
    if interface is None:
        raise ConfigurationError(
            f"{key} is invalid: the scheme must be clickhouse://, https:// (http://) or "
            f"chdb:///path; got {scheme + '://' if scheme else 'none'}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{key} is invalid: no query string or fragment is supported")
    if interface == "chdb":
        if parts.netloc or not parts.path.startswith("/") or parts.path.rstrip("/") == "":
            raise ConfigurationError(
                f"{key} is invalid: the embedded engine needs an absolute data directory, "
                "chdb:///path/to/dir"
            )
        return ClickHouseURL("chdb", None, None, None, "default", unquote(parts.path))
    if not parts.hostname:
        raise ConfigurationError(f"{key} is invalid: no host")
    database = unquote(parts.path.strip("/")) or "default"
    if "/" in database:
        raise ConfigurationError(f"{key} is invalid: the path must be one database name")
    return ClickHouseURL(
        interface,
        parts.hostname,
        port or _DEFAULT_PORTS[interface],
        unquote(parts.username) if parts.username is not None else None,
        database,
        None,
        unquote(parts.password) if parts.password is not None else None,
    )


# -- one client per process -------------------------------------------------------------------

_lock = threading.Lock()
_clients: dict[ClickHouseURL, Client] = {}
#: The pid that loaded chdb; a process with another pid was forked from it.
_chdb_loaded_in: int | None = None
_forked_after_chdb = False


#: Clients a forked child inherited: kept referenced, never closed or collected there, because
#: finalising a chdb handle in the child is itself a chdb call (and hangs).
_inherited: list[Client] = []


def _note_fork() -> None:
    global _forked_after_chdb
    _forked_after_chdb = True
    _inherited.extend(_clients.values())  # HTTP pools and chdb handles belong to the parent
    _clients.clear()


def _check_not_forked(url: ClickHouseURL) -> None:
    if url.embedded and _forked_after_chdb:
        raise ConfigurationError(
            f"UMETRICS_CLICKHOUSE_URL={url.redacted()}: the embedded ClickHouse engine (chdb) was "
            f"loaded in process {_chdb_loaded_in} before this process {os.getpid()} was forked "
            "from it (gunicorn --preload, a multiprocessing fork); chdb hangs after a fork. "
            "Serve chdb from one process without --preload (gunicorn -w 1 --threads N), or use "
            "a ClickHouse server."
        )


def get_client(url: ClickHouseURL) -> Client:
    """The client of ``url`` for this process, created on first use (imports the driver)."""
    _check_not_forked(url)
    client = _clients.get(url)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = _connect(url)
    return client


def _connect(url: ClickHouseURL) -> Client:
    global _chdb_loaded_in
    try:
        import clickhouse_connect
    except ImportError as exc:
        raise ConfigurationError(
            "UMETRICS_EVENT_STORE=clickhouse needs clickhouse-connect: "
            "pip install 'flask-umetrics[clickhouse]'"
        ) from exc
    if url.embedded:
        try:
            import chdb  # noqa: F401 - loaded here so the fork hook is registered with it
        except ImportError as exc:
            raise ConfigurationError(
                "UMETRICS_CLICKHOUSE_URL=chdb://... needs chdb: "
                "pip install 'flask-umetrics[clickhouse]'"
            ) from exc
        if _chdb_loaded_in is None:
            _chdb_loaded_in = os.getpid()
            os.register_at_fork(after_in_child=_note_fork)
    try:
        return clickhouse_connect.get_client(**url.client_arguments())
    except Exception as exc:  # noqa: BLE001 - re-raised without the password
        # The driver's message may quote connection details; ours names the redacted URL.
        reason = _scrub(str(exc), url)
        raise ConfigurationError(
            f"cannot connect to ClickHouse at {url.redacted()}: {type(exc).__name__}: {reason}"
            + (
                " (chdb allows one process per data directory: is another process using it?)"
                if url.embedded
                else ""
            )
        ) from None


def _scrub(message: str, url: ClickHouseURL) -> str:
    password = url._password
    return message.replace(password, "***") if password else message


def close_clients() -> None:
    """Close every client of this process (tests; a clean shutdown)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _column_types.clear()


#: The column types of the tables this process inserts into, by (client, table, columns).
_column_types: dict[tuple[int, str, tuple[str, ...]], Sequence[Any]] = {}


def insert(
    client: Client,
    table: str,
    data: Sequence[Sequence[Any]],
    column_names: Sequence[str],
    settings: dict[str, Any],
) -> Any:
    """``client.insert`` with the column types looked up once per process: without them,
    clickhouse-connect asks ``DESCRIBE TABLE`` before every insert, a second round trip (and,
    on chdb, a second turn of the engine's one lock). A failed insert forgets the types, so a
    table changed by a migration is described again."""
    key = (id(client), table, tuple(column_names))
    types = _column_types.get(key)
    if types is None:
        types = client.create_insert_context(table, column_names=list(column_names)).column_types
        _column_types[key] = types
    try:
        return client.insert(
            table, data, column_names=list(column_names), column_types=types, settings=settings
        )
    except Exception:
        _column_types.pop(key, None)
        raise

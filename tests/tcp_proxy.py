"""A loopback TCP proxy the fault tests put between the app and PostgreSQL.

Stopping the machine's PostgreSQL would break every other user of it, so an outage is simulated
here instead: ``cut()`` closes every proxied connection (what clients see when the server goes
down) and then refuses new ones (accepted and closed at once, like a stopped server) or, with
``blackhole=True``, holds them open without an answer (like a network partition).
``restore()`` forwards again, as after a restart.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

_CHUNK = 65536


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; one pair of threads per connection."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._cut = False
        self._blackhole = False
        self._closed = False
        self.connections = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @classmethod
    def for_url(cls, database_url: str) -> TcpProxy:
        """A proxy to the host and port of ``database_url``."""
        from sqlalchemy.engine import make_url

        parsed = make_url(database_url)
        return cls((parsed.host or "127.0.0.1", parsed.port or 5432))

    def url(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by the proxy's."""
        from sqlalchemy.engine import make_url

        parsed = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def cut(self, *, blackhole: bool = False) -> None:
        """Drop every connection now; refuse (or hold, with ``blackhole``) new ones."""
        with self._lock:
            self._cut = True
            self._blackhole = blackhole
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        """Forward new connections again (connections a blackhole held are dropped)."""
        with self._lock:
            held: set[socket.socket] = set()
            if self._blackhole:
                held, self._sockets = self._sockets, set()
            self._cut = self._blackhole = False
        for sock in held:
            _close(sock)

    def close(self) -> None:
        self.cut()
        self._closed = True
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut, blackhole = self._cut, self._blackhole
                if cut and blackhole:
                    self._sockets.add(client)
                    continue
            if cut:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._cut:  # cut while connecting
                    _close(client)
                    _close(upstream)
                    continue
                self._sockets.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def running_proxy(target: tuple[str, int] = ("127.0.0.1", 5432)) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target)
    try:
        yield proxy
    finally:
        proxy.close()

"""open-metrics' real clients, byte for byte, against the example app at ``/v1``.

The requests below are the bytes the two published clients put on the wire, written out by hand
from their source (read, not copied, and not in this repository: neither client is published on
a registry):

- **browser client**, ``gsabran/open-metrics-client-javascript``, ``src/client.js``
  (``client.js`` is a symlink to it). Every call goes through ``_get(route, payload)``: it sets
  ``payload.sessionId`` to the ``_metricId`` cookie (a 10-character ``[A-Za-z0-9]`` id made by
  ``_setNewSessionId``) *after* the call's own keys, and opens
  ``openMetricUrl + route + '?q=' + JSON.stringify(payload)`` with ``XMLHttpRequest`` ``GET``,
  ``send(null)``: no body, no ``Content-Type``, no header of its own. The JSON is not
  URL-encoded by the client; the browser's URL parser percent-encodes only the query set
  (space ``"`` ``#`` ``<`` ``>`` ``'``, controls, non-ASCII as UTF-8), so ``{ } : , [ ] & + %``
  stay raw. The calls: ``logEvent(name, props)`` queues ``{name, props, ts: Date.now()}``
  (``props`` left out by ``JSON.stringify`` when undefined) and ``_pingFlush`` sends the queue
  as ``/v1/events`` ``{events}``; ``setUserId(id)`` sends ``/v1/setUserId`` ``{uid}``;
  ``setUserProperties(p)`` ``/v1/setUserProps`` ``{props}``; ``setSessionProperties(p)``
  ``/v1/setSessionProps`` ``{props}``.
- **node client**, ``gsabran/open-metrics-client-npm``, ``open-metrics.js``. ``_get(route,
  payload, sessionId)`` sets ``payload.sessionId`` last and calls ``http.get({host, port, path:
  route + '?q=' + JSON.stringify(payload)})`` with only the host name and port of the server URL
  (its path is dropped: hence ``/v1`` at the root). Node sends that path as it is (no
  encoding; ``"`` raw), ``Host: <host>:<port>`` for a port other than 80, and
  ``Connection: close`` (its default agent). ``logEvent(identification, name, props, options)``
  queues ``{name, props, ts, options}`` per session (undefined keys dropped) and flushes
  ``/v1/events`` ``{events}``; a ``{userId}`` identification first sends ``setUserId(
  sessionId, userId, options)``: ``/v1/setUserId`` ``{uid, options}`` for a new random session
  id; ``setUserProperties`` sends ``/v1/setUserProps`` ``{props, options}``. It has no
  ``setSessionProps``.

The example app serves the routes at ``/v1`` and names its open-metrics key in
``UMETRICS_OPENMETRICS_KEY`` (``example_app/openmetrics.py``): unmodified clients can send no
key, so their keyless calls act with it. The bytes go through a socket to werkzeug's HTTP
server running the app, so the request line and headers are parsed as in production.

Two calls are refused by design, not lost by accident: ``setUserProps`` for a session that
already belongs to an identified user (each client's README does it after ``setUserId``). The
open-metrics key is public, and a public key cannot change an identified person's properties
(docs/identity.md); it answers 403 ``identify_permission_required`` and stores nothing. Setting
the properties before ``setUserId`` (shown below) or from server-side code works.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from example_app import create_app, openmetrics
from flask_umetrics import create_api_key
from flask_umetrics.db.tables import events
from flask_umetrics.state import current_state

from .test_compat_openmetrics import groups as people

SCOPE = "acme"
#: The browser client's ``_metricId`` cookie and the node client's random session id: 10
#: characters of ``[A-Za-z0-9]``, as their ``_setNewSessionId`` / ``makeRandomId`` make them.
BROWSER_SESSION = "k3Jd9QpL0z"
NODE_SESSION = "Q7x2mB9kLp"
#: Chromium's headers on a same-origin ``XMLHttpRequest`` GET (no Origin: same-origin GETs
#: carry none); the page's cookies are left out, the app's authorizer is not asked anyway.
CHROMIUM = (
    "Connection: keep-alive\r\n"
    'sec-ch-ua: "Chromium";v="130", "Not?A_Brand";v="99"\r\n'
    "sec-ch-ua-mobile: ?0\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36\r\n"
    'sec-ch-ua-platform: "Linux"\r\n'
    "Accept: */*\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: cors\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Referer: http://{host}/pricing\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
)


def browser_request(host: str, query: str) -> bytes:
    """``xhr.open("GET", openMetricUrl + route + '?q=' + JSON)``; ``query`` is the path and
    query as Chromium's URL parser leaves them (``"`` and spaces percent-encoded)."""
    head = f"GET {query} HTTP/1.1\r\nHost: {host}\r\n" + CHROMIUM.format(host=host)
    return (head + "\r\n").encode("ascii")


def node_request(host: str, path: str) -> bytes:
    """``http.get({host, port, path})``: the path raw, as Node writes it (latin-1)."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1")


def exchange(port: int, raw: bytes) -> tuple[int, bytes]:
    """Send ``raw`` and read the whole answer (the test server closes after each one)."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(raw)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
def example(tmp_path: Path) -> Flask:
    """The example app after ``seed-demo``'s key step: its open-metrics key saved in instance/
    and loaded by ``create_app`` (a new app, as after a restart)."""
    config = {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_AUTO_MIGRATE": True}
    first = create_app(config)
    with first.app_context():
        key = create_api_key(SCOPE, "openmetrics", name="open-metrics")
    openmetrics.write_key(str(tmp_path), key)
    app = create_app(config)
    assert app.config["UMETRICS_OPENMETRICS_KEY"] == key
    assert app.config["UMETRICS_OPENMETRICS_PATH"] == "/v1"
    return app


@pytest.fixture
def served(example: Flask) -> Iterator[int]:
    """werkzeug's HTTP server running the example app on a loopback port."""
    server = make_server("127.0.0.1", 0, example)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join()
    server.server_close()


def stored(app: Flask) -> list[tuple[str, str, int, bool, Any]]:
    with app.app_context(), current_state().engine.connect() as connection:
        rows = connection.execute(
            select(
                events.c.event,
                events.c.distinct_id,
                events.c.ts,
                events.c.active,
                events.c.properties,
                events.c.scope_id,
            ).order_by(events.c.id)
        ).all()
    assert {row.scope_id for row in rows} <= {SCOPE}
    return [(r.event, r.distinct_id, r.ts // 1000, r.active, r.properties) for r in rows]


def test_both_clients_replayed_byte_for_byte_are_stored(example: Flask, served: int) -> None:
    host = f"127.0.0.1:{served}"
    now = int(time.time() * 1000)  # Date.now() when the clients queued their events
    t1, t2, t3 = now - 3000, now - 2000, now - 1000
    sid = BROWSER_SESSION
    # --- browser client (src/client.js) ----------------------------------------------------
    # _pingFlush -> _get('/v1/events', {events: _eq}): logEvent('pageview', {...}) and
    # logEvent('signup_clicked') (no props: JSON.stringify drops the key). Raw '&', '+', '%'
    # inside the JSON; '"' and ' ' percent-encoded by the URL parser, 'ü' as UTF-8.
    browser_events = (
        "/v1/events?q={%22events%22:[{%22name%22:%22pageview%22,%22props%22:{%22path%22:"
        "%22/pricing%22,%22q%22:%22a&b=c+d%2050%%22,%22city%22:%22Z%C3%BCrich%22},%22ts%22:"
        f"{t1}}},{{%22name%22:%22signup_clicked%22,%22ts%22:{t2}}}],%22sessionId%22:%22{sid}%22}}"
    )
    # setSessionProperties({browser: 'Chrome', isMobile: false})
    browser_session_props = (
        "/v1/setSessionProps?q={%22props%22:{%22browser%22:%22Chrome%22,%22isMobile%22:false},"
        f"%22sessionId%22:%22{sid}%22}}"
    )
    # setUserProperties({'first-name': 'Barack', 'last-name': 'Obama'}), before setUserId
    browser_user_props = (
        "/v1/setUserProps?q={%22props%22:{%22first-name%22:%22Barack%22,%22last-name%22:"
        f"%22Obama%22}},%22sessionId%22:%22{sid}%22}}"
    )
    # setUserId('myUserId')
    browser_user_id = f"/v1/setUserId?q={{%22uid%22:%22myUserId%22,%22sessionId%22:%22{sid}%22}}"
    for query in (browser_events, browser_session_props, browser_user_props, browser_user_id):
        assert exchange(served, browser_request(host, query)) == (200, b"ok"), query

    # --- node client (open-metrics.js), its README's calls -----------------------------------
    nid = NODE_SESSION
    node_paths = [
        # logEvent({userId: 'foo'}, 'hasLoggedIn'): a new session id, so setUserId first...
        f'/v1/setUserId?q={{"uid":"foo","sessionId":"{nid}"}}',
        # ...then the flush (no props, no options: dropped by JSON.stringify)
        f'/v1/events?q={{"events":[{{"name":"hasLoggedIn","ts":{t1}}}],"sessionId":"{nid}"}}',
        # logEvent(..., 'hasCreatedAMessage', {numberOfReceivers: 3, isMessageEncrypted: true})
        # and logEvent(..., 'notificationEmailSent', {}, {active: false}), flushed together
        '/v1/events?q={"events":[{"name":"hasCreatedAMessage","props":{"numberOfReceivers":3,'
        f'"isMessageEncrypted":true}},"ts":{t2}}},{{"name":"notificationEmailSent","props":{{}},'
        f'"ts":{t3},"options":{{"active":false}}}}],"sessionId":"{nid}"}}',
        # logEvent({sessionId: 'guig'}, 'hasLoggedIn'), an anonymous session
        f'/v1/events?q={{"events":[{{"name":"hasLoggedIn","ts":{t3}}}],"sessionId":"guig"}}',
        # setUserProperties({sessionId: 'guig'}, {isSuperCool: true}), before it is identified
        '/v1/setUserProps?q={"props":{"isSuperCool":true},"sessionId":"guig"}',
        # setUserId('guig', 'bar'): the session and its properties merge into the new user
        '/v1/setUserId?q={"uid":"bar","sessionId":"guig"}',
    ]
    for path in node_paths:
        assert exchange(served, node_request(host, path)) == (200, b"ok"), path

    # Every event in the store, as sent (scope acme: the key's), in the order sent.
    rows = stored(example)
    assert [(e, d, ts, a) for e, d, ts, a, _ in rows] == [
        ("pageview", sid, t1, True),
        ("signup_clicked", sid, t2, True),
        ("$session_props", sid, rows[2][2], False),
        ("hasLoggedIn", nid, t1, True),
        ("hasCreatedAMessage", nid, t2, True),
        ("notificationEmailSent", nid, t3, False),
        ("hasLoggedIn", "guig", t3, True),
    ]
    # Plus what ingestion reads from the browser's user agent (events/user_agent.py).
    agent = {"$browser": "Chrome", "$os": "Linux", "$device_type": "desktop"}
    assert rows[0][4] == {"path": "/pricing", "q": "a&b=c+d 50%", "city": "Zürich", **agent}
    assert rows[1][4] == agent and rows[5][4] == {}
    assert rows[2][4] == {"browser": "Chrome", "isMobile": False}  # inactive: as sent
    assert rows[4][4] == {"numberOfReceivers": 3, "isMessageEncrypted": True}
    # Merges done, user properties stored (carried into the user by the merge).
    assert people(example) == [
        ({nid, "foo"}, {}),
        ({"bar", "guig"}, {"isSuperCool": True}),
        ({sid, "myUserId"}, {"first-name": "Barack", "last-name": "Obama"}),
    ]
    # Session properties on the browser's current session, in the person's timeline.
    with example.app_context():
        read = create_api_key(SCOPE, "metrics.view")
    timeline = example.test_client().get(
        "/umetrics/api/persons/myUserId/timeline",
        query_string={"scope_id": SCOPE},
        headers={"Authorization": f"Bearer {read}"},
    )
    assert timeline.status_code == 200, timeline.json
    assert [s["properties"] for s in timeline.json["sessions"]] == [
        {"browser": "Chrome", "isMobile": False}
    ]


def test_user_props_of_an_identified_user_are_refused_to_the_public_key(
    example: Flask, served: int
) -> None:
    """Each client's README sets user properties after ``setUserId``: the open-metrics key is
    public, so that is a 403 and nothing changes (docs/identity.md)."""
    host = f"127.0.0.1:{served}"
    link = '/v1/setUserId?q={"uid":"foo","sessionId":"Q7x2mB9kLp"}'
    assert exchange(served, node_request(host, link)) == (200, b"ok")
    # openMetrics.setUserProperties({userId: 'foo'}, {isPayingUser: false}) (node)
    node = '/v1/setUserProps?q={"props":{"isPayingUser":false},"sessionId":"Q7x2mB9kLp"}'
    status, body = exchange(served, node_request(host, node))
    assert status == 403 and b"identify_permission_required" in body
    # openMetrics.setUserProperties({plan: 'pro'}) after setUserId (browser)
    browser = (
        "/v1/setUserProps?q={%22props%22:{%22plan%22:%22pro%22},%22sessionId%22:%22Q7x2mB9kLp%22}"
    )
    status, body = exchange(served, browser_request(host, browser))
    assert status == 403 and b"identify_permission_required" in body
    assert people(example) == [({"Q7x2mB9kLp", "foo"}, {})]


def test_without_the_key_the_same_bytes_are_refused(tmp_path: Path) -> None:
    """What issue 18 found: the example app without its open-metrics key answers 401 (its
    authorizer grants visitors nothing), and stores nothing."""
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_AUTO_MIGRATE": True}
    )
    assert app.config.get("UMETRICS_OPENMETRICS_KEY") is None
    answer = app.test_client().get(
        "/v1/events", query_string='q={"events":[{"name":"e"}],"sessionId":"Q7x2mB9kLp"}'
    )
    assert answer.status_code == 401
    assert stored(app) == []


def test_a_key_in_the_url_never_reaches_the_request_log(
    example: Flask, served: int, caplog: pytest.LogCaptureFixture
) -> None:
    """werkzeug logs each request line with its query string; ``?key=`` is redacted."""
    caplog.set_level(logging.DEBUG)
    with example.app_context():
        key = create_api_key(SCOPE, "openmetrics")
    host = f"127.0.0.1:{served}"
    path = f'/v1/events?key={key}&q={{"events":[{{"name":"keyed"}}],"sessionId":"url"}}'
    assert exchange(served, node_request(host, path)) == (200, b"ok")
    refused = exchange(served, node_request(host, path.replace(key, key[:-2] + "xx")))
    assert refused[0] == 401
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/events?key=REDACTED&q=" in text  # the request lines are logged
    assert key.split("_", 2)[2] not in text and key[:-2] not in text


def test_node_writes_a_non_ascii_path_in_latin_1(example: Flask, served: int) -> None:
    """Node sends ``path`` characters up to U+00FF as single Latin-1 bytes (and refuses the
    rest), so ``props: {city: 'Zürich'}`` arrives as the byte 0xFC. werkzeug's server hands the
    app that path re-encoded as UTF-8; a server that passes the bytes as they came (gunicorn)
    hands over 0xFC itself, which is read as Latin-1."""
    host = f"127.0.0.1:{served}"
    path = '/v1/events?q={"events":[{"name":"visit","props":{"city":"Zürich"}}],"sessionId":"n1"}'
    assert exchange(served, node_request(host, path)) == (200, b"ok")
    raw = path.split("?", 1)[1].encode("latin-1")
    as_gunicorn = example.test_client().get(
        "/v1/events", environ_overrides={"QUERY_STRING": raw.decode("latin-1")}
    )
    assert as_gunicorn.status_code == 200 and as_gunicorn.data == b"ok"
    assert [(r[0], r[4]) for r in stored(example)] == [("visit", {"city": "Zürich"})] * 2

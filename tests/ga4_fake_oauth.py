"""A local stand-in for Google's OAuth endpoints, so tests run the real google-auth libraries.

It implements what flask-umetrics talks to: the consent page (``/auth``, answered at once with
a redirect carrying ``code`` and ``state``, as if the user clicked "Allow"), the token endpoint
(``/token``: authorization_code with PKCE S256, refresh_token, and the JWT-bearer grant of
service accounts, whose assertion signature is checked with the account's public key) and the
revocation endpoint (``/revoke``). Everything it saw is recorded for the tests to assert on.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.auth import jwt

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The audience google-auth puts in service-account assertions whatever the token_uri is
#: (Google's token endpoint checks it), so the fake checks the same value.
ASSERTION_AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class IssuedCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str


@dataclass
class FakeGoogleOAuth:
    """The fake server; use as a context manager (it binds 127.0.0.1 on a free port)."""

    client_id: str
    client_secret: str
    #: client_email -> PEM public key of each service account allowed the JWT-bearer grant
    service_accounts: dict[str, str] = field(default_factory=dict)
    #: answer the code exchange without a refresh token (a user who consented before)
    omit_refresh_token: bool = False
    #: status the revocation endpoint answers with (200 = revoked)
    revoke_status: int = 200
    #: the OAuth client's "Authorized redirect URIs": Google compares each request's
    #: redirect_uri exactly (scheme, host, path and query) and answers redirect_uri_mismatch
    registered_redirect_uris: set[str] | None = None
    #: the scopes the user leaves ticked on Google's granular consent screen (None: all asked)
    granted_scopes: set[str] | None = None

    authorizations: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> scope
    access_tokens: list[str] = field(default_factory=list)
    jwt_claims: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> FakeGoogleOAuth:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the tests look at what the app logs, not the fake."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def auth_uri(self) -> str:
        return self.base_url + "/auth"

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    @property
    def revoke_uri(self) -> str:
        return self.base_url + "/revoke"

    # --- the test's "browser" ----------------------------------------------------------------

    def consent(self, authorization_url: str) -> dict[str, str]:
        """Open the consent page like a browser and return the callback's query parameters."""
        parts = urllib.parse.urlsplit(authorization_url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
        try:
            connection.request("GET", f"{parts.path}?{parts.query}")
            response = connection.getresponse()
            response.read()
            location = response.getheader("Location")
            status = response.status
        finally:
            connection.close()
        assert status == 302, f"the consent page answered {status}"
        assert location is not None
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))

    # --- endpoints -------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path, _, query = handler.path.partition("?")
        if method == "GET" and path == "/auth":
            self._authorize(handler, dict(urllib.parse.parse_qsl(query)))
            return
        if method == "POST" and path in ("/token", "/revoke"):
            length = int(handler.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(handler.rfile.read(length).decode("utf-8")))
            with self._lock:
                if path == "/token":
                    status, answer = self._token(handler, form)
                else:
                    status, answer = self._revoke(form)
            self._reply(handler, status, answer)
            return
        self._reply(handler, 404, {"error": "not_found"})

    def _authorize(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        with self._lock:
            self.authorizations.append(dict(query))
            problems = [
                name
                for name, ok in (
                    ("response_type", query.get("response_type") == "code"),
                    ("client_id", query.get("client_id") == self.client_id),
                    ("redirect_uri", bool(query.get("redirect_uri"))),
                    ("code_challenge", bool(query.get("code_challenge"))),
                    ("code_challenge_method", query.get("code_challenge_method") == "S256"),
                    ("scope", bool(query.get("scope"))),
                    ("state", bool(query.get("state"))),
                )
                if not ok
            ]
            if problems:
                self._reply(handler, 400, {"error": "invalid_request", "fields": problems})
                return
            registered = self.registered_redirect_uris
            if registered is not None and query["redirect_uri"] not in registered:
                self._reply(handler, 400, {"error": "redirect_uri_mismatch"})
                return
            code = "4/" + secrets.token_urlsafe(24)
            scope = query["scope"]
            if self.granted_scopes is not None:
                scope = " ".join(s for s in scope.split() if s in self.granted_scopes)
            self.codes[code] = IssuedCode(
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                code_challenge=query["code_challenge"],
                scope=scope,
            )
        callback = urllib.parse.urlencode({"code": code, "state": query["state"], "scope": scope})
        handler.send_response(302)
        handler.send_header("Location", f"{query['redirect_uri']}?{callback}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _token(
        self, handler: BaseHTTPRequestHandler, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(dict(form))
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            return self._jwt_bearer(form)
        client_id, client_secret = _client_credentials(handler, form)
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        if grant == "authorization_code":
            issued = self.codes.pop(form.get("code", ""), None)  # a code works once
            if issued is None or issued.redirect_uri != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant", "error_description": "Bad code."}
            if _challenge(form.get("code_verifier", "")) != issued.code_challenge:
                return 400, {"error": "invalid_grant", "error_description": "Bad verifier."}
            answer = self._access_token(issued.scope)
            if not self.omit_refresh_token:
                refresh = "1//" + secrets.token_urlsafe(32)
                self.refresh_tokens[refresh] = issued.scope
                answer["refresh_token"] = refresh
            return 200, answer
        if grant == "refresh_token":
            scope = self.refresh_tokens.get(form.get("refresh_token", ""))
            if scope is None:
                return 400, {"error": "invalid_grant", "error_description": "Token revoked."}
            return 200, self._access_token(scope)
        return 400, {"error": "unsupported_grant_type"}

    def _jwt_bearer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, verify=False)
            public_key = self.service_accounts[unverified["iss"]]
            claims = jwt.decode(assertion, certs=public_key, audience=ASSERTION_AUDIENCE)
        except (KeyError, ValueError) as exc:
            return 400, {"error": "invalid_grant", "error_description": type(exc).__name__}
        self.jwt_claims.append(dict(claims))
        return 200, self._access_token(str(claims.get("scope", "")))

    def _access_token(self, scope: str) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(24)
        self.access_tokens.append(token)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": scope}

    def _revoke(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        token = form.get("token", "")
        self.revoked.append(token)
        if self.revoke_status != 200:
            return self.revoke_status, {"error": "backend_error"}
        if token not in self.refresh_tokens and token not in self.access_tokens:
            return 400, {"error": "invalid_token"}
        self.refresh_tokens.pop(token, None)
        return 200, {}

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, answer: dict[str, Any]) -> None:
        body = json.dumps(answer).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _client_credentials(
    handler: BaseHTTPRequestHandler, form: dict[str, str]
) -> tuple[str | None, str | None]:
    """HTTP Basic (what requests-oauthlib sends) or form fields (what google-auth sends)."""
    header = handler.headers.get("Authorization", "")
    if header.startswith("Basic "):
        decoded = base64.b64decode(header[6:]).decode("utf-8")
        user, _, password = decoded.partition(":")
        return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
    return form.get("client_id"), form.get("client_secret")


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class FakeServiceAccount:
    """A throwaway service-account key (``info`` is the JSON Google would hand out)."""

    info: dict[str, str]
    public_pem: str

    @property
    def email(self) -> str:
        return self.info["client_email"]


def make_service_account(
    token_uri: str, *, email: str = "umetrics-test@demo-project.iam.gserviceaccount.com"
) -> FakeServiceAccount:
    """A fresh 2048-bit RSA service-account key whose tokens come from ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    info = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    return FakeServiceAccount(info=info, public_pem=public_pem)

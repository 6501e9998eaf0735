"""Flags inside a request: the current subject, the consent cookie, one sticky lookup.

``current_flags()`` builds one :class:`RequestFlags` per request (in ``flask.g``). The subject is
the host's subject loader's id, else the consent cookie's anonymous id. All flags evaluated in the
request share one query for stored assignments; what was served with consent is written in one
transaction after the response is built, and the cookie is re-issued only when it changed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Flask, Response, g, request

from ..db.types import utcnow
from ..state import UMetricsState, current_state
from .cookie import ConsentCookie, decode_cookie, encode_cookie
from .decide import Resolution, decide, is_blocked, subject_key, unknown
from .query_force import FORCE_PARAMETER, parse_force
from .recording import (
    Served,
    StoredAssignments,
    forget_assignments,
    in_segment,
    load_assignments,
    write_served,
)

_G_KEY = "umetrics_flags"


def _header_opt_out() -> bool:
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


class RequestFlags:
    """Everything flag evaluation needs for the current request, loaded lazily and once."""

    def __init__(self, state: UMetricsState, scope_id: str) -> None:
        settings = state.settings
        self.state = state
        self.scope_id = scope_id
        self.cookie_name: str = settings["UMETRICS_COOKIE_NAME"]
        self.max_age = int(settings["UMETRICS_COOKIE_MAX_AGE_DAYS"]) * 86400
        now = int(time.time())
        self.cookie: ConsentCookie | None = decode_cookie(
            state.cookie_keyring,
            request.cookies.get(self.cookie_name),
            name=self.cookie_name,
            max_age_seconds=self.max_age,
            now=now,
        )
        #: A cookie was sent but could not be read (tampered, expired, unknown key): replace it.
        self.cookie_dirty = self.cookie is None and bool(request.cookies.get(self.cookie_name))
        self.cookie_cleared = False
        if self.cookie is not None:
            self.consent = self.cookie.consent
        else:
            self.consent = not settings["UMETRICS_CONSENT_REQUIRED"] and not _header_opt_out()
        consent_loader = state.extension.consent_loader_callback
        decided = consent_loader() if consent_loader is not None else None
        if decided is not None:
            self.consent = bool(decided)
        loader = state.extension.subject_loader_callback
        subject_id, attributes = loader() if loader is not None else (None, {})
        self.known_subject: str | None = subject_key(subject_id)
        self.attributes: dict[str, Any] = dict(attributes or {})
        if self.known_subject is not None and "id" not in self.attributes:
            self.attributes["id"] = subject_id
        #: Variants forced for QA by ``?umetrics_force=`` (only with UMETRICS_ALLOW_URL_FORCE).
        self.forced: dict[str, str] = (
            parse_force(request.args.getlist(FORCE_PARAMETER))
            if settings["UMETRICS_ALLOW_URL_FORCE"]
            else {}
        )
        self._stored: StoredAssignments | None = None
        self._segments: dict[str, bool] = {}
        self.served: list[Served] = []
        self.results: dict[str, Resolution] = {}
        #: Database round trips for sticky lookups in this request (at most one).
        self.sticky_queries = 0
        #: Consent was withdrawn by a known subject: delete their assignments at the end.
        self.forget_assignments = False

    # -- subject ---------------------------------------------------------------------------

    @property
    def subject_id(self) -> str | None:
        """The known subject, else the consent cookie's anonymous id (with consent only)."""
        if self.known_subject is not None:
            return self.known_subject
        if self.consent and self.ensure_cookie() is not None:
            assert self.cookie is not None
            return self.cookie.anon_id
        return None

    def ensure_cookie(self) -> ConsentCookie | None:
        """A cookie for an anonymous visitor who consented (None without a cookie key)."""
        if self.cookie is None and self.consent and self.state.cookie_keyring.can_write:
            self.cookie = ConsentCookie.new(consent=True, now=int(time.time()))
            self.cookie_dirty = True
        return self.cookie

    def set_consent(self, consent: bool) -> None:
        """Record the visitor's choice: a consent cookie, or no cookie at all."""
        self.consent = consent
        if consent:
            if self.cookie is None:
                self.ensure_cookie()
            elif not self.cookie.consent:
                self.cookie = self.cookie.with_consent(True)
                self.cookie_dirty = True
        else:
            self.cookie = None
            self.cookie_cleared = True
            self.cookie_dirty = False
            # A known subject who withdraws consent loses their stored assignments too (on
            # every device); the hash decides again, and nothing is stored without consent.
            self.forget_assignments = self.known_subject is not None
            self._stored = None
            self.served = []
        self.results.clear()

    # -- evaluation ------------------------------------------------------------------------

    def _stored_assignments(self) -> StoredAssignments:
        if self._stored is None:
            assert self.known_subject is not None
            self.sticky_queries += 1
            with self.state.engine.connect() as connection:
                self._stored = load_assignments(connection, self.scope_id, self.known_subject)
        return self._stored

    def _in_segment(self, key: str) -> bool:
        if key not in self._segments:
            subject = self.subject_id
            if subject is None:
                self._segments[key] = False
            else:
                with self.state.engine.connect() as connection:
                    self._segments[key] = in_segment(connection, self.scope_id, subject, key)
        return self._segments[key]

    def resolve(self, key: str) -> Resolution:
        """The variant of ``key`` for the current subject (evaluated once per request)."""
        cached = self.results.get(key)
        if cached is not None:
            return cached
        experiment = self.state.flag_cache.get(self.scope_id, key)
        if experiment is None:
            result = unknown(key)
            self.results[key] = result
            return result
        now = utcnow()
        # Only a flag being served needs the subject: asking for a draft, paused, stopped or
        # killed flag issues an anonymous visitor no cookie (decide answers those first anyway).
        # A variant forced for QA needs no subject either (nothing is stored for it).
        serving = (
            not experiment.killed
            and experiment.effective_status(now) == "running"
            and key not in self.forced
        )
        subject = self.subject_id if serving else self.known_subject
        version = experiment.bucket_version
        stored = carried = None
        blocked = False
        attributes: Mapping[str, Any] = self.attributes
        if subject is not None and "id" not in attributes:
            attributes = {**attributes, "id": subject}
        if self.consent and subject is not None and serving and self.cookie is not None:
            entry = self.cookie.assignments.get(key)
            if entry is not None and entry.bucket_version == version:
                carried = entry.variant
            if entry is not None:
                blocked = is_blocked(experiment, [(key, entry.bucket_version)])
        if self.known_subject is not None and serving and not self.forget_assignments:
            # A known subject's stored assignment (made with consent, maybe on another device)
            # is served even without consent here: reading it stores and logs nothing.
            held = self._stored_assignments()
            stored = held.get((key, version))
            blocked = blocked or is_blocked(experiment, held)
        result = decide(
            experiment,
            subject_id=subject,
            consent=self.consent,
            attributes=attributes,
            now=now,
            stored=stored,
            carried=carried,
            in_segment=self._in_segment,
            forced=self.forced.get(key),
            blocked=blocked,
        )
        if self.known_subject is None and result.in_experiment and self.consent:
            # Anonymous stickiness lives in the cookie; the exposure is logged once, when the
            # variant first enters the cookie.
            assert self.cookie is not None and result.variant is not None
            assert subject is not None
            if carried is None:
                self.cookie = self.cookie.with_assignment(key, result.variant, version)
                self.cookie_dirty = True
                self.served.append(
                    Served(
                        subject, key, version, result.variant, "hash", now, store_assignment=False
                    )
                )
        elif result.record:
            assert subject is not None and result.variant is not None
            self.served.append(Served(subject, key, version, result.variant, result.reason, now))
            if self._stored is not None:
                self._stored[(key, version)] = result.variant
        self.results[key] = result
        return result

    # -- end of request --------------------------------------------------------------------

    def _carry_cookie_assignments(self) -> None:
        """At login: copy the anonymous cookie's assignments to the known subject, so every
        experiment the visitor saw keeps its variant (loaded assignments only: no extra query)."""
        if self.known_subject is None or self.cookie is None or self._stored is None:
            return
        if not self.consent:
            return
        definitions = self.state.flag_cache.definitions(self.scope_id)
        now = utcnow()
        for key, entry in self.cookie.assignments.items():
            experiment = definitions.get(key)
            if experiment is None or experiment.bucket_version != entry.bucket_version:
                continue
            if (key, entry.bucket_version) in self._stored:
                continue
            if entry.variant not in experiment.variant_keys:
                continue
            self._stored[(key, entry.bucket_version)] = entry.variant
            self.served.append(
                Served(self.known_subject, key, entry.bucket_version, entry.variant, "cookie", now)
            )

    def finish(self, response: Response) -> Response:
        """Write what was served and (re)issue or clear the cookie."""
        if self.forget_assignments and self.known_subject is not None:
            with self.state.engine.begin() as connection:
                forget_assignments(connection, self.scope_id, self.known_subject)
            self.forget_assignments = False
        self._carry_cookie_assignments()
        if self.served:
            with self.state.engine.begin() as connection:
                write_served(connection, self.scope_id, self.served)
            self.served = []
        secure = request.is_secure
        if self.cookie_cleared:
            response.delete_cookie(self.cookie_name, httponly=True, samesite="Lax", secure=secure)
        elif self.cookie_dirty:
            token = None
            if self.cookie is not None:
                # Every re-issue restarts the cookie's lifetime (a sliding expiry).
                fresh = replace(self.cookie, issued_at=int(time.time()))
                token = encode_cookie(self.state.cookie_keyring, fresh, name=self.cookie_name)
            if token is not None:
                response.set_cookie(
                    self.cookie_name,
                    token,
                    max_age=self.max_age,
                    httponly=True,
                    samesite="Lax",
                    secure=secure,
                )
            else:
                response.delete_cookie(
                    self.cookie_name, httponly=True, samesite="Lax", secure=secure
                )
        return response


def current_flags(scope_id: str | None = None) -> RequestFlags:
    """The flag context of the current request (created on first use)."""
    state = current_state()
    scope = scope_id or state.settings.default_scope
    contexts: dict[str, RequestFlags] = g.setdefault(_G_KEY, {})
    flags = contexts.get(scope)
    if flags is None:
        flags = RequestFlags(state, scope)
        contexts[scope] = flags
    return flags


def install_flag_finish(app: Flask) -> None:
    """After each request that evaluated flags: write assignments and exposures, set the cookie."""

    @app.after_request
    def _finish_flags(response: Response) -> Response:
        contexts: dict[str, RequestFlags] | None = g.get(_G_KEY)
        if contexts:
            for flags in contexts.values():
                response = flags.finish(response)
        return response

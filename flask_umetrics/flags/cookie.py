"""The encrypted consent cookie: payload, key ring and token format (docs/flags-experiments.md).

The cookie carries an anonymous visitor's consent and experiment assignments, so a visitor who
comes back, or logs in later, keeps the variant they saw. It is encrypted and authenticated with
AES-256-GCM so visitors can neither read nor forge assignments, and it is prefixed with a key id
so keys can be rotated: new cookies use the current key, older ids still decrypt while their
variable is set. The cookie name is the associated data, so a token cannot be replayed under
another cookie name. Anything wrong with a token means "no cookie" (``None``), never an error.

Key configuration (environment only)::

    UMETRICS_COOKIE_KEY_CURRENT=v2          # the id new cookies are written with
    UMETRICS_COOKIE_KEY_v2=<base64 of 32 bytes>
    UMETRICS_COOKIE_KEY_v1=<base64 of 32 bytes>   # kept so cookies written under v1 still decrypt

With keys but no ``UMETRICS_COOKIE_KEY_CURRENT`` the key ring is read-only: old cookies decrypt,
none are written. With neither, :attr:`CookieKeyring.can_write` is false and the caller logs a
warning; anonymous visitors then get the control variant.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar

from ..crypto import NONCE_BYTES, TAG_BYTES, KeyRing, generate_key
from ..errors import ConfigurationError, ValidationError
from .model import KEY_PATTERN

COOKIE_FORMAT_VERSION = 1
#: Assignments kept in one cookie; beyond it the oldest-inserted are dropped.
MAX_ASSIGNMENTS = 50
#: Encoded tokens are strictly shorter than this, leaving room for the name under the 4 KiB limit
#: browsers put on one cookie. Longer tokens are never decoded.
MAX_TOKEN_BYTES = 3800
#: How far in the future ``issued_at`` may lie (clock skew between servers).
MAX_FUTURE_SKEW_SECONDS = 300

ENV_PREFIX = "UMETRICS_COOKIE_KEY_"
ENV_CURRENT = ENV_PREFIX + "CURRENT"

_ANON_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXPERIMENT_KEY = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))
_PAYLOAD_FIELDS = frozenset({"v", "aid", "c", "a", "iat"})


@dataclass(frozen=True)
class CookieAssignment:
    """A variant served to an anonymous visitor, with the bucket version it was drawn under."""

    variant: str
    bucket_version: int

    def __post_init__(self) -> None:
        if (
            not isinstance(self.variant, str)
            or len(self.variant) > 100
            or not _EXPERIMENT_KEY.fullmatch(self.variant)
        ):
            raise ValidationError("variant", "must be a variant key of 1-100 characters")
        if not _is_int(self.bucket_version) or self.bucket_version < 0:
            raise ValidationError("bucket_version", "must be an integer >= 0")


@dataclass(frozen=True)
class ConsentCookie:
    """What the consent cookie holds.

    Assignments are kept in insertion order and only while consent is given: stickiness for
    anonymous visitors is stored data about them. At most :data:`MAX_ASSIGNMENTS` are kept (the
    oldest-inserted are dropped), and :func:`encode_cookie` drops more of the oldest if the token
    would not fit in :data:`MAX_TOKEN_BYTES`.
    """

    anon_id: str
    consent: bool
    assignments: Mapping[str, CookieAssignment] = field(hash=False)
    issued_at: int
    version: int = COOKIE_FORMAT_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.anon_id, str) or not _ANON_ID.fullmatch(self.anon_id):
            raise ValidationError("anon_id", "must be 1-64 characters of [A-Za-z0-9_-]")
        if not isinstance(self.consent, bool):
            raise ValidationError("consent", "must be a boolean")
        if not _is_int(self.issued_at) or self.issued_at < 0:
            raise ValidationError("issued_at", "must be unix seconds (an integer >= 0)")
        if not _is_int(self.version) or self.version != COOKIE_FORMAT_VERSION:
            raise ValidationError("version", f"must be {COOKIE_FORMAT_VERSION}")
        if not isinstance(self.assignments, Mapping):
            raise ValidationError(
                "assignments", "must be a mapping of experiment key to assignment"
            )
        items = list(self.assignments.items())
        for key, assignment in items:
            if not isinstance(key, str) or len(key) > 200 or not _EXPERIMENT_KEY.fullmatch(key):
                raise ValidationError("assignments", "keys must be experiment keys (1-200 chars)")
            if not isinstance(assignment, CookieAssignment):
                raise ValidationError("assignments", "values must be CookieAssignment objects")
        if items and not self.consent:
            raise ValidationError("assignments", "are only stored with consent")
        kept = dict(items[-MAX_ASSIGNMENTS:])
        object.__setattr__(self, "assignments", MappingProxyType(kept))

    @classmethod
    def new(cls, *, consent: bool, now: int) -> ConsentCookie:
        """A fresh cookie with a random anonymous id and no assignments."""
        return cls(
            anon_id=secrets.token_urlsafe(16), consent=consent, assignments={}, issued_at=now
        )

    def with_assignment(self, key: str, variant: str, bucket_version: int) -> ConsentCookie:
        """A copy with ``key`` assigned; it becomes the newest entry, so it is dropped last."""
        if not self.consent:
            raise ValidationError("consent", "assignments are only stored with consent")
        assignments = {k: v for k, v in self.assignments.items() if k != key}
        assignments[key] = CookieAssignment(variant, bucket_version)
        return replace(self, assignments=assignments)

    def with_consent(self, consent: bool) -> ConsentCookie:
        """A copy with the consent flag set; withdrawing consent forgets every assignment."""
        if not isinstance(consent, bool):
            raise ValidationError("consent", "must be a boolean")
        return replace(self, consent=consent, assignments=self.assignments if consent else {})


class CookieKeyring(KeyRing):
    """The consent cookie's key ring: ``UMETRICS_COOKIE_KEY_<id>`` variables.

    ``current_id=None`` makes a read-only key ring: it decrypts tokens under any of its keys but
    writes none.
    """

    ENV_PREFIX: ClassVar[str] = ENV_PREFIX

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> str:
        """As :meth:`KeyRing.encrypt`, with the cookie's wording when no key can write."""
        if self.current_id is None:
            raise ConfigurationError(f"{ENV_CURRENT} is not set: cookies cannot be written")
        return super().encrypt(plaintext, associated_data=associated_data)

    def decrypt(self, token: str, *, associated_data: bytes) -> bytes | None:
        """As :meth:`KeyRing.decrypt`; tokens too long to be a cookie are never decoded."""
        if not isinstance(token, str) or not 0 < len(token) < MAX_TOKEN_BYTES:
            return None
        return super().decrypt(token, associated_data=associated_data)


def generate_cookie_key() -> str:
    """A new key for ``UMETRICS_COOKIE_KEY_<id>``: standard base64 of 32 random bytes."""
    return generate_key()


def encode_cookie(keyring: CookieKeyring, cookie: ConsentCookie, *, name: str) -> str | None:
    """The encrypted token for ``cookie`` under cookie ``name``, or None when no key can write.

    The oldest assignments are dropped until the token is shorter than :data:`MAX_TOKEN_BYTES`.
    """
    _check_name(name)
    if keyring.current_id is None:
        return None
    items = list(cookie.assignments.items())
    plaintext = _payload(cookie, items)
    # Without assignments the payload is ~130 bytes at most, so the token always fits.
    while items and _token_length(keyring.current_id, plaintext) >= MAX_TOKEN_BYTES:
        items.pop(0)
        plaintext = _payload(cookie, items)
    return keyring.encrypt(plaintext, associated_data=name.encode("utf-8"))


def decode_cookie(
    keyring: CookieKeyring,
    token: str | None,
    *,
    name: str,
    max_age_seconds: int,
    now: int,
) -> ConsentCookie | None:
    """The cookie in ``token``, or None when it is missing, malformed, tampered, unknown-key,
    written under another cookie name, expired, or issued more than 5 minutes in the future.

    Nothing about the token raises; only bad arguments (``name``, ``max_age_seconds``, ``now``)
    raise :class:`ValidationError`.
    """
    _check_name(name)
    if not _is_int(max_age_seconds) or max_age_seconds < 0:
        raise ValidationError("max_age_seconds", "must be an integer >= 0")
    if not _is_int(now):
        raise ValidationError("now", "must be unix seconds (an integer)")
    if not token or not isinstance(token, str):
        return None
    plaintext = keyring.decrypt(token, associated_data=name.encode("utf-8"))
    if plaintext is None:
        return None
    cookie = _parse_payload(plaintext)
    if cookie is None:
        return None
    if now - cookie.issued_at > max_age_seconds or cookie.issued_at - now > MAX_FUTURE_SKEW_SECONDS:
        return None
    return cookie


def _payload(cookie: ConsentCookie, items: Iterable[tuple[str, CookieAssignment]]) -> bytes:
    """Compact JSON: ``{"v":1,"aid":...,"c":true,"a":{"exp":["variant",1]},"iat":...}``."""
    document = {
        "v": cookie.version,
        "aid": cookie.anon_id,
        "c": cookie.consent,
        "a": {key: [a.variant, a.bucket_version] for key, a in items},
        "iat": cookie.issued_at,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _parse_payload(plaintext: bytes) -> ConsentCookie | None:
    """The cookie in an authenticated payload, or None when any field has the wrong shape."""
    try:
        document = json.loads(
            plaintext.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or document.keys() != _PAYLOAD_FIELDS:
        return None
    version, assignments = document["v"], document["a"]
    if (
        not _is_int(version)
        or version != COOKIE_FORMAT_VERSION
        or not isinstance(assignments, dict)
    ):
        return None
    parsed: dict[str, CookieAssignment] = {}
    try:
        for key, value in assignments.items():
            if not isinstance(value, list) or len(value) != 2:
                return None
            parsed[key] = CookieAssignment(variant=value[0], bucket_version=value[1])
        return ConsentCookie(
            anon_id=document["aid"],
            consent=document["c"],
            assignments=parsed,
            issued_at=document["iat"],
            version=version,
        )
    except ValidationError:
        return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object hook that refuses repeated keys instead of keeping the last one."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key")
    return document


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON and never appear in a payload this module wrote."""
    raise ValueError(f"unexpected constant {name}")


def _token_length(key_id: str, plaintext: bytes) -> int:
    """Length of the token :meth:`CookieKeyring.encrypt` makes (unpadded base64 of the body)."""
    return len(key_id) + 1 + (4 * (NONCE_BYTES + len(plaintext) + TAG_BYTES) + 2) // 3


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValidationError("name", "must be a non-empty cookie name")


def _is_int(value: object) -> bool:
    """An int that is not a bool (JSON ``true`` must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)

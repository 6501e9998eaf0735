"""The encrypted consent cookie: payload, key ring and token format (DESIGN.md §5 "Consent cookie").

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

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_ANON_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXPERIMENT_KEY = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
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


@dataclass(frozen=True, repr=False)
class CookieKeyring:
    """AES-256-GCM keys by id; ``current_id`` is the one new cookies are written with.

    ``current_id=None`` makes a read-only key ring: it decrypts tokens under any of its keys but
    writes none.
    """

    current_id: str | None
    keys: Mapping[str, bytes] = field(hash=False)
    _ciphers: Mapping[str, AESGCM] = field(init=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.keys, Mapping):
            raise ValidationError("keys", "must be a mapping of key id to 32 bytes")
        for key_id, key in self.keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ValidationError("keys", "key ids must be 1-16 characters of [A-Za-z0-9_-]")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValidationError("keys", f"key {key_id!r} must be {KEY_BYTES} bytes")
        if self.current_id is not None and self.current_id not in self.keys:
            raise ValidationError("current_id", "must name one of the keys")
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))
        ciphers = {key_id: AESGCM(key) for key_id, key in self.keys.items()}
        object.__setattr__(self, "_ciphers", MappingProxyType(ciphers))

    def __repr__(self) -> str:
        """Key ids only: key bytes must never reach a log line or a traceback."""
        return f"CookieKeyring(current_id={self.current_id!r}, key_ids={sorted(self.keys)!r})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> CookieKeyring:
        """Every ``UMETRICS_COOKIE_KEY_<id>`` variable, and ``..._CURRENT`` naming the writer.

        Raises :class:`ConfigurationError` naming the variable (never its value) for a key that is
        not base64 of 32 bytes, an invalid id, or a current id whose variable is missing.
        """
        keys: dict[str, bytes] = {}
        for name in sorted(environ):
            if not name.startswith(ENV_PREFIX) or name == ENV_CURRENT:
                continue
            key_id = name[len(ENV_PREFIX) :]
            if not _KEY_ID.fullmatch(key_id):
                raise ConfigurationError(
                    f"{name}: the key id after {ENV_PREFIX} must be 1-16 characters of "
                    "[A-Za-z0-9_-]"
                )
            keys[key_id] = _decode_key(name, environ[name])
        current_id = environ.get(ENV_CURRENT)
        if current_id is not None:
            current_id = current_id.strip()
            if current_id == "CURRENT" or not _KEY_ID.fullmatch(current_id):
                raise ConfigurationError(
                    f"{ENV_CURRENT} must be a key id of 1-16 characters of [A-Za-z0-9_-]"
                )
            if current_id not in keys:
                raise ConfigurationError(
                    f"{ENV_CURRENT} names key id {current_id!r} but {ENV_PREFIX}{current_id} "
                    "is not set"
                )
        return cls(current_id=current_id, keys=keys)

    @property
    def can_write(self) -> bool:
        """Whether a current key is configured, i.e. whether cookies may be written."""
        return self.current_id is not None

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> str:
        """``<key id>.<base64url(nonce || ciphertext+tag)>`` under the current key, fresh nonce."""
        if self.current_id is None:
            raise ConfigurationError(f"{ENV_CURRENT} is not set: cookies cannot be written")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self.current_id].encrypt(nonce, plaintext, associated_data)
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{self.current_id}.{body}"

    def decrypt(self, token: str, *, associated_data: bytes) -> bytes | None:
        """The plaintext, or None for a malformed, unknown-key or tampered token."""
        if not isinstance(token, str) or not 0 < len(token) < MAX_TOKEN_BYTES:
            return None
        key_id, dot, body = token.partition(".")
        cipher = self._ciphers.get(key_id) if dot else None
        if cipher is None or not _BASE64URL.fullmatch(body):
            return None
        data = _b64decode(body, base64.urlsafe_b64decode)
        if data is None or len(data) < NONCE_BYTES + TAG_BYTES:
            return None
        # Reject non-canonical encodings (unused low bits set in the last character) so that
        # every character of a token is covered by the tag.
        if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != body:
            return None
        try:
            return cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], associated_data)
        except InvalidTag:
            return None


def generate_cookie_key() -> str:
    """A new key for ``UMETRICS_COOKIE_KEY_<id>``: standard base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


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


def _decode_key(variable: str, value: str) -> bytes:
    """Standard or urlsafe base64, padded or not, of exactly 32 bytes; errors name the variable."""
    text = value.strip().replace("-", "+").replace("_", "/").rstrip("=")
    key = _b64decode(text, base64.b64decode) if _BASE64.fullmatch(text) else None
    if key is None:
        raise ConfigurationError(f"{variable} is not valid base64")
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"{variable} must be base64 of {KEY_BYTES} bytes, got {len(key)} bytes"
        )
    return key


def _b64decode(text: str, decode: Callable[[str], bytes]) -> bytes | None:
    """Decode unpadded base64 with ``decode``; None when the length cannot be base64."""
    if len(text) % 4 == 1:
        return None
    try:
        data = decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data


def _token_length(key_id: str, plaintext: bytes) -> int:
    """Length of the token :meth:`CookieKeyring.encrypt` makes (unpadded base64 of the body)."""
    return len(key_id) + 1 + (4 * (NONCE_BYTES + len(plaintext) + TAG_BYTES) + 2) // 3


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValidationError("name", "must be a non-empty cookie name")


def _is_int(value: object) -> bool:
    """An int that is not a bool (JSON ``true`` must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)

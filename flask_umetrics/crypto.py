"""An AES-256-GCM key ring read from environment variables that share a prefix.

Several features keep secrets the app itself must read back later (the consent cookie, GA4
credentials). They all need the same things: keys only from the environment, a key id in front
of every token so keys can be rotated (new tokens use the current key, older ids still decrypt
while their variable is set), associated data that binds a token to its purpose, and errors
that name the variable but never show a key. Configuration, for a prefix ``P``::

    P_CURRENT=v2                     # the id new tokens are written with
    P_v2=<base64 of 32 bytes>
    P_v1=<base64 of 32 bytes>        # kept so tokens written under v1 still decrypt
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigurationError, ValidationError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

_Ring = TypeVar("_Ring", bound="KeyRing")


@dataclass(frozen=True, repr=False)
class KeyRing:
    """AES-256-GCM keys by id; ``current_id`` is the one new tokens are written with.

    ``current_id=None`` makes a read-only key ring: it decrypts tokens under any of its keys but
    encrypts nothing. Subclasses set :attr:`ENV_PREFIX` for their variables.
    """

    ENV_PREFIX: ClassVar[str] = "UMETRICS_ENCRYPTION_KEY_"

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
        name = type(self).__name__
        return f"{name}(current_id={self.current_id!r}, key_ids={sorted(self.keys)!r})"

    @classmethod
    def env_current(cls) -> str:
        """The variable naming the current key id, e.g. ``UMETRICS_ENCRYPTION_KEY_CURRENT``."""
        return cls.ENV_PREFIX + "CURRENT"

    @classmethod
    def from_environ(cls: type[_Ring], environ: Mapping[str, str]) -> _Ring:
        """Every ``<prefix><id>`` variable, and ``<prefix>CURRENT`` naming the writer.

        Raises :class:`ConfigurationError` naming the variable (never its value) for a key that is
        not base64 of 32 bytes, an invalid id, or a current id whose variable is missing.
        """
        prefix, current_name = cls.ENV_PREFIX, cls.env_current()
        keys: dict[str, bytes] = {}
        for name in sorted(environ):
            if not name.startswith(prefix) or name == current_name:
                continue
            key_id = name[len(prefix) :]
            if not _KEY_ID.fullmatch(key_id):
                raise ConfigurationError(
                    f"{name}: the key id after {prefix} must be 1-16 characters of [A-Za-z0-9_-]"
                )
            keys[key_id] = decode_key(name, environ[name])
        current_id = environ.get(current_name)
        if current_id is not None:
            current_id = current_id.strip()
            if current_id == "CURRENT" or not _KEY_ID.fullmatch(current_id):
                raise ConfigurationError(
                    f"{current_name} must be a key id of 1-16 characters of [A-Za-z0-9_-]"
                )
            if current_id not in keys:
                raise ConfigurationError(
                    f"{current_name} names key id {current_id!r} but {prefix}{current_id} "
                    "is not set"
                )
        return cls(current_id=current_id, keys=keys)

    @property
    def can_write(self) -> bool:
        """Whether a current key is configured, i.e. whether anything may be encrypted."""
        return self.current_id is not None

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> str:
        """``<key id>.<base64url(nonce || ciphertext+tag)>`` under the current key, fresh nonce."""
        if self.current_id is None:
            raise ConfigurationError(f"{self.env_current()} is not set: nothing can be encrypted")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self.current_id].encrypt(nonce, plaintext, associated_data)
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{self.current_id}.{body}"

    def decrypt(self, token: str, *, associated_data: bytes) -> bytes | None:
        """The plaintext, or None for a malformed, unknown-key or tampered token."""
        if not isinstance(token, str) or not token:
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


def key_id_of(token: str) -> str | None:
    """The key id a token was written under (no decryption), or None if it has none."""
    key_id, dot, _ = token.partition(".")
    return key_id if dot and _KEY_ID.fullmatch(key_id) else None


def generate_key() -> str:
    """A new key for a key variable: standard base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def decode_key(variable: str, value: str) -> bytes:
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

"""The encrypted consent cookie (docs/flags-experiments.md): tokens round-trip, any change to
a token, a wrong key, a wrong cookie name or an old date makes it "no cookie", and keys come from
the environment with errors that name the variable but never the key."""

from __future__ import annotations

import base64
import json
import re
import traceback

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_umetrics.errors import ConfigurationError, ValidationError
from flask_umetrics.flags.cookie import (
    COOKIE_FORMAT_VERSION,
    MAX_ASSIGNMENTS,
    MAX_TOKEN_BYTES,
    ConsentCookie,
    CookieAssignment,
    CookieKeyring,
    decode_cookie,
    encode_cookie,
    generate_cookie_key,
)

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))
NAME = "umetrics_consent"
NOW = 1_700_000_000
DAY = 86_400
ANON = "Zm9vYmFyYmF6cXV4MTIzNA"  # 22 chars, like secrets.token_urlsafe(16)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def keyring(current: str | None = "v1", **keys: bytes) -> CookieKeyring:
    environ = {f"UMETRICS_COOKIE_KEY_{key_id}": b64(key) for key_id, key in keys.items()}
    if current is not None:
        environ["UMETRICS_COOKIE_KEY_CURRENT"] = current
    return CookieKeyring.from_environ(environ)


def sample_cookie(issued_at: int = NOW) -> ConsentCookie:
    return (
        ConsentCookie(anon_id=ANON, consent=True, assignments={}, issued_at=issued_at)
        .with_assignment("checkout-button", "green", 1)
        .with_assignment("pricing:v2", "control", 3)
    )


def decode(ring: CookieKeyring, token: str | None, **overrides: object) -> ConsentCookie | None:
    arguments: dict[str, object] = {"name": NAME, "max_age_seconds": 365 * DAY, "now": NOW}
    arguments.update(overrides)
    return decode_cookie(ring, token, **arguments)  # type: ignore[arg-type]


# --- round trip and token format ----------------------------------------------------------------


def test_round_trip_keeps_every_field_and_the_assignment_order() -> None:
    ring = keyring(v1=KEY_1)
    cookie = sample_cookie()
    token = encode_cookie(ring, cookie, name=NAME)
    assert token is not None
    decoded = decode(ring, token)
    assert decoded == cookie
    assert decoded is not None
    assert decoded.anon_id == ANON
    assert decoded.consent is True
    assert decoded.issued_at == NOW
    assert decoded.version == COOKIE_FORMAT_VERSION == 1
    assert list(decoded.assignments.items()) == [
        ("checkout-button", CookieAssignment("green", 1)),
        ("pricing:v2", CookieAssignment("control", 3)),
    ]


def test_token_is_key_id_dot_unpadded_base64url_of_nonce_and_aes_gcm_of_compact_json() -> None:
    ring = keyring(v1=KEY_1)
    token = encode_cookie(ring, sample_cookie(), name=NAME)
    assert token is not None
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+", token)
    body = token.removeprefix("v1.")
    data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    # Decrypted independently of the module: nonce first, the cookie name as associated data.
    plaintext = AESGCM(KEY_1).decrypt(data[:12], data[12:], NAME.encode())
    expected = (
        b'{"v":1,"aid":"Zm9vYmFyYmF6cXV4MTIzNA","c":true,'
        b'"a":{"checkout-button":["green",1],"pricing:v2":["control",3]},"iat":1700000000}'
    )
    assert plaintext == expected
    assert len(data) == 12 + len(expected) + 16
    assert ring.decrypt(token, associated_data=NAME.encode()) == expected


def test_every_token_has_a_fresh_nonce() -> None:
    ring = keyring(v1=KEY_1)
    tokens = [encode_cookie(ring, sample_cookie(), name=NAME) for _ in range(20)]
    bodies = [base64.urlsafe_b64decode(t.removeprefix("v1.") + "==") for t in tokens if t]
    assert len({body[:12] for body in bodies}) == 20
    assert len(set(tokens)) == 20
    assert all(decode(ring, token) == sample_cookie() for token in tokens)


def test_new_cookie_has_a_random_anonymous_id_and_no_assignments() -> None:
    first = ConsentCookie.new(consent=True, now=NOW)
    second = ConsentCookie.new(consent=True, now=NOW)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", first.anon_id)
    assert first.anon_id != second.anon_id
    assert dict(first.assignments) == {}
    assert (first.consent, first.issued_at, first.version) == (True, NOW, 1)
    ring = keyring(v1=KEY_1)
    assert decode(ring, encode_cookie(ring, first, name=NAME)) == first


# --- tampering ----------------------------------------------------------------------------------


def test_changing_any_single_character_of_a_token_yields_none() -> None:
    ring = keyring(v1=KEY_1)
    token = encode_cookie(ring, sample_cookie(), name=NAME)
    assert token is not None and decode(ring, token) is not None
    tried = 0
    for position, char in enumerate(token):
        replacements = {chr(ord(char) ^ (1 << bit)) for bit in range(8)}
        replacements |= set("Aa0_-.=")
        for replacement in replacements - {char}:
            modified = token[:position] + replacement + token[position + 1 :]
            assert decode(ring, modified) is None, (position, replacement)
            tried += 1
        assert decode(ring, token[:position] + token[position + 1 :]) is None, position
    assert tried > 8 * len(token)
    for suffix in ("A", "=", "==", ".", " ", "\n"):
        assert decode(ring, token + suffix) is None, suffix
    assert decode(ring, " " + token) is None


def test_last_character_unused_bits_are_covered() -> None:
    """Base64 decoders ignore the unused low bits of the last character; we must not."""
    ring = keyring(v1=KEY_1)
    for _ in range(30):
        token = encode_cookie(ring, sample_cookie(), name=NAME)
        assert token is not None
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for other in alphabet.replace(token[-1], ""):
            assert decode(ring, token[:-1] + other) is None


# --- keys and rotation --------------------------------------------------------------------------


def test_cookie_written_under_v1_decrypts_after_rotating_to_v2() -> None:
    old = keyring("v1", v1=KEY_1)
    token = encode_cookie(old, sample_cookie(), name=NAME)
    rotated = keyring("v2", v1=KEY_1, v2=KEY_2)
    assert decode(rotated, token) == sample_cookie()
    new_token = encode_cookie(rotated, sample_cookie(), name=NAME)
    assert new_token is not None and new_token.startswith("v2.")
    assert decode(rotated, new_token) == sample_cookie()
    assert decode(old, new_token) is None  # the old deployment does not know v2


def test_v1_cookie_is_rejected_once_v1_is_removed() -> None:
    token = encode_cookie(keyring("v1", v1=KEY_1), sample_cookie(), name=NAME)
    assert decode(keyring("v2", v2=KEY_2), token) is None


def test_unknown_key_id_and_relabelled_token_yield_none() -> None:
    ring = keyring("v1", v1=KEY_1, v2=KEY_2)
    token = encode_cookie(ring, sample_cookie(), name=NAME)
    assert token is not None
    body = token.removeprefix("v1.")
    assert decode(ring, "v9." + body) is None
    assert decode(ring, "v2." + body) is None  # right format, wrong key
    assert decode(ring, body) is None  # no key id at all
    assert decode(ring, "." + body) is None


def test_keys_without_current_make_a_read_only_keyring() -> None:
    token = encode_cookie(keyring("v1", v1=KEY_1), sample_cookie(), name=NAME)
    read_only = keyring(None, v1=KEY_1)
    assert read_only.current_id is None
    assert read_only.can_write is False
    assert decode(read_only, token) == sample_cookie()
    assert encode_cookie(read_only, sample_cookie(), name=NAME) is None
    with pytest.raises(ConfigurationError, match="UMETRICS_COOKIE_KEY_CURRENT"):
        read_only.encrypt(b"x", associated_data=b"n")


def test_no_keys_at_all_writes_nothing_and_reads_nothing() -> None:
    ring = CookieKeyring.from_environ({"PATH": "/usr/bin", "UMETRICS_COOKIE_KEYS": "ignored"})
    assert ring.current_id is None
    assert dict(ring.keys) == {}
    assert ring.can_write is False
    assert encode_cookie(ring, sample_cookie(), name=NAME) is None
    token = encode_cookie(keyring(v1=KEY_1), sample_cookie(), name=NAME)
    assert decode(ring, token) is None


def test_every_key_variable_is_loaded_in_any_base64_flavour() -> None:
    urlsafe_unpadded = base64.urlsafe_b64encode(KEY_2).decode().rstrip("=")
    ring = CookieKeyring.from_environ(
        {
            "UMETRICS_COOKIE_KEY_CURRENT": "2024-b",
            "UMETRICS_COOKIE_KEY_old_1": b64(KEY_1) + "\n",
            "UMETRICS_COOKIE_KEY_2024-b": urlsafe_unpadded,
            "OTHER_KEY_v3": "not a key",
        }
    )
    assert ring.current_id == "2024-b"
    assert dict(ring.keys) == {"old_1": KEY_1, "2024-b": KEY_2}
    assert ring.can_write is True
    # KEY_2 has bytes whose standard encoding uses '+' or '/', so the urlsafe form differs.
    assert urlsafe_unpadded != b64(KEY_2).rstrip("=")


def test_generated_keys_are_accepted_by_from_environ() -> None:
    generated = [generate_cookie_key() for _ in range(10)]
    assert len(set(generated)) == 10
    for key in generated:
        assert len(base64.b64decode(key, validate=True)) == 32
        ring = CookieKeyring.from_environ(
            {"UMETRICS_COOKIE_KEY_CURRENT": "k", "UMETRICS_COOKIE_KEY_k": key}
        )
        assert ring.keys["k"] == base64.b64decode(key)
        assert decode(ring, encode_cookie(ring, sample_cookie(), name=NAME)) == sample_cookie()


SECRET = b64(KEY_1)

MISCONFIGURATIONS = [
    ({"UMETRICS_COOKIE_KEY_v1": SECRET[:-4] + "*!?#"}, "UMETRICS_COOKIE_KEY_v1", "base64"),
    ({"UMETRICS_COOKIE_KEY_v1": SECRET + "A"}, "UMETRICS_COOKIE_KEY_v1", "base64"),
    ({"UMETRICS_COOKIE_KEY_v1": b64(KEY_1[:31])}, "UMETRICS_COOKIE_KEY_v1", "got 31 bytes"),
    ({"UMETRICS_COOKIE_KEY_v1": b64(KEY_1 + b"!")}, "UMETRICS_COOKIE_KEY_v1", "got 33 bytes"),
    ({"UMETRICS_COOKIE_KEY_v1": ""}, "UMETRICS_COOKIE_KEY_v1", "got 0 bytes"),
    (
        {"UMETRICS_COOKIE_KEY_v1": SECRET, "UMETRICS_COOKIE_KEY_CURRENT": "v2"},
        "UMETRICS_COOKIE_KEY_v2 is not set",
        "UMETRICS_COOKIE_KEY_CURRENT names key id 'v2'",
    ),
    ({"UMETRICS_COOKIE_KEY_CURRENT": "v1"}, "UMETRICS_COOKIE_KEY_v1 is not set", "CURRENT"),
    ({"UMETRICS_COOKIE_KEY_a.b": SECRET}, "UMETRICS_COOKIE_KEY_a.b", "key id"),
    ({"UMETRICS_COOKIE_KEY_": SECRET}, "UMETRICS_COOKIE_KEY_:", "key id"),
    ({"UMETRICS_COOKIE_KEY_" + "x" * 17: SECRET}, "UMETRICS_COOKIE_KEY_" + "x" * 17, "key id"),
    (
        {"UMETRICS_COOKIE_KEY_v1": SECRET, "UMETRICS_COOKIE_KEY_CURRENT": "v 1"},
        "UMETRICS_COOKIE_KEY_CURRENT",
        "key id",
    ),
    (
        {"UMETRICS_COOKIE_KEY_v1": SECRET, "UMETRICS_COOKIE_KEY_CURRENT": "CURRENT"},
        "UMETRICS_COOKIE_KEY_CURRENT",
        "key id",
    ),
    (
        {"UMETRICS_COOKIE_KEY_v1": SECRET, "UMETRICS_COOKIE_KEY_CURRENT": ""},
        "UMETRICS_COOKIE_KEY_CURRENT",
        "key id",
    ),
]


@pytest.mark.parametrize(("environ", "variable", "detail"), MISCONFIGURATIONS)
def test_misconfiguration_names_the_variable_and_hides_the_key(
    environ: dict[str, str], variable: str, detail: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CookieKeyring.from_environ(environ)
    message = str(caught.value)
    assert variable in message
    assert detail in message
    whole_traceback = "".join(traceback.format_exception(caught.value))
    for value in environ.values():
        if len(value) > 8:
            assert value not in whole_traceback
            assert value[:16] not in whole_traceback
    assert SECRET[:16] not in whole_traceback


def test_repr_of_a_keyring_shows_ids_but_no_key_material() -> None:
    ring = keyring("v2", v1=KEY_1, v2=KEY_2)
    for text in (repr(ring), str(ring), f"{ring!r}"):
        assert text == "CookieKeyring(current_id='v2', key_ids=['v1', 'v2'])"
        for key in (KEY_1, KEY_2):
            for form in (repr(key), key.hex(), b64(key), base64.urlsafe_b64encode(key).decode()):
                assert form[2:20] not in text
    assert "\\x00\\x01" not in repr({"ring": ring})


def test_keyring_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValidationError) as caught:
        CookieKeyring(current_id="v1", keys={"v1": KEY_1[:16]})
    assert caught.value.field == "keys"
    assert KEY_1[:16].hex() not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        CookieKeyring(current_id="v2", keys={"v1": KEY_1})
    assert caught.value.field == "current_id"
    with pytest.raises(ValidationError) as caught:
        CookieKeyring(current_id=None, keys={"a.b": KEY_1})
    assert caught.value.field == "keys"
    assert CookieKeyring(current_id="v1", keys={"v1": KEY_1}) == keyring("v1", v1=KEY_1)


# --- associated data and dates ------------------------------------------------------------------


def test_token_for_one_cookie_name_is_rejected_under_another() -> None:
    ring = keyring(v1=KEY_1)
    token = encode_cookie(ring, sample_cookie(), name="a_consent")
    assert decode(ring, token, name="a_consent") == sample_cookie()
    assert decode(ring, token, name="b_consent") is None
    assert decode(ring, token, name="a_consent ") is None


@pytest.mark.parametrize(
    ("issued_at", "accepted"),
    [
        (NOW - 30 * DAY, True),  # exactly max_age old
        (NOW - 30 * DAY - 1, False),
        (NOW - 400 * DAY, False),
        (NOW, True),
        (NOW + 300, True),  # 5 minutes of clock skew
        (NOW + 301, False),
        (NOW + 10 * DAY, False),
    ],
)
def test_expired_and_future_cookies_yield_none(issued_at: int, accepted: bool) -> None:
    ring = keyring(v1=KEY_1)
    cookie = sample_cookie(issued_at=issued_at)
    token = encode_cookie(ring, cookie, name=NAME)
    decoded = decode(ring, token, max_age_seconds=30 * DAY)
    assert decoded == (cookie if accepted else None)


def test_missing_and_empty_tokens_yield_none() -> None:
    ring = keyring(v1=KEY_1)
    for token in (None, "", ".", "v1.", "v1", "v1..", "v1.AAAA", "v1." + "A" * 37):
        assert decode(ring, token) is None, token
    assert decode(ring, "v1." + "A" * MAX_TOKEN_BYTES) is None


def test_bad_arguments_to_decode_raise_validation_errors() -> None:
    ring = keyring(v1=KEY_1)
    for overrides, field in (
        ({"max_age_seconds": -1}, "max_age_seconds"),
        ({"max_age_seconds": True}, "max_age_seconds"),
        ({"now": 1.5}, "now"),
        ({"name": ""}, "name"),
    ):
        with pytest.raises(ValidationError) as caught:
            decode(ring, "v1.AAAA", **overrides)
        assert caught.value.field == field


# --- payload validation -------------------------------------------------------------------------

GOOD = {"v": 1, "aid": ANON, "c": True, "a": {"exp": ["on", 1]}, "iat": NOW}


def with_field(**changes: object) -> bytes:
    document = {**GOOD, **changes}
    return json.dumps(document).encode()


BAD_PAYLOADS = [
    with_field(v=2),
    with_field(v=True),
    with_field(v="1"),
    with_field(aid=12345),
    with_field(aid=""),
    with_field(aid="has space"),
    with_field(aid="x" * 65),
    with_field(c="yes"),
    with_field(c=1),
    with_field(c=None),
    with_field(a=[["exp", "on", 1]]),
    with_field(a={"exp": ["on"]}),
    with_field(a={"exp": ["on", 1, 2]}),
    with_field(a={"exp": [1, 1]}),
    with_field(a={"exp": ["on", True]}),
    with_field(a={"exp": ["on", -1]}),
    with_field(a={"exp": ["on", 1.0]}),
    with_field(a={"exp": {"variant": "on", "bucket_version": 1}}),
    with_field(a={"": ["on", 1]}),
    with_field(a={"exp": ["", 1]}),
    with_field(a={"exp": ["o n", 1]}),
    with_field(c=False),  # assignments are only stored with consent
    with_field(iat="1700000000"),
    with_field(iat=True),
    with_field(iat=1.7e9),
    with_field(iat=None),
    with_field(extra=1),
    json.dumps({k: v for k, v in GOOD.items() if k != "iat"}).encode(),
    json.dumps([GOOD]).encode(),
    b'{"v":1,"v":1,"aid":"abc","c":true,"a":{},"iat":1700000000}',
    b'{"v":1,"aid":"abc","c":true,"a":{"e":["on",1],"e":["off",1]},"iat":1700000000}',
    b'{"v":1,"aid":"abc","c":true,"a":{},"iat":NaN}',
    b'{"v":1,"aid":"abc","c":true,"a":{},"iat":1700000000',
    b'{"v":1,"aid":"\xff","c":true,"a":{},"iat":1700000000}',
    b"[" * 100_000,
    b"",
    b"null",
]


@pytest.mark.parametrize("plaintext", BAD_PAYLOADS, ids=range(len(BAD_PAYLOADS)))
def test_authentic_token_with_a_bad_payload_yields_none(plaintext: bytes) -> None:
    ring = keyring(v1=KEY_1)
    assert decode(ring, ring.encrypt(with_field(), associated_data=NAME.encode())) is not None
    token = ring.encrypt(plaintext, associated_data=NAME.encode())
    if len(token) < MAX_TOKEN_BYTES:
        assert ring.decrypt(token, associated_data=NAME.encode()) == plaintext
    assert decode(ring, token) is None


def test_good_payload_written_by_hand_decodes() -> None:
    ring = keyring(v1=KEY_1)
    token = ring.encrypt(with_field(), associated_data=NAME.encode())
    assert decode(ring, token) == ConsentCookie(
        anon_id=ANON, consent=True, assignments={"exp": CookieAssignment("on", 1)}, issued_at=NOW
    )


# --- cookie objects -----------------------------------------------------------------------------


def test_with_assignment_and_with_consent_return_new_objects() -> None:
    cookie = ConsentCookie(anon_id=ANON, consent=True, assignments={}, issued_at=NOW)
    assigned = cookie.with_assignment("exp", "b", 2)
    assert dict(cookie.assignments) == {}
    assert dict(assigned.assignments) == {"exp": CookieAssignment("b", 2)}
    reassigned = assigned.with_assignment("other", "a", 1).with_assignment("exp", "a", 3)
    assert list(reassigned.assignments) == ["other", "exp"]  # re-assigned: newest again
    assert reassigned.assignments["exp"] == CookieAssignment("a", 3)
    withdrawn = reassigned.with_consent(False)
    assert (withdrawn.consent, dict(withdrawn.assignments), withdrawn.anon_id) == (False, {}, ANON)
    assert withdrawn.with_consent(True).consent is True
    with pytest.raises(ValidationError) as caught:
        withdrawn.with_assignment("exp", "a", 1)
    assert caught.value.field == "consent"
    with pytest.raises(TypeError):
        reassigned.assignments["x"] = CookieAssignment("a", 1)  # type: ignore[index]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"anon_id": ""}, "anon_id"),
        ({"anon_id": "a b"}, "anon_id"),
        ({"consent": 1}, "consent"),
        ({"issued_at": -1}, "issued_at"),
        ({"issued_at": 1.5}, "issued_at"),
        ({"version": 2}, "version"),
        ({"assignments": {"exp": ("a", 1)}}, "assignments"),
        ({"assignments": {"bad key": CookieAssignment("a", 1)}}, "assignments"),
        ({"consent": False, "assignments": {"exp": CookieAssignment("a", 1)}}, "assignments"),
    ],
)
def test_cookie_constructor_names_the_bad_field(arguments: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"anon_id": ANON, "consent": True, "assignments": {}}
    values.update(arguments)
    values.setdefault("issued_at", NOW)
    with pytest.raises(ValidationError) as caught:
        ConsentCookie(**values)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_assignment_constructor_names_the_bad_field() -> None:
    for variant, version, field in (
        ("", 1, "variant"),
        ("x" * 101, 1, "variant"),
        ("a", -1, "bucket_version"),
        ("a", True, "bucket_version"),
    ):
        with pytest.raises(ValidationError) as caught:
            CookieAssignment(variant, version)
        assert caught.value.field == field


# --- size ---------------------------------------------------------------------------------------


def test_at_most_50_assignments_the_oldest_inserted_are_dropped() -> None:
    cookie = ConsentCookie(anon_id=ANON, consent=True, assignments={}, issued_at=NOW)
    for i in range(60):
        cookie = cookie.with_assignment(f"exp-{i}", "on", 1)
    assert MAX_ASSIGNMENTS == 50
    assert list(cookie.assignments) == [f"exp-{i}" for i in range(10, 60)]
    direct = ConsentCookie(
        anon_id=ANON,
        consent=True,
        assignments={f"e{i}": CookieAssignment("a", i) for i in range(55)},
        issued_at=NOW,
    )
    assert list(direct.assignments) == [f"e{i}" for i in range(5, 55)]
    ring = keyring(v1=KEY_1)
    token = encode_cookie(ring, cookie, name=NAME)
    assert token is not None and len(token) < MAX_TOKEN_BYTES
    assert decode(ring, token) == cookie


def test_token_stays_under_3800_bytes_by_dropping_the_oldest_assignments() -> None:
    cookie = ConsentCookie(anon_id=ANON, consent=True, assignments={}, issued_at=NOW)
    for i in range(50):
        cookie = cookie.with_assignment(f"{i:03d}" + "x" * 97, "v" * 100, 7)
    ring = keyring(v1=KEY_1)
    token = encode_cookie(ring, cookie, name=NAME)
    assert token is not None
    # Payload: 71 bytes + 209 per assignment + separators; 13 assignments make 2,800 bytes, a
    # token of 3 + ceil((12 + 2800 + 16) * 4 / 3) = 3,774 characters; 14 would make 4,054.
    assert len(token) == 3774
    decoded = decode(ring, token)
    assert decoded is not None
    assert list(decoded.assignments) == [f"{i:03d}" + "x" * 97 for i in range(37, 50)]
    assert decoded.anon_id == ANON and decoded.issued_at == NOW


# --- fuzzing ------------------------------------------------------------------------------------

FUZZ_RING = CookieKeyring(current_id="v1", keys={"v1": KEY_1, "v2": KEY_2})
URLSAFE = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.")


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(max_size=5000),
        URLSAFE,
        URLSAFE.map(lambda text: "v1." + text),
        URLSAFE.map(lambda text: "v2." + text),
    )
)
def test_arbitrary_text_never_raises_in_decode_cookie(token: str) -> None:
    assert decode(FUZZ_RING, token) is None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        ).map(lambda document: json.dumps(document).encode()),
        st.fixed_dictionaries(
            {
                "v": st.integers(0, 2) | st.booleans(),
                "aid": st.text(max_size=70),
                "c": st.booleans() | st.integers(0, 1),
                "a": st.dictionaries(st.text(max_size=5), st.lists(st.integers() | st.text())),
                "iat": st.integers() | st.floats(),
            }
        ).map(lambda document: json.dumps(document).encode()),
    )
)
def test_authentic_tokens_with_arbitrary_payloads_never_raise(plaintext: bytes) -> None:
    token = FUZZ_RING.encrypt(plaintext, associated_data=NAME.encode())
    decoded = decode(FUZZ_RING, token)
    if decoded is not None:  # only a well-formed v1 payload decodes, and it round-trips
        assert decode(FUZZ_RING, encode_cookie(FUZZ_RING, decoded, name=NAME)) == decoded

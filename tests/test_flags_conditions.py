"""Targeting conditions decide exactly as GrowthBook's evalCondition does (no database).

Every case carries its expected result as a literal, so a shared mistake fails too. Some
literals record GrowthBook quirks we follow on purpose (listed in the conditions module).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from growthbook.core import evalCondition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_umetrics.errors import ValidationError
from flask_umetrics.flags import conditions as conditions_module
from flask_umetrics.flags import regex as regex_module
from flask_umetrics.flags.conditions import (
    eval_condition,
    padded_version_string,
    referenced_segments,
    validate_condition,
)
from flask_umetrics.queries.segments import KEY_PATTERN

SUBJECT: dict[str, Any] = {
    "id": "u1",
    "country": "DE",
    "plan": "pro",
    "app_version": "2.3.1",
    "age": 31,
    "ratio": 0.5,
    "email": "Anna@Example.de",
    "verified": True,
    "nickname": None,
    "tags": ["beta", "mobile"],
    "scores": [3, 7, 12],
    "bits": [0, 1],
    "holes": [None, 0],
    "empty": [],
    "company": {
        "plan": "enterprise",
        "seats": 40,
        "admins": [{"name": "a", "role": "owner"}, {"name": "b", "role": "billing"}],
    },
}
S = SUBJECT

# (attributes, condition, expected). Every condition here is valid (validate_condition accepts it
# unchanged) and GrowthBook must decide it the same way.
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # equality by value
    (S, {"country": "DE"}, True),
    (S, {"country": "FR"}, False),
    (S, {"country": "de"}, False),
    (S, {"age": 31}, True),
    (S, {"age": 31.0}, True),
    (S, {"age": "31"}, False),
    (S, {"verified": True}, True),
    (S, {"verified": 1}, False),
    (S, {"missing": None}, True),
    (S, {"nickname": None}, True),
    (S, {"country": None}, False),
    (S, {"tags": ["beta", "mobile"]}, True),
    (S, {"tags": ["mobile", "beta"]}, False),
    (S, {"company.plan": "enterprise"}, True),
    (S, {"company.seats": 40, "country": "DE"}, True),
    (S, {"company.seats": 40, "country": "AT"}, False),
    (S, {"company.missing.deeper": None}, True),
    (S, {"company.plan.length": None}, True),
    (S, {"tags.0": "beta"}, True),
    (S, {"tags.length": 2}, True),
    (S, {"tags.01": "beta"}, False),
    (S, {"company.admins.1.role": "billing"}, True),
    ({"company": {"plan": "pro", "seats": 3}}, {"company": {"plan": "pro", "seats": 3}}, True),
    ({"company": {"seats": 3, "plan": "pro"}}, {"company": {"plan": "pro", "seats": 3}}, False),
    # $eq / $ne
    (S, {"country": {"$eq": "DE"}}, True),
    (S, {"age": {"$eq": "31"}}, False),
    (S, {"country": {"$ne": "FR"}}, True),
    (S, {"missing": {"$ne": "x"}}, True),
    (S, {"nickname": {"$ne": None}}, False),
    (S, {"verified": {"$ne": 1}}, True),
    # $gt $gte $lt $lte
    (S, {"age": {"$gt": 30}}, True),
    (S, {"age": {"$gt": 31}}, False),
    (S, {"age": {"$gte": 31}}, True),
    (S, {"age": {"$lt": 31.5}}, True),
    (S, {"age": {"$lte": 30}}, False),
    (S, {"age": {"$gt": 18, "$lt": 65}}, True),
    (S, {"tags": {"$gt": "a"}}, False),
    (S, {"country": {"$gt": "CH"}}, True),
    (S, {"country": {"$lt": "de"}}, True),
    ({"name": "z"}, {"name": {"$lt": "é"}}, True),
    # JS compares UTF-16 code units: U+1F600 (D83D DE00) sorts below U+FFFF.
    ({"name": "\U0001f600"}, {"name": {"$gt": "\uffff"}}, False),
    ({"name": "\U0001f600"}, {"name": {"$lt": "\uffff"}}, True),
    # $in / $nin / $ini / $nini
    (S, {"country": {"$in": ["DE", "AT", "CH"]}}, True),
    (S, {"country": {"$in": []}}, False),
    (S, {"country": {"$nin": ["DE"]}}, False),
    (S, {"missing": {"$nin": ["DE"]}}, True),
    (S, {"tags": {"$in": ["beta", "x"]}}, True),
    (S, {"tags": {"$nin": ["x", "y"]}}, True),
    (S, {"age": {"$in": ["31"]}}, False),
    (S, {"verified": {"$in": [1]}}, False),
    (S, {"bits": {"$in": [True]}}, False),
    (S, {"bits": {"$in": [1]}}, True),
    # The Python SDK finds a missing attribute (None) in [null]; JS's includes(undefined) would not.
    (S, {"missing": {"$in": [None]}}, True),
    (S, {"company": {"$in": ["enterprise"]}}, False),
    (S, {"country": {"$ini": ["de", "at"]}}, True),
    (S, {"tags": {"$nini": ["BETA"]}}, False),
    # $regex and friends (RE2; a match anywhere, as in GrowthBook)
    (S, {"email": {"$regex": "@example\\.de$"}}, False),
    (S, {"email": {"$regexi": "@example\\.de$"}}, True),
    (S, {"email": {"$regex": "^Anna"}}, True),
    (S, {"age": {"$regex": "3"}}, False),
    (S, {"missing": {"$regex": ".*"}}, False),
    (S, {"missing": {"$notRegex": "x"}}, True),
    (S, {"email": {"$notRegex": "q"}}, True),
    (S, {"email": {"$notRegexi": "ANNA"}}, False),
    # $exists (a null attribute counts as missing)
    (S, {"nickname": {"$exists": False}}, True),
    (S, {"missing": {"$exists": False}}, True),
    (S, {"country": {"$exists": True}}, True),
    (S, {"missing": {"$exists": True}}, False),
    (S, {"empty": {"$exists": True}}, True),
    # $type
    (S, {"age": {"$type": "number"}}, True),
    (S, {"tags": {"$type": "array"}}, True),
    (S, {"missing": {"$type": "null"}}, True),
    (S, {"company": {"$type": "object"}}, True),
    (S, {"verified": {"$type": "number"}}, False),
    (S, {"verified": {"$type": "boolean"}}, True),
    # $not on a value
    (S, {"country": {"$not": {"$in": ["FR", "DE"]}}}, False),
    (S, {"age": {"$not": {"$gt": 40}}}, True),
    (S, {"missing": {"$not": {"$gt": 40}}}, True),
    (S, {"country": {"$not": "FR"}}, True),
    (S, {"email": {"$not": {"$regex": "^Anna"}}}, False),
    # $size
    (S, {"tags": {"$size": 2}}, True),
    (S, {"tags": {"$size": 3}}, False),
    (S, {"tags": {"$size": {"$gt": 1, "$lt": 3}}}, True),
    (S, {"country": {"$size": 2}}, False),
    (S, {"empty": {"$size": 0}}, True),
    (S, {"missing": {"$size": 0}}, False),
    # $elemMatch
    (S, {"scores": {"$elemMatch": {"$gt": 10}}}, True),
    (S, {"scores": {"$elemMatch": {"$gt": 12}}}, False),
    (S, {"scores": {"$elemMatch": {"$gt": 4, "$lt": 6}}}, False),
    (S, {"company.admins": {"$elemMatch": {"role": "owner", "name": "a"}}}, True),
    (S, {"company.admins": {"$elemMatch": {"role": "owner", "name": "b"}}}, False),
    (S, {"company.admins": {"$elemMatch": {"$or": [{"role": "billing"}, {"name": "z"}]}}}, True),
    (S, {"country": {"$elemMatch": {"$eq": "DE"}}}, False),
    (S, {"holes": {"$elemMatch": {"$exists": False}}}, False),  # null elements are skipped
    (S, {"holes": {"$elemMatch": {"$eq": 0}}}, True),
    (S, {"empty": {"$elemMatch": {}}}, False),
    (S, {"scores": {"$elemMatch": {}}}, True),
    # $all / $alli
    (S, {"tags": {"$all": ["beta", "mobile"]}}, True),
    (S, {"tags": {"$all": ["beta", "desktop"]}}, False),
    (S, {"scores": {"$all": [{"$gt": 10}, {"$lt": 5}]}}, True),
    (S, {"scores": {"$all": [{"$gt": 12}]}}, False),
    (S, {"tags": {"$alli": ["BETA"]}}, True),
    (S, {"tags": {"$all": ["BETA"]}}, False),
    (S, {"country": {"$all": ["DE"]}}, False),
    (S, {"tags": {"$all": []}}, True),
    # versions
    (S, {"app_version": {"$vgt": "2.3.0"}}, True),
    (S, {"app_version": {"$vgt": "2.10.0"}}, False),
    (S, {"app_version": {"$vlt": "2.10.0"}}, True),
    (S, {"app_version": {"$veq": "v2.3.1+build7"}}, True),
    (S, {"app_version": {"$vgte": "2.3.1", "$vlte": "2.3.1"}}, True),
    (S, {"app_version": {"$vlte": "2.3.0"}}, False),
    (S, {"app_version": {"$vne": "2.3.1"}}, False),
    (S, {"app_version": {"$vne": "2.3.2"}}, True),
    ({"v": "1.2.3-beta"}, {"v": {"$vlt": "1.2.3"}}, True),
    ({"v": "1.2.3-beta"}, {"v": {"$vgt": "1.2.2"}}, True),
    ({"v": "1.2.3-rc.10"}, {"v": {"$vgt": "1.2.3-rc.9"}}, True),
    ({"v": "1.2.3-alpha"}, {"v": {"$vlt": "1.2.3-beta"}}, True),
    ({"v": "10.0.0"}, {"v": {"$vgt": "9.99.99"}}, True),
    (S, {"missing": {"$vne": "1.0.0"}}, True),  # a type mismatch is "not equal"
    (S, {"missing": {"$vlt": "1.0.0"}}, False),
    ({"v": 2}, {"v": {"$vgt": "1.0.0"}}, False),  # a number is not compared with a string
    # GrowthBook quirks followed for compatibility (see flask_umetrics.flags.conditions):
    # only 3-part versions get the "release" suffix, so 1.2 < 1.2-beta and 1.2.3.4 < 1.2.3;
    # and "02" is padded as text, so 1.02.3 is not 1.2.3.
    ({"v": "1.2"}, {"v": {"$vlt": "1.2-beta"}}, True),
    ({"v": "1.2.3.4"}, {"v": {"$vlt": "1.2.3"}}, True),
    ({"v": "1.02.3"}, {"v": {"$veq": "1.2.3"}}, False),
    # logic
    (S, {"$or": [{"country": "FR"}, {"plan": "pro"}]}, True),
    (S, {"$or": [{"country": "FR"}, {"plan": "free"}]}, False),
    (S, {"$or": []}, True),
    (S, {"$and": []}, True),
    (S, {"$nor": []}, False),
    (S, {"$nor": [{"country": "FR"}, {"age": {"$lt": 18}}]}, True),
    (S, {"$nor": [{"country": "FR"}, {"age": {"$gt": 18}}]}, False),
    (
        S,
        {"$and": [{"country": "DE"}, {"$or": [{"age": {"$lt": 18}}, {"plan": {"$in": ["pro"]}}]}]},
        True,
    ),
    (S, {"$and": [{"country": "DE"}, {"plan": "free"}]}, False),
    (S, {"$not": {"country": "DE"}}, False),
    (S, {"$not": {"$or": [{"country": "FR"}, {"missing": {"$exists": True}}]}}, True),
    (S, {"$not": {"$not": {"country": "DE"}}}, True),
    (S, {"country": "DE", "$or": [{"plan": "free"}]}, False),
    (S, {"$and": [{}]}, True),
    (S, {}, True),
    ({}, {"country": {"$nin": ["DE"]}, "age": {"$exists": False}}, True),
]

# Malformed conditions validate_condition rejects, or GrowthBook operators it does not accept;
# evaluation still never raises, and decides as GrowthBook does.
MALFORMED: list[tuple[dict[str, Any], bool]] = [
    ({"email": {"$regex": "("}}, False),
    ({"email": {"$notRegex": "("}}, True),
    ({"email": {"$regex": ["a"]}}, False),
    ({"email": {"$notRegex": 5}}, True),
    ({"country": {"$unknown": 1}}, False),
    ({"$not": {"country": {"$unknown": 1}}}, False),  # unknown stays unknown under $not
    ({"country": {"$not": {"$unknown": 1}}}, False),
    ({"country": {"$in": "DE"}}, False),
    ({"country": {"$nin": "FR"}}, False),
    ({"tags": {"$eq": ["beta", "mobile"]}}, False),
    ({"tags": {"$ne": ["beta", "mobile"]}}, True),
    ({"$and": "x"}, False),
    ({"$or": {}}, True),
    ({"$not": 5}, False),
    ({"$not": {"$and": 5}}, False),  # an error fails the whole condition, even under $not
    ({"country": {}}, True),  # an empty operator object matches anything
    ({"country": {"$exists": "no"}}, True),
    ({"country": {"$type": 5}}, False),
    ({"country": {"$inGroup": "g"}}, False),
    ({"country": {"$notInGroup": "g"}}, True),
    ({"country": {"$notInGroup": 5}}, False),
    ({"$savedGroup": {"id": "g"}}, False),
    ({"$savedGroups": ["g"]}, False),
    ({"country": {"$or": [{"country": "DE"}]}}, False),
    ({"country": {"$gt": 1, "x": 2}}, False),
    ({"scores": {"$elemMatch": 5}}, False),
    ({"scores": {"$elemMatch": {"$gt": 10, "$or": []}}}, False),
    ({"age": {"$gt": math.nan}}, False),
    ({"age": {"$ne": math.nan}}, True),
    ({"tags": {"$size": "2"}}, False),
    ({"app_version": {"$vgt": 2}}, False),
    ({"v": {"$vne": 2}}, True),
    ({"tags": {"$all": "beta"}}, False),
    ({"": None}, True),
    ({"age": {"$in": [[31]]}}, False),
]


def _has_segment_operator(node: Any) -> bool:
    if isinstance(node, Mapping):
        return any(
            k in ("$inSegment", "$notInSegment") or _has_segment_operator(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return any(_has_segment_operator(item) for item in node)
    return False


def _has_relational_operator(node: Any) -> bool:
    if isinstance(node, Mapping):
        return any(
            k in ("$lt", "$lte", "$gt", "$gte") or _has_relational_operator(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return any(_has_relational_operator(item) for item in node)
    return False


def test_table_is_large_and_mixed() -> None:
    assert len(CASES) >= 60
    assert sum(expected for _, _, expected in CASES) not in (0, len(CASES))


@pytest.mark.parametrize(("attributes", "condition", "expected"), CASES)
def test_case_equals_literal_and_growthbook(
    attributes: dict[str, Any], condition: dict[str, Any], expected: bool
) -> None:
    assert eval_condition(attributes, condition) is expected
    assert evalCondition(attributes, condition) is expected
    assert validate_condition(condition) == (condition or None)


#: Comparisons of a number with a non-number: GrowthBook's JS reference (and its conformance
#: vectors) compares the other side as a number (missing/null as 0, numeric strings, booleans);
#: growthbook-python 4 refuses mixed types. We follow the reference (issue 15).
#: (attributes, condition, ours and the JS reference, growthbook-python)
NUMBER_COERCION: list[tuple[dict[str, Any], dict[str, Any], bool, bool]] = [
    (S, {"age": {"$gt": "30"}}, True, False),
    (S, {"age": {"$gt": "31"}}, False, False),
    (S, {"age": {"$lt": "31.5"}}, True, False),
    (S, {"missing": {"$lt": 100}}, True, False),
    (S, {"missing": {"$gt": 0}}, False, False),
    (S, {"missing": {"$gte": 0}}, True, False),
    (S, {"nickname": {"$gte": 0}}, True, False),
    (S, {"verified": {"$gt": 0}}, True, False),
    (S, {"verified": {"$gt": 1}}, False, False),
    ({"n": "8"}, {"n": {"$gt": 5, "$lt": 10}}, True, False),
    ({"n": 8}, {"n": {"$gt": "5", "$lt": "10"}}, True, False),
    ({"n": "eight"}, {"n": {"$lt": 10}}, False, False),
    ({"n": "eight"}, {"n": {"$gte": 10}}, False, False),
    ({"n": ""}, {"n": {"$lt": 10}}, False, False),
    ({"n": "1e400"}, {"n": {"$gt": 10}}, False, False),
    (S, {"tags": {"$gt": 0}}, False, False),
    (S, {"company": {"$lt": 10}}, False, False),
]


@pytest.mark.parametrize(("attributes", "condition", "expected", "python_sdk"), NUMBER_COERCION)
def test_numbers_compare_with_non_numbers_as_growthbook_js(
    attributes: dict[str, Any], condition: dict[str, Any], expected: bool, python_sdk: bool
) -> None:
    assert eval_condition(attributes, condition) is expected
    assert evalCondition(attributes, condition) is python_sdk
    assert validate_condition(condition) == condition


def _strict_comparisons(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our evaluator as growthbook-python 4 compares: a number only with a number."""
    monkeypatch.setattr(conditions_module, "_as_number", lambda value: None)


@pytest.mark.parametrize(("condition", "expected"), MALFORMED)
def test_malformed_condition_evaluates_like_growthbook(
    condition: dict[str, Any], expected: bool
) -> None:
    assert eval_condition(SUBJECT, condition) is expected
    assert evalCondition(SUBJECT, condition) is expected
    with pytest.raises(ValidationError):
        validate_condition(condition)


def test_no_condition_targets_everyone() -> None:
    assert eval_condition({}, None) is True
    assert eval_condition(SUBJECT, {}) is True


def test_attributes_may_be_any_mapping() -> None:
    frozen = MappingProxyType({"country": "DE", "company": {"plan": "pro"}})
    assert eval_condition(frozen, {"country": "DE", "company.plan": "pro"}) is True
    assert eval_condition(frozen, {"country": "FR"}) is False


def test_padded_version_string_matches_growthbook() -> None:
    from growthbook.core import paddedVersionString

    for value in ("1.2.3", "v1.2.3+b", "1.2.3-rc.1", "", "1", 2, 1.5, 1e21, None, "10.0"):
        assert padded_version_string(value) == paddedVersionString(value)
    assert padded_version_string("1.2.3") == "    1-    2-    3-~"
    assert padded_version_string(1e21) == "1e"  # "+21" is dropped as build metadata


@settings(max_examples=500, deadline=None)
@given(value=st.text(alphabet="v+\n.-1a ", max_size=12))
def test_version_stripping_equals_growthbook_regex(value: str) -> None:
    from growthbook.core import paddedVersionString

    stripped = conditions_module._strip_prefix_and_build(value)
    assert stripped == re.sub(r"(^v|\+.*$)", "", value)
    assert padded_version_string(value) == paddedVersionString(value)


def test_version_operators_take_linear_time_on_crafted_values() -> None:
    # GrowthBook's regex for "+build" is quadratic on many "+" before a newline (about a
    # second at 20,000 characters); an attribute value is the subject's to choose.
    crafted = "+" * 20_000 + "\nx"
    condition = {"app_version": {"$vgt": "1.0.0"}}
    assert eval_condition({"app_version": crafted}, condition) is True  # "+" sorts after " "
    best = float("inf")
    for _ in range(3):  # the best of three: a busy machine may pause any single run
        started = time.perf_counter()
        eval_condition({"app_version": crafted}, condition)
        best = min(best, time.perf_counter() - started)
    assert best < 0.010, f"{best * 1000:.1f} ms"
    info = conditions_module._padded_cached.cache_info()
    assert padded_version_string(crafted) == crafted  # the "+" are not on the last line
    assert conditions_module._padded_cached.cache_info() == info  # long values are not cached


def test_regex_compiled_once() -> None:
    regex_module.compile_pattern.cache_clear()
    condition = {"email": {"$regex": "^[a-z]+@example\\.(de|com)$"}}
    for _ in range(5):
        assert eval_condition({"email": "anna@example.de"}, condition) is True
    info = regex_module.compile_pattern.cache_info()
    assert (info.misses, info.hits) == (1, 4)


# -- segments ----------------------------------------------------------------------------------


class FakeSegments:
    """A membership lookup that records what was asked."""

    def __init__(self, *members: str) -> None:
        self.members = set(members)
        self.asked: list[str] = []

    def __call__(self, key: str) -> bool:
        self.asked.append(key)
        return key in self.members


SEGMENT_CASES: list[tuple[dict[str, Any], bool, bool]] = [
    # (condition, with a lookup where the subject is in "beta-testers" only, without a lookup)
    ({"$inSegment": "beta-testers"}, True, False),
    ({"$inSegment": "churned"}, False, False),
    ({"$notInSegment": "churned"}, True, True),
    ({"$notInSegment": "beta-testers"}, False, True),
    ({"country": "DE", "$inSegment": "beta-testers"}, True, False),
    ({"$and": [{"country": "DE"}, {"$notInSegment": "churned"}]}, True, True),
    ({"$or": [{"country": "FR"}, {"$inSegment": "beta-testers"}]}, True, False),
    ({"$or": [{"$inSegment": "churned"}, {"plan": "free"}]}, False, False),
    ({"$not": {"$inSegment": "beta-testers"}}, False, True),
    ({"$nor": [{"$inSegment": "churned"}]}, True, True),
    ({"$inSegment": "beta-testers", "$notInSegment": "churned"}, True, False),
]


@pytest.mark.parametrize(("condition", "with_lookup", "without_lookup"), SEGMENT_CASES)
def test_segment_operators(
    condition: dict[str, Any], with_lookup: bool, without_lookup: bool
) -> None:
    lookup = FakeSegments("beta-testers")
    assert eval_condition(SUBJECT, condition, in_segment=lookup) is with_lookup
    assert set(lookup.asked) <= referenced_segments(condition)
    assert eval_condition(SUBJECT, condition) is without_lookup
    assert validate_condition(condition) == condition


def test_segment_lookup_follows_evaluation_order() -> None:
    lookup = FakeSegments("beta-testers")
    condition: dict[str, Any] = {"country": "FR", "$inSegment": "beta-testers"}
    assert eval_condition(SUBJECT, condition, in_segment=lookup) is False
    assert lookup.asked == []
    condition = {"$or": [{"$inSegment": "beta-testers"}, {"$inSegment": "churned"}]}
    assert eval_condition(SUBJECT, condition, in_segment=lookup) is True
    assert lookup.asked == ["beta-testers"]


def test_segment_lookup_errors_propagate() -> None:
    def broken(key: str) -> bool:
        raise ValueError(f"no membership for {key}")

    with pytest.raises(ValueError, match="no membership for beta"):
        eval_condition(SUBJECT, {"$not": {"$inSegment": "beta"}}, in_segment=broken)


def test_referenced_segments() -> None:
    condition = {
        "$inSegment": "a",
        "country": "DE",
        "$or": [
            {"$notInSegment": "b"},
            {"$and": [{"$not": {"$inSegment": "c"}}, {"plan": {"$in": ["x"]}}]},
        ],
        "$nor": [{"$inSegment": "a"}],
    }
    assert referenced_segments(condition) == {"a", "b", "c"}
    assert referenced_segments({"country": "DE"}) == set()
    assert referenced_segments({}) == set()
    assert referenced_segments(None) == set()


def test_segment_key_pattern_is_the_segments_one() -> None:
    assert conditions_module.SEGMENT_KEY_PATTERN.pattern == KEY_PATTERN.pattern


# -- validation --------------------------------------------------------------------------------


def _nested_not(levels: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"country": "DE"}
    for _ in range(levels - 1):
        condition = {"$not": condition}
    return condition


INVALID: list[tuple[Any, str]] = [
    ("DE", "conditions"),
    ([{"country": "DE"}], "conditions"),
    ({"country": {"$foo": 1}}, "conditions.country.$foo"),
    ({"$foo": 1}, "conditions.$foo"),
    ({"country": {"$in": "DE"}}, "conditions.country.$in"),
    ({"country": {"$nin": None}}, "conditions.country.$nin"),
    ({"country": {"$in": ["DE", ["AT"]]}}, "conditions.country.$in.1"),
    ({"email": {"$regex": "("}}, "conditions.email.$regex"),
    ({"email": {"$regexi": "a" * 501}}, "conditions.email.$regexi"),
    ({"email": {"$notRegex": 5}}, "conditions.email.$notRegex"),
    ({"v": {"$vgt": 2}}, "conditions.v.$vgt"),
    ({"v": {"$veq": "latest"}}, "conditions.v.$veq"),
    ({"v": {"$vlt": ""}}, "conditions.v.$vlt"),
    ({"x": {"$exists": 1}}, "conditions.x.$exists"),
    ({"x": {"$type": "int"}}, "conditions.x.$type"),
    ({"x": {"$type": []}}, "conditions.x.$type"),
    ({"x": {"$gt": True}}, "conditions.x.$gt"),
    ({"x": {"$lte": None}}, "conditions.x.$lte"),
    ({"x": {"$lt": math.inf}}, "conditions.x.$lt"),
    ({"x": {"$eq": [1]}}, "conditions.x.$eq"),
    ({"x": {"$ne": {"a": 1}}}, "conditions.x.$ne"),
    ({"x": {"$size": -1}}, "conditions.x.$size"),
    ({"x": {"$size": "2"}}, "conditions.x.$size"),
    ({"x": {"$size": {"$gt": "a", "$foo": 1}}}, "conditions.x.$size.$foo"),
    ({"x": {"$all": "a"}}, "conditions.x.$all"),
    ({"x": {"$all": ["a", {}]}}, "conditions.x.$all.1"),
    ({"x": {"$elemMatch": [1]}}, "conditions.x.$elemMatch"),
    ({"x": {"$elemMatch": {"$gt": 1, "$bad": 2}}}, "conditions.x.$elemMatch.$bad"),
    ({"x": {"$elemMatch": {"$inSegment": "s"}}}, "conditions.x.$elemMatch.$inSegment"),
    ({"x": {"$elemMatch": {"n": 1, "$inSegment": "s"}}}, "conditions.x.$elemMatch.$inSegment"),
    ({"x": {"$not": {"$in": 5}}}, "conditions.x.$not.$in"),
    ({"x": {"$gt": 1, "y": 2}}, "conditions.x.y"),
    ({"x": {}}, "conditions.x"),
    ({"x": math.nan}, "conditions.x"),
    ({"x": [1, {"a": math.inf}]}, "conditions.x.1.a"),
    ({"": 1}, "conditions."),
    ({"a..b": 1}, "conditions.a..b"),
    ({1: "a"}, "conditions"),
    ({"$and": {"a": 1}}, "conditions.$and"),
    ({"$or": [{"a": 1}, 1]}, "conditions.$or.1"),
    ({"$nor": "x"}, "conditions.$nor"),
    ({"$not": [{"a": 1}]}, "conditions.$not"),
    ({"$or": [{"x": {"$nin": 5}}]}, "conditions.$or.0.x.$nin"),
    ({"$and": [{"$not": {"x": {"$regex": "["}}}]}, "conditions.$and.0.$not.x.$regex"),
    ({"$inSegment": 5}, "conditions.$inSegment"),
    ({"$notInSegment": "no spaces"}, "conditions.$notInSegment"),
    ({"$savedGroup": {"id": "g"}}, "conditions.$savedGroup"),
    ({"x": {"$inGroup": "g"}}, "conditions.x.$inGroup"),
    (_nested_not(11), "conditions" + ".$not" * 10),
    ({"$and": [{"a": i} for i in range(200)]}, "conditions.$and.199.a"),
]


@pytest.mark.parametrize(("condition", "field"), INVALID)
def test_validation_error_names_the_path(condition: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_condition(condition)
    assert caught.value.field == field


def test_validation_uses_the_given_field_name() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_condition({"x": {"$foo": 1}}, field="rules.2.conditions")
    assert caught.value.field == "rules.2.conditions.x.$foo"
    assert "$foo" in caught.value.message


def test_validation_limits_are_inclusive() -> None:
    assert validate_condition(_nested_not(10)) == _nested_not(10)
    assert len(validate_condition({"$and": [{"a": i} for i in range(199)]})["$and"]) == 199  # type: ignore[index]
    assert validate_condition({"p": {"$regex": "a" * 500}}) == {"p": {"$regex": "a" * 500}}


def test_validation_returns_a_plain_copy() -> None:
    assert validate_condition(None) is None
    assert validate_condition({}) is None
    inner = {"country": {"$in": ["DE"]}}
    original = {"$or": [inner]}
    copy = validate_condition(original)
    assert copy == original
    assert copy is not original
    assert copy is not None
    assert copy["$or"][0] is not inner
    assert validate_condition(MappingProxyType({"country": "DE"})) == {"country": "DE"}
    assert type(validate_condition(MappingProxyType({"country": "DE"}))) is dict


# -- random conditions -------------------------------------------------------------------------

ATTRIBUTE_KEYS = st.sampled_from(
    [
        *("country", "age", "ratio", "tags", "scores", "bits", "holes", "missing", "nickname"),
        *("company.plan", "company.admins", "tags.0", "tags.length", "verified", "app_version"),
    ]
)
OPERATORS = st.sampled_from(
    [
        *("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$ini", "$nini", "$regex"),
        *("$regexi", "$notRegex", "$exists", "$type", "$not", "$size", "$elemMatch", "$all"),
        *("$alli", "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte", "$foo", "$inGroup", "$or"),
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["DE", "de", "beta", "pro", "enterprise", "", "2.3.1", "v1.2.3-rc.1"]),
    st.sampled_from(["^b", "(", "a|B", "number", "array", "null", "1.10.0", "\U0001f600"]),
)


def _values(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(OPERATORS, children, max_size=3),
        st.dictionaries(ATTRIBUTE_KEYS, children, max_size=2),
    )


VALUES = st.recursive(SCALARS, _values, max_leaves=12)
CONDITION_KEYS = st.one_of(
    ATTRIBUTE_KEYS, st.sampled_from(["$and", "$or", "$nor", "$not", "$inSegment", "$savedGroup"])
)


def _conditions(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    logical = st.one_of(
        st.builds(
            lambda k, v: {k: v},
            st.sampled_from(["$and", "$or", "$nor"]),
            st.lists(children, max_size=3),
        ),
        st.builds(lambda v: {"$not": v}, children),
    )
    return st.one_of(logical, st.dictionaries(CONDITION_KEYS, VALUES, max_size=3))


CONDITIONS = st.recursive(
    st.dictionaries(CONDITION_KEYS, VALUES, max_size=3), _conditions, max_leaves=8
)
ATTRIBUTES = st.one_of(
    st.just(SUBJECT),
    st.dictionaries(ATTRIBUTE_KEYS.filter(lambda k: "." not in k), VALUES, max_size=4),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=CONDITIONS, attributes=ATTRIBUTES)
def test_random_conditions_validate_or_agree_with_growthbook(
    condition: dict[str, Any], attributes: dict[str, Any]
) -> None:
    lookup = FakeSegments("beta")
    ours = eval_condition(attributes, condition, in_segment=lookup)
    assert isinstance(ours, bool)
    # growthbook-python does not coerce mixed types in comparisons (NUMBER_COERCION): it is
    # compared with our evaluator made as strict, which must equal ours without comparisons.
    with pytest.MonkeyPatch.context() as patch:
        _strict_comparisons(patch)
        strict = eval_condition(attributes, condition, in_segment=lookup)
    if not _has_relational_operator(condition):
        assert strict is ours
    try:
        validated = validate_condition(condition)
    except ValidationError as error:
        assert error.field.startswith("conditions")
        validated = None
    else:
        assert eval_condition(attributes, validated, in_segment=lookup) is ours
    if not _has_segment_operator(condition):
        assert strict is evalCondition(attributes, condition)
        if validated is not None:
            assert evalCondition(attributes, validated) is strict

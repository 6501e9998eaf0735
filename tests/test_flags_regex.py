"""``$regex`` targeting runs in linear time (RE2) with GrowthBook's semantics (issue 12, item 5).

GrowthBook's own evalCondition vectors (regex cases included) run in
tests/test_growthbook_conformance.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import re2
from flask import Flask
from sqlalchemy import update

from flask_umetrics import create_experiment, resolve_variant, start_experiment
from flask_umetrics.db.tables import experiments
from flask_umetrics.errors import ValidationError
from flask_umetrics.flags import regex as regex_module
from flask_umetrics.flags.conditions import eval_condition, validate_condition

from .conftest import AppFactory

#: The issue's pattern: nested quantifiers, exponential for a backtracking engine.
CATASTROPHIC = r"^([a-z0-9]+-?)+\.example\.com$"


def _best_of(runs: int, work: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


# -- linear time ------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [26, 100, 1_000, 10_000])
def test_catastrophic_pattern_on_a_crafted_value_takes_under_10_ms(length: int) -> None:
    # "aaaa…!" never matches and makes a backtracking engine try every split of the a's:
    # Python's re needs about a second at 26 characters (and doubles per character).
    crafted = "a" * (length - 1) + "!"
    condition = {"domain": {"$regex": CATASTROPHIC}}
    assert eval_condition({"domain": crafted}, condition) is False
    seconds = _best_of(3, lambda: eval_condition({"domain": crafted}, condition))
    assert seconds < 0.010, f"{seconds * 1000:.1f} ms at {length} characters"


def test_catastrophic_pattern_still_matches_what_it_should() -> None:
    condition = {"domain": {"$regex": CATASTROPHIC}}
    long_match = "a-" * 5_000 + "b.example.com"
    assert len(long_match) > 10_000
    assert eval_condition({"domain": long_match}, condition) is True
    assert eval_condition({"domain": "shop-eu.example.com"}, condition) is True
    assert eval_condition({"domain": "shop--eu.example.com"}, condition) is False
    assert eval_condition({"domain": "shop.example.com.evil"}, condition) is False
    seconds = _best_of(3, lambda: eval_condition({"domain": long_match}, condition))
    assert seconds < 0.010, f"{seconds * 1000:.1f} ms"


def test_every_operator_compiles_with_re2() -> None:
    regex_module.compile_pattern.cache_clear()
    for operator in ("$regex", "$regexi", "$notRegex", "$notRegexi"):
        eval_condition({"domain": "x"}, {"domain": {operator: CATASTROPHIC}})
    assert regex_module.compile_pattern.cache_info().currsize == 2  # case-sensitive, -insensitive
    assert isinstance(regex_module.compile_pattern(CATASTROPHIC, False), re2._Regexp)
    assert isinstance(regex_module.compile_pattern(CATASTROPHIC, True), re2._Regexp)


# -- semantics --------------------------------------------------------------------------------

SEMANTICS: list[tuple[str, str, str, bool]] = [
    # A match anywhere (RegExp.test / re.search), anchors only when written.
    ("$regex", "Mobile", "Android Mobile Browser", True),
    ("$regex", "^Mobile", "Android Mobile Browser", False),
    ("$regex", "Browser$", "Android Mobile Browser", True),
    ("$regex", "^Android Mobile Browser$", "Android Mobile Browser", True),
    ("$regex", r"\AAndroid", "Android", True),
    # Classes, repetition, alternation, groups.
    ("$regex", r"^[a-z0-9._%+-]+@example\.(de|com)$", "anna.b+x@example.de", True),
    ("$regex", r"^[a-z0-9._%+-]+@example\.(de|com)$", "anna@example.fr", False),
    ("$regex", r"^\d{4}-\d{2}-\d{2}$", "2026-12-04", True),
    ("$regex", r"^\d{4}-\d{2}-\d{2}$", "2026-12-4", False),
    ("$regex", r"^\w+\s\w+$", "hello world", True),
    ("$regex", r"(?P<tld>de|at)$", "example.at", True),
    ("$regex", r"\bpro\b", "the pro plan", True),
    ("$regex", r"\bpro\b", "the professional plan", False),
    ("$regex", r"^(?:iPhone|iPad);", "iPad; CPU OS 17", True),
    ("$regex", r"https?://", "http://a", True),
    ("$regex", r"a\/b", "a/b", True),  # an escaped slash, as written for JS
    ("$regex", r"^a.*?b$", "axxb", True),
    ("$regex", r"^\p{L}+$", "Émile", True),
    ("$regex", r"^\p{L}+$", "Émile1", False),
    ("$regex", r"end\z", "the end", True),
    # Case: $regexi, and the inline flag.
    ("$regex", "(mobile|tablet)", "Android Mobile Browser", False),
    ("$regexi", "(MOBILE|TABLET)", "android mobile browser", True),
    ("$regex", "(?i)(mobile|tablet)", "Android Mobile Browser", True),
    ("$regex", "(?i)^ANNA@", "anna@example.de", True),
    ("$regexi", "^émile$", "ÉMILE", True),
    ("$notRegex", "^test-", "test-user", False),
    ("$notRegexi", "^TEST-", "prod-user", True),
    # Unicode values and escapes as Python and JS write them.
    ("$regex", "^.{3}$", "äöü", True),
    ("$regex", r"^caf\u00e9$", "café", True),
    ("$regex", r"^\U0001F600$", "\U0001f600", True),
    ("$regex", r"done\Z", "all done", True),  # Python's end of input
    ("$regex", r"done\Z", "done twice", False),
    ("$regex", r"\\Z", "a\\Z", True),  # an escaped backslash, then a literal Z
]


@pytest.mark.parametrize(("operator", "pattern", "value", "expected"), SEMANTICS)
def test_patterns_people_use_keep_their_meaning(
    operator: str, pattern: str, value: str, expected: bool
) -> None:
    condition = {"attr": {operator: pattern}}
    assert eval_condition({"attr": value}, condition) is expected
    assert validate_condition(condition) == condition


def test_re2_syntax_rewrite_is_escape_aware() -> None:
    rewrite = regex_module.to_re2_syntax
    assert rewrite(r"a\Z") == r"a\z"
    assert rewrite(r"a\\Z") == r"a\\Z"
    assert rewrite(r"\u00e9\U0001F600") == r"\x{00e9}\x{0001F600}"
    assert rewrite(r"\u00g9") == r"\u00g9"  # not four hex digits: left for RE2 to refuse
    assert rewrite("plain") == "plain"
    assert rewrite("ends with \\") == "ends with \\"


# -- refused at save, never matching at evaluation ---------------------------------------------

REFUSED = [
    r"^(a)\1$",  # backreference
    r"^(?P<x>a)(?P=x)$",  # named backreference
    r"^(?=.*\d)",  # lookahead
    r"^(?!admin)",  # negative lookahead
    r"(?<=@)example",  # lookbehind
    r"(?<!no)reply",  # negative lookbehind
    r"(?>a+)b",  # atomic group
    r"a++b",  # possessive quantifier
    r"(?x) a b",  # verbose mode
    "/???***[)",  # GrowthBook's invalid vector
    "(",
    "\ud800",  # a lone surrogate (JSON can carry one): not Unicode RE2 can read
]


@pytest.mark.parametrize("pattern", REFUSED)
@pytest.mark.parametrize("operator", ["$regex", "$notRegexi"])
def test_patterns_re2_cannot_run_are_refused_naming_the_field(operator: str, pattern: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_condition({"$or": [{"email": {operator: pattern}}]})
    assert refused.value.field == f"conditions.$or.0.email.{operator}"
    assert "RE2" in refused.value.message


@pytest.mark.parametrize("pattern", REFUSED)
def test_a_stored_pattern_re2_cannot_run_never_matches(pattern: str) -> None:
    # As GrowthBook does with a pattern it cannot compile: $regex is False, $notRegex True.
    assert eval_condition({"email": "aa"}, {"email": {"$regex": pattern}}) is False
    assert eval_condition({"email": "aa"}, {"email": {"$regexi": pattern}}) is False
    assert eval_condition({"email": "aa"}, {"email": {"$notRegex": pattern}}) is True
    assert eval_condition({"email": "aa"}, {"email": {"$not": {"$regex": pattern}}}) is True


def test_values_re2_cannot_read_do_not_raise() -> None:
    assert eval_condition({"email": "\ud800"}, {"email": {"$regex": "."}}) is False
    assert eval_condition({"email": 5}, {"email": {"$regex": "5"}}) is False
    assert eval_condition({"email": ["a"]}, {"email": {"$regex": "a"}}) is False


def test_a_stored_backreference_serves_the_control_without_an_error(
    make_app: AppFactory,
) -> None:
    # Saved before this check existed (written straight into the table here): evaluation
    # treats it as not matching and the subject gets the control, with no 500.
    app: Flask = make_app()
    body = {
        "key": "vip",
        "variants": [{"key": "control", "weight": 0}, {"key": "vip", "weight": 1}],
        "coverage": 1.0,
        "conditions": {"email": {"$regex": "@vip\\.example$"}},
    }
    with app.app_context():
        create_experiment(body)
        start_experiment("vip")
        attributes = {"email": "anna@vip.example"}
        served = resolve_variant("vip", subject_id="u1", consent=False, attributes=attributes)
        assert (served.variant, served.reason) == ("vip", "hash")
        with app.extensions["umetrics"].engine.begin() as connection:
            connection.execute(
                update(experiments)
                .where(experiments.c.key == "vip")
                .values(conditions={"email": {"$regex": r"^(\w)\1@vip\.example$"}})
            )
        app.extensions["umetrics"].flag_cache.invalidate("default")
        result = resolve_variant("vip", subject_id="u1", consent=False, attributes=attributes)
        assert (result.variant, result.reason) == ("control", "targeting")

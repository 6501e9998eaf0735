"""GrowthBook's cross-SDK conformance vectors, run against our engine (issue 15).

The vectors are GrowthBook's data files in ``shared/conformance/growthbook/`` beside the checkout
(``UMETRICS_CONFORMANCE_DIR``, else found by walking up from this file); they are never copied
into the repository. Without them the test skips, unless ``UMETRICS_REQUIRE_CONFORMANCE=1`` (CI)
makes that a failure.

Every case of every section runs, except the sections and cases listed in
``UNSUPPORTED_SECTIONS`` / ``UNSUPPORTED_CASES`` (each with its reason, also in
docs/flags-experiments.md); a listed name that is not in the data file fails the test, so the lists
cannot go stale.
"""

from __future__ import annotations

import json
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from flask_umetrics.flags.compiled import compile_condition
from flask_umetrics.flags.conditions import eval_condition, padded_version_string
from flask_umetrics.flags.feature_eval import EvalContext, Evaluator
from flask_umetrics.flags.hashing import (
    bucket_ranges,
    choose_variant,
    equal_weights,
    gb_hash,
    in_namespace,
)
from flask_umetrics.flags.query_force import query_string_override

CASES_FILE = "cases.json"
VERSION_COMPARE_FILE = "cases_versionCompare_0.5.4.json"
REQUIRED = os.environ.get("UMETRICS_REQUIRE_CONFORMANCE") == "1"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "flags-experiments.md"

#: Sections of cases.json we do not implement, with the reason (docs/flags-experiments.md).
UNSUPPORTED_SECTIONS = {
    "decrypt": "encrypted payloads: our flags are served by our own API over TLS, never encrypted",
    "urlRedirect": "URL-redirect experiments: a browser-side visual-editor feature",
    "contextualBandit": "contextual bandits: no bandit engine; experiments use fixed weights",
}
#: Single cases of supported sections that use an unsupported feature.
_BANDIT = "contextual bandits"
UNSUPPORTED_CASES = {
    ("feature", name): _BANDIT
    for name in (
        "CB rule with empty contexts (explore) buckets on marginal weights with fallback leaf -1",
        "CB rule with no contexts key falls back to marginal weights (fallback leaf -1)",
        "CB rule with empty contexts uses marginal weights (fallback leaf -1)",
        "CB rule with empty contexts is overridden by forced variation like a normal experiment",
    )
}
SECTIONS = (
    "hash",
    "getBucketRange",
    "chooseVariation",
    "getEqualWeights",
    "inNamespace",
    "getQueryStringOverride",
    "evalCondition",
    "run",
    "stickyBucket",
    "feature",
)


def _folder() -> Path | None:
    """``UMETRICS_CONFORMANCE_DIR`` when set (``.ci/run`` sets it), else the first
    ``shared/conformance/growthbook`` above this file."""
    given = os.environ.get("UMETRICS_CONFORMANCE_DIR")
    if given:
        return Path(given) if (Path(given) / CASES_FILE).is_file() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "conformance" / "growthbook"
        if (candidate / CASES_FILE).is_file():
            return candidate
    return None


@cache
def _data(name: str) -> dict[str, Any] | None:
    folder = _folder()
    if folder is None or not (folder / name).is_file():
        return None
    data: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    return data


def _require(name: str) -> dict[str, Any]:
    data = _data(name)
    if data is None:
        message = (
            f"GrowthBook conformance vectors not found: no shared/conformance/growthbook/{name} "
            f"in any folder above {Path(__file__).parent}"
        )
        if REQUIRED:
            pytest.fail(message + " (UMETRICS_REQUIRE_CONFORMANCE=1)")
        pytest.skip(message)
    return data


def _case_name(section: str, case: Any) -> str:
    if section in ("getEqualWeights",):
        return f"{case[0]} variations"
    if section == "hash":
        return f"{case[0]!r}+{case[1]!r} v{case[2]}"
    return str(case[0])


def _params() -> list[Any]:
    data = _data(CASES_FILE)
    if data is None:
        return [pytest.param("missing", 0, id="vectors-missing")]
    params = []
    for section in SECTIONS:
        for index, case in enumerate(data[section]):
            name = _case_name(section, case)
            params.append(pytest.param(section, index, id=f"{section}[{index}] {name}"))
    return params


# -- the sections ------------------------------------------------------------------------------


def _context(raw: dict[str, Any], sticky_docs: dict[str, Any] | None = None) -> EvalContext:
    return EvalContext(
        attributes=raw.get("attributes") or {},
        features=raw.get("features") or {},
        forced_variations=raw.get("forcedVariations") or {},
        url=raw.get("url") or "",
        enabled=raw.get("enabled", True),
        qa_mode=bool(raw.get("qaMode")),
        saved_groups=raw.get("savedGroups") or {},
        sticky_docs=sticky_docs,
    )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, abs_tol=1e-6)
    return bool(a == b)


def _check(section: str, case: list[Any]) -> None:
    if section == "hash":
        seed, value, version, expected = case
        assert gb_hash(seed, value, version) == expected
    elif section == "getBucketRange":
        _, (count, coverage, weights), expected = case
        ours = [list(bounds) for bounds in bucket_ranges(count, coverage, weights)]
        assert _close(ours, expected), ours
    elif section == "chooseVariation":
        _, n, ranges, expected = case
        assert choose_variant(n, [tuple(r) for r in ranges]) == expected
    elif section == "getEqualWeights":
        count, expected = case
        assert _close(equal_weights(count), expected)
    elif section == "inNamespace":
        _, subject, (name, start, end), expected = case
        assert in_namespace(subject, name, start, end) is expected
    elif section == "getQueryStringOverride":
        _, key, url, count, expected = case
        assert query_string_override(key, url, count) == expected
    elif section == "evalCondition":
        _, condition, attributes, expected, *groups = case
        saved_groups = groups[0] if groups else None
        assert eval_condition(attributes, condition, saved_groups=saved_groups) is expected
        compiled = compile_condition(condition)  # the hot path's form of a flat condition
        assert compiled is None or compiled(attributes) is expected
    elif section == "run":
        _, raw, experiment, value, in_experiment, hash_used = case
        result = Evaluator(_context(raw)).run(experiment)
        assert (result.value, result.in_experiment, result.hash_used) == (
            value,
            in_experiment,
            hash_used,
        )
    elif section == "feature":
        _, raw, key, expected = case
        result = Evaluator(_context(raw)).eval_feature(key)
        ours: dict[str, Any] = {
            "value": result.value,
            "on": result.on,
            "off": result.off,
            "source": result.source,
            "ruleId": result.rule_id,
        }
        if result.experiment is not None:
            ours["experiment"] = dict(result.experiment)
        if result.experiment_result is not None:
            ours["experimentResult"] = result.experiment_result.to_json()
        assert ours == expected
    elif section == "stickyBucket":
        _, raw, stored, key, expected, expected_docs = case
        attributes = raw.get("attributes") or {}
        docs = {
            f"{doc['attributeName']}||{doc['attributeValue']}": doc
            for doc in stored
            if str(attributes.get(doc["attributeName"])) == doc["attributeValue"]
        }
        docs.update(raw.get("stickyBucketAssignmentDocs") or {})
        result = Evaluator(_context(raw, docs)).eval_feature(key)
        outcome = result.experiment_result
        assert (outcome.to_json() if outcome is not None else None) == expected
        assert docs == expected_docs
    else:  # pragma: no cover - SECTIONS lists only the branches above
        raise AssertionError(section)


@pytest.mark.parametrize(("section", "index"), _params())
def test_growthbook_case(section: str, index: int) -> None:
    data = _require(CASES_FILE)
    case = data[section][index]
    reason = UNSUPPORTED_CASES.get((section, _case_name(section, case)))
    if reason is not None:
        pytest.skip(f"unsupported by decision ({reason}): docs/flags-experiments.md")
    _check(section, case)


def test_every_section_is_run_or_documented_as_unsupported() -> None:
    data = _require(CASES_FILE)
    sections = {key for key, value in data.items() if isinstance(value, list)}
    assert sections == set(SECTIONS) | set(UNSUPPORTED_SECTIONS)
    names = {(section, _case_name(section, case)) for section in SECTIONS for case in data[section]}
    assert set(UNSUPPORTED_CASES) <= names
    docs = DOCS.read_text(encoding="utf-8")
    for section in UNSUPPORTED_SECTIONS:
        assert f"`{section}`" in docs, section
    assert "contextual bandit" in docs.lower()


def test_expected_case_counts() -> None:
    data = _require(CASES_FILE)
    assert data["specVersion"] == "0.8.0"
    counts = {section: len(data[section]) for section in SECTIONS}
    assert counts == {
        "hash": 15,
        "getBucketRange": 13,
        "chooseVariation": 13,
        "getEqualWeights": 6,
        "inNamespace": 16,
        "getQueryStringOverride": 16,
        "evalCondition": 248,
        "run": 73,
        "stickyBucket": 13,
        "feature": 55,
    }
    regex_cases = sum("regex" in json.dumps(case[1]).lower() for case in data["evalCondition"])
    assert regex_cases >= 18


def _version_params() -> list[Any]:
    data = _data(VERSION_COMPARE_FILE)
    if data is None:
        return [pytest.param("missing", 0, id="vectors-missing")]
    return [
        pytest.param(operator, index, id=f"{operator}[{index}] {case[0]} {case[1]}")
        for operator, cases in data["versionCompare"].items()
        for index, case in enumerate(cases)
    ]


@pytest.mark.parametrize(("operator", "index"), _version_params())
def test_growthbook_version_compare(operator: str, index: int) -> None:
    data = _require(VERSION_COMPARE_FILE)
    a, b, expected = data["versionCompare"][operator][index]
    left, right = padded_version_string(a), padded_version_string(b)
    if operator == "lt":
        assert (left < right) is expected
    elif operator == "gt":
        assert (left > right) is expected
    else:
        assert operator == "eq"
        assert (left == right) is expected


def test_version_compare_counts() -> None:
    data = _require(VERSION_COMPARE_FILE)
    assert {k: len(v) for k, v in data["versionCompare"].items()} == {"lt": 15, "gt": 35, "eq": 13}

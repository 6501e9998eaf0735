"""Targeting conditions compiled once per definition, for the evaluation hot path.

:func:`~.conditions.eval_condition` interprets the condition JSON on every evaluation: it walks
the dict, tells attribute names from operators, and looks every operator up. Most targeting is
flat (``{"country": {"$in": [...]}, "app_version": {"$vgte": "2.0.0"}}``), so for that shape
:func:`compile_condition` resolves all of that once, when the definition is loaded, into a list
of ``(attribute, [(operator function, operand)])``. The operator functions are the interpreter's
own, so the answers are the same (a test checks it on GrowthBook's conformance cases and on
generated conditions). Anything else (``$or``, dotted paths, segments, saved groups,
``$elemMatch``) is not compiled: the caller interprets it as before.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from .conditions import (
    _EVAL_ERRORS,
    _NO_GROUPS,
    _OPERATORS,
    Condition,
    _is_operator_object,
    _Lookups,
    padded_version_of_string,
    padded_version_string,
)

CompiledCondition = Callable[[Mapping[str, Any]], bool]

#: Operators that read only the attribute and the operand (no segments, groups or nesting).
_FLAT = frozenset(
    {
        "$eq",
        "$ne",
        "$lt",
        "$lte",
        "$gt",
        "$gte",
        "$veq",
        "$vne",
        "$vlt",
        "$vlte",
        "$vgt",
        "$vgte",
        "$regex",
        "$regexi",
        "$notRegex",
        "$notRegexi",
        "$in",
        "$nin",
        "$ini",
        "$nini",
        "$size",
        "$exists",
        "$type",
    }
)
_NO_LOOKUPS = _Lookups(None, _NO_GROUPS)
Test = Callable[[Any], Any]  # one operator on the attribute's value: True, False or None
Check = tuple[str, str | None, tuple[Test, ...]]
#: Version comparisons on the padded strings (GrowthBook's ``paddedVersionString``).
_VERSION_ORDER: dict[str, Callable[[str, str], bool]] = {
    "$veq": operator.eq,
    "$vne": operator.ne,
    "$vlt": operator.lt,
    "$vlte": operator.le,
    "$vgt": operator.gt,
    "$vgte": operator.ge,
}


def compile_condition(condition: Condition | None) -> CompiledCondition | None:
    """``attributes -> eval_condition(attributes, condition)`` for a flat condition; None when
    the condition is empty (everyone) or not flat (interpret it)."""
    if not isinstance(condition, dict) or not condition:
        return None
    checks: list[Check] = []
    for key, expected in condition.items():
        if not isinstance(key, str) or key.startswith("$") or "." in key:
            return None
        if isinstance(expected, str):
            checks.append((key, expected, ()))
            continue
        if not expected or not _is_operator_object(expected):
            return None
        tests = []
        for name, operand in expected.items():
            if name not in _FLAT:
                return None
            tests.append(_test(name, operand))
        checks.append((key, None, tuple(tests)))
    return _compiled(tuple(checks))


def _test(name: str, operand: Any) -> Test:
    """The interpreter's operator bound to its operand, or an equivalent shortcut for a string
    operand (the common case): the same answers, without the type dispatch per evaluation."""
    function = _OPERATORS[name]

    def interpreted(actual: Any) -> Any:
        return function(actual, operand, _NO_LOOKUPS)

    if isinstance(operand, str) and name in ("$eq", "$ne"):
        # JS ===: only a string equals a string.
        if name == "$eq":
            return lambda actual: isinstance(actual, str) and actual == operand
        return lambda actual: not (isinstance(actual, str) and actual == operand)
    if isinstance(operand, str) and name in _VERSION_ORDER:
        # Both sides must be strings to be ordered; otherwise only $vne passes.
        order, padded = _VERSION_ORDER[name], padded_version_string(operand)
        unordered = name == "$vne"
        return lambda actual: (
            order(padded_version_of_string(actual), padded)
            if isinstance(actual, str)
            else unordered
        )
    strings = isinstance(operand, list) and all(isinstance(value, str) for value in operand)
    if name in ("$in", "$nin") and strings:
        members, wanted = frozenset(operand), name == "$in"
        # A string attribute is in the list when it equals one of its strings; a list
        # attribute (any shared element) and the rest go through the interpreter.
        return lambda actual: (
            (actual in members) is wanted if isinstance(actual, str) else interpreted(actual)
        )
    return interpreted


def _compiled(checks: tuple[Check, ...]) -> CompiledCondition:
    def evaluate(attributes: Mapping[str, Any]) -> bool:
        get = attributes.get
        try:
            for key, literal, tests in checks:
                actual = get(key)
                if literal is not None:
                    if not (isinstance(actual, str) and actual == literal):
                        return False
                    continue
                for test in tests:
                    if test(actual) is not True:
                        return False
        except _EVAL_ERRORS:
            return False
        return True

    return evaluate

"""Compiled targeting (flags/compiled.py) answers what the interpreter answers: on generated flat
conditions and attributes here, and on GrowthBook's evalCondition cases in
tests/test_growthbook_conformance.py."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flask_umetrics.flags.compiled import _FLAT, compile_condition
from flask_umetrics.flags.conditions import eval_condition

NAMES = ("country", "plan", "app_version", "n")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["DE", "AT", "de", "", "1", "2.0.0", "v2.1.0", "2.0.0-beta.2", "10.1.0"]),
    st.text(max_size=4),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
OPERATORS = st.sampled_from(sorted(_FLAT))  # every operator compiled_condition binds


def operand(name: str) -> st.SearchStrategy[Any]:
    if name == "$regex":
        return st.sampled_from(["^D", "E$", "[", "a|b"])
    if name == "$type":
        return st.sampled_from(["string", "number", "null", "array", "boolean"])
    return VALUES


OPERATOR_OBJECTS = st.dictionaries(OPERATORS, st.none(), min_size=1, max_size=3).flatmap(
    lambda names: st.fixed_dictionaries({name: operand(name) for name in names})
)
CONDITIONS = st.dictionaries(
    st.sampled_from(NAMES), st.one_of(st.text(max_size=3), OPERATOR_OBJECTS), max_size=3
)
ATTRIBUTES = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=4)


@settings(max_examples=1500, deadline=None, database=None)
@given(condition=CONDITIONS, attributes=ATTRIBUTES)
def test_compiled_condition_equals_the_interpreter(
    condition: dict[str, Any], attributes: dict[str, Any]
) -> None:
    compiled = compile_condition(condition)
    if not condition:
        assert compiled is None
        return
    assert compiled is not None
    assert compiled(attributes) is eval_condition(attributes, condition)


def test_conditions_that_are_not_flat_are_left_to_the_interpreter() -> None:
    for condition in (
        {"$or": [{"a": 1}]},
        {"a.b": 1},
        {"a": {"$elemMatch": {"$eq": 1}}},
        {"$inSegment": "beta"},
        {"a": {"$inGroup": "g"}},
        {"a": {"$not": {"$eq": 1}}},
        {"a": 1},  # a non-string literal: deep equality, interpreted
        {"a": {}},
        {},
        None,
    ):
        assert compile_condition(condition) is None, condition

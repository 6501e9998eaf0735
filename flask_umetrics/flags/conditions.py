"""Targeting conditions: GrowthBook's condition language on subject attributes.

A flag or experiment applies to a subject only when its condition holds for the attributes the
host app's subject loader returns. The syntax and the semantics are GrowthBook's
(``growthbook.core.evalCondition``, MongoDB-like JSON), operator for operator, so a definition is
portable and any GrowthBook SDK given the same condition decides the same way.

Our one addition is saved segments, a flask-umetrics concept: ``{"$inSegment": "beta"}`` and
``{"$notInSegment": "churned"}`` wherever a condition is expected (top level, ``$and``, ``$or``,
``$nor``, ``$not``). They ask ``in_segment(key)``; without a lookup ``$inSegment`` is False and
``$notInSegment`` True (the subject is treated as a member of no segment).

Evaluation runs per flag per request, so it never raises on a malformed condition (that
condition is False, as in GrowthBook), compiles each regex once and allocates little. Regexes
run on RE2 (:mod:`flask_umetrics.flags.regex`), in time linear in the attribute's length, with
GrowthBook's search-anywhere semantics; a pattern RE2 cannot compile (backreferences,
lookaround) is refused when saved and never matches when met at evaluation.
:func:`validate_condition` is where bad definitions are rejected, naming the offending path.

GrowthBook behaviours that look like bugs, followed on purpose for compatibility:

- versions: only a 3-part version gets the "release" marker, so ``1.2 < 1.2-beta`` and
  ``1.2.3.4 < 1.2.3``; parts are padded as text, so ``1.02.3`` is not ``1.2.3``;
- the Python SDK cannot tell a missing attribute from null: ``$exists: false`` holds for null,
  ``$type`` of a missing attribute is ``"null"`` and ``$in: [null]`` matches it (the JS SDK
  differs on the last two);
- an error anywhere (e.g. ``$and`` given a string) fails the whole condition, even an ``$or``
  branch that would match; an empty operator object ``{"plan": {}}`` matches anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from ..errors import ValidationError
from .regex import check_pattern
from .regex import search as regex_search

Condition = Mapping[str, Any]
SegmentLookup = Callable[[str], bool]
#: True, False, or None when an operator is unknown (GrowthBook's tri-state; None fails at the top).
CondResult = bool | None

MAX_DEPTH = 10
MAX_OPERATORS = 200
MAX_REGEX_LENGTH = 500
#: The same pattern as ``flask_umetrics.queries.segments.KEY_PATTERN`` (checked by a test);
#: copied so this module stays free of database imports.
SEGMENT_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_VERSION_PATTERN = re.compile(r"^v?[0-9]+(\.[0-9]+)*(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_TYPES = frozenset({"string", "number", "boolean", "array", "object", "null"})
_SEGMENT_OPERATORS = ("$inSegment", "$notInSegment")
# Keys GrowthBook reads on a condition rather than on a value; on a value they never match.
_CONDITION_OPERATORS = frozenset({"$or", "$nor", "$and", "$savedGroup"})
# What GrowthBook turns into a False result for the whole condition.
_EVAL_ERRORS = (TypeError, ValueError, AttributeError, IndexError, RecursionError)


@dataclass(frozen=True, slots=True)
class _Lookups:
    """What evaluation may ask besides the attributes: segment membership and saved groups."""

    in_segment: SegmentLookup | None
    saved_groups: Mapping[str, Any]


_NO_GROUPS: Mapping[str, Any] = MappingProxyType({})


class _LookupFailed(Exception):
    """Carries an exception raised by ``in_segment`` past the malformed-condition handler."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


# --------------------------------------------------------------------------------------------
# Evaluation (a port of growthbook.core's evalCondition, plus $inSegment / $notInSegment)
# --------------------------------------------------------------------------------------------


def eval_condition(
    attributes: Mapping[str, Any],
    condition: Condition | None,
    *,
    in_segment: SegmentLookup | None = None,
    saved_groups: Mapping[str, Any] | None = None,
) -> bool:
    """Whether ``attributes`` satisfy ``condition``; no condition (None or ``{}``) means everyone.

    A malformed or unsupported part makes the whole condition False, never an exception (as in
    GrowthBook, so ``$not`` cannot turn an error into a match). Exceptions raised by
    ``in_segment`` itself do propagate: a failing membership lookup is not a non-member.
    ``saved_groups`` are GrowthBook's (group id -> list of attribute values) for ``$inGroup`` /
    ``$notInGroup``; an unknown group has no members.
    """
    if condition is None:
        return True
    attrs = attributes if isinstance(attributes, dict) else dict(attributes)
    try:
        lookups = _Lookups(in_segment, saved_groups if saved_groups is not None else _NO_GROUPS)
        return _condition(attrs, condition, lookups) is True
    except _LookupFailed as failed:
        raise failed.error from None
    except _EVAL_ERRORS:
        return False


def _not(result: CondResult) -> CondResult:
    return None if result is None else not result


def _condition(attributes: Any, condition: Any, lookups: _Lookups) -> CondResult:
    result: CondResult = True
    for key, value in condition.items():
        r: CondResult
        if not key.startswith("$"):
            r = _value(value, _get_path(attributes, key), lookups, False)
        elif key == "$or":
            r = _or(attributes, value, lookups)
        elif key == "$and":
            r = _and(attributes, value, lookups)
        elif key == "$not":
            r = _not(_condition(attributes, value, lookups))
        elif key == "$nor":
            r = _not(_or(attributes, value, lookups))
        elif key == "$inSegment" or key == "$notInSegment":
            r = _segment(key, value, lookups)
        elif key == "$savedGroup" or key == "$savedGroups":
            # GrowthBook's saved groups; without any defined (we have none) they never match.
            r = False
        else:
            # An attribute whose name starts with "$" (validate_condition rejects those).
            r = _value(value, _get_path(attributes, key), lookups, False)
        if r is False:
            return False
        if r is None:
            result = None
    return result


def _segment(operator: str, key: Any, lookups: _Lookups) -> bool:
    in_segment = lookups.in_segment
    if not isinstance(key, str):
        return False
    if in_segment is None:
        member = False
    else:
        try:
            member = bool(in_segment(key))
        except Exception as error:
            raise _LookupFailed(error) from error
    return member if operator == "$inSegment" else not member


def _or(attributes: Any, conditions: Any, lookups: _Lookups) -> CondResult:
    if len(conditions) == 0:
        return True
    result: CondResult = False
    for condition in conditions:
        r = _condition(attributes, condition, lookups)
        if r is True:
            return True
        if r is None:
            result = None
    return result


def _and(attributes: Any, conditions: Any, lookups: _Lookups) -> CondResult:
    result: CondResult = True
    for condition in conditions:
        r = _condition(attributes, condition, lookups)
        if r is False:
            return False
        if r is None:
            result = None
    return result


def _is_operator_object(obj: Any) -> bool:
    """A dict whose keys all start with ``$`` (an empty dict has no operators, so it passes)."""
    if not isinstance(obj, dict):
        return False
    for key in obj:  # noqa: SIM110 - a loop, not all(<generator>): this runs on every value
        if not key.startswith("$"):
            return False
    return True


@lru_cache(maxsize=1024)
def _split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _get_path(attributes: Any, path: str) -> Any:
    """A dotted path; like JS, a list exposes its canonical indices and ``length``."""
    if "." not in path and isinstance(attributes, dict):
        return attributes.get(path)
    current: Any = attributes
    for segment in _split_path(path):
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment == "length":
            current = len(current)
        elif isinstance(current, list) and _is_array_index(segment, len(current)):
            current = current[int(segment)]
        else:
            return None
    return current


def _is_array_index(key: str, length: int) -> bool:
    """A canonical index below ``length``: "0" or "12", not "01" or "-0"."""
    return (
        len(key) <= 10
        and key.isascii()
        and key.isdigit()
        and (key == "0" or key[0] != "0")
        and int(key) < length
    )


def _is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _get_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, set)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _value(expected: Any, actual: Any, lookups: _Lookups, insensitive: bool) -> CondResult:
    """One attribute against a literal (strict deep equality) or an operator object."""
    if isinstance(expected, str):  # the common case first: no type dispatch needed
        if not isinstance(actual, str):
            return False
        return expected.lower() == actual.lower() if insensitive else expected == actual
    if _is_operator_object(expected):
        result: CondResult = True
        for operator, operand in expected.items():
            handler = _OPERATORS.get(operator)
            if handler is None:
                # Known on a condition, never matching on a value; anything else is unknown.
                r: CondResult = False if operator in _CONDITION_OPERATORS else None
            else:
                r = handler(actual, operand, lookups)
            if r is False:
                return False
            if r is None:
                result = None
        return result
    if insensitive and isinstance(expected, str) and isinstance(actual, str):
        return expected.lower() == actual.lower()
    return _deep_equal(expected, actual)


def _deep_equal(a: Any, b: Any) -> bool:
    """JSON.stringify equality: same JSON types all the way down (True is not 1, 1.0 is 1)
    and object keys in the same JS property order."""
    kind = _get_type(a)
    if kind != _get_type(b):
        return False
    if kind == "array":
        return len(a) == len(b) and all(
            _deep_equal(_json_value(x), _json_value(y)) for x, y in zip(a, b, strict=True)
        )
    if kind == "object":
        return _js_key_order(a) == _js_key_order(b) and all(
            _deep_equal(_json_value(a[k]), _json_value(b[k])) for k in a
        )
    return bool(a == b)


def _js_key_order(obj: dict[Any, Any]) -> list[Any]:
    """Array-index keys in ascending numeric order, then the others in insertion order."""
    keys = list(obj)
    indices = [k for k in keys if isinstance(k, str) and _is_array_index(k, 2**32 - 1)]
    others = [k for k in keys if not (isinstance(k, str) and _is_array_index(k, 2**32 - 1))]
    return sorted(indices, key=int) + others


def _json_value(value: Any) -> Any:
    """JSON.stringify writes NaN and Infinity as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _strict_equal(a: Any, b: Any) -> bool:
    """JS ``===`` between two separately parsed JSON values: containers are never equal."""
    kind = _get_type(a)
    if kind != _get_type(b) or kind == "array" or kind == "object":
        return False
    return bool(a == b)


def _is_orderable(a: Any, b: Any) -> bool:
    """Two numbers or two strings (booleans are not ordered)."""
    return (_is_numeric(a) and _is_numeric(b)) or (isinstance(a, str) and isinstance(b, str))


def _compare(a: Any, b: Any) -> int:
    """-1, 0 or 1; strings by UTF-16 code units like JS. NaN is unordered: ValueError."""
    if (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        raise ValueError("NaN")
    if isinstance(a, str) and isinstance(b, str) and not (a.isascii() and b.isascii()):
        units_a = a.encode("utf-16-be", "surrogatepass")
        units_b = b.encode("utf-16-be", "surrogatepass")
        return (units_a > units_b) - (units_a < units_b)
    if a > b:
        return 1
    if a < b:
        return -1
    return 0


_NUMBER_TEXT = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$")


def _as_number(value: Any) -> float | None:
    """How GrowthBook compares a non-number with a number: a missing attribute is 0, a numeric
    string its number, a boolean 0/1; anything else cannot be ordered (None)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and len(value) <= 100 and _NUMBER_TEXT.match(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _ordered(actual: Any, expected: Any) -> int | None:
    if _is_numeric(actual) != _is_numeric(expected):
        # One side is a number: GrowthBook (JS and Python) compares the other as a number.
        actual = actual if _is_numeric(actual) else _as_number(actual)
        expected = expected if _is_numeric(expected) else _as_number(expected)
        if actual is None or expected is None:
            return None
    elif not _is_orderable(actual, expected):
        return None
    try:
        return _compare(actual, expected)
    except ValueError:
        return None


def _op_eq(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return _strict_equal(actual, operand)


def _op_ne(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return not _strict_equal(actual, operand)


def _op_lt(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    order = _ordered(actual, operand)
    return order is not None and order < 0


def _op_lte(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    order = _ordered(actual, operand)
    return order is not None and order <= 0


def _op_gt(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    order = _ordered(actual, operand)
    return order is not None and order > 0


def _op_gte(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    order = _ordered(actual, operand)
    return order is not None and order >= 0


def _versions(actual: Any, operand: Any) -> tuple[str, str] | None:
    if not _is_orderable(actual, operand):
        return None
    return padded_version_string(actual), padded_version_string(operand)


def _op_veq(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    pair = _versions(actual, operand)
    return pair is not None and pair[0] == pair[1]


def _op_vne(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    # The negation of $veq, so it matches on a type mismatch (GrowthBook).
    pair = _versions(actual, operand)
    return pair is None or pair[0] != pair[1]


def _op_vlt(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    pair = _versions(actual, operand)
    return pair is not None and pair[0] < pair[1]


def _op_vlte(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    pair = _versions(actual, operand)
    return pair is not None and pair[0] <= pair[1]


def _op_vgt(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    pair = _versions(actual, operand)
    return pair is not None and pair[0] > pair[1]


def _op_vgte(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    pair = _versions(actual, operand)
    return pair is not None and pair[0] >= pair[1]


def _op_regex(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return regex_search(operand, False, actual) is True


def _op_regexi(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return regex_search(operand, True, actual) is True


def _op_not_regex(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    # A missing or non-string attribute "does not match", so it passes (GrowthBook).
    return regex_search(operand, False, actual) is not True


def _op_not_regexi(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return regex_search(operand, True, actual) is not True


def _op_in(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return isinstance(operand, list) and _is_in(operand, actual, False)


def _op_nin(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    # A non-list operand fails both $in and $nin (GrowthBook).
    return isinstance(operand, list) and not _is_in(operand, actual, False)


def _op_ini(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return isinstance(operand, list) and _is_in(operand, actual, True)


def _op_nini(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return isinstance(operand, list) and not _is_in(operand, actual, True)


def _op_elem_match(actual: Any, operand: Any, lookups: _Lookups) -> CondResult:
    if not isinstance(actual, list):
        return False
    # Operators test each element itself; a condition (also one using only $or/$and/$nor)
    # tests each element's fields.
    on_value = _is_operator_object(operand) and not any(k in _CONDITION_OPERATORS for k in operand)
    result: CondResult = False
    for item in actual:
        if item is None:
            continue
        if on_value:
            r = _value(operand, item, lookups, False)
        else:
            r = _condition(item, operand, lookups)
        if r is True:
            return True
        if r is None:
            result = None
    return result


def _op_size(actual: Any, operand: Any, lookups: _Lookups) -> CondResult:
    if not isinstance(actual, list):
        return False
    return _value(operand, len(actual), lookups, False)


def _op_all(actual: Any, operand: Any, lookups: _Lookups) -> CondResult:
    return _is_in_all(operand, actual, lookups, False) if isinstance(operand, list) else False


def _op_alli(actual: Any, operand: Any, lookups: _Lookups) -> CondResult:
    return _is_in_all(operand, actual, lookups, True) if isinstance(operand, list) else False


def _op_exists(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    # A null attribute counts as missing (the Python SDK cannot tell them apart).
    return actual is not None if operand else actual is None


def _op_type(actual: Any, operand: Any, _: _Lookups) -> CondResult:
    return bool(_get_type(actual) == operand)


def _op_not(actual: Any, operand: Any, lookups: _Lookups) -> CondResult:
    return _not(_value(operand, actual, lookups, False))


def _op_in_group(actual: Any, operand: Any, lookups: _Lookups) -> CondResult:
    # GrowthBook's saved groups: the attribute's value is one of the group's values (an unknown
    # group has none). validate_condition rejects them in stored definitions ($inSegment instead).
    members = lookups.saved_groups.get(operand) if isinstance(operand, str) else None
    return isinstance(members, list) and _is_in(members, actual, False)


def _op_not_in_group(actual: Any, operand: Any, lookups: _Lookups) -> CondResult:
    if not isinstance(operand, str):
        return False
    members = lookups.saved_groups.get(operand)
    return not (isinstance(members, list) and _is_in(members, actual, False))


_OPERATORS: dict[str, Callable[[Any, Any, _Lookups], CondResult]] = {
    "$eq": _op_eq,
    "$ne": _op_ne,
    "$lt": _op_lt,
    "$lte": _op_lte,
    "$gt": _op_gt,
    "$gte": _op_gte,
    "$veq": _op_veq,
    "$vne": _op_vne,
    "$vlt": _op_vlt,
    "$vlte": _op_vlte,
    "$vgt": _op_vgt,
    "$vgte": _op_vgte,
    "$regex": _op_regex,
    "$regexi": _op_regexi,
    "$notRegex": _op_not_regex,
    "$notRegexi": _op_not_regexi,
    "$in": _op_in,
    "$nin": _op_nin,
    "$ini": _op_ini,
    "$nini": _op_nini,
    "$elemMatch": _op_elem_match,
    "$size": _op_size,
    "$all": _op_all,
    "$alli": _op_alli,
    "$exists": _op_exists,
    "$type": _op_type,
    "$not": _op_not,
    "$inGroup": _op_in_group,
    "$notInGroup": _op_not_in_group,
}


def _is_in(expected: list[Any], actual: Any, insensitive: bool) -> bool:
    """``$in``: the attribute is one of ``expected`` or, for a list, shares an element with it."""
    if insensitive:
        if isinstance(actual, list):
            return any(
                _strict_equal(_fold(value), _fold(candidate))
                for value in actual
                for candidate in expected
            )
        folded = _fold(actual)
        return any(_strict_equal(folded, _fold(candidate)) for candidate in expected)
    if isinstance(actual, list):
        try:
            matches = set(expected) & set(actual)
            # Python merges True/1 and False/0 in a set; any other match is unambiguous.
            if not matches or matches.difference((0, 1)):
                return bool(matches)
            return any(
                _contains_exactly(expected, value) for value in actual if value == 0 or value == 1
            )
        except TypeError:
            # Objects or arrays as elements: unhashable, and never === anyway.
            pass
        return any(_strict_equal(value, candidate) for value in actual for candidate in expected)
    if isinstance(actual, dict):
        return False
    if actual == 0 or actual == 1:
        return _contains_exactly(expected, actual)
    return actual in expected


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _contains_exactly(values: list[Any], value: Any) -> bool:
    """``value in values`` where booleans and the numbers 0/1 are different things."""
    start = 0
    while True:
        try:
            index = values.index(value, start)
        except ValueError:
            return False
        if isinstance(values[index], bool) == isinstance(value, bool):
            return True
        start = index + 1


def _is_in_all(
    expected: list[Any], actual: Any, lookups: _Lookups, insensitive: bool
) -> CondResult:
    """``$all``: every entry of ``expected`` (a value condition) matches some element."""
    if not isinstance(actual, list):
        return False
    result: CondResult = True
    for condition in expected:
        passed: CondResult = False
        for element in actual:
            r = _value(condition, element, lookups, insensitive)
            if r is True:
                passed = True
                break
            if r is None:
                passed = None
        if passed is False:
            return False
        if passed is None:
            result = None
    return result


def padded_version_string(value: Any) -> str:
    """GrowthBook's ``paddedVersionString``: a string whose plain ordering is version ordering.

    Numeric parts are left-padded, a leading ``v`` and ``+build`` are dropped, and a release
    gets a ``~`` suffix so that ``1.2.3-beta`` sorts before ``1.2.3``.
    """
    if _is_numeric(value):
        value = _js_number_to_string(value)
    if not isinstance(value, str):
        value = "0"
    return padded_version_of_string(value)


def padded_version_of_string(value: str) -> str:
    """:func:`padded_version_string` of a string (the compiled conditions call it directly)."""
    if not value:
        value = "0"
    # Attribute values are the subject's: only short ones (real versions) are worth caching.
    return _padded_cached(value) if len(value) <= _CACHED_VERSION_LENGTH else _padded(value)


_CACHED_VERSION_LENGTH = 64
_VERSION_SPLIT = re.compile(r"[-.]")


def _strip_prefix_and_build(value: str) -> str:
    """GrowthBook's ``re.sub(r"(^v|\\+.*$)", "", value)`` in linear time.

    That regex retries ``.*$`` from every ``+`` before a newline, quadratic in the value's
    length. The same result: drop a leading ``v``; then, on the last line (``$`` also matches
    before a final newline), drop from the first ``+`` to the end of the line.
    """
    start = 1 if value.startswith("v") else 0
    end = len(value) - 1 if value.endswith("\n") else len(value)
    line_start = max(value.rfind("\n", start, end) + 1, start)
    plus = value.find("+", line_start, end)
    if plus < 0:
        return value[start:]
    return value[start:plus] + value[end:]


def _padded(value: str) -> str:
    parts = _VERSION_SPLIT.split(_strip_prefix_and_build(value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(part.rjust(5, " ") if part.isdigit() else part for part in parts)


_padded_cached = lru_cache(maxsize=1024)(_padded)


def _js_number_to_string(value: float) -> str:
    """JS ``String(number)``: shortest round-trip digits, fixed for exponents -6..21."""
    try:
        x = float(value)
    except OverflowError:
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _js_number_to_string(-x)
    if math.isinf(x):
        return "Infinity"
    mantissa, _, exponent = repr(x).partition("e")
    whole, _, fraction = mantissa.partition(".")
    padded = (whole + fraction).lstrip("0")
    digits = padded.rstrip("0")
    k = len(digits)
    n = int(exponent or "0") - len(fraction) + len(padded)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return head + "e" + ("+" if n > 0 else "-") + str(abs(n - 1))


# --------------------------------------------------------------------------------------------
# Segments referenced (for one membership prefetch per request)
# --------------------------------------------------------------------------------------------


def referenced_segments(condition: Condition | None) -> set[str]:
    """Every segment key ``$inSegment``/``$notInSegment`` name anywhere in ``condition``.

    Walks the whole structure (iteratively, so even an unvalidated deep condition is safe): a
    key listed here that evaluation never reaches only costs a wider prefetch.
    """
    found: set[str] = set()
    stack: list[Any] = [condition] if condition else []
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in _SEGMENT_OPERATORS and isinstance(value, str):
                    found.add(value)
                elif isinstance(value, (Mapping, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, (Mapping, list)))
    return found


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

_SCALAR_HINT = "a string, number, boolean or null"


def _is_finite_number(value: Any) -> bool:
    """A JSON number: not a boolean, not NaN or infinite (Python ints are always finite)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def validate_condition(condition: Any, *, field: str = "conditions") -> dict[str, Any] | None:
    """Check a condition as users send it and return a plain-dict copy (None for no targeting).

    Stricter than GrowthBook, which silently never matches a malformed condition: unknown
    operators, wrong operand types, uncompilable or over-long regexes, nesting deeper than
    ``MAX_DEPTH`` objects and more than ``MAX_OPERATORS`` terms (operators and attribute
    equalities) raise :class:`ValidationError` naming the path, e.g. ``conditions.country.$in``.
    """
    if condition is None:
        return None
    if not isinstance(condition, Mapping):
        raise ValidationError(field, "must be an object (a condition) or null")
    if not condition:
        return None
    return _Validator().condition(condition, field, 1, True)


class _Validator:
    """One walk over a condition; counts terms across the whole tree."""

    def __init__(self) -> None:
        self.terms = 0

    def _enter(self, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValidationError(path, f"conditions may nest at most {MAX_DEPTH} objects deep")

    def _count(self, path: str) -> None:
        self.terms += 1
        if self.terms > MAX_OPERATORS:
            raise ValidationError(path, f"a condition may use at most {MAX_OPERATORS} operators")

    def condition(self, condition: Any, path: str, depth: int, segments: bool) -> dict[str, Any]:
        """A condition: logical operators, segment operators and attribute paths."""
        if not isinstance(condition, Mapping):
            raise ValidationError(path, "must be an object (a condition)")
        self._enter(path, depth)
        out: dict[str, Any] = {}
        for key, value in condition.items():
            if not isinstance(key, str):
                raise ValidationError(path, "keys must be strings")
            here = f"{path}.{key}"
            self._count(here)
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list):
                    raise ValidationError(here, "must be a list of conditions")
                out[key] = [
                    self.condition(item, f"{here}.{i}", depth + 1, segments)
                    for i, item in enumerate(value)
                ]
            elif key == "$not":
                out[key] = self.condition(value, here, depth + 1, segments)
            elif key in _SEGMENT_OPERATORS:
                if not segments:
                    raise ValidationError(
                        here, "segments apply to the subject: use them outside $elemMatch"
                    )
                if not isinstance(value, str) or not SEGMENT_KEY_PATTERN.match(value):
                    raise ValidationError(
                        here, "must be a segment key (1-100 letters, digits, _.:-)"
                    )
                out[key] = value
            elif key.startswith("$"):
                hint = " (use $inSegment)" if "Group" in key else ""
                raise ValidationError(here, f"unknown operator {key!r}{hint}")
            else:
                if not key or "" in key.split("."):
                    raise ValidationError(here, "must be an attribute name or a dotted path")
                out[key] = self.value(value, here, depth + 1)
        return out

    def value(self, value: Any, path: str, depth: int) -> Any:
        """What an attribute is tested against: an operator object or a literal (equality)."""
        if isinstance(value, Mapping) and not value:
            raise ValidationError(path, "must not be an empty object (it would match anything)")
        if isinstance(value, Mapping) and any(isinstance(k, str) and k[:1] == "$" for k in value):
            return self.operators(value, path, depth)
        return self.literal(value, path, depth)

    def operators(self, value: Mapping[Any, Any], path: str, depth: int) -> dict[str, Any]:
        self._enter(path, depth)
        out: dict[str, Any] = {}
        for operator, operand in value.items():
            if not isinstance(operator, str) or not operator.startswith("$"):
                raise ValidationError(
                    f"{path}.{operator}", "cannot mix operators and plain keys in one object"
                )
            here = f"{path}.{operator}"
            self._count(here)
            out[operator] = self.operand(operator, operand, here, depth)
        return out

    def operand(self, operator: str, operand: Any, path: str, depth: int) -> Any:
        if operator in ("$eq", "$ne"):
            return self.scalar(operand, path)
        if operator in ("$gt", "$gte", "$lt", "$lte"):
            if isinstance(operand, str) or _is_finite_number(operand):
                return operand
            raise ValidationError(path, "must be a number or a string")
        if operator in ("$in", "$nin", "$ini", "$nini"):
            if not isinstance(operand, list):
                raise ValidationError(path, "must be a list")
            return [self.scalar(item, f"{path}.{i}") for i, item in enumerate(operand)]
        if operator in ("$regex", "$regexi", "$notRegex", "$notRegexi"):
            return self.regex(operand, path)
        if operator in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
            if (
                not isinstance(operand, str)
                or len(operand) > 100
                or not _VERSION_PATTERN.match(operand)
            ):
                raise ValidationError(path, "must be a version string such as '2.3.1' or '1.0-rc'")
            return operand
        if operator == "$exists":
            if not isinstance(operand, bool):
                raise ValidationError(path, "must be true or false")
            return operand
        if operator == "$type":
            if not isinstance(operand, str) or operand not in _TYPES:
                raise ValidationError(path, f"must be one of {', '.join(sorted(_TYPES))}")
            return operand
        if operator == "$not":
            return self.value(operand, path, depth + 1)
        if operator == "$size":
            if isinstance(operand, Mapping):
                return self.value(operand, path, depth + 1)
            if not _is_finite_number(operand) or operand != int(operand) or operand < 0:
                raise ValidationError(path, "must be a non-negative integer or an operator object")
            return operand
        if operator in ("$all", "$alli"):
            if not isinstance(operand, list):
                raise ValidationError(path, "must be a list")
            return [self.value(item, f"{path}.{i}", depth + 1) for i, item in enumerate(operand)]
        if operator == "$elemMatch":
            return self.elem_match(operand, path, depth + 1)
        hint = " (use $inSegment at the condition level)" if "Group" in operator else ""
        raise ValidationError(path, f"unknown operator {operator!r}{hint}")

    def elem_match(self, operand: Any, path: str, depth: int) -> dict[str, Any]:
        """Operators on each element, or (with attribute keys or $and/$or/$nor) a condition."""
        if not isinstance(operand, Mapping):
            raise ValidationError(path, "must be an object (operators or a condition)")
        keys = [k for k in operand if isinstance(k, str)]
        on_value = (
            len(keys) == len(operand)
            and all(k.startswith("$") for k in keys)
            and not any(k in _CONDITION_OPERATORS for k in keys)
        )
        if on_value:
            return self.operators(operand, path, depth)
        return self.condition(operand, path, depth, False)

    def scalar(self, value: Any, path: str) -> Any:
        if value is None or isinstance(value, (str, bool)):
            return value
        if _is_finite_number(value):
            return value
        raise ValidationError(path, f"must be {_SCALAR_HINT}")

    def regex(self, pattern: Any, path: str) -> str:
        if not isinstance(pattern, str):
            raise ValidationError(path, "must be a regular expression (a string)")
        if len(pattern) > MAX_REGEX_LENGTH:
            raise ValidationError(path, f"must be at most {MAX_REGEX_LENGTH} characters")
        refused = check_pattern(pattern)
        if refused is not None:
            raise ValidationError(
                path,
                f"is not a regular expression RE2 accepts ({refused}); backreferences and "
                "lookaround are not supported, so that matching takes linear time",
            )
        return pattern

    def literal(self, value: Any, path: str, depth: int) -> Any:
        """A JSON value compared by equality; containers count towards the depth limit."""
        if isinstance(value, Mapping):
            self._enter(path, depth)
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValidationError(path, "object keys must be strings")
                out[key] = self.literal(item, f"{path}.{key}", depth + 1)
            return out
        if isinstance(value, list):
            self._enter(path, depth)
            return [self.literal(item, f"{path}.{i}", depth + 1) for i, item in enumerate(value)]
        return self.scalar(value, path)

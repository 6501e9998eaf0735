"""Path cleaning rules (``/notes/\\d+`` -> ``/notes/:id``): regexes every engine applies alike.

Each rule replaces every match of its pattern in a step's name, in SQL: ``regexp_replace`` on
PostgreSQL, ``replaceRegexpAll`` on ClickHouse, and on SQLite (which has no regex function) a
deterministic RE2 function registered on each report connection (:func:`register_sqlite`).
The engines do not share one regex dialect: PostgreSQL matches leftmost-longest (POSIX), RE2
leftmost-first (Perl), ``\\w`` follows PostgreSQL's locale, ``.`` matches a newline only there,
and ``\\b`` is a backspace on one and a word boundary on the other. So patterns are limited to a
subset on which they agree, and refused otherwise (a 400 naming the field):

- literal characters, ``\\`` before punctuation for the character itself;
- ``.``, ``\\d`` ``\\w`` ``\\s`` ``\\D`` ``\\W`` ``\\S`` (ASCII: rewritten as explicit classes),
  bracket classes ``[a-z0-9_]`` / ``[^/]`` (no ``[:alpha:]``-style classes);
- greedy quantifiers ``* + ? {n} {n,} {n,m}`` (n, m <= 100) after an atom;
- ``^`` only first and ``$`` only last;
- no groups, alternation, lazy or possessive quantifiers, backreferences or lookaround
  (without groups and ``|``, leftmost-longest and leftmost-first find the same matches);
- a pattern must not match the empty text (empty matches are where the engines' replace-all
  loops differ), and a replacement is literal text (no ``\\``: no group references).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2
from sqlalchemy import String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from ..errors import ValidationError

MAX_RULES = 10
MAX_PATTERN = 200
MAX_REPEAT = 100
#: The SQLite function's name.
SQLITE_FUNCTION = "umetrics_regexp_replace"

_CLASSES = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_QUANTIFIERS = "*+?"


@dataclass(frozen=True)
class CleaningRule:
    """``pattern`` (the accepted subset) and the literal ``replacement`` of its matches."""

    pattern: str
    replacement: str

    @property
    def compiled(self) -> str:
        """The pattern as every engine is given it."""
        return translate(self.pattern, "cleaning")


def check_rules(rules: list[CleaningRule], field: str = "cleaning") -> list[CleaningRule]:
    if len(rules) > MAX_RULES:
        raise ValidationError(field, f"at most {MAX_RULES} cleaning rules")
    for rule in rules:
        translate(rule.pattern, field)
        if len(rule.replacement) > MAX_PATTERN or "\\" in rule.replacement:
            raise ValidationError(
                field, f"a replacement is literal text up to {MAX_PATTERN} characters, no '\\'"
            )
    return rules


@lru_cache(maxsize=256)
def translate(pattern: str, field: str) -> str:
    """The pattern in the common syntax, or :class:`ValidationError` naming ``field``."""

    def refuse(why: str) -> ValidationError:
        return ValidationError(field, f"pattern {pattern!r}: {why}")

    if not pattern or len(pattern) > MAX_PATTERN:
        raise refuse(f"must be 1-{MAX_PATTERN} characters")
    out: list[str] = []
    i, n = 0, len(pattern)
    quantifiable = False  # the previous piece is an atom a quantifier may follow
    while i < n:
        char = pattern[i]
        if char == "^":
            if i != 0:
                raise refuse("'^' only at the start")
            out.append(char)
            i += 1
            quantifiable = False
        elif char == "$":
            if i != n - 1:
                raise refuse("'$' only at the end")
            out.append(char)
            i += 1
            quantifiable = False
        elif char in "()|":
            raise refuse("groups and alternation ('(', ')', '|') are not supported")
        elif char in _QUANTIFIERS or char == "{":
            if not quantifiable:
                raise refuse(f"{char!r} must follow a character or class (no lazy quantifiers)")
            i = _quantifier(pattern, i, out, refuse)
            quantifiable = False
        elif char == "}":
            raise refuse("write a literal '}' as '\\}'")
        elif char == "\\":
            out.append(_escape(pattern, i, refuse, in_class=False))
            i += 2
            quantifiable = True
        elif char == "[":
            i = _bracket(pattern, i, out, refuse)
            quantifiable = True
        elif char == ".":
            out.append("[^\\n]")
            i += 1
            quantifiable = True
        else:
            out.append(char)
            i += 1
            quantifiable = True
    translated = "".join(out)
    if re2.search(translated, "") is not None:
        raise refuse("must not match the empty text")
    return translated


def _quantifier(pattern: str, i: int, out: list[str], refuse: Any) -> int:
    if pattern[i] == "{":
        end = pattern.find("}", i)
        body = pattern[i + 1 : end] if end > 0 else ""
        low, _, high = body.partition(",")
        numbers = [low] + ([high] if high else [])
        if end < 0 or not all(x.isascii() and x.isdigit() for x in numbers):
            raise refuse("a '{' starts a repeat {n}, {n,} or {n,m}; write a literal '{' as '\\{'")
        if any(int(x) > MAX_REPEAT for x in numbers) or (high and int(high) < int(low)):
            raise refuse(f"repeats go up to {MAX_REPEAT}, {{n,m}} with n <= m")
        out.append(pattern[i : end + 1])
        i = end + 1
    else:
        out.append(pattern[i])
        i += 1
    if i < len(pattern) and (pattern[i] in _QUANTIFIERS or pattern[i] == "{"):
        raise refuse("a quantifier may not follow a quantifier (no lazy or possessive forms)")
    return i


def _escape(pattern: str, i: int, refuse: Any, *, in_class: bool) -> str:
    if i + 1 >= len(pattern):
        raise refuse("ends with '\\'")
    char = pattern[i + 1]
    if char.lower() in _CLASSES:
        if char.isupper():
            if in_class:
                raise refuse(f"'\\{char}' is not supported inside [...]")
            return "[^" + _CLASSES[char.lower()] + "]"
        return _CLASSES[char] if in_class else "[" + _CLASSES[char] + "]"
    if char.isascii() and not char.isalnum() and char.isprintable():
        return "\\" + char
    raise refuse(
        f"'\\{char}' is not supported (escapes: \\d \\w \\s, their negations, punctuation)"
    )


def _bracket(pattern: str, i: int, out: list[str], refuse: Any) -> int:
    """``[...]``: literal characters, ranges and escapes; ``]`` right after ``[`` or ``[^`` is
    refused rather than read two ways."""
    j = i + 1
    parts = ["["]
    if j < len(pattern) and pattern[j] == "^":
        parts.append("^")
        j += 1
    members = 0
    while j < len(pattern) and pattern[j] != "]":
        char = pattern[j]
        if char == "[":
            raise refuse("'[' inside [...] must be written '\\['")
        if char == "\\":
            parts.append(_escape(pattern, j, refuse, in_class=True))
            j += 2
        else:
            parts.append(char)
            j += 1
        members += 1
    if j >= len(pattern) or not members:
        raise refuse("an unclosed or empty [...]")
    parts.append("]")
    out.append("".join(parts))
    return j + 1


@lru_cache(maxsize=128)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


def _replace(text: str | None, pattern: str, replacement: str) -> str | None:
    if text is None:
        return None
    return str(_compiled(pattern).sub(replacement, text))


def register_sqlite(raw_connection: Any) -> None:
    """Give a SQLite connection ``umetrics_regexp_replace(text, pattern, replacement)``."""
    raw_connection.create_function(SQLITE_FUNCTION, 3, _replace, deterministic=True)


class replace_all(FunctionElement[str]):
    """Every match of ``pattern`` (already :func:`translate`-d) in ``text`` replaced."""

    type = String()
    inherit_cache = True

    def __init__(self, text: Any, pattern: str, replacement: str) -> None:
        super().__init__(text, literal(pattern), literal(replacement))


@compiles(replace_all, "postgresql")
def _replace_all_pg(element: replace_all, compiler: Any, **kw: Any) -> str:
    text, pattern, replacement = (compiler.process(c, **kw) for c in element.clauses)
    return f"regexp_replace({text}, {pattern}, {replacement}, 'g')"


@compiles(replace_all, "sqlite")
def _replace_all_sqlite(element: replace_all, compiler: Any, **kw: Any) -> str:
    text, pattern, replacement = (compiler.process(c, **kw) for c in element.clauses)
    return f"{SQLITE_FUNCTION}({text}, {pattern}, {replacement})"

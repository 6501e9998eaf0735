"""Targeting regexes (``$regex`` and friends) on RE2, whose matching time is linear in the input.

Attribute values come from the subject (an e-mail, a user agent), so a pattern such as
``^([a-z0-9]+-?)+\\.example\\.com$`` must not be able to backtrack exponentially on a crafted
value the way Python's ``re`` (and JS ``RegExp``) can. RE2 never backtracks; what it cannot
express in linear time it refuses to compile: backreferences (``\\1``), lookaround (``(?=``,
``(?!``, ``(?<=``, ``(?<!``), atomic groups and possessive quantifiers. :func:`check_pattern`
refuses those when a condition is saved; at evaluation an uncompilable pattern never matches.

The semantics are GrowthBook's: ``RegExp(pattern).test(value)``, i.e. a match anywhere in the
value; ``$regexi`` ignores case, as does an inline ``(?i)``. Python's ``\\Z`` and JS/Python
``\\uXXXX`` escapes are rewritten to RE2's ``\\z`` and ``\\x{XXXX}``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

#: Memory one compiled pattern may use (program and matching cache); past it RE2 falls back to
#: a slower but still linear-time matcher, or refuses to compile an enormous pattern.
MAX_PATTERN_MEMORY = 1 << 20
#: How many compiled patterns are kept (each at most MAX_PATTERN_MEMORY).
CACHED_PATTERNS = 128

_HEX = frozenset("0123456789abcdefABCDEF")


def _options(insensitive: bool) -> Any:
    options = re2.Options()
    options.max_mem = MAX_PATTERN_MEMORY
    options.never_capture = True  # only "is there a match" is asked: the fastest engine path
    options.log_errors = False
    options.case_sensitive = not insensitive
    return options


_SENSITIVE = _options(False)
_INSENSITIVE = _options(True)


def to_re2_syntax(pattern: str) -> str:
    """Rewrite the escapes RE2 spells differently; everything else is passed as written."""
    if "\\" not in pattern:
        return pattern
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char != "\\" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        escaped = pattern[i + 1]
        width = {"u": 4, "U": 8}.get(escaped, 0)
        digits = pattern[i + 2 : i + 2 + width]
        if width and len(digits) == width and all(d in _HEX for d in digits):
            out.append("\\x{" + digits + "}")
            i += 2 + width
        else:
            out.append("\\z" if escaped == "Z" else "\\" + escaped)
            i += 2
    return "".join(out)


def _message(error: Exception) -> str:
    reason = error.args[0] if error.args else str(error)
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return str(reason)


@lru_cache(maxsize=CACHED_PATTERNS)
def compile_pattern(pattern: str, insensitive: bool) -> Any | None:
    """The compiled pattern, or None when RE2 cannot compile it (it then never matches)."""
    try:
        return re2.compile(to_re2_syntax(pattern), _INSENSITIVE if insensitive else _SENSITIVE)
    except Exception:  # noqa: BLE001 - any uncompilable operand simply never matches
        return None


def search(pattern: Any, insensitive: bool, value: Any) -> bool | None:
    """Whether ``pattern`` occurs anywhere in the string ``value``; None when it cannot be
    applied (not a string, an uncompilable pattern, a value that is not valid Unicode)."""
    if not isinstance(pattern, str) or not isinstance(value, str):
        return None
    compiled = compile_pattern(pattern, insensitive)
    if compiled is None:
        return None
    try:
        return compiled.search(value) is not None
    except (UnicodeError, TypeError, ValueError):
        return None


def check_pattern(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (e.g. ``invalid perl operator: (?=``), or None if it compiles."""
    try:
        re2.compile(to_re2_syntax(pattern), _SENSITIVE)
    except re2.error as error:
        return _message(error)
    except UnicodeError:
        return "not valid Unicode (a lone surrogate)"
    return None

"""GrowthBook-compatible bucketing (docs/flags-experiments.md).

The hash and the bucket ranges are GrowthBook's, bit for bit, so any GrowthBook SDK given the same
key, seed, weights and coverage puts a subject in the same variant as the server does.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from functools import lru_cache

_FNV_OFFSET = 0x811C9DC5


def fnv1a32(text: str) -> int:
    """FNV-1a 32-bit over UTF-16 code units (what JavaScript's ``charCodeAt`` loop sees)."""
    return _fnv_continue(_FNV_OFFSET, text)


def _fnv_continue(value: int, text: str) -> int:
    """FNV-1a from state ``value`` over ``text``: ``fnv1a32(a + b)`` is
    ``_fnv_continue(fnv1a32(a), b)``, so a seed's state is hashed once (:func:`_seed_state`).
    The prime and the mask are literals: this loop is the hot path of every evaluation."""
    # ASCII text's UTF-16 units are its bytes; other text is read as 16-bit units of UTF-16
    # in the machine's byte order (``surrogatepass``: a lone surrogate is one unit, as in JS).
    units = text.encode() if text.isascii() else _utf16_units(text)
    for unit in units:
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    return value


_UTF16_NATIVE = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"


def _utf16_units(text: str) -> memoryview:
    """The UTF-16 code units of ``text`` (what JavaScript's ``charCodeAt`` returns)."""
    return memoryview(text.encode(_UTF16_NATIVE, "surrogatepass")).cast("H")


@lru_cache(maxsize=1024)
def _seed_state(seed: str) -> int:
    """The FNV state after an experiment's seed (one per seed, not per subject)."""
    return fnv1a32(seed)


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook hash version 2: a number in ``[0, 1)`` with 4 decimals."""
    return hash_v2_seeded(_seed_state(seed), value)


def seed_state(seed: str) -> int:
    """What :func:`hash_v2_seeded` takes for ``seed`` (a definition keeps it precomputed)."""
    return _seed_state(seed)


def hash_v2_seeded(state: int, value: str) -> float:
    """:func:`hash_v2` from the seed's FNV state: only the subject's id is hashed."""
    inner = _fnv_continue(state, value)  # the UTF-16 units of seed + value, in order
    # FNV-1a of the decimal digits, masked once at the end: each step's low 32 bits depend
    # only on the previous step's, and 10 digits at most keep the number small.
    outer = _FNV_OFFSET
    for digit in b"%d" % inner:
        outer = (outer ^ digit) * 0x01000193
    return ((outer & 0xFFFFFFFF) % 10000) / 10000


def hash_v1(seed: str, value: str) -> float:
    """GrowthBook hash version 1 (used for namespaces): a number in ``[0, 1)`` with 3 decimals."""
    return (fnv1a32(value + seed) % 1000) / 1000


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash`` of either version; None for another version (subject left out)."""
    if version == 2:
        return hash_v2(seed, value)
    if version == 1:
        return hash_v1(seed, value)
    return None


def equal_weights(count: int) -> list[float]:
    """GrowthBook's ``getEqualWeights``: ``count`` equal shares (none for ``count <= 0``)."""
    return [1 / count] * count if count > 0 else []


def in_range(n: float, bounds: Sequence[float]) -> bool:
    """Whether ``n`` is in the half-open range ``[start, end)``."""
    return bounds[0] <= n < bounds[1]


def normalized_weights(count: int, weights: Sequence[float] | None) -> list[float]:
    """The weights bucketing uses: as given when they are valid and sum to 1 ± 0.01, else equal."""
    if weights is not None and len(weights) == count:
        numbers = [float(w) for w in weights]
        if all(math.isfinite(w) and w >= 0 for w in numbers) and 0.99 <= sum(numbers) <= 1.01:
            return numbers
    return equal_weights(count)


def bucket_ranges(
    count: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook's ``getBucketRanges``: cumulative ranges, each shortened to coverage * weight."""
    coverage = min(max(coverage, 0.0), 1.0)
    ranges: list[tuple[float, float]] = []
    cumulative = 0.0
    for weight in normalized_weights(count, weights):
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variant(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the first range holding ``n``, or -1 (not in the experiment)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def weighted_bucket(
    seed: str, subject_id: str, weights: Sequence[float], coverage: float = 1.0
) -> int:
    """The variant index a subject falls in (-1 = not in the experiment)."""
    return choose_variant(hash_v2(seed, subject_id), bucket_ranges(len(weights), coverage, weights))


def in_namespace(subject_id: str, namespace: str, start: float, end: float) -> bool:
    """GrowthBook's ``inNamespace``: mutually exclusive experiments share a namespace."""
    return start <= hash_v1("__" + namespace, subject_id) < end

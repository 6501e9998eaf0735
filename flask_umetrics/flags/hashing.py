"""GrowthBook-compatible bucketing (docs/flags-experiments.md).

The hash and the bucket ranges are GrowthBook's, bit for bit, so any GrowthBook SDK given the same
key, seed, weights and coverage puts a subject in the same variant as the server does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF


def fnv1a32(text: str) -> int:
    """FNV-1a 32-bit over UTF-16 code units (what JavaScript's ``charCodeAt`` loop sees)."""
    value = _FNV_OFFSET
    if text.isascii():
        for unit in text.encode():
            value = ((value ^ unit) * _FNV_PRIME) & _MASK
        return value
    data = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        value = ((value ^ (data[i] | (data[i + 1] << 8))) * _FNV_PRIME) & _MASK
    return value


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook hash version 2: a number in ``[0, 1)`` with 4 decimals."""
    return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000


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

"""Bucketing equals the GrowthBook Python SDK's, id for id (docs/flags-experiments.md)."""

from __future__ import annotations

import random

import pytest
from growthbook.core import chooseVariation, gbhash, getBucketRanges, inNamespace

from flask_umetrics import hash_v2, weighted_bucket
from flask_umetrics.flags.hashing import bucket_ranges, in_namespace

ALPHABETS = (
    "abcdefghijklmnopqrstuvwxyz0123456789-_@.",
    "äöüßéèñçøåЖЩЯжщяλμπΩ中文字符日本語한국어",
    "😀🚀👍🏽𝄞🀄",  # outside the BMP: two UTF-16 code units each
)

SETTINGS = [
    ([0.5, 0.5], 1.0),
    ([0.5, 0.5], 0.3),
    ([0.2, 0.3, 0.5], 1.0),
    ([0.1, 0.1, 0.8], 0.75),
    ([0.25, 0.25, 0.25, 0.25], 0.01),
    ([0.7, 0.7], 1.0),  # does not sum to 1: equal weights
    ([1.0], 0.5),
]


def random_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ids = []
    for i in range(count):
        alphabet = ALPHABETS[i % len(ALPHABETS)] + ALPHABETS[0]
        ids.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))))
    return ids


def test_100k_random_subjects_bucket_like_growthbook() -> None:
    ids = random_ids(100_000, seed=20261123)
    assert sum(1 for s in ids if not s.isascii()) > 50_000
    mismatches = 0
    checked = 0
    for index, subject in enumerate(ids):
        weights, coverage = SETTINGS[index % len(SETTINGS)]
        seed = ("pricing-page", "exp-ü", "")[index % 3]
        expected = chooseVariation(
            gbhash(seed, subject, 2), getBucketRanges(len(weights), coverage, weights)
        )
        mismatches += weighted_bucket(seed, subject, weights, coverage) != expected
        checked += 1
    assert checked == 100_000
    assert mismatches == 0


@pytest.mark.parametrize(("weights", "coverage"), SETTINGS)
def test_bucket_ranges_equal_growthbook(weights: list[float], coverage: float) -> None:
    assert bucket_ranges(len(weights), coverage, weights) == getBucketRanges(
        len(weights), coverage, weights
    )


def test_known_hash_values() -> None:
    # Anchors (as the GrowthBook SDK computes them), so a regression shows a readable number.
    assert hash_v2("", "a") == 0.0216
    assert hash_v2("", "b") == 0.9054
    assert hash_v2("", "def") == 0.0777
    assert hash_v2("seed", "a") == gbhash("seed", "a", 2)
    assert hash_v2("", "😀") == gbhash("", "😀", 2)
    assert hash_v2("s", "a\ud800b") == gbhash("s", "a\ud800b", 2)  # a lone surrogate: one unit


def test_not_in_experiment_is_minus_one() -> None:
    outside = [s for s in random_ids(2_000, seed=1) if hash_v2("x", s) >= 0.1]
    assert all(weighted_bucket("x", s, [0.5, 0.5], 0.1) in (-1, 0, 1) for s in outside)
    assert any(weighted_bucket("x", s, [0.5, 0.5], 0.1) == -1 for s in outside)


def test_namespace_equals_growthbook() -> None:
    for subject in random_ids(5_000, seed=7):
        assert in_namespace(subject, "pricing", 0.2, 0.6) == inNamespace(
            subject, ("pricing", 0.2, 0.6)
        )

"""Feature flags and A/B experiments: bucketing, definitions, assignment, consent, results."""

from __future__ import annotations

from .hashing import hash_v2, weighted_bucket

__all__ = ["hash_v2", "weighted_bucket"]

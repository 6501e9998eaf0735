"""Benchmarks that print comparison tables (ratios to a baseline measured in the same run)."""

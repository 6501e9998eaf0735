"""dashboard (being built)."""

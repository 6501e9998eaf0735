"""cohorts (being built)."""

"""adhoc (being built)."""

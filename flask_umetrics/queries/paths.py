"""paths (being built)."""

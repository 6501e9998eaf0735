"""export (being built)."""

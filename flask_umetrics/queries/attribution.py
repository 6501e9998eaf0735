"""attribution (being built)."""

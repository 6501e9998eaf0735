"""live (being built)."""

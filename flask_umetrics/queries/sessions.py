"""sessions (being built)."""

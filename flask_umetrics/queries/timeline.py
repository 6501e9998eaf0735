"""timeline (being built)."""

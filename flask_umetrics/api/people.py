"""Person routes: timeline (being built)."""

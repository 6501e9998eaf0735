"""Report routes: attribution (being built)."""

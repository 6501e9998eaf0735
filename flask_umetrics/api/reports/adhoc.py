"""Report routes: adhoc (being built)."""

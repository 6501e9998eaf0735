"""Report routes: sessions (being built)."""

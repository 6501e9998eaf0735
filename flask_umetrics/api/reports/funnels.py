"""Report routes: funnels (being built)."""

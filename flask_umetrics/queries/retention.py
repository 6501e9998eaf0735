"""retention (being built)."""

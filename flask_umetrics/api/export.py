"""Event export and import routes (being built)."""

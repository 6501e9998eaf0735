"""funnel (being built)."""

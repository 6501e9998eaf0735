"""``flask umetrics`` commands for events: export, import, forget-person (being built)."""

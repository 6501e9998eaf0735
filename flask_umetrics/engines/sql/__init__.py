"""The SQL event engine: events in the umetrics SQLite or PostgreSQL database (the default)."""

"""Reports, one module each: SQL that gives the same numbers on SQLite and PostgreSQL."""

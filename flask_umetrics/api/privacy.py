"""Privacy routes: delete, anonymise, export one person (being built)."""

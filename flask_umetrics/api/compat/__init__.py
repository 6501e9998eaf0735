"""Compatibility blueprints for existing analytics clients."""

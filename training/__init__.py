"""fraudlens training package."""

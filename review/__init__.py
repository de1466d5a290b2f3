"""fraudlens review package."""

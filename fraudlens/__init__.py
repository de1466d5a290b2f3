"""fraudlens fraudlens package."""

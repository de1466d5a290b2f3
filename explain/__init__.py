"""fraudlens explain package."""

"""fraudlens scoring package."""

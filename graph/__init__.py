"""fraudlens graph package."""

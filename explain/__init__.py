"""Explanations: feature attributions (TreeSHAP), reason codes and sentences."""

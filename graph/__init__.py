"""The identity graph: normalised, keyed-hashed identity values linked into entities and rings."""

from graph.config import AllowList, GraphConfig
from graph.features import DESCRIPTIONS, GRAPH_FEATURES
from graph.identity import ClaimConflictError, IdentityGraph, entity_label
from graph.keys import KeyMismatchError, KeyNotConfiguredError, load_or_create_demo_key
from graph.normalise import NormaliseOptions, normalise


def describe_features() -> dict[str, str]:
    """What each of :data:`GRAPH_FEATURES` means (for model cards and reasons)."""
    return {name: DESCRIPTIONS[name] for name in GRAPH_FEATURES}


__all__ = [
    "DESCRIPTIONS",
    "GRAPH_FEATURES",
    "AllowList",
    "ClaimConflictError",
    "GraphConfig",
    "IdentityGraph",
    "KeyMismatchError",
    "KeyNotConfiguredError",
    "NormaliseOptions",
    "describe_features",
    "entity_label",
    "load_or_create_demo_key",
    "normalise",
]

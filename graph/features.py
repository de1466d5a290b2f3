"""The names and meaning of the graph features computed for each claim."""

from __future__ import annotations

#: History windows in days.
WINDOWS: tuple[int, ...] = (1, 7, 30, 90)

#: Attribute kinds with per-key features (age, other entities in 90 days).
KEY_FEATURE_KINDS: tuple[str, ...] = (
    "bank_account",
    "phone",
    "email",
    "device_id",
    "ip",
    "ip_block",
    "address",
)

#: Count reported for a key shared by more entities than this (a shared place, not a ring).
SHARED_COUNT_CAP = 200

#: Ordered numeric feature names (all float64). Counts are of *earlier* claims (event time
#: strictly before the claim's own), so a claim never sees itself or its future.
GRAPH_FEATURES: list[str] = [
    *(f"entity_claims_{w}d" for w in WINDOWS),
    *(f"entity_amount_{w}d" for w in WINDOWS),
    *(f"entity_programs_{w}d" for w in WINDOWS),
    "entity_age_days",
    "entity_names",
    "entity_bank_accounts",
    *(f"{k}_{what}" for k in KEY_FEATURE_KINDS for what in ("age_days", "entities_90d")),
    *(f"bank_account_claims_{w}d" for w in WINDOWS),
    "bank_account_entities",
    "national_id_invalid",
    "group_size",
    "group_density",
    "group_shared_keys",
    "in_ring",
    "fraud_proximity",
    "fraud_proximity_age_days",
]

#: What each feature means, for model cards and reasons.
DESCRIPTIONS: dict[str, str] = {
    **{
        f"entity_claims_{w}d": f"earlier claims by the same entity in the last {w} days"
        for w in WINDOWS
    },
    **{f"entity_amount_{w}d": f"amount of those claims in the last {w} days" for w in WINDOWS},
    **{
        f"entity_programs_{w}d": f"distinct programs of those claims in the last {w} days"
        for w in WINDOWS
    },
    "entity_age_days": "days since the entity's first claim (0 for a new entity)",
    "entity_names": "distinct names the entity has used, this claim included",
    "entity_bank_accounts": "distinct bank accounts the entity has used, this claim included",
    **{
        f"{k}_age_days": f"days since this {k.replace('_', ' ')} was first seen (-1 when missing)"
        for k in KEY_FEATURE_KINDS
    },
    **{
        f"{k}_entities_90d": (
            f"other entities that used this {k.replace('_', ' ')} in the last 90 days "
            f"(0 when allow-listed; capped at {SHARED_COUNT_CAP})"
        )
        for k in KEY_FEATURE_KINDS
    },
    **{
        f"bank_account_claims_{w}d": f"earlier claims paid to this bank account in {w} days"
        for w in WINDOWS
    },
    "bank_account_entities": "distinct entities using this bank account, this one included",
    "national_id_invalid": "1 when a national id is given but fails its format or check digit",
    "group_size": "entities in the group reached through shared sensitive attributes",
    "group_density": "links in that group over the most possible (0 for a single entity)",
    "group_shared_keys": "sensitive attribute values shared inside that group",
    "in_ring": "1 when the group is large enough to be a suspected ring",
    "fraud_proximity": "personalised PageRank from confirmed fraud, scaled to [0, 1] (0 = none)",
    "fraud_proximity_age_days": "days between the proximity refresh and the claim (-1 = none)",
}

if set(DESCRIPTIONS) != set(GRAPH_FEATURES):  # pragma: no cover - a programming error
    raise AssertionError(
        f"feature descriptions out of step: {sorted(set(DESCRIPTIONS) ^ set(GRAPH_FEATURES))}"
    )

N_FEATURES = len(GRAPH_FEATURES)

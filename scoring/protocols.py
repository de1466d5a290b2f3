"""What the scoring core needs from outside it: a case sink and an API-key store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class CaseSink(Protocol):
    """Where flagged claims go: the investigator review queue.

    ``open_case`` is idempotent on ``claim_id``: a retried claim returns the existing case id.
    """

    def open_case(self, case: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class ApiKeyIdentity:
    """Who is calling: a key's id, name and scopes (never the key itself)."""

    key_id: str
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int | None = None


@runtime_checkable
class KeyStore(Protocol):
    """Looks API keys up by their secret; stores only hashes."""

    def verify(self, secret: str) -> ApiKeyIdentity | None: ...

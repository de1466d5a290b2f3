"""What the scoring core needs from outside it: a case sink and an API-key store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection, Engine


@runtime_checkable
class CaseSink(Protocol):
    """Where flagged claims go: the investigator review queue.

    ``open_cases`` opens one case per flagged claim (a micro-batch's together) and returns
    their case ids in order; it is idempotent on ``claim_id``: a retried claim gets its
    existing case id.
    """

    def open_cases(self, cases: Sequence[dict[str, Any]]) -> list[str]: ...


@runtime_checkable
class TransactionalCaseSink(CaseSink, Protocol):
    """A CaseSink in a database that can open cases inside the caller's transaction.

    When it shares the decision log's engine, the Scorer writes a micro-batch's cases and its
    decision-log rows in one transaction (one commit; a flagged claim's case and its log row
    exist together or not at all). ``open_cases_in`` raises the database's ``IntegrityError``
    when another worker opened one of the claims meanwhile; the caller rolls back and falls
    back to ``open_cases``.
    """

    @property
    def engine(self) -> Engine: ...

    def open_cases_in(self, conn: Connection, cases: Sequence[dict[str, Any]]) -> list[str]: ...


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

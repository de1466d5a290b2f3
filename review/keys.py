"""API keys for integrating systems: created once, stored as sha256, revocable."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from review.models import ApiKey, Base
from scoring.protocols import ApiKeyIdentity

SCOPES = frozenset({"score", "review", "audit", "admin"})
PREFIX = "flk_"
#: How long a verified (or unknown) key is remembered in-process; revocation takes effect
#: within this many seconds on every worker.
CACHE_SECONDS = 5.0


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqlKeyStore:
    """Implements ``scoring.protocols.KeyStore`` over the ``api_keys`` table."""

    def __init__(self, engine: Engine) -> None:
        Base.metadata.create_all(engine)
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._cache: dict[str, tuple[ApiKeyIdentity | None, float]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: list[str], rate_limit_per_minute: int | None = None) -> tuple[str, str]:
        """Make a key; returns ``(key_id, secret)``. The secret is not stored and cannot be shown again."""
        bad = sorted(set(scopes) - SCOPES)
        if bad or not scopes:
            raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}, got {scopes}")
        key_id = secrets.token_hex(4)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        with self.sessions() as s, s.begin():
            s.add(ApiKey(id=key_id, name=name, secret_hash=_digest(secret), scopes=",".join(sorted(scopes)),
                         rate_limit_per_minute=rate_limit_per_minute))
        return key_id, secret

    def verify(self, secret: str) -> ApiKeyIdentity | None:
        """The key's identity, or None for an unknown or revoked key."""
        digest = _digest(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.sessions() as s:
            key = s.scalar(select(ApiKey).where(ApiKey.secret_hash == digest))
        identity = None
        if key is not None and key.revoked_at is None:
            identity = ApiKeyIdentity(
                key_id=key.id,
                name=key.name,
                scopes=frozenset(key.scopes.split(",")),
                rate_limit_per_minute=key.rate_limit_per_minute,
            )
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (identity, now + CACHE_SECONDS)
        return identity

    def revoke(self, key_id: str) -> bool:
        with self.sessions() as s, s.begin():
            key = s.get(ApiKey, key_id)
            if key is None or key.revoked_at is not None:
                return False
            key.revoked_at = datetime.now(UTC)
        with self._lock:
            self._cache.clear()
        return True

    def list(self) -> list[ApiKey]:
        with self.sessions() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))

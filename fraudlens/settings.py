"""Settings: one optional YAML file plus FRAUDLENS_* environment variables, built by a factory."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KeyNotConfiguredError(RuntimeError):
    """No identity-hashing key is configured outside the demo."""


class ApiSettings(BaseModel):
    """Limits of the scoring API."""

    max_batch: int = Field(1000, ge=1, description="most claims in one POST /v1/score/batch")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="larger bodies get 413")
    rate_limit_per_minute: int = Field(6000, ge=1, description="per API key")
    micro_batch: int = Field(
        64,
        ge=1,
        description="most concurrent POST /v1/score requests a worker scores in one call "
        "(1 = each alone); every claim gets the answer it would get alone",
    )
    gc_settle_seconds: float = Field(
        2.0,
        ge=0,
        description="how often a server worker collects its garbage and freezes what survived, "
        "so that full collections stay short as the identity graph grows (0 = Python's own "
        "schedule, whose full collections stop the worker for longer the bigger the graph)",
    )


class PolicySettings(BaseModel):
    """How risk becomes a decision (fitted at training from these targets)."""

    review_rate: float = Field(
        0.02, gt=0, le=0.5, description="share of claims investigators can review (capacity)"
    )
    target_precision: float | None = Field(
        None, gt=0, le=1, description="if set and labels exist, the lowest threshold reaching it"
    )

    @field_validator("review_rate")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not 0 < v <= 0.5:
            raise ValueError(f"review_rate must be in (0, 0.5], got {v}")
        return v


class Settings(BaseSettings):
    """Everything configurable. Build with :func:`load_settings`, never at import time."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDLENS_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Path("fraudlens-data")
    database_url: str | None = None
    spec_path: Path | None = None
    bundle_dir: Path | None = None
    hmac_key: SecretStr | None = None
    hmac_key_file: Path | None = None
    graph_allow_list: Path | None = None
    demo: bool = False
    api: ApiSettings = Field(default_factory=ApiSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    log_level: str = "INFO"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'fraudlens.db').as_posix()}"

    @property
    def bundles_root(self) -> Path:
        return self.home / "bundles"

    def identity_key(self) -> bytes:
        """The HMAC key for identity values.

        From ``hmac_key`` or ``hmac_key_file``; in the demo, a random key is made on first run
        and kept in ``<home>/identity.key`` readable only by its owner. Outside the demo,
        no key is an error: fraudlens refuses to start.
        """
        if self.hmac_key is not None:
            key = self.hmac_key.get_secret_value().encode()
        elif self.hmac_key_file is not None:
            key = _read_key_file(self.hmac_key_file)
        elif self.demo:
            key = load_or_create_key(self.home / "identity.key")
        else:
            raise KeyNotConfiguredError(
                "no identity-hashing key configured: set FRAUDLENS_HMAC_KEY or "
                "FRAUDLENS_HMAC_KEY_FILE (at least 32 bytes), or run `fraudlens demo`"
            )
        if len(key) < 32:
            raise KeyNotConfiguredError(f"the identity key must be at least 32 bytes, got {len(key)}")
        return key


def load_or_create_key(path: Path) -> bytes:
    """Read the key at ``path``, or create a random one there readable only by its owner."""
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyNotConfiguredError(
            f"key file {path} is readable by others (mode {oct(mode & 0o777)}); expected 0600"
        )
    return path.read_bytes().strip()


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from an optional YAML file, then environment variables, then ``overrides``.

    Environment variables win over the file (``FRAUDLENS_DATABASE_URL``,
    ``FRAUDLENS_API__MAX_BATCH``...); explicit keyword overrides win over both.
    """
    file_values: dict[str, Any] = {}
    if path is None and os.environ.get("FRAUDLENS_CONFIG"):
        path = os.environ["FRAUDLENS_CONFIG"]
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"settings file {path}: expected a mapping, got {type(loaded).__name__}")
        file_values = loaded
    env_names = {k[len("FRAUDLENS_") :].split("__")[0].lower() for k in os.environ if k.startswith("FRAUDLENS_")}
    merged = {k: v for k, v in file_values.items() if k not in env_names}
    merged.update(overrides)
    return Settings(**merged)

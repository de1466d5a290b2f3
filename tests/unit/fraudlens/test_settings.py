"""Settings: file, environment and overrides; the identity key is required outside the demo."""

from __future__ import annotations

import os
import stat

import pytest

from fraudlens.settings import KeyNotConfiguredError, load_settings


def test_env_wins_over_file_and_overrides_win_over_env(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "fraudlens.yaml"
    cfg.write_text("home: /from/file\napi:\n  max_batch: 10\n")
    monkeypatch.setenv("FRAUDLENS_API__MAX_BATCH", "20")
    s = load_settings(cfg)
    assert str(s.home) == "/from/file" and s.api.max_batch == 20
    assert load_settings(cfg, home=tmp_path).home == tmp_path


def test_no_key_outside_demo_refuses(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("FRAUDLENS_HMAC_KEY", raising=False)
    with pytest.raises(KeyNotConfiguredError, match="FRAUDLENS_HMAC_KEY"):
        load_settings(home=tmp_path).identity_key()


def test_short_key_refused(tmp_path) -> None:
    with pytest.raises(KeyNotConfiguredError, match="32 bytes"):
        load_settings(home=tmp_path, hmac_key="short").identity_key()


def test_demo_key_is_created_owner_only_and_kept(tmp_path) -> None:
    s = load_settings(home=tmp_path, demo=True)
    key = s.identity_key()
    mode = os.stat(tmp_path / "identity.key").st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert len(key) >= 32 and s.identity_key() == key


def test_key_file_readable_by_others_is_refused(tmp_path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"x" * 40)
    path.chmod(0o644)
    with pytest.raises(KeyNotConfiguredError, match="readable by others"):
        load_settings(home=tmp_path, hmac_key_file=path).identity_key()


def test_bad_policy_value_names_the_field(tmp_path) -> None:
    with pytest.raises(ValueError, match="review_rate"):
        load_settings(home=tmp_path, policy={"review_rate": 0.9})

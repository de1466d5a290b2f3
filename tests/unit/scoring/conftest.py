"""Scorers over private copies of the session's trained home (each test writes its own state)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import graph
from fraudlens.database import make_engine
from fraudlens.settings import load_settings
from review.store import ReviewStore
from scoring.bundle import Bundle
from scoring.decision_log import DecisionLog
from scoring.scorer import Scorer


@pytest.fixture()
def copy_home(trained, tmp_path) -> Callable[[str], tuple[Any, Any, Scorer, Any]]:
    """``copy_home(name)`` -> ``(settings, engine, scorer, new claims)`` on a fresh copy."""

    def make(name: str) -> tuple[Any, Any, Scorer, Any]:
        settings, _, new = trained
        dst = Path(tmp_path) / name
        shutil.copytree(settings.home, dst)
        s = load_settings(None, home=dst, demo=True)
        engine = make_engine(s.db_url)
        bundle = Bundle.load(s.bundles_root / (s.bundles_root / "CURRENT").read_text())
        state = graph.IdentityGraph.open(engine, s.identity_key(), bundle.spec.identity_kinds)
        log, sink = DecisionLog(engine), ReviewStore(engine)
        return s, engine, Scorer(bundle, state, key=s.identity_key(), log=log, sink=sink), new

    return make

"""End to end: `fraudlens demo --no-serve` prints its summary; `fraudlens demo` serves the queue and the API."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

FRAUDLENS = [sys.executable, "-m", "fraudlens"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_demo_no_serve_prints_summary(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    run = subprocess.run(
        [*FRAUDLENS, "demo", "--no-serve", "--rows", "12000", "--home", str(home)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "120"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for line in ("new claims scored", "flagged for review", "precision of flags", "recall of planted fraud",
                 "time: train"):
        assert line in run.stdout, run.stdout
    report = json.loads((home / "demo-report.json").read_text())
    assert report["scored"] + report["rejected"] == report["rows"] - report["history_rows"]
    assert report["flagged"] > 0 and report["cases"] == report["flagged"]
    assert report["recall"] > 0.3 and report["precision"] > 0.2
    key = home / "identity.key"
    assert key.stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_demo_serves_queue_and_scoring(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    port = _free_port()
    proc = subprocess.Popen(
        [*FRAUDLENS, "demo", "--rows", "12000", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "400"},
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 600
        curl = None
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("curl "):
                curl = line.strip()
                break
        assert curl, "".join(lines)[-3000:]
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "Flagged claims" in page.text
        assert re.search(r"/cases/K[0-9a-f]+", page.text)
        # Run the printed curl example as a user would.
        args = shlex.split(curl)
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
        body = json.loads(out.stdout)
        assert "decision" in body, out.stdout
        assert body["decision"] in ("clear", "review") and 0 <= body["risk"] <= 1, out.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)

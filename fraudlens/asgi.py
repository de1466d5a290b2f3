"""The ASGI entry point for uvicorn workers: builds the app from settings (env and FRAUDLENS_CONFIG)."""

from __future__ import annotations

from fastapi import FastAPI

from fraudlens.app import create_app
from fraudlens.settings import load_settings


def _build() -> FastAPI:
    return create_app(load_settings(), keep_heap=True)


app = _build()

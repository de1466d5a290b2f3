"""The investigator web pages: the review queue and the case page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from review.store import ReviewStore

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def get_store(request: Request) -> ReviewStore:
    return request.app.state.review  # type: ignore[no-any-return]


StoreDep = Annotated[ReviewStore, Depends(get_store)]

router = APIRouter(tags=["review"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def queue_page(request: Request, store: StoreDep, status: str = "open") -> Any:
    """Flagged claims waiting for a person, most urgent first."""
    cases = store.queue(status=status or None, limit=200)
    return templates.TemplateResponse(
        request,
        "queue.html",
        {"cases": cases, "status": status, "n_open": store.count("open"), "n_all": store.count()},
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, case_id: str, store: StoreDep) -> Any:
    case = store.get(case_id)
    if case is None:
        raise HTTPException(404, detail={"error": "not_found", "detail": f"no case {case_id}", "problems": []})
    contributions: list[tuple[str, float]] = []
    if case.explanation and case.explanation.get("contributions"):
        items = [(k, v) for k, v in case.explanation["contributions"].items() if k != "(base)"]
        contributions = sorted(items, key=lambda kv: -abs(kv[1]))[:12]
    return templates.TemplateResponse(
        request,
        "case.html",
        {"case": case, "events": store.events(case_id), "contributions": contributions},
    )

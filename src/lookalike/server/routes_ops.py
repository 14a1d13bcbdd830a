"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness (and, when reads are public, the index it serves)")
def healthz(request: Request) -> dict[str, object]:
    """Open to all: with --private-reads it says only that the service is up."""
    state = request.app.state.service
    if not state.config.public_reads:
        return {"status": "ok"}
    return {"status": "ok", "index": state.index.url, "entries": state.index_size()}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    state = request.app.state.service
    state.metrics.index_entries.set(state.index_size())
    for bank in state.banks.all():
        state.metrics.bank_hashes.labels(bank.name).set(state.banks.size(bank.name))
    return state.metrics.render()  # type: ignore[no-any-return]

"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "not ready: `{ready, database, model}` says which"}}
)
async def readyz(request: Request) -> JSONResponse:
    """The database answers and the embedding model is loaded."""
    runtime = getattr(request.app.state, "runtime", None)
    checks = {"database": False, "model": bool(runtime and runtime.model_ready)}
    if runtime is not None:
        try:
            async with runtime.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["database"] = True
        except Exception:
            checks["database"] = False
    ready = all(checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

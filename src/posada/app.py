"""The web application: `create_app(settings)` builds it; nothing happens at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg import DataError, OperationalError
from psycopg_pool import PoolTimeout

from posada.answers.routes import router as answers_router
from posada.cache.warm import warm_embeddings
from posada.config import Settings
from posada.errors import PosadaError, TooManyAttempts
from posada.guests.conversation_routes import router as conversations_router
from posada.guests.routes import router as guests_router
from posada.guests.throttle import LoginThrottle
from posada.health import router as health_router
from posada.limits.addresses import parse_networks
from posada.limits.buckets import Buckets, LocalBuckets, PostgresBuckets, RedisBuckets
from posada.limits.chat import ChatLimits
from posada.observe.middleware import ObserveMiddleware
from posada.observe.prom import Metrics
from posada.observe.routes import router as observe_router
from posada.observe.watch import load_budgets, watch
from posada.observe.window import RequestWindow
from posada.runtime import Runtime
from posada.tenants.routes import router as tenants_router

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """The app; it opens its own runtime unless one is given (tests share theirs)."""
    settings = settings or (runtime.settings if runtime else Settings())

    budgets = load_budgets(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(
            watch(
                app.state.window,
                budgets,
                interval_s=settings.watch_interval_s,
                min_requests=settings.watch_min_requests,
            )
        )
        try:
            if runtime is not None:
                app.state.runtime = runtime
                yield
                return
            app.state.runtime = await Runtime.open(settings)
            _install_limits(app, settings, app.state.runtime)
            _freeze_startup_objects()
            warming = None
            if settings.cache_warm_on_start and settings.embedding_cache:
                warming = asyncio.create_task(_warm(app.state.runtime))
            try:
                yield
            finally:
                if warming is not None:
                    warming.cancel()
                await app.state.runtime.close()
        finally:
            watcher.cancel()

    app = FastAPI(title="posada", version="0.1.0", lifespan=lifespan)
    app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
    if runtime is not None:
        app.state.runtime = runtime  # also without a lifespan run, as under ASGITransport
        _install_limits(app, settings, runtime)
    app.state.window = RequestWindow(settings.request_window_size)
    app.state.metrics = Metrics()
    if settings.instrumentation:
        app.add_middleware(
            ObserveMiddleware,
            window=app.state.window,
            metrics=app.state.metrics,
            slow_ms=settings.slow_request_ms,
            n_plus_one_threshold=settings.n_plus_one_threshold,
        )
    for router in (
        health_router,
        guests_router,
        answers_router,
        conversations_router,
        tenants_router,
        observe_router,
    ):
        app.include_router(router)
    web = Path(__file__).parent / "web"
    app.mount("/static", StaticFiles(directory=web), name="static")

    @app.get("/", include_in_schema=False)
    async def guest_page() -> FileResponse:
        """The guest chat page; the hotel comes from `?hotel=` or the subdomain."""
        return FileResponse(web / "index.html")

    _install_error_handlers(app)
    return app


def _install_limits(app: FastAPI, settings: Settings, runtime: Runtime) -> None:
    """The login throttle and chat limits over the runtime's Redis and database.

    Logins are counted in Redis, or PostgreSQL (also while Redis is down), never in this
    process alone; chat requests in Redis, or in each process (README, "Abuse limits").
    """
    database = PostgresBuckets(runtime.pool)
    shared = runtime.caches.shared
    logins: Buckets = RedisBuckets(shared, fallback=database) if shared.configured else database
    local = LocalBuckets()
    chats: Buckets = RedisBuckets(shared, fallback=local) if shared.configured else local
    app.state.login_throttle = LoginThrottle(logins, settings)
    app.state.chat_limits = ChatLimits(chats, settings)


def _freeze_startup_objects() -> None:
    """Keep the garbage collector off what start-up loaded: it lives as long as the process.

    The libraries and the embedding model are some 460,000 objects; a full collection walked
    them all in about 195 ms (measured on these machines), stalling every request in flight.
    Frozen, they are never scanned again.
    """
    gc.collect()
    gc.freeze()


async def _warm(runtime: Runtime) -> None:
    """Warm the embedding cache in the background at start; a failure is only logged."""
    try:
        report = await warm_embeddings(
            runtime, days=runtime.settings.cache_warm_days, limit=runtime.settings.cache_warm_limit
        )
        log.info(
            "embedding cache warmed: %d questions, %d embedded", report.questions, report.computed
        )
    except Exception:
        log.exception("warming the embedding cache failed")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PosadaError)
    async def posada_error(_: Request, exc: PosadaError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse({"detail": exc.message}, exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "error": e["msg"],
            }
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
        return JSONResponse({"detail": summary, "errors": errors}, status_code=422)

    @app.exception_handler(DataError)
    async def unusable_value(_: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (out of range, invalid text): the caller's input.
        return JSONResponse({"detail": f"invalid value: {exc.diag.message_primary}"}, 422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return JSONResponse({"detail": "the database is unavailable; try again"}, 503)


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and several workers: settings from the environment."""
    return create_app(Settings())

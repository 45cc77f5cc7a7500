"""The web application: `create_app(settings)` builds it; nothing happens at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg import DataError, OperationalError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException

from posada.answers.steps import steps_for
from posada.api.chat_limits import ChatLimits
from posada.api.draining import Draining
from posada.api.http_limits import LimitsMiddleware
from posada.api.openapi import EVERY_ROUTE
from posada.api.routes.chat import router as answers_router
from posada.api.routes.conversations import router as conversations_router
from posada.api.routes.feedback import router as feedback_router
from posada.api.routes.guest_live import router as guest_live_router
from posada.api.routes.health import router as health_router
from posada.api.routes.login import router as guests_router
from posada.api.routes.performance import router as observe_router
from posada.api.routes.public import router as tenants_router
from posada.api.routes.staff import router as staff_router
from posada.api.routes.staff_conversations import router as staff_conversations_router
from posada.api.routes.staff_costs import router as staff_costs_router
from posada.api.routes.staff_faq import router as staff_faq_router
from posada.api.routes.staff_handoff import router as staff_handoff_router
from posada.api.routes.staff_knowledge import router as knowledge_router
from posada.api.routes.staff_performance import router as staff_performance_router
from posada.api.routes.staff_reservations import router as reservations_router
from posada.api.surface import SecurityHeadersMiddleware
from posada.api.warm import warm_embeddings
from posada.core.config import Settings
from posada.core.errors import PosadaError, TooManyAttempts
from posada.guests.throttle import LoginThrottle
from posada.limits.addresses import parse_networks
from posada.limits.buckets import Buckets, LocalBuckets, PostgresBuckets, RedisBuckets
from posada.observe.middleware import ObserveMiddleware
from posada.observe.prom import Metrics
from posada.observe.rollup import rollups_for
from posada.observe.staff import Exposure
from posada.observe.watch import load_budgets, watch
from posada.observe.window import RequestWindow
from posada.runtime import Runtime
from posada.staff.throttle import StaffLoginThrottle
from posada.tenants.budgets import guard_for

log = logging.getLogger(__name__)

# What a 503 tells the client: the embedded server is back within about 2 s of dying,
# and a managed database's failover takes a few seconds more.
RETRY_UNAVAILABLE_S = "3"


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """The app; it opens its own runtime unless one is given (tests share theirs)."""
    settings = settings or (runtime.settings if runtime else Settings())
    docs = settings.docs_enabled
    app = FastAPI(
        title="posada",
        version="0.1.0",
        lifespan=_lifespan(settings, runtime),
        responses=EVERY_ROUTE,
        # Off in prod unless POSADA_API_DOCS=true: the map of every route, for anyone.
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
    if runtime is not None:
        app.state.runtime = runtime  # also without a lifespan run, as under ASGITransport
        _install_limits(app, settings, runtime)
    app.state.window = RequestWindow(settings.request_window_size)
    app.state.draining = Draining()
    app.state.metrics = Metrics()
    app.state.rollups = rollups_for(settings)  # None when off
    # The app's own settings decide (tests give an app other settings than its runtime's).
    app.state.exposure = Exposure(settings.timings_public, settings.admin_token)
    _install_middleware(app, settings)
    _install_routes(app)
    _install_error_handlers(app)
    return app


def _lifespan(
    settings: Settings, runtime: Runtime | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start: the signal watch that ends live streams, the budget watcher, and the
    runtime (unless given) with its limits, steps and warm-up; stop: all, in reverse."""
    budgets = load_budgets(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        put_back = app.state.draining.watch_signals()
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
                if app.state.rollups:
                    app.state.rollups.start(runtime.pool)
                try:
                    yield
                finally:
                    if app.state.rollups:
                        await app.state.rollups.close(runtime.pool)
                return
            app.state.runtime = await Runtime.open(settings)
            if app.state.rollups:
                app.state.rollups.start(app.state.runtime.pool)
            warming = None
            try:
                _install_limits(app, settings, app.state.runtime)
                steps_for(app.state.runtime)  # chosen now: a switch it cannot do fails at start
                _freeze_startup_objects()
                if settings.cache_warm_on_start and settings.embedding_cache:
                    warming = asyncio.create_task(_warm(app.state.runtime))
                yield
            finally:
                if warming is not None:
                    warming.cancel()
                if app.state.rollups:  # the figures still in memory, while the pool is open
                    await app.state.rollups.close(app.state.runtime.pool)
                await app.state.runtime.close()
        finally:
            watcher.cancel()
            put_back()

    return lifespan


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    if settings.instrumentation:
        app.add_middleware(
            ObserveMiddleware,
            window=app.state.window,
            metrics=app.state.metrics,
            slow_ms=settings.slow_request_ms,
            n_plus_one_threshold=settings.n_plus_one_threshold,
            exposure=app.state.exposure,
            rollups=app.state.rollups,
        )
    # Added last, so they run first: a request over a limit costs no more than its headers,
    # and every response, refusals included, carries the security headers.
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        body_timeout_s=settings.body_timeout_s,
        max_upload_bytes=settings.staff.upload_max_bytes,
    )
    app.add_middleware(SecurityHeadersMiddleware)


def _install_routes(app: FastAPI) -> None:
    for router in (
        health_router,
        guests_router,
        answers_router,
        conversations_router,
        tenants_router,
        observe_router,
        staff_router,
        reservations_router,
        feedback_router,
        staff_conversations_router,
        staff_faq_router,
        knowledge_router,
        guest_live_router,
        staff_handoff_router,
        staff_costs_router,
        staff_performance_router,
    ):
        app.include_router(router)
    web = Path(__file__).parent / "web"
    app.mount("/static", StaticFiles(directory=web), name="static")

    @app.get("/", include_in_schema=False)
    async def guest_page() -> FileResponse:
        """The guest chat page; the hotel comes from `?hotel=` or the subdomain."""
        return FileResponse(web / "index.html")

    @app.get("/staff", include_in_schema=False)
    async def staff_page() -> FileResponse:
        """The hotel staff's page; the hotel is the one the member logs in to."""
        return FileResponse(web / "staff.html")


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
    app.state.staff_login_throttle = StaffLoginThrottle(logins, settings)
    app.state.chat_limits = ChatLimits(chats, settings)

    def report_budget(slug: str, ratio: float) -> None:
        app.state.metrics.budget_ratio.labels(slug).set(ratio)

    guard_for(runtime.pool).sink = report_budget  # each hotel's checked ratio, on /metrics


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
        return _posada_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "error": e["msg"],
            }
            for e in exc.errors()
        ]
        return _invalid(errors)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        cause = exc.__cause__
        if isinstance(cause, PosadaError):
            # Raised while FastAPI read the body (posada.api.http_limits: too large, stalled).
            return _posada_response(cause)
        if exc.status_code == 400 and cause is not None:
            # A body FastAPI could not parse: invalid UTF-8, nesting too deep for the JSON
            # parser. Malformed JSON is a 422 naming the body; so are these.
            log.info("unparsable body: %r", cause)
            return _invalid([{"field": "body", "error": "the body is not valid JSON"}])
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(DataError)
    async def unusable_value(_: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold (out of range, invalid text): the caller's input.
        # Its message quotes the input and the database's wording: logged, never returned.
        log.warning("value refused by the database: %s", exc.diag.message_primary)
        return _invalid([{"field": "body", "error": "a value is out of range or not usable"}])

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return JSONResponse(
            {"detail": "the database is unavailable; try again in a few seconds"},
            503,
            headers={"Retry-After": RETRY_UNAVAILABLE_S},
        )


def _posada_response(exc: PosadaError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    if exc.status_code == 503:
        headers["Retry-After"] = RETRY_UNAVAILABLE_S
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after_s)
    return JSONResponse({"detail": exc.message}, exc.status_code, headers=headers)


def _invalid(errors: list[dict[str, str]]) -> JSONResponse:
    """The README's 422: a summary and every field at fault."""
    summary = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
    return JSONResponse({"detail": summary, "errors": errors}, status_code=422)


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and several workers: settings from the environment."""
    return create_app(Settings())

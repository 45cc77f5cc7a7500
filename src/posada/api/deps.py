"""Typed FastAPI dependencies: the runtime, its settings, the verified guest, the client's
address and the parts the app keeps in `app.state` (login throttle, request window, metrics,
exposure). The chat limits' dependency is beside them, in posada.api.chat_limits.

They are `async def` although none awaits: FastAPI runs a plain `def` dependency on its
thread pool, a thread hop per dependency per request (measured: most of an exact-cache
hit's time besides its one round trip).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from posada.core import context
from posada.core.config import Settings
from posada.core.errors import NotAuthorized, Unavailable
from posada.guests.throttle import LoginThrottle
from posada.guests.tokens import GuestClaims, verify_token
from posada.limits.addresses import Network, client_address
from posada.observe.prom import Metrics
from posada.observe.staff import Exposure
from posada.observe.window import RequestWindow
from posada.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)
T = TypeVar("T")


async def get_runtime(request: Request) -> Runtime:
    """The runtime the app opened at start."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise Unavailable("posada is starting")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    """The settings in force."""
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_client_address(request: Request) -> str:
    """The client's address, read past the trusted proxies (posada.limits.addresses)."""
    trusted: tuple[Network, ...] = request.app.state.trusted_proxies
    return client_address(request, trusted=trusted)


ClientAddressDep = Annotated[str, Depends(get_client_address)]


def part(name: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency returning the part `create_app` keeps as `app.state.<name>`."""

    async def get(request: Request) -> T:
        part: T = getattr(request.app.state, name)
        return part

    get.__name__ = f"get_{name}"
    return get


# The parts the app installs with its runtime: the login throttle, this process's window
# of recent requests and its Prometheus metrics, and who sees how an answer was made.
LoginThrottleDep = Annotated[LoginThrottle, Depends(part("login_throttle", LoginThrottle))]
WindowDep = Annotated[RequestWindow, Depends(part("window", RequestWindow))]
MetricsDep = Annotated[Metrics, Depends(part("metrics", Metrics))]
ExposureDep = Annotated[Exposure, Depends(part("exposure", Exposure))]


async def get_timings_visible(request: Request, exposure: ExposureDep) -> bool:
    """Whether this caller sees how an answer was made (cache layer, timings, counters)."""
    return exposure.visible(request.scope["headers"])


TimingsVisible = Annotated[bool, Depends(get_timings_visible)]


async def get_guest(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> GuestClaims:
    """The guest a valid Bearer token names; 401 otherwise. The tenant comes from here only."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthorized("log in first: a Bearer token is required")
    with context.stage("auth"):
        claims = _verify(credentials.credentials, settings)
    stats = context.current()
    if stats is not None:
        stats.tenant_id, stats.tenant = claims.tenant_id, claims.tenant_slug
    return claims


GuestDep = Annotated[GuestClaims, Depends(get_guest)]


def _verify(token: str, settings: Settings) -> GuestClaims:
    """Claims under the current secret, else under a previous one (a rotation under way)."""
    try:
        return verify_token(token, secret=settings.signing_secret)
    except NotAuthorized:
        for previous in settings.jwt_previous_secrets:
            try:
                return verify_token(token, secret=previous.get_secret_value())
            except NotAuthorized:
                continue
        raise

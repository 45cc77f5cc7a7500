"""Rotating the guest-token secret: old tokens keep working only while the old secret is
listed as a previous one."""

from __future__ import annotations

import dataclasses

import httpx
from pydantic import SecretStr

from posada.api.app import create_app
from posada.runtime import Runtime
from tests.support.helpers import JWT_SECRET, LoginAs

NEW_SECRET = "the-new-secret-after-rotation-0123456789-abcdef"


async def _conversations(runtime: Runtime, auth: dict[str, str], **changes: object) -> int:
    settings = runtime.settings.model_copy(update=changes)
    settings.__dict__.pop("signing_secret", None)  # a copy keeps the cached old secret
    app = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        return (await http.get("/api/guest/conversations", headers=auth)).status_code


async def test_a_token_of_the_previous_secret_works_only_while_it_is_listed(
    runtime: Runtime, login_as: LoginAs
) -> None:
    auth = await login_as("coral")  # signed with the session's JWT_SECRET
    new = SecretStr(NEW_SECRET)
    assert await _conversations(runtime, auth) == 200
    during = await _conversations(
        runtime, auth, jwt_secret=new, jwt_previous_secrets=[SecretStr(JWT_SECRET)]
    )
    assert during == 200, "during the rotation the old tokens still work"
    after = await _conversations(runtime, auth, jwt_secret=new, jwt_previous_secrets=[])
    assert after == 401, "once the old secret is dropped, its tokens are refused"
    forged = {"Authorization": auth["Authorization"][:-4] + "AAAA"}
    listed = await _conversations(
        runtime, forged, jwt_secret=new, jwt_previous_secrets=[SecretStr(JWT_SECRET)]
    )
    assert listed == 401, "a previous secret never makes a forged token good"

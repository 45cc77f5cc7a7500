"""The OpenAPI document tells the truth: schemathesis against a real `posada serve`.

Every operation gets generated requests (valid and not), a guest's Bearer token on each;
any 5xx, any status, content type, header or body the document does not describe fails
the build. Bounded and seeded: a fixed number of examples per operation, derandomized,
so a run is the same every time and adds well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from posada.api.app import create_app
from posada.core.config import Settings
from posada.runtime import Runtime
from tests.support.helpers import StayFinder, log_in, serve_posada

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(runtime: Runtime) -> Iterator[str]:
    """A server of its own: no LLM (extractive answers, nothing paid or slow); like every
    test server its login and chat limits are lifted (UNLIMITED), so generated requests
    never trip them for the guest's."""
    yield from serve_posada(
        runtime,
        env={
            "POSADA_LLM_BASE_URL": "",
            "POSADA_LLM_API_KEY": "",
            "POSADA_LOG_LEVEL": "warning",
        },
    )


@pytest.fixture
async def guest(server: str, current_stay: StayFinder) -> dict[str, str]:
    """A demo guest's Authorization header, sent with every generated request."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        return await log_in(http, await current_stay("caracola"))


# The document as the app builds it; the server serves this same one (checked below).
# (Loaded here rather than from the server through `schemathesis.pytest.from_fixture`,
# which pytest 9 breaks: it reads `request.node._nodeid`.)
DOCUMENT = create_app(Settings(_env_file=None)).openapi()
# The live event streams never end by themselves: a generated request that opened one would
# read it for ever (tests/integration/test_handoff.py covers them).
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path_regex=r"/events$")


def test_the_server_serves_this_document(server: str) -> None:
    assert httpx.get(f"{server}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_serves_what_the_document_says(
    case: schemathesis.Case[Any], server: str, guest: dict[str, str]
) -> None:
    case.call_and_validate(base_url=server, headers=guest, checks=CHECKS, timeout=30)

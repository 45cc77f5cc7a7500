"""The login throttle: counted before the lookup, per stay and per address, shared."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from redis import Redis
from starlette.requests import Request

from posada.cache.shared import SharedCache
from posada.limits.addresses import client_address, parse_networks
from posada.limits.buckets import Buckets, Limit, LocalBuckets, PostgresBuckets, RedisBuckets
from posada.runtime import Runtime
from tests.support.abuse import Hotel, app_client, import_stays, login_body, make_hotel
from tests.support.helpers import RedisServer, serve_posada

# Small limits, no back-off, so that a test sees exactly how many guesses got through.
NO_BACKOFF = {"login_stay_free": 1000, "login_address_burst": 100_000}


@pytest.fixture
async def hotel(runtime: Runtime) -> Hotel:
    """Two guests who checked in today (A and B), one yesterday (C), one two days ago (D)."""
    return await make_hotel(
        runtime,
        [
            ("A", "a", "1111", 0),
            ("B", "b", "2222", 0),
            ("C", "a", "3333", 1),
            ("D", "b", "4444", 2),
        ],
    )


def _wrong(hotel: Hotel, ago: int, n: int) -> dict[str, str]:
    return login_body(hotel, ago, f"{5000 + n:04d}")


async def _statuses(http: httpx.AsyncClient, bodies: list[dict[str, str]]) -> Counter[int]:
    responses = await asyncio.gather(*(http.post("/api/guest/login", json=b) for b in bodies))
    return Counter(r.status_code for r in responses)


async def test_a_concurrent_burst_reaches_the_lookup_at_most_burst_times(
    runtime: Runtime, hotel: Hotel
) -> None:
    async with app_client(runtime, login_stay_burst=5, login_stay_per_hour=1, **NO_BACKOFF) as http:
        counts = await _statuses(http, [_wrong(hotel, 0, n) for n in range(200)])
        assert counts == {401: 5, 429: 195}, counts
        # The date is locked for everyone now, the right digits included (and say when).
        right = await http.post("/api/guest/login", json=login_body(hotel, 0, "2222"))
        assert right.status_code == 429
        assert int(right.headers["Retry-After"]) > 60
        assert "try again in" in right.json()["detail"]
        # Another check-in date of the same hotel is its own bucket.
        other = await http.post("/api/guest/login", json=login_body(hotel, 1, "3333"))
        assert other.status_code == 200


async def test_a_valid_login_never_gives_back_other_guesses(runtime: Runtime, hotel: Hotel) -> None:
    async with app_client(runtime, login_stay_burst=6, login_stay_per_hour=1, **NO_BACKOFF) as http:
        statuses = []
        for n in range(30):
            # Nine wrong guesses at B's digits, then A's own login, same date: over and over.
            body = login_body(hotel, 0, "1111") if n % 10 == 9 else _wrong(hotel, 0, n)
            statuses.append((await http.post("/api/guest/login", json=body)).status_code)
        assert statuses.count(401) == 6, statuses
        assert statuses[6:] == [429] * 24, statuses
        # Guessing at one date while logging in at another: the other's slots come back, only.
        for n in range(10):
            own = await http.post("/api/guest/login", json=login_body(hotel, 1, "3333"))
            assert own.status_code == 200
            guess = await http.post("/api/guest/login", json=_wrong(hotel, 2, n))
            assert guess.status_code == (401 if n < 6 else 429)


async def test_the_back_off_grows_and_says_when_to_try_again(
    runtime: Runtime, hotel: Hotel
) -> None:
    settings = {"login_stay_free": 1, "login_backoff_s": 1, "login_backoff_max_s": 60}
    async with app_client(runtime, login_stay_burst=10, login_stay_per_hour=1, **settings) as http:
        waits = []
        for n in range(3):
            assert (
                await http.post("/api/guest/login", json=_wrong(hotel, 0, n))
            ).status_code == 401
            refused = await http.post("/api/guest/login", json=_wrong(hotel, 0, 100 + n))
            assert refused.status_code == 429
            assert "please try again in" in refused.json()["detail"]
            waits.append(int(refused.headers["Retry-After"]))
            await asyncio.sleep(waits[-1] + 0.1)
        assert waits == [1, 2, 4]


async def test_one_guesser_does_not_lock_out_guests_sharing_the_address(
    runtime: Runtime, hotel: Hotel
) -> None:
    # The defaults: a guesser on the hotel's Wi-Fi spends each date's guesses, but the
    # address (60 failures, 60 an hour back) holds more than the few dates one sweeps.
    async with app_client(runtime) as http:
        guessed: Counter[tuple[int, int]] = Counter()
        for n in range(30):
            for ago in (0, 1, 2):
                response = await http.post("/api/guest/login", json=_wrong(hotel, ago, n))
                guessed[(ago, response.status_code)] += 1
        assert all(guessed[(ago, 401)] <= 10 for ago in (0, 1, 2)), guessed
        # A guest of another date, and one who mistypes once, from the same address.
        typo = await http.post("/api/guest/login", json=login_body(hotel, 3, "9999"))
        assert typo.status_code == 401
        await import_stays(runtime, hotel, [("E", "a", "5555", 3)])
        fine = await http.post("/api/guest/login", json=login_body(hotel, 3, "5555"))
        assert fine.status_code == 200, fine.text


async def test_a_hotels_throttle_never_touches_another_hotel(
    runtime: Runtime, hotel: Hotel
) -> None:
    other = await make_hotel(runtime, [("A", "a", "1111", 0)])
    async with app_client(runtime, login_stay_burst=2, login_address_burst=3) as http:
        counts = await _statuses(http, [_wrong(hotel, 0, n) for n in range(20)])
        assert counts[401] == 2
        assert (
            await http.post("/api/guest/login", json=login_body(other, 0, "1111"))
        ).status_code == 200


async def test_forwarded_addresses_count_only_through_a_trusted_proxy(
    runtime: Runtime, hotel: Hotel
) -> None:
    limits = {"login_stay_burst": 1000, "login_stay_free": 1000, "login_address_burst": 3}
    forged = [{"X-Forwarded-For": f"198.51.100.{n}"} for n in range(40)]
    async with app_client(runtime, **limits) as http:
        statuses = [
            (await http.post("/api/guest/login", json=_wrong(hotel, 0, n), headers=h)).status_code
            for n, h in enumerate(forged)
        ]
        assert statuses.count(401) == 3, "one socket address, whatever the header says"
    async with app_client(runtime, trusted_proxies=["127.0.0.1"], **limits) as http:
        statuses = [
            (await http.post("/api/guest/login", json=_wrong(hotel, 1, n), headers=h)).status_code
            for n, h in enumerate(forged)
        ]
        assert statuses.count(401) == 40, "through the trusted proxy, each guest is its own"
    # And the stay bound holds against any number of (trusted) addresses.
    async with app_client(
        runtime, trusted_proxies=["127.0.0.1"], login_stay_burst=5, **NO_BACKOFF
    ) as http:
        statuses = [
            (await http.post("/api/guest/login", json=_wrong(hotel, 2, n), headers=h)).status_code
            for n, h in enumerate(forged)
        ]
        assert statuses.count(401) == 5


def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers})


def test_client_address_reads_the_header_from_the_right_past_trusted_hops() -> None:
    trusted = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_address(_request("127.0.0.1", "203.0.113.5"), trusted=()) == "127.0.0.1"
    assert client_address(_request("192.0.2.1", "203.0.113.5"), trusted=trusted) == "192.0.2.1"
    chain = "6.6.6.6, 203.0.113.5, 10.1.2.3"  # a forged first hop, the client, our LB
    assert client_address(_request("127.0.0.1", chain), trusted=trusted) == "203.0.113.5"
    assert client_address(_request("127.0.0.1", "localhost"), trusted=trusted) == "127.0.0.1"
    assert client_address(_request("127.0.0.1", None), trusted=trusted) == "127.0.0.1"


@pytest.mark.parametrize("store", ["local", "postgres", "redis"])
async def test_every_store_counts_the_same(runtime: Runtime, redis_url: str, store: str) -> None:
    shared = SharedCache(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}")
    stores: dict[str, Buckets] = {
        "local": LocalBuckets(),
        "postgres": PostgresBuckets(runtime.pool),
        "redis": RedisBuckets(shared, fallback=LocalBuckets()),
    }
    buckets = stores[store]
    limit = Limit(burst=4, per_hour=1)
    key = f"test:{uuid.uuid4().hex}"
    decisions = await asyncio.gather(*(buckets.take(key, limit) for _ in range(20)))
    assert sum(d.granted for d in decisions) == 4
    refused = [d for d in decisions if not d.granted]
    assert all(d.retry_after_s > 3000 for d in refused), "one slot back in an hour"
    await decisions[0].store.give_back(key, limit)
    assert (await buckets.take(key, limit)).granted
    assert not (await buckets.take(key, limit)).granted
    assert (await buckets.take(f"{key}:other", limit)).granted
    await shared.close()


async def test_redis_down_falls_back_to_the_database_never_open(
    runtime: Runtime, own_redis: RedisServer
) -> None:
    shared = SharedCache(own_redis.url, prefix=f"t-{uuid.uuid4().hex[:8]}", retry_after_s=0.2)
    buckets = RedisBuckets(shared, fallback=PostgresBuckets(runtime.pool))
    limit = Limit(burst=3, per_hour=1)
    key = f"test:{uuid.uuid4().hex}"
    assert (await buckets.take(key, limit)).granted  # in Redis
    own_redis.stop()
    try:
        decisions = [await buckets.take(key, limit) for _ in range(10)]
    finally:
        own_redis.start()
    assert [d.granted for d in decisions] == [True] * 3 + [False] * 7
    await shared.close()


def _spread(bases: list[str], hotel: Hotel, ago: int, n: int) -> list[tuple[str, dict[str, str]]]:
    return [(bases[i % len(bases)], _wrong(hotel, ago, i)) for i in range(n)]


async def _guess_across(targets: list[tuple[str, dict[str, str]]], forwarded: bool) -> Counter[int]:
    async with httpx.AsyncClient(timeout=30) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    f"{base}/api/guest/login",
                    json=body,
                    headers={"X-Forwarded-For": f"198.51.100.{i % 100}"} if forwarded else {},
                )
                for i, (base, body) in enumerate(targets)
            )
        )
    return Counter(r.status_code for r in responses)


LIMITS_ENV = {
    "POSADA_LOGIN_STAY_BURST": "6",
    "POSADA_LOGIN_STAY_PER_HOUR": "1",
    "POSADA_LOGIN_STAY_FREE": "1000",
    "POSADA_LOGIN_ADDRESS_BURST": "100000",
}


async def test_two_processes_count_together_in_the_database(runtime: Runtime, hotel: Hotel) -> None:
    for one in serve_posada(runtime, env=LIMITS_ENV):
        for two in serve_posada(runtime, env=LIMITS_ENV):
            # Rotating X-Forwarded-For without a trusted proxy: it changes nothing.
            counts = await _guess_across(_spread([one, two], hotel, 0, 60), forwarded=True)
            assert counts == {401: 6, 429: 54}, counts


async def test_two_processes_count_together_in_redis_behind_a_trusted_proxy(
    runtime: Runtime, hotel: Hotel, redis_url: str
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    env = {
        **LIMITS_ENV,
        "POSADA_REDIS_URL": redis_url,
        "POSADA_REDIS_PREFIX": prefix,
        "POSADA_TRUSTED_PROXIES": "127.0.0.1",
        "POSADA_LOGIN_ADDRESS_BURST": "2",
    }
    for one in serve_posada(runtime, env=env):
        for two in serve_posada(runtime, env=env):
            # 100 forwarded addresses: each its own, but the stay's bound holds in total.
            counts = await _guess_across(_spread([one, two], hotel, 0, 60), forwarded=True)
            assert counts == {401: 6, 429: 54}, counts
            assert Redis.from_url(redis_url).keys(f"{prefix}:bucket:login:stay:*")
            # The forwarded address is the one counted: X is spent, Y is not.
            async with httpx.AsyncClient() as http:
                x = [
                    (await _guess_once(http, base, hotel, n, "203.0.113.7")).status_code
                    for n, base in enumerate([one, two, one])
                ]
                y = (await _guess_once(http, two, hotel, 9, "203.0.113.8")).status_code
            assert x == [401, 401, 429]
            assert y == 401


async def _guess_once(
    http: httpx.AsyncClient, base: str, hotel: Hotel, n: int, address: str
) -> httpx.Response:
    return await http.post(
        f"{base}/api/guest/login", json=_wrong(hotel, 1, n), headers={"X-Forwarded-For": address}
    )

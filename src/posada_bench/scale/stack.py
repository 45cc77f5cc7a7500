"""The scale test's stack: PostgreSQL on TCP, PgBouncer, Redis, the simulated LLM, replicas,
nginx.

`scale_stack` is an async context manager (`async with scale_stack(...) as run`): it
loads the hotels with the async runtime before the replicas start. Everything runs as a
child of the calling process, on free loopback ports, with its files under `folder`, and
is stopped when the block ends, the replicas first.

The `Stack` methods that start and stop replicas block (they wait for a process to exit
or for /readyz): from async code that must go on meanwhile (traffic being driven), call
them with `await asyncio.to_thread(stack.stop_replica, "r2")`.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from posada_bench.dataset import bench_database
from posada_bench.hotels import Hotel, Stay
from posada_bench.runner import PACE, server_env
from posada_bench.scale.nginx import run_nginx
from posada_bench.scale.pgbouncer import run_pgbouncer
from posada_bench.scale.postgres import run_postgres
from posada_bench.scale.redis import run_redis
from posada_bench.servers import ServerFailed, answers, fake_llm, free_port, wait_ready

Say = Callable[[str], None]


@dataclass
class Replica:
    """One `posada serve`."""

    name: str  # "r1"
    url: str  # http://127.0.0.1:PORT, straight to the replica (not nginx)
    port: int
    process: subprocess.Popen[bytes] | None
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # what it was last started with


@dataclass
class Stack:
    """What the scale test runs; the replicas' addresses and the shared services'."""

    site: str  # nginx, http://127.0.0.1:PORT
    replicas: list[Replica]
    direct_url: str  # PostgreSQL itself (superuser conninfo)
    pooled_url: str  # through PgBouncer
    pgbouncer_admin_url: str
    redis_url: str
    llm_url: str  # the simulated LLM's /v1
    folder: Path
    env: dict[str, str]  # the replicas' common environment
    secret: str  # POSADA_JWT_SECRET of the replicas
    workers: int = 1
    nginx_log: Path | None = None  # one JSON line a request (posada_bench.scale.nginx)
    pids: dict[str, int] = field(default_factory=dict)  # the shared services' processes

    def replica(self, name: str) -> Replica:
        """The replica called `name`."""
        for replica in self.replicas:
            if replica.name == name:
                return replica
        raise KeyError(name)

    def launch(self, name: str, *, env: dict[str, str] | None = None) -> None:
        """Start replica `name` on its port without waiting for it (see `start_replica`)."""
        replica = self.replica(name)
        if replica.process is not None and replica.process.poll() is None:
            raise ServerFailed(f"replica {name} is already running")
        data_dir = self.folder / "replicas" / name
        data_dir.mkdir(parents=True, exist_ok=True)
        replica.env = {
            **self.env,
            **(env or {}),
            "POSADA_DATA_DIR": str(data_dir),
            "POSADA_METRICS_REPLICA": name,
        }
        args = [sys.executable, "-m", "posada", "serve", "--port", str(replica.port)]
        args += ["--workers", str(self.workers)]
        with replica.log.open("ab") as out:
            # A session of its own: a SIGKILL reaches its uvicorn workers too (killpg).
            replica.process = subprocess.Popen(  # noqa: S603 (this Python running posada)
                args,
                env=replica.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, name: str, *, timeout_s: float = 180) -> None:
        """Wait until replica `name` answers /readyz with 200."""
        replica = self.replica(name)
        if replica.process is None:
            raise ServerFailed(f"replica {name} was never started")
        wait_ready(
            lambda: answers(f"{replica.url}/readyz", below=201),
            process=replica.process,
            name=f"replica {name}",
            log=replica.log,
            timeout_s=timeout_s,
            interval_s=0.3,
        )

    def start_replica(self, name: str, *, env: dict[str, str] | None = None) -> None:
        """Start replica `name` again on the same port (the common environment, `env` over
        it) and wait for /readyz."""
        self.launch(name, env=env)
        self.wait_ready(name)

    def stop_replica(self, name: str, *, sig: int = signal.SIGTERM, wait_s: float = 30) -> None:
        """Send `sig` to replica `name` (SIGKILL: to all its processes) and wait for it to
        exit; killed outright after `wait_s`."""
        replica = self.replica(name)
        process = replica.process
        if process is None:
            return
        if process.poll() is None:
            if sig == signal.SIGKILL:
                _kill_group(process)
            else:
                process.send_signal(sig)
            try:
                process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                process.wait()
        _kill_group(process)  # workers left behind by a killed parent
        replica.process = None

    def restart_all(self, *, env: dict[str, str]) -> None:
        """A rolling restart with `env` over the common environment (which keeps it): one
        replica at a time, each ready before the next stops."""
        self.env = {**self.env, **env}
        for replica in self.replicas:
            self.stop_replica(replica.name)
            self.start_replica(replica.name)

    def stop_all(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL)."""
        for replica in self.replicas:
            self.stop_replica(replica.name)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class ScaleRun:
    """A stack up, and the hotels loaded in its database."""

    stack: Stack
    stays: list[Stay]  # the demo's and the generated hotels'
    hotels: list[Hotel]  # the generated ones
    real_stays: list[Stay] = field(default_factory=list)  # the corpus's hotels, if loaded


def replica_env(base: dict[str, str], *, pooled: str, direct: str, redis: str) -> dict[str, str]:
    """The replicas' common environment: the benchmark server's, behind the pooler."""
    return {
        **base,
        "POSADA_DATABASE_URL": pooled,
        "POSADA_DATABASE_DIRECT_URL": direct,
        "POSADA_DATABASE_POOLER": "transaction",
        "POSADA_REDIS_URL": redis,
        # nginx is on loopback: its X-Forwarded-For is believed, so the abuse limits
        # count the guest's address, as behind a deployment's balancer.
        "POSADA_TRUSTED_PROXIES": "127.0.0.1",
    }


@asynccontextmanager
async def scale_stack(
    *,
    folder: Path,
    replicas: int = 3,
    hotels: int = 2,
    seed: int = 7,
    workers: int = 1,
    env: dict[str, str] | None = None,
    say: Say = print,
    corpus: Path | None = None,
    pool_size: int = 20,
) -> AsyncIterator[ScaleRun]:
    """Bring the whole stack up under `folder` (the demo, `hotels` generated hotels and the
    hotels of `corpus` loaded; `env` over the replicas' environment); down at the end."""
    folder = _made(folder)
    with ExitStack() as services:
        say(f"PostgreSQL server on TCP under {folder / 'postgres'} ...")
        pg = services.enter_context(run_postgres(folder=folder / "postgres"))
        async with bench_database(
            folder, hotels=hotels, seed=seed, say=say, corpus=corpus, database_url=pg.url
        ) as (runtime, stays, planned, real):
            secret = secrets.token_urlsafe(48)
            base = server_env("optimized", runtime=runtime, llm="", secret=secret)
        bouncer = services.enter_context(
            run_pgbouncer(server_url=pg.url, folder=folder / "pgbouncer", pool_size=pool_size)
        )
        redis = services.enter_context(run_redis(folder=folder / "redis"))
        say("the simulated LLM ...")
        llm = services.enter_context(
            fake_llm(
                ttft_ms=PACE.ttft_ms,
                tokens_per_s=PACE.tokens_per_s,
                embed_ms=PACE.embed_ms,
                log=folder / "fake-llm.log",
            )
        )
        common = replica_env(base, pooled=bouncer.url, direct=pg.url, redis=redis.url)
        common |= {"POSADA_LLM_BASE_URL": llm.url, "POSADA_DATA_DIR": str(folder / "cli")}
        stack = Stack(
            site="",
            replicas=[_replica(folder, i) for i in range(1, replicas + 1)],
            direct_url=pg.url,
            pooled_url=bouncer.url,
            pgbouncer_admin_url=bouncer.admin_url,
            redis_url=redis.url,
            llm_url=llm.url,
            folder=folder,
            env={**common, **(env or {})},
            secret=secret,
            workers=workers,
            pids={"postgres": pg.pid, "pgbouncer": bouncer.pid, "redis": redis.pid},
        )
        stack.pids["llm"] = llm.pid
        services.callback(stack.stop_all)
        say(f"{replicas} replicas of posada serve ...")
        for replica in stack.replicas:
            stack.launch(replica.name)
        for replica in stack.replicas:
            stack.wait_ready(replica.name)
        ports = {replica.name: replica.port for replica in stack.replicas}
        site = services.enter_context(run_nginx(folder=folder / "nginx", replicas=ports))
        stack.site, stack.nginx_log = site.url, site.access_log
        stack.pids["nginx"] = site.pid
        say(f"stack up: nginx {site.url}, replicas {', '.join(r.url for r in stack.replicas)}")
        yield ScaleRun(stack=stack, stays=stays, hotels=planned, real_stays=real)


def _made(folder: Path) -> Path:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _replica(folder: Path, index: int) -> Replica:
    port = free_port()
    log = folder / f"replica-r{index}.log"
    log.unlink(missing_ok=True)
    return Replica(f"r{index}", f"http://127.0.0.1:{port}", port, None, log)

"""posada as a newcomer runs it: real processes on fresh data dirs, each with its own
embedded PostgreSQL. Commands end, `make run` serves (its `posada demo` must exit first),
the database comes back after it is killed, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from posada_bench.servers import UNLIMITED, free_port
from posada_bench.traffic import ask_for, demo_guests
from tests.support.helpers import write_docs

REPO = Path(__file__).resolve().parents[2]
POSADA = [sys.executable, "-m", "posada"]
COMMAND_DEADLINE_S = 60


def fresh_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without any POSADA_ setting, on its own data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSADA_")}
    return {**env, "POSADA_DATA_DIR": str(data_dir), **extra}


def postgres_pids(pgdata: Path) -> list[int]:
    """The PostgreSQL processes serving `pgdata` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"postgres") and str(pgdata).encode() in cmdline:
            found.append(int(entry.name))
    return found


def wait_until_gone(pgdata: Path, *, seconds: float) -> list[int]:
    """Wait for the server of `pgdata` to stop; the processes still there at the end."""
    deadline = time.monotonic() + seconds
    while (left := postgres_pids(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def run_command(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`posada ARGS` as its own process; fails the test if it has not exited in time."""
    try:
        return subprocess.run(
            [*POSADA, *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=COMMAND_DEADLINE_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`posada {' '.join(args)}` had not exited after {COMMAND_DEADLINE_S} s: {exc}")


def test_ingest_and_ask_end_and_leave_no_server_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    docs = write_docs(
        tmp_path / "docs",
        {"faq.md": "# FAQ\n\n## ¿Prestan bicicletas?\nSí, bicicletas verdes sin costo.\n"},
    )
    env = fresh_env(data)
    ingested = run_command(env, tmp_path, "ingest", str(docs), "--tenant", "bici")
    assert ingested.returncode == 0, ingested.stderr
    assert "knowledge version is now 1" in ingested.stderr
    asked = run_command(env, tmp_path, "ask", "--tenant", "bici", "¿Prestan bicicletas?")
    assert asked.returncode == 0, asked.stderr
    assert "bicicletas verdes" in asked.stdout
    # The last process using the embedded server stopped it as it left.
    assert wait_until_gone(data.resolve() / "pg", seconds=20) == []


@dataclass
class Newcomer:
    """`make run` on a fresh data dir: the make process, its URL and its data dir."""

    process: subprocess.Popen[bytes]
    url: str
    pgdata: Path
    log: Path


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newcomer]:
    """`make run`, as the README says, until the server answers /readyz."""
    root = tmp_path_factory.mktemp("newcomer")
    port = free_port()
    log = root / "make-run.log"
    # The chat limits lifted: the outage test's guests ask as fast as they are answered.
    env = fresh_env(root / "data", POSADA_PORT=str(port), **UNLIMITED)
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"make run exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"make run: no ready server after 300 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Newcomer(process, url, (root / "data" / "pg").resolve(), log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


async def test_make_run_serves_the_demo_hotel(newcomer: Newcomer) -> None:
    async with httpx.AsyncClient(base_url=newcomer.url, timeout=30) as http:
        ready = await http.get("/readyz")
        assert ready.json() == {"ready": True, "database": True, "model": True}
        auth = (await demo_guests(http))[2]  # Sofía Restrepo, Manglar
        chat = await http.post(
            "/api/guest/chat", json={"message": "¿Cuál es la clave del wifi?"}, headers=auth
        )
    assert chat.status_code == 200, chat.text
    assert chat.json()["answer"]


async def test_the_embedded_database_is_restarted_when_killed_under_traffic(
    newcomer: Newcomer,
) -> None:
    async with httpx.AsyncClient(base_url=newcomer.url, timeout=30) as http:
        guests = await demo_guests(http)

    before = _postmaster_pid(newcomer.pgdata)

    async def kill_soon() -> float:
        await asyncio.sleep(2)
        os.kill(before, signal.SIGKILL)
        return time.monotonic()

    killed_at, outcomes = await asyncio.gather(
        kill_soon(), ask_for(newcomer.url, guests, seconds=16, tag="pg-kill")
    )
    statuses = {o.status for o in outcomes}
    failed = [o for o in outcomes if o.status != 200]
    assert statuses <= {200, 503}, sorted(statuses)
    assert _postmaster_pid(newcomer.pgdata) != before, "posada started a new server"
    # Requests that found no connection waited for one (the server is back within about
    # 2 s, inside the 3 s pool timeout) or got a 503 that says when to try again.
    assert all(o.retry_after for o in failed), "every 503 says when to try again"
    # Never the pool's old 30 s: a request waits for a connection 3 s at most.
    assert max(o.seconds for o in outcomes) < 10, max(o.seconds for o in outcomes)
    # Back within 8 s of the kill, and everything asked after that was answered.
    assert all(o.status == 200 for o in outcomes if o.started > killed_at + 8), failed[-3:]
    assert (await asyncio.to_thread(lambda: httpx.get(f"{newcomer.url}/readyz"))).status_code == 200

    # Every answered question is stored exactly once; none stored twice.
    url = f"postgresql://postgres@/posada?host={newcomer.pgdata}"
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            """SELECT content, count(*) FROM messages
               WHERE role = 'guest' AND content LIKE %s GROUP BY content""",
            ("%[pg-kill %",),
        )
        stored: dict[str, int] = dict(await cur.fetchall())
    assert all(count == 1 for count in stored.values()), stored
    assert all(stored.get(o.question) == 1 for o in outcomes if o.status == 200)


def test_ctrl_c_ends_make_run_and_stops_the_database(newcomer: Newcomer) -> None:
    assert postgres_pids(newcomer.pgdata), "the embedded server is running before"
    os.killpg(newcomer.process.pid, signal.SIGINT)  # Ctrl-C in the newcomer's terminal
    try:
        newcomer.process.wait(timeout=COMMAND_DEADLINE_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"make run still running after Ctrl-C:\n{newcomer.log.read_text()[-3000:]}")
    assert wait_until_gone(newcomer.pgdata, seconds=20) == [], newcomer.log.read_text()[-3000:]


def test_sigterm_ends_two_workers_with_0_and_stops_the_database(tmp_path: Path) -> None:
    port = free_port()
    env = fresh_env(tmp_path / "data", POSADA_PORT=str(port))
    with (tmp_path / "serve.log").open("wb") as out:
        process = subprocess.Popen(
            [*POSADA, "serve", "--workers", "2"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no ready server after 180 s"
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=COMMAND_DEADLINE_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert wait_until_gone((tmp_path / "data" / "pg").resolve(), seconds=20) == []

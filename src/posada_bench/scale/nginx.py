"""nginx in front of the replicas, running the deployable site `docs/deploy/nginx/posada.conf`.

The site is rendered with the scale test's ports: the replicas between its marker lines,
a loopback `listen`, log paths under the folder, and one thing a deployment has no use
for: an `X-Posada-Replica` response header naming the replica that answered. nginx runs
in the foreground (`-g 'daemon off;'`) with its prefix, pid, logs and temp folders under
the scale test's folder. As root, its workers run as `nobody`, who owns the temp folders;
not as root, nginx runs as whoever starts it and no `user` line is written (it would only
be warned about).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from posada_bench.servers import ServerFailed, free_port, stop, wait_ready

SITE = Path(__file__).resolve().parents[3] / "docs" / "deploy" / "nginx" / "posada.conf"
BEGIN, END = "# posada:replicas:begin", "# posada:replicas:end"
REPLICA_HEADER = "X-Posada-Replica"
_TEMPS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")

_MAIN = """worker_processes 1;
worker_rlimit_nofile 16384;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
{user}
events {{
    worker_connections 8192;
}}
http {{
    client_body_temp_path {folder}/temp/body;
    proxy_temp_path {folder}/temp/proxy;
    fastcgi_temp_path {folder}/temp/fastcgi;
    uwsgi_temp_path {folder}/temp/uwsgi;
    scgi_temp_path {folder}/temp/scgi;
    include {folder}/posada.conf;
}}
"""


@dataclass(frozen=True)
class Nginx:
    """A running nginx: `url` is the site; `access_log` holds one JSON object a request."""

    url: str
    port: int
    pid: int
    access_log: Path


def nginx_binary() -> str | None:
    """nginx, if installed (Debian puts it in /usr/sbin, often off a user's PATH)."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    return found


def render_site(text: str, *, port: int, replicas: dict[str, int], folder: Path) -> str:
    """The site with these ports and paths, and the header that names the replica."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    servers = "".join(
        f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;  # {name}\n"
        for name, p in replicas.items()
    )
    site = f"{head}{BEGIN}\n{servers}    {END}{tail}"
    site = re.sub(r"(?m)^(\s*)listen\s+80;", rf"\g<1>listen 127.0.0.1:{port};", site)
    site = re.sub(r"(?m)^(\s*access_log)\s+\S+", rf"\1 {folder}/access.log", site)
    site = re.sub(r"(?m)^(\s*error_log)\s+\S+", rf"\1 {folder}/error.log", site)
    names = "".join(f"    127.0.0.1:{p} {name};\n" for name, p in replicas.items())
    # A request tried on two replicas shows both addresses: the header keeps them raw.
    header = f"map $upstream_addr $posada_replica {{\n{names}    default $upstream_addr;\n}}\n"
    site = site.replace("upstream posada {", f"{header}\nupstream posada {{", 1)
    return site.replace(
        "location / {\n",
        f"location / {{\n        add_header {REPLICA_HEADER} $posada_replica always;\n",
        1,
    )


def write_config(*, folder: Path, port: int, replicas: dict[str, int]) -> Path:
    """nginx.conf and the rendered site under `folder`; returns nginx.conf."""
    folder = folder.resolve()
    for name in _TEMPS:
        (folder / "temp" / name).mkdir(parents=True, exist_ok=True)
    for log in ("access.log", "error.log"):
        (folder / log).unlink(missing_ok=True)  # a run's logs are its own
    user = ""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for name in _TEMPS:
            os.chown(folder / "temp" / name, nobody.pw_uid, nobody.pw_gid)
        user = f"user nobody {_group_of(nobody)};"
    site = render_site(SITE.read_text("utf-8"), port=port, replicas=replicas, folder=folder)
    (folder / "posada.conf").write_text(site, "utf-8")
    conf = folder / "nginx.conf"
    conf.write_text(_MAIN.format(folder=folder, user=user), "utf-8")
    return conf


def _group_of(entry: pwd.struct_passwd) -> str:
    import grp

    return grp.getgrgid(entry.pw_gid).gr_name


@contextmanager
def run_nginx(*, folder: Path, replicas: dict[str, int], timeout_s: float = 20) -> Iterator[Nginx]:
    """nginx on a free loopback port in front of `replicas` (name: port); stopped at the end."""
    binary = nginx_binary()
    if binary is None:
        raise ServerFailed("the scale test needs nginx (apt-get install nginx)")
    folder = folder.resolve()
    port = free_port()
    conf = write_config(folder=folder, port=port, replicas=replicas)
    args = [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")]
    args += ["-g", "daemon off;"]
    with (folder / "nginx.out").open("wb") as out:
        # The system's nginx, with a configuration written here.
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            wait_ready(
                lambda: _listening(port), process=process, name="nginx",
                log=folder / "nginx.out", timeout_s=timeout_s, interval_s=0.1,
            )  # fmt: skip
            yield Nginx(f"http://127.0.0.1:{port}", port, process.pid, folder / "access.log")
        finally:
            stop(process, timeout_s=20)  # SIGTERM: nginx's fast shutdown


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)  # any answer: nginx is up
        return True
    except httpx.TransportError:
        return False


def read_access_log(path: Path, *, offset: int = 0) -> list[dict[str, Any]]:
    """The requests logged from byte `offset` on, one dict each (the site's JSON format)."""
    if not path.exists():
        return []
    with path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]

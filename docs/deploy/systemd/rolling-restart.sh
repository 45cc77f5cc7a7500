#!/usr/bin/env bash
# Restart posada's replicas one at a time, each back and ready before the next stops
# (docs/deploy.md, "Zero-downtime restarts"). Run as root after installing the new
# release and running `posada db migrate` once:
#
#   docs/deploy/systemd/rolling-restart.sh              # every running posada@PORT
#   docs/deploy/systemd/rolling-restart.sh 8001 8002    # these
#
# `systemctl restart posada@PORT` sends SIGTERM: the replica stops accepting (nginx moves
# new requests to the others), finishes what is in flight within POSADA_SHUTDOWN_GRACE_S,
# exits; systemd starts it again and returns once it answers /readyz (the unit's
# ExecStartPost). A replica that does not come back stops the run: the others still serve.
set -euo pipefail

# nginx takes a replica out for fail_timeout (5 s in docs/deploy/nginx/posada.conf) after a
# refused connection: wait that long before stopping the next one.
pause_s="${PAUSE_S:-6}"

if [ "$#" -gt 0 ]; then
    ports=("$@")
else
    mapfile -t ports < <(systemctl list-units 'posada@*.service' --state=active --plain \
        --no-legend | sed -n 's/^posada@\([0-9]*\)\.service.*/\1/p')
fi
if [ "${#ports[@]}" -eq 0 ]; then
    echo "no posada@PORT unit is running; name the ports" >&2
    exit 2
fi

for port in "${ports[@]}"; do
    started=$(date +%s)
    echo "posada@$port: restarting"
    if ! systemctl restart "posada@$port"; then
        echo "posada@$port did not come back ready: stopping here" >&2
        journalctl -u "posada@$port" -n 20 --no-pager >&2 || true
        exit 1
    fi
    curl -fsS "http://127.0.0.1:$port/readyz"
    echo "  (ready again after $(($(date +%s) - started)) s)"
    sleep "$pause_s"
done
echo "restarted: ${ports[*]}"

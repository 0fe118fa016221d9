#!/usr/bin/env bash
# `make image-smoke`: the stack of compose.yaml from the image `make image` built, with
# podman-compose, the stores from deploy/compose.podman.yaml. It waits for each store, then
# for every service's health check, trades through the gateway (deploy/smoke.py), checks
# that nothing runs as root and that every service's root filesystem is read-only, kills the
# engine's container and sees it come back, and tears everything down. On a failure it
# prints the services' logs, PostgreSQL's first, and exits non-zero.
#   IMAGE=localhost/exchange:dev SMOKE_PORT=18080 deploy/smoke.sh   # default: a free port from 18080
set -euo pipefail
. "$(dirname "$0")/podman.sh"
export EXCHANGE_IMAGE="${IMAGE:-localhost/exchange:dev}"
export IMAGE_TAG="${EXCHANGE_IMAGE##*:}"
GATEWAY_PUBLISH="127.0.0.1:$(smoke_port "${SMOKE_PORT:-}" 18080)"
export GATEWAY_PUBLISH
export GATEWAY_FAUCET=true
export GATEWAY_TOKEN_SECRET ENGINE_ADMIN_TOKEN POSTGRES_PASSWORD
GATEWAY_TOKEN_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
ENGINE_ADMIN_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
POSTGRES_PASSWORD=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
PROJECT=exchange-smoke
PODMAN_COMPOSE="$ROOT/.venv/bin/podman-compose"
[[ -x "$PODMAN_COMPOSE" ]] || "$ROOT/.venv/bin/pip" install --quiet podman-compose==1.6.0
URL="http://$GATEWAY_PUBLISH"
compose=("$PODMAN_COMPOSE" --project-name "$PROJECT" -f "$ROOT/compose.yaml"
         -f "$ROOT/deploy/compose.podman.yaml")
STORES=(timescaledb redis)
SERVICES=(engine ledger stream-publisher stream gateway mm)
PODMAN_LOG="$PODMAN_HOME/smoke-podman.log"  # podman-compose's own chatter, shown on a failure
: > "$PODMAN_LOG"
started=$SECONDS

say() { echo "smoke [$((SECONDS - started)) s]: $*"; }
container() { echo "${PROJECT}_$1_1"; }

state() {
    podman container exists "$(container "$1")" || { echo "not created"; return; }
    podman inspect -f 'status={{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} restarts={{.RestartCount}} error={{.State.Error}}' "$(container "$1")" 2>&1 | head -1
}

# The logs of every container, the stores first, short; then once more, for an output cut
# at either end, each one's state (whether it exited, how, how often it was restarted) and
# PostgreSQL's last lines.
logs() {
    local name
    for name in "${STORES[@]}" "${SERVICES[@]}"; do
        echo "===== $name: $(state "$name")"
        podman container exists "$(container "$name")" && podman logs --tail "${SMOKE_LOG_LINES:-30}" "$(container "$name")" 2>&1 | cut -c1-300 || true
    done
    echo "===== summary"
    for name in "${STORES[@]}" "${SERVICES[@]}"; do echo "$name: $(state "$name")"; done
    podman logs --tail 8 "$(container timescaledb)" 2>&1 | cut -c1-300 || true
}

# A container that keeps failing is restarted by its policy even while compose stops it:
# containers are removed by force first, then compose takes the volumes and the network.
teardown() {
    podman ps -a -q --filter "label=io.podman.compose.project=$PROJECT" \
        | xargs -r podman rm -f -t 10 >/dev/null 2>&1 || true
    timeout 180 "${compose[@]}" down -v -t 10 >/dev/null 2>&1 || true
}

finish() {
    local status=$?
    trap - EXIT
    if [[ $status -ne 0 ]]; then
        say "FAILED (exit $status); podman-compose said:"
        grep -v -e 'systemd connection' -e 'condition check' -e 'syslog' "$PODMAN_LOG" | tail -n 20 || true
        say "the services' logs:"
        logs
    fi
    say "tearing down"
    teardown
    if [[ -n "$(podman ps -a -q --filter "label=io.podman.compose.project=$PROJECT")" ]]; then
        say "containers were left behind"
        status=1
    fi
    [[ $status -eq 0 ]] && say "passed"
    exit "$status"
}
trap finish EXIT

# What the last run of a container's health check printed (pg_isready's "no response", a
# Python traceback), on one line.
check_said() {
    podman inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$1" 2>/dev/null \
        | tail -c 300 | tr '\n' ' '
}

# Runs the service's own health check (podman has no timer for it without systemd) until it
# passes; gives up at once when the container was never created or could not be started (the
# runtime's or the network's error), early when it keeps exiting, and says which.
healthy() {
    local name=$1 deadline=$((SECONDS + $2)) ctr restarts status error
    ctr=$(container "$name")
    until podman healthcheck run "$ctr" >/dev/null 2>&1; do
        if ! podman container exists "$ctr"; then
            say "$name: no container $ctr (podman-compose's output below says why)"
            return 1
        fi
        restarts=$(podman inspect -f '{{.RestartCount}}' "$ctr" 2>/dev/null || echo 0)
        status=$(podman inspect -f '{{.State.Status}}' "$ctr" 2>/dev/null || true)
        error=$(podman inspect -f '{{.State.Error}}' "$ctr" 2>/dev/null || true)
        if [[ $status != running && -n $error ]]; then
            say "$name could not be started ($status): $error"
            return 1
        fi
        if ((SECONDS > deadline)) || ((restarts >= 3)); then
            say "$name is not healthy after $((SECONDS - deadline + $2)) s ($(state "$name")); its check said: $(check_said "$ctr")"
            return 1
        fi
        sleep 1
    done
    say "$name healthy"
}

teardown  # a run that was cut short
say "starting the stores"
"${compose[@]}" up -d "${STORES[@]}" >>"$PODMAN_LOG" 2>&1
for name in "${STORES[@]}"; do healthy "$name" 240; done
say "starting the services"
"${compose[@]}" up -d >>"$PODMAN_LOG" 2>&1
for name in "${SERVICES[@]}"; do healthy "$name" 300; done

trade=$("$ROOT/.venv/bin/python" -m deploy.smoke trade "$URL")
say "two users traded (trade $trade), read back from history and the WebSocket"

for name in "${STORES[@]}" "${SERVICES[@]}"; do
    users=$(podman top "$(container "$name")" user | tail -n +2 | sort -u | tr '\n' ' ')
    if [[ -z "$users" || " $users " == *" root "* ]]; then
        say "$name runs as: ${users:-nothing}"
        exit 1
    fi
done
say "no container runs anything as root"
for name in "${SERVICES[@]}"; do
    if [[ $(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$(container "$name")") != true ]]; then
        say "$name's root filesystem is writable"
        exit 1
    fi
done
say "every service's root filesystem is read-only"

engine=$(container engine)
before=$(podman inspect -f '{{.RestartCount}}' "$engine")
kill -KILL "$(podman inspect -f '{{.State.Pid}}' "$engine")"
say "killed the engine's container"
deadline=$((SECONDS + 120))
until [[ $(podman inspect -f '{{.RestartCount}}' "$engine") -gt $before ]]; do
    ((SECONDS < deadline)) || { say "the engine was not restarted"; exit 1; }
    sleep 1
done
healthy engine 300
healthy gateway 120
"$ROOT/.venv/bin/python" -m deploy.smoke traded "$URL" "$trade"
say "the engine came back; trade $trade is still served"

#!/usr/bin/env bash
# `make kube-smoke`: the dev overlay under `podman kube play`, adapted where kube play cannot
# follow it (deploy/kube.py prints what is not exercised), the same trade as image-smoke
# through the gateway, no container running as root or with a writable root filesystem, then
# `kube play --down`. On a failure it prints the pods' logs, PostgreSQL's first, and exits
# non-zero.
#   IMAGE=localhost/exchange:dev KUBE_SMOKE_PORT=18081 deploy/kube-smoke.sh
set -euo pipefail
. "$(dirname "$0")/podman.sh"
IMAGE="${IMAGE:-localhost/exchange:dev}"
PORT=$(smoke_port "${KUBE_SMOKE_PORT:-}" 18081)  # a free one from 18081 unless given
NETWORK=exchange-kube
OUT="$PODMAN_HOME/kube"
PODMAN_LOG="$PODMAN_HOME/kube-smoke-podman.log"  # kube play's own chatter, shown on a failure
: > "$PODMAN_LOG"
started=$SECONDS
say() { echo "kube-smoke [$((SECONDS - started)) s]: $*"; }

"$ROOT/.venv/bin/python" -m deploy.kube "$IMAGE" "${IMAGE##*:}" "$PORT" "$OUT"
PODS=(timescaledb redis engine ledger ledger-reader stream-publisher stream gateway mm mm-flow)

logs() {
    local pod ctr
    for pod in "${PODS[@]}"; do
        for ctr in $(podman ps -a --filter "pod=$pod" --format '{{.Names}}' 2>/dev/null | grep -v -- '-infra$'); do
            echo "===== $ctr: $(podman inspect -f 'status={{.State.Status}} exit={{.State.ExitCode}} restarts={{.RestartCount}} error={{.State.Error}}' "$ctr" 2>&1)"
            podman logs --tail "${SMOKE_LOG_LINES:-30}" "$ctr" 2>&1 | cut -c1-300 || true
        done
    done
}

# kube play --down leaves the volumes it made (claims, ConfigMaps): those not there before go.
down() {
    timeout 180 podman kube play --down "$OUT/play.yaml" >/dev/null 2>&1 || true
    comm -13 <(sort "$OUT/volumes-before") <(podman volume ls -q | sort) \
        | xargs -r podman volume rm -f >/dev/null 2>&1 || true
    podman secret rm exchange-secrets >/dev/null 2>&1 || true
    podman network rm -f "$NETWORK" >/dev/null 2>&1 || true
}

finish() {
    local status=$?
    trap - EXIT
    if [[ $status -ne 0 ]]; then
        say "FAILED (exit $status); podman said:"
        grep -v -e 'systemd connection' -e 'syslog' "$PODMAN_LOG" | tail -n 20 || true
        say "the pods' logs:"
        logs
    fi
    say "tearing down"
    down
    if [[ -n "$(podman pod ps -q)" ]]; then
        say "pods were left behind"
        status=1
    fi
    [[ $status -eq 0 ]] && say "passed"
    exit "$status"
}
trap finish EXIT

[[ -f "$OUT/volumes-before" ]] && down  # a run that was cut short
podman volume ls -q > "$OUT/volumes-before"
podman network create "$NETWORK" >/dev/null
podman secret create exchange-secrets "$OUT/secret.json" >/dev/null
podman kube play --network "$NETWORK" "$OUT/play.yaml" >>"$PODMAN_LOG" 2>&1
say "played $(podman pod ps -q | wc -l) pods"

trade=$("$ROOT/.venv/bin/python" -m deploy.smoke trade "http://127.0.0.1:$PORT")
say "two users traded (trade $trade), read back from history and the WebSocket"
for pod in "${PODS[@]}"; do
    for ctr in $(podman ps --filter "pod=$pod" --format '{{.Names}}' | grep -v -- '-infra$'); do
        users=$(podman top "$ctr" user | tail -n +2 | sort -u | tr '\n' ' ')
        if [[ -z "$users" || " $users " == *" root "* ]]; then
            say "$ctr runs as: ${users:-nothing}"
            exit 1
        fi
        if [[ $(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$ctr") != true ]]; then
            say "$ctr's root filesystem is writable"
            exit 1
        fi
    done
done
say "no container runs anything as root; every root filesystem is read-only"

#!/usr/bin/env bash
# Podman on this machine with nothing system-wide changed: its configuration and storage live
# in .podman/ of the checkout (ignored). Sourced by the other scripts of deploy/.
#   . deploy/podman.sh   # installs podman if missing, exports CONTAINERS_CONF and CONTAINERS_STORAGE_CONF
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PODMAN_HOME="$ROOT/.podman"
export CONTAINERS_CONF="$PODMAN_HOME/containers.conf"
export CONTAINERS_STORAGE_CONF="$PODMAN_HOME/storage.conf"

# iptables by name: netavark runs it for every bridge network and port, but no package
# depends on it, so apt-ensure's --no-install-recommends on a fresh machine leaves it out
# (a machine where podman came with its recommends has it) and no container starts there.
"$ROOT/scripts/apt-ensure.sh" podman runc conmon netavark aardvark-dns catatonit mmdebstrap \
    uidmap iptables
mkdir -p "$PODMAN_HOME"
# crun fails on this machine's cgroups ("hybrid mode not supported"): runc. No systemd here:
# cgroupfs and a file for events. Networks and podman's state stay in .podman/ too. A container inherits the rlimits below, not podman's
# defaults, which exceed what this machine allows.
cat > "$CONTAINERS_CONF.new" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_HOME/events.log"
tmp_dir = "$PODMAN_HOME/run/libpod"
[network]
network_backend = "netavark"
network_config_dir = "$PODMAN_HOME/networks"
CONF
cat > "$CONTAINERS_STORAGE_CONF.new" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_HOME/storage"
runroot = "$PODMAN_HOME/run"
CONF
mv "$CONTAINERS_CONF.new" "$CONTAINERS_CONF"
mv "$CONTAINERS_STORAGE_CONF.new" "$CONTAINERS_STORAGE_CONF"

# A loopback port for a smoke test's gateway to publish: $1 if set (failing, with who holds
# it, when it is taken), else the first free one from $2 on. A port left held by another
# checkout's containers or by a test's server would make podman's publish fail.
port_free() {
    python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
        "$1" 2>/dev/null
}
smoke_port() {
    local wanted=$1 port=$2
    if [[ -n $wanted ]]; then
        if ! port_free "$wanted"; then
            echo "port $wanted is taken: $(ss -Hltnp "sport = :$wanted" 2>/dev/null | head -1)" >&2
            return 1
        fi
        echo "$wanted"
        return
    fi
    until port_free "$port"; do ((port += 1)); done
    echo "$port"
}

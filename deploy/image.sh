#!/usr/bin/env bash
# `make image`: the base made once from Debian's packages (mmdebstrap, no registry), the images
# of the stores on it, then the exchange's image from the Dockerfile with that base.
#   IMAGE=localhost/exchange:dev deploy/image.sh
set -euo pipefail
. "$(dirname "$0")/podman.sh"
IMAGE="${IMAGE:-localhost/exchange:dev}"
BASE=localhost/exchange-base:bookworm
TAG="${IMAGE##*:}"

started=$SECONDS
if ! podman image exists "$BASE"; then
    # The mirror this machine's apt uses for bookworm main (deb822 or one-line), never a
    # fixed one; DEBIAN_MIRROR overrides it.
    mirror=${DEBIAN_MIRROR:-$(cd "$ROOT" && python3 -m deploy.apt_mirror bookworm)}
    echo "making $BASE with mmdebstrap from $mirror"
    if ! mmdebstrap --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
            --include=python3,python3-venv,ca-certificates,passwd bookworm - "$mirror" \
            2>"$PODMAN_HOME/mmdebstrap.log" \
        | podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null; then
        tail -n 30 "$PODMAN_HOME/mmdebstrap.log"
        exit 1
    fi
fi
echo "base ready after $((SECONDS - started)) s"

# pip and npm inside the build trust this machine's CA bundle, mounted for the build only.
build=(podman build --jobs=2 --network=host --build-arg "PYTHON_IMAGE=$BASE"
       -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg HOST_CA=/run/host-ca.crt)
# Each build's output goes to .podman/build.log; its end is shown when it fails.
quietly() {
    if ! "$@" >"$PODMAN_HOME/build.log" 2>&1; then
        tail -n 40 "$PODMAN_HOME/build.log"
        echo "image: failed: $*" >&2
        exit 1
    fi
}
quietly "${build[@]}" -f deploy/stores.Containerfile --target redis -t "localhost/exchange-redis:$TAG" "$ROOT"
quietly "${build[@]}" -f deploy/stores.Containerfile --target postgres -t "localhost/exchange-postgres:$TAG" "$ROOT"
echo "stores built after $((SECONDS - started)) s"
quietly "${build[@]}" -t "$IMAGE" "$ROOT"
echo "$IMAGE built in $((SECONDS - started)) s, $(podman image inspect -f '{{.Size}}' "$IMAGE") bytes"

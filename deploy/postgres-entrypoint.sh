#!/bin/sh
# PostgreSQL as the official images start it: on an empty PGDATA, a cluster whose superuser
# is POSTGRES_USER with POSTGRES_PASSWORD and a database POSTGRES_DB; then the server,
# listening on every address with passwords (scram) for TCP clients. Every step says what
# it does on stderr, so that a start that fails on a new machine says why in its log.
set -eu
say() { echo "postgres-entrypoint: $*" >&2; }
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
say "uid $(id -u), gid $(id -g), PGDATA $PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        say "POSTGRES_PASSWORD is not set"
        exit 1
    fi
    parent=$(dirname "$PGDATA")
    if ! mkdir -p "$PGDATA" 2>/dev/null || ! [ -w "$PGDATA" ]; then
        say "cannot write $PGDATA: $(ls -ldn "$parent")"
        exit 1
    fi
    chmod 700 "$PGDATA"
    say "initdb of $PGDATA"
    printf '%s\n' "$POSTGRES_PASSWORD" | initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" \
        --pwfile=/dev/stdin --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-locale --no-instructions >&2
    printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' \
        >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\"" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    say "cluster made, database $POSTGRES_DB"
fi
# A socket only where the directory is writable (a read-only root without a volume there):
# every client here connects over TCP.
sockets=/var/run/postgresql
if ! [ -w "$sockets" ]; then
    say "$sockets is not writable: TCP only"
    sockets=
fi
say "starting the server"
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$sockets" "$@"

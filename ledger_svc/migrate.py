"""Versioned SQL migrations, applied in order at start-up.

Each file `migrations/NNNN_name.sql` runs once and is recorded in `schema_version`; the
pending files of a start run in one transaction, so a failing file leaves nothing half done.
Files under `migrations/timescale/` form a second track, applied only where the server
preloads the timescaledb extension (`shared_preload_libraries`): installed but not
preloaded, it cannot be created, so that server gets the plain track. A transaction-level
advisory lock makes concurrent starts of several ledger replicas safe: one applies, the
others then find nothing to do.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ledger_svc.db import Conn

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x1ED6E2  # any constant unique to this application's advisory locks


@dataclass(frozen=True)
class Migration:
    track: str
    version: int
    name: str
    sql: str


def load(directory: Path, track: str) -> list[Migration]:
    """The migrations of one track, by version; refuses gaps and stray names."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
        found.append(Migration(track, int(match.group(1)), path.stem, path.read_text()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise ValueError(
                f"{track} migrations: expected version {expected}, found {migration.name}"
            )
    return found


async def timescale_preloaded(conn: Conn) -> bool:
    """Whether the server loads timescaledb at start, the one way the extension works."""
    libraries = await conn.fetchval("SELECT current_setting('shared_preload_libraries')")
    return "timescaledb" in {name.strip().strip('"') for name in str(libraries).split(",")}


async def _choose_timescale(conn: Conn) -> bool:
    """The Timescale track where the server preloads the extension, else the plain one;
    says which and why. A database already on the Timescale track needs it preloaded."""
    if await timescale_preloaded(conn):
        log.info("TimescaleDB preloaded: the ledger uses the Timescale track")
        return True
    if await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL") and (
        await conn.fetchval("SELECT count(*) FROM schema_version WHERE track = 'timescale'")
    ):
        raise RuntimeError(
            "this database is on the Timescale track but the server does not preload "
            "timescaledb: add it to shared_preload_libraries"
        )
    available = await conn.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    log.info(
        "TimescaleDB %s: the ledger uses the plain PostgreSQL track",
        "installed but not preloaded (shared_preload_libraries)" if available else "absent",
    )
    return False


async def migrate(
    conn: Conn, *, use_timescale: bool | None = None, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Apply what is missing; return the names applied. `use_timescale` None = when preloaded."""
    tracks = [("core", load(directory, "core"))]
    if use_timescale is None:
        use_timescale = await _choose_timescale(conn)
    if use_timescale:
        tracks.append(("timescale", load(directory / "timescale", "timescale")))
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_version (
                   track      text NOT NULL,
                   version    integer NOT NULL,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (track, version))"""
        )
        for track, migrations in tracks:
            done = await conn.fetchval(
                "SELECT coalesce(max(version), 0) FROM schema_version WHERE track = $1", track
            )
            for migration in migrations[done:]:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_version (track, version, name) VALUES ($1, $2, $3)",
                    track,
                    migration.version,
                    migration.name,
                )
                log.info("applied migration %s/%s", track, migration.name)
                applied.append(f"{track}/{migration.name}")
    return applied


async def timescale_in_use(conn: Conn) -> bool:
    """Whether the timescale track has been applied (then candles are continuous aggregates)."""
    return bool(
        await conn.fetchval("SELECT count(*) FROM schema_version WHERE track = 'timescale'")
    )


async def timescale_policies(conn: Conn, *, compress_after_days: int, retain_days: int) -> None:
    """Set the compression and retention ages of old trades (TimescaleDB path only).

    Replaced on every start, so that changed settings take effect. retain_days 0 keeps
    trades forever; candles are kept whatever happens to the trades below them.
    """
    day_us = 86_400_000_000
    await conn.execute("SELECT remove_compression_policy('trades', if_exists => true)")
    await conn.execute(
        "SELECT add_compression_policy('trades', compress_after => $1::bigint)",
        compress_after_days * day_us,
    )
    await conn.execute("SELECT remove_retention_policy('trades', if_exists => true)")
    if retain_days:
        await conn.execute(
            "SELECT add_retention_policy('trades', drop_after => $1::bigint)", retain_days * day_us
        )

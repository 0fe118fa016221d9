"""A local PostgreSQL server for `make run` and the tests.

One cluster in a data folder, made by initdb on first use and run in the foreground
(`postgres -D`), so that the Supervisor restarts and stops it like any other service. It
listens on 127.0.0.1 only, keeps its unix socket in the data folder (/var/run/postgresql
belongs to the machine's own server, if any) and trusts every local connection: it is a
developer's store, never reachable from another machine.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import asyncpg

from launcher.child import describe_exit
from launcher.osuser import as_user, hand_over
from launcher.spec import ServiceSpec, ServiceStartError

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
SUPERUSER = "postgres"
# The database every server has, to connect to before ours exists.
MAINTENANCE_DATABASE = "postgres"

# For throwaway test clusters, never waiting for the disk. NO_DISK_WAIT survives a killed
# server (the OS keeps its writes) but not a machine crash; UNSAFE_FAST also acknowledges a
# commit before it leaves the server's memory, so a killed server loses the last fraction of
# a second of commits.
NO_DISK_WAIT = {"fsync": "off", "full_page_writes": "off"}
UNSAFE_FAST = {**NO_DISK_WAIT, "synchronous_commit": "off"}

# Where `make deps` leaves the folder of server programs that load TimescaleDB: the
# machine's own, or a private copy with the extension built from the vendored source
# (scripts/timescaledb.sh). Absent: plain PostgreSQL only.
TIMESCALE_LINK = Path(__file__).resolve().parents[1] / ".timescaledb"
# Preloaded, the one way the extension works. Each database using it runs a scheduler in a
# background worker and each policy job (aggregate refreshes, compression, retention) one
# more while it runs: PostgreSQL's default of 8 workers leaves jobs "failed to start a
# background worker", hence room for a few databases' worth of them.
TIMESCALE_SETTINGS = {
    "shared_preload_libraries": "timescaledb",
    "max_worker_processes": "32",
    "timescaledb.max_background_workers": "24",
    "timescaledb.telemetry_level": "off",
}


@dataclass(frozen=True)
class LocalPostgres:
    """A server on 127.0.0.1:`port` with its cluster in `data_dir`, holding `database`.

    `settings` are extra server settings (`postgres -c name=value`), e.g. UNSAFE_FAST.
    `timescale` runs the server programs of TIMESCALE_LINK with the extension preloaded.
    """

    data_dir: Path
    port: int
    database: str = "exchange"
    settings: Mapping[str, str] = field(default_factory=dict, hash=False)
    timescale: bool = False

    def __post_init__(self) -> None:
        # The server runs in its data folder and puts its socket there: no relative paths.
        object.__setattr__(self, "data_dir", self.data_dir.absolute())

    @property
    def url(self) -> str:
        """How clients reach the database, e.g. postgresql://postgres@127.0.0.1:55432/exchange."""
        return f"postgresql://{SUPERUSER}@{LOCALHOST}:{self.port}/{quote(self.database)}"

    @property
    def os_user(self) -> str | None:
        """PostgreSQL refuses to run as root; then it runs as `postgres`, the OS user that
        Debian's package creates."""
        return SUPERUSER if os.geteuid() == 0 else None

    def spec(self, name: str = "postgres") -> ServiceSpec:
        """The supervised server: initdb before its first start, the database once it is up."""
        settings = {
            "listen_addresses": LOCALHOST,
            "port": str(self.port),
            "unix_socket_directories": str(self.data_dir),
            **(TIMESCALE_SETTINGS if self.timescale else {}),
            **self.settings,
        }
        options = [arg for item in settings.items() for arg in ("-c", "=".join(item))]
        return ServiceSpec(
            name=name,
            argv=[str(self.programs / "postgres"), "-D", str(self.data_dir), *options],
            cwd=str(self.data_dir),
            user=self.os_user,
            ready_probe=PostgresProbe(self.url),
            ready_timeout=60.0,  # crash recovery after a kill may replay a lot of WAL
            prepare=self.prepare,
            after_ready=self.create_database,
        )

    @property
    def programs(self) -> Path:
        """The folder of the server programs this server runs."""
        if not self.timescale:
            return bin_dir()
        if (found := timescale_bin_dir()) is None:
            raise ServiceStartError("TimescaleDB is not available here; `make deps` builds it")
        return found

    async def prepare(self) -> None:
        """Make the cluster unless there is one.

        initdb writes into a staging folder that is renamed into place once complete, so an
        interrupted first start leaves nothing that a later one would trip over.
        """
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise ServiceStartError(f"{self.data_dir} is neither empty nor a PostgreSQL cluster")
        staging = self.data_dir.with_name(self.data_dir.name + ".initdb")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700, parents=True)
        if self.os_user is not None:
            hand_over(staging, self.os_user)
        log.info("creating a PostgreSQL cluster in %s", self.data_dir)
        await _run(
            [
                str(self.programs / "initdb"),
                f"--pgdata={staging}",
                f"--username={SUPERUSER}",
                # Only the unix socket and loopback lines go into pg_hba.conf.
                "--auth=trust",
                "--encoding=UTF8",
                # Independent of which locales the machine has.
                "--locale=C",
                "--no-instructions",
            ],
            cwd=staging,
            user=self.os_user,
        )
        if self.data_dir.exists():
            self.data_dir.rmdir()  # empty, as checked above
        staging.rename(self.data_dir)

    async def create_database(self) -> None:
        await create_database(self.url)


async def create_database(url: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Create the database that `url` names unless it exists (connecting to the server's
    maintenance database as the URL's user)."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    connection = await asyncpg.connect(maintenance_url(url), timeout=timeout)
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return
        await connection.execute(f"CREATE DATABASE {quote_identifier(name)}")
        log.info("created database %s", name)
    finally:
        await connection.close()


def maintenance_url(url: str) -> str:
    """`url` with the server's maintenance database in place of its own."""
    return urlsplit(url)._replace(path=f"/{MAINTENANCE_DATABASE}").geturl()


def quote_identifier(name: str) -> str:
    """`name` as an SQL identifier: CREATE DATABASE takes no query parameters."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class PostgresProbe:
    """Readiness of the PostgreSQL server of `url` as pg_isready sees it: it accepts
    connections, even if it then refuses this one.

    It connects to the maintenance database, as ours is created only once the server is up
    (and the attempt would be logged as an error until then).
    """

    url: str

    @property
    def target(self) -> str:
        return self.url

    async def check(self, timeout: float) -> bool:  # noqa: ASYNC109
        try:
            connection = await asyncpg.connect(maintenance_url(self.url), timeout=timeout)
        except (asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError):
            return False  # starting up, shutting down, or the connection broke
        except asyncpg.PostgresError:
            return True  # it answered, e.g. "password authentication failed"
        except (OSError, TimeoutError, asyncpg.InterfaceError):
            return False
        await connection.close(timeout=timeout)
        return True


@functools.cache
def bin_dir() -> Path:
    """The folder of the server programs: pg_config's, else the newest of Debian's
    /usr/lib/postgresql/N/bin, else the one holding `postgres` on the PATH.

    Debian keeps them off the PATH, and pg_config may come from another version's client
    package, so each candidate must hold the programs to count.
    """
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        try:
            done = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            pass
        else:
            candidates.append(Path(done.stdout.strip()))
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=lambda path: _version(path.parent.name), reverse=True)
    if on_path := shutil.which("postgres"):
        candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if (candidate / "postgres").is_file() and (candidate / "initdb").is_file():
            return candidate
    raise ServiceStartError(
        "PostgreSQL server programs not found; install the Debian package postgresql "
        "or set DATABASE_URL to use a server elsewhere"
    )


def timescale_bin_dir() -> Path | None:
    """The server programs that load TimescaleDB, if `make deps` found or built them."""
    found = TIMESCALE_LINK.resolve()
    return found if (found / "postgres").is_file() else None


def _version(name: str) -> tuple[int, ...]:
    """'15' -> (15,), '9.6' -> (9, 6); anything else sorts first."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return ()


async def _run(argv: Sequence[str], *, cwd: Path, user: str | None) -> None:
    """Run a program to completion; raise ServiceStartError with its output if it fails."""
    process = await asyncio.create_subprocess_exec(
        *as_user(user, argv),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await process.communicate()
        returncode = await process.wait()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if returncode != 0:
        raise ServiceStartError(
            f"{Path(argv[0]).name} failed with {describe_exit(returncode)}: "
            f"{output.decode(errors='replace').strip()}"
        )

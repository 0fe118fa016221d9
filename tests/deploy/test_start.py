"""The services start, answer their probes and stop exactly as the manifests say.

Every container of the project's image in a rendered overlay runs here as a real process
with the manifest's command and environment (tests/deploy/kubelet.py), all at once as
Kubernetes starts them, with the test's PostgreSQL and Redis standing in for TimescaleDB
and Redis. Then: every readiness and liveness probe passes, the engine lists the markets
of its shard's file, and on SIGTERM each service exits cleanly within its
terminationGracePeriodSeconds, the engine leaving a snapshot, none writing to its working
directory (the image's, read-only). A manifest that drifts from the code (a renamed
variable, a wrong port or address, an undeclared port, a missing module) fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.certs import Authority
from tests.deploy.kubelet import LOCALHOST, LocalCluster, LocalContainer
from tests.deploy.manifests import (
    OVERLAYS,
    containers,
    is_ours,
    name_of,
    pod_spec,
    render,
    workloads,
)

POLL_SECONDS = 0.2


def our_workloads(overlay: str) -> list[str]:
    """The workloads that run the project's image."""
    return [name_of(w) for w, c in containers(render(overlay)) if is_ours(c)]


@dataclass
class Running:
    local: LocalContainer
    process: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return f"--- {self.local.name} ---\n{self.log.read_text(errors='replace')[-4000:]}"

    def check_alive(self) -> None:
        if self.process.returncode is not None:
            raise AssertionError(
                f"{self.local.name} exited with {self.process.returncode}\n{self.output()}"
            )


async def start(local: LocalContainer, logs: Path) -> Running:
    log = logs / f"{local.name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *local.argv,
            env={"PATH": os.environ["PATH"], **local.env},
            cwd=local.cwd,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    return Running(local, process, log)


def startup_budget(local: LocalContainer) -> float:
    """How long Kubernetes lets the container take to pass its probes before restarting it."""
    probe = local.container.get("startupProbe") or local.container.get("livenessProbe") or {}
    return float(
        probe.get("initialDelaySeconds", 0)
        + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    )


async def wait_ready(running: list[Running]) -> None:
    """Until every readiness probe passes (a container without one: while it runs)."""
    waiting = list(running)
    try:
        async with asyncio.timeout(max(startup_budget(r.local) for r in running)):
            while waiting:
                for r in list(waiting):
                    r.check_alive()
                    if "readinessProbe" not in r.local.container or await r.local.probe(
                        "readinessProbe"
                    ):
                        waiting.remove(r)
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        names = ", ".join(r.local.name for r in waiting)
        details = "\n".join(r.output() for r in waiting)
        raise AssertionError(f"never ready: {names}\n{details}") from None


async def stop(r: Running) -> int:
    """SIGTERM, then what the kubelet allows: terminationGracePeriodSeconds."""
    r.process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(r.local.grace_seconds):
            return await r.process.wait()
    except TimeoutError:
        r.process.kill()
        await r.process.wait()
        raise AssertionError(
            f"{r.local.name} outlived terminationGracePeriodSeconds "
            f"({r.local.grace_seconds} s)\n{r.output()}"
        ) from None


@contextlib.asynccontextmanager
async def running_stack(
    cluster: LocalCluster, names: list[str], logs: Path
) -> AsyncIterator[list[Running]]:
    running: list[Running] = []
    try:
        for name in names:
            running.append(await start(cluster.container(name), logs))
        yield running
    finally:
        for r in running:
            if r.process.returncode is None:
                r.process.kill()
                await r.process.wait()


def listening_ports(pid: int) -> set[int]:
    """The TCP ports the process listens on: its sockets' inodes in /proc/net/tcp{,6}."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def shard_markets(overlay: str) -> list[str]:
    """The markets engine-0.toml of the overlay's engine-markets ConfigMap lists."""
    objects = render(overlay)
    data = next(
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("engine-markets")
    )
    return sorted(m["symbol"] for m in tomllib.loads(data["engine-0.toml"])["markets"])


def mesh_secrets(overlay: str, folder: Path) -> dict[str, dict[str, str]]:
    """The overlay's mesh-tls Secrets (prod's mutual TLS), from one test CA: certificates
    naming 127.0.0.1, where every service answers here. The stores are the test's own,
    in plaintext (tests/deploy/test_store_tls.py runs prod's store URLs)."""
    names = {
        volume["secret"]["secretName"]
        for w in workloads(render(overlay))
        for volume in pod_spec(w).get("volumes", [])
        if volume.get("secret", {}).get("secretName", "").startswith("mesh-tls-")
    }
    if not names:
        return {}
    ca = Authority(folder)
    made = {}
    for name in sorted(names):
        pem = ca.issue(name)
        made[name] = {
            "ca.crt": ca.ca.read_text(),
            "tls.crt": pem.cert.read_text(),
            "tls.key": pem.key.read_text(),
        }
    return made


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_stack_runs_as_the_manifests_say(
    overlay: str, tmp_path: Path, redis_url: str, database_url: str
) -> None:
    cluster = LocalCluster(
        render(overlay),
        tmp_path / "pods",
        # What the README has the operator create with `kubectl create secret`.
        secrets={
            "exchange-secrets": {
                "gateway-token-secret": secrets.token_urlsafe(32),
                "engine-admin-token": secrets.token_hex(32),
                "postgres-password": secrets.token_hex(16),
            },
            **mesh_secrets(overlay, tmp_path / "ca"),
        },
        stores={"redis": redis_url, "timescaledb": database_url},
    )
    names = our_workloads(overlay)
    logs = tmp_path / "logs"
    logs.mkdir()

    async with running_stack(cluster, names, logs) as running:
        await wait_ready(running)
        for r in running:
            for kind in ("livenessProbe", "readinessProbe"):
                if kind in r.local.container:
                    assert await r.local.probe(kind), f"{r.local.name}: {kind} fails\n{r.output()}"
            # Exactly the declared ports: an undeclared one is unreachable in the cluster.
            assert listening_ports(r.process.pid) == set(r.local.ports.values()), r.local.name
            # k8s/monitoring's PodMonitor scrapes every port named `metrics`.
            if any(p["name"] == "metrics" for p in r.local.container["ports"]):
                url = f"http://{LOCALHOST}:{r.local.local_port('metrics')}/metrics"
                async with (
                    aiohttp.ClientSession(trust_env=False) as session,
                    session.get(url) as reply,
                ):
                    assert reply.status == 200, r.local.name
                    assert "# TYPE " in await reply.text(), r.local.name

        gateway = next(r.local for r in running if r.local.name == "gateway")
        url = f"http://{LOCALHOST}:{gateway.local_port('http')}/api/v1/markets"
        async with aiohttp.ClientSession(trust_env=False) as session, session.get(url) as reply:
            assert reply.status == 200
            listed = sorted(m["symbol"] for m in await reply.json())
        assert listed == shard_markets(overlay)

        codes = await asyncio.gather(*(stop(r) for r in running))
        for r, code in zip(running, codes, strict=True):
            assert code == 0, f"{r.local.name} exited with {code} on SIGTERM\n{r.output()}"

    engine = next(r.local for r in running if r.local.name == "engine")
    snapshots = Path(engine.env["ENGINE_DATA_DIR"]) / "snapshots"
    assert any(snapshots.iterdir()), "the engine wrote no snapshot on SIGTERM"
    for r in running:
        written = sorted(p.name for p in r.local.cwd.iterdir())
        assert written == [], f"{r.local.name} wrote {written} outside its volumes"

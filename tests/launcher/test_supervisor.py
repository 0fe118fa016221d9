"""Supervisor tests with real child processes: tiny gRPC health servers (health_server.py)
and one-line Python programs. No mocks; each test takes a second or two."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import sys
import time
from pathlib import Path

import pytest

from launcher.health import GrpcHealthProbe
from launcher.ports import free_port
from launcher.supervisor import (
    RestartPolicy,
    ServiceSpec,
    ServiceStartError,
    Supervisor,
    check_health,
)

pytestmark = pytest.mark.timeout(60)

HEALTH_SERVER = Path(__file__).with_name("health_server.py")


def server_spec(name: str, *flags: str, ready_timeout: float = 10.0) -> ServiceSpec:
    """A real gRPC health server on a free port."""
    port = free_port()
    return ServiceSpec(
        name=name,
        argv=[sys.executable, str(HEALTH_SERVER), str(port), *flags],
        health_address=f"127.0.0.1:{port}",
        ready_timeout=ready_timeout,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_start_waits_until_healthy() -> None:
    spec = server_spec("alpha")
    assert spec.health_address is not None

    async with Supervisor([spec], grace=2) as sup:
        assert await check_health(spec.health_address)
        assert alive(sup.pid("alpha"))
        assert sup.restarts("alpha") == 0


async def test_killed_service_is_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="launcher")
    spec = server_spec("alpha")
    assert spec.health_address is not None

    async with Supervisor([spec], grace=2) as sup:
        old_pid = sup.pid("alpha")
        await sup.kill("alpha")
        await sup.wait_healthy("alpha", timeout=10)

        assert sup.pid("alpha") != old_pid
        assert not alive(old_pid)
        assert sup.restarts("alpha") == 1
        assert await check_health(spec.health_address)
    assert "alpha exited with signal SIGKILL; restart #1" in caplog.text


async def test_restart_is_graceful_and_not_counted_as_crash() -> None:
    spec = server_spec("alpha")

    async with Supervisor([spec], grace=2) as sup:
        old_pid = sup.pid("alpha")
        await sup.restart("alpha")

        assert sup.pid("alpha") != old_pid
        assert not alive(old_pid)
        assert sup.restarts("alpha") == 0
        await sup.wait_healthy("alpha", timeout=0.1)


async def test_stop_terminates_every_service() -> None:
    specs = [server_spec("alpha"), server_spec("beta")]
    sup = Supervisor(specs, grace=2)
    await sup.start()
    pids = [sup.pid("alpha"), sup.pid("beta")]
    assert all(alive(pid) for pid in pids)

    await sup.stop()

    assert not any(alive(pid) for pid in pids)
    for spec in specs:
        assert spec.health_address is not None
        assert not await check_health(spec.health_address)
    assert sup.restarts("alpha") == sup.restarts("beta") == 0


async def test_stop_kills_a_service_that_ignores_sigterm_after_the_grace_period() -> None:
    sup = Supervisor([server_spec("stubborn", "--ignore-sigterm")], grace=0.5)
    await sup.start()
    pid = sup.pid("stubborn")

    began = time.monotonic()
    await sup.stop()

    assert 0.5 <= time.monotonic() - began < 5
    assert not alive(pid)


async def test_a_service_exiting_at_start_is_a_clear_error() -> None:
    crasher = ServiceSpec(
        name="crasher",
        argv=[sys.executable, "-c", "raise SystemExit(3)"],
        health_address=f"127.0.0.1:{free_port()}",
    )
    sup = Supervisor([server_spec("alpha"), crasher], grace=2)

    with pytest.raises(ServiceStartError, match="crasher exited with exit code 3"):
        await sup.start()
    # What had started already is stopped again.
    assert not alive(sup.pid("alpha"))


async def test_a_service_never_healthy_fails_within_its_ready_timeout() -> None:
    spec = server_spec("sulky", "--status", "NOT_SERVING", ready_timeout=1.5)
    sup = Supervisor([spec], grace=2)

    began = time.monotonic()
    with pytest.raises(ServiceStartError, match=r"sulky was not ready within 1.5s \(grpc 127"):
        await sup.start()

    assert 1.5 <= time.monotonic() - began < 4
    assert not alive(sup.pid("sulky"))


async def test_a_missing_program_is_a_clear_error() -> None:
    spec = ServiceSpec(name="ghost", argv=["/nonexistent/ghost"])

    with pytest.raises(ServiceStartError, match="ghost: cannot run '/nonexistent/ghost'"):
        await Supervisor([spec]).start()


async def test_a_service_without_health_check_is_ready_once_started() -> None:
    spec = ServiceSpec(name="sleeper", argv=[sys.executable, "-c", "import time; time.sleep(60)"])

    async with Supervisor([spec], grace=2) as sup:
        await sup.wait_healthy("sleeper", timeout=0.1)
        assert alive(sup.pid("sleeper"))


async def test_prepare_runs_before_each_launch_and_after_ready_once_each_is_ready() -> None:
    steps: list[str] = []

    async def prepare() -> None:
        steps.append("prepare")

    async def after_ready() -> None:
        steps.append("after_ready")

    spec = ServiceSpec(
        name="sleeper",
        argv=["sleep", "60"],
        prepare=prepare,
        after_ready=after_ready,
    )
    async with Supervisor([spec], grace=2) as sup:
        await sup.kill("sleeper")
        await sup.wait_healthy("sleeper", timeout=10)

    assert steps == ["prepare", "after_ready"] * 2


async def test_a_failing_after_ready_fails_the_start_and_stops_the_service() -> None:
    async def after_ready() -> None:
        raise OSError("no database")

    spec = ServiceSpec(name="sleeper", argv=["sleep", "60"], after_ready=after_ready)
    sup = Supervisor([spec], grace=2)

    with pytest.raises(ServiceStartError, match="sleeper: after_ready failed: no database"):
        await sup.start()
    assert not alive(sup.pid("sleeper"))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may run a process as another user")
async def test_a_service_runs_as_its_user() -> None:
    spec = ServiceSpec(name="sleeper", argv=["sleep", "60"], user="nobody")

    async with Supervisor([spec], grace=2) as sup:
        proc, nobody = f"/proc/{sup.pid('sleeper')}", pwd.getpwnam("nobody").pw_uid
        # Started means forked: the user is switched a moment later, before `sleep` runs.
        async with asyncio.timeout(5):
            while os.stat(proc).st_uid != nobody:  # noqa: ASYNC110
                await asyncio.sleep(0.01)


async def test_an_unknown_user_is_a_clear_error() -> None:
    spec = ServiceSpec(name="sleeper", argv=["sleep", "60"], user="no-such-user")

    with pytest.raises(ServiceStartError, match="sleeper: there is no OS user 'no-such-user'"):
        await Supervisor([spec]).start()


def test_restart_backoff_doubles_to_a_cap_and_resets_after_a_stable_run() -> None:
    policy = RestartPolicy(initial=0.5, maximum=30.0, reset_after=10.0)
    delays = [policy.delay(None, None)]
    for _ in range(8):
        delays.append(policy.delay(delays[-1], healthy_for=1.0))

    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.delay(30.0, healthy_for=None) == 30
    assert policy.delay(30.0, healthy_for=10.0) == 0.5


def test_duplicate_service_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate service name 'alpha'"):
        Supervisor([ServiceSpec("alpha", ["true"]), ServiceSpec("alpha", ["true"])])


def test_a_spec_has_one_readiness_probe() -> None:
    with pytest.raises(ValueError, match="give health_address or ready_probe, not both"):
        ServiceSpec(
            "alpha",
            ["true"],
            health_address="127.0.0.1:1",
            ready_probe=GrpcHealthProbe("127.0.0.1:2"),
        )

"""A local process supervisor: Kubernetes for one machine, in miniature.

`Supervisor` starts services in order, each only after the previous one is ready (its
readiness probe passes, e.g. its gRPC health check answers SERVING), restarts any that die
with exponential backoff, and stops them in reverse order: SIGTERM, a grace period, then
SIGKILL. Once stop() has begun nothing is restarted. It is what `python -m launcher` runs,
and integration tests use it to run real services and to crash them on purpose (`kill`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

from launcher.child import Child, describe_exit
from launcher.health import check_health
from launcher.spec import ServiceSpec, ServiceStartError

__all__ = [
    "RestartPolicy",
    "ServiceSpec",
    "ServiceStartError",
    "Supervisor",
    "check_health",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """Delay before restarting a crashed service: `initial`, doubling up to `maximum`.

    A service that was healthy for `reset_after` seconds before it died starts again from
    `initial`: it was a one-off crash, not a crash loop.
    """

    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 10.0

    def delay(self, previous: float | None, healthy_for: float | None) -> float:
        if previous is None or (healthy_for is not None and healthy_for >= self.reset_after):
            return self.initial
        return min(previous * 2, self.maximum)


class Supervisor:
    """Runs `specs` as child processes; see the module docstring.

    Use `async with Supervisor(specs) as sup:` or call start() and stop() yourself.
    """

    def __init__(
        self,
        specs: Iterable[ServiceSpec],
        *,
        grace: float = 10.0,
        restart_policy: RestartPolicy = RestartPolicy(),
        prefix_output: bool = True,
        poll_interval: float = 0.1,
    ) -> None:
        """`grace`: seconds between SIGTERM and SIGKILL. `prefix_output`: relay each child's
        stdout and stderr to our stdout as "[name] line"; False lets them write both to our stderr.
        `poll_interval`: seconds between readiness probes."""
        self._children: dict[str, Child] = {}
        for spec in specs:
            if spec.name in self._children:
                raise ValueError(f"duplicate service name {spec.name!r}")
            self._children[spec.name] = Child(spec, prefix_output=prefix_output)
        self._grace = grace
        self._policy = restart_policy
        self._poll_interval = poll_interval
        self._started = False
        self._stopping = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every service in order, each once the previous one is ready.

        Raises ServiceStartError if one exits or is not ready within its ready_timeout; the
        services started so far are stopped again before it is raised.
        """
        if self._started:
            raise RuntimeError("Supervisor.start() may be called only once")
        self._started = True
        try:
            for child in self._children.values():
                await self._bring_up(child)
                self._watch(child)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every service in reverse order (SIGTERM, grace, SIGKILL). Idempotent."""
        self._stopping = True
        children = list(self._children.values())
        for child in children:
            await self._unwatch(child)
        for child in reversed(children):
            await child.stop(self._grace)
        for child in children:
            child.close()

    def pid(self, name: str) -> int:
        """Process id of the service's current (or last) process."""
        process = self._child(name).process
        if process is None:
            raise ProcessLookupError(f"{name} has not been started")
        return process.pid

    def restarts(self, name: str) -> int:
        """How many times the service was restarted after it died (restart() not counted)."""
        return self._child(name).restarts

    async def wait_healthy(self, name: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until the service's current process has passed its readiness check."""
        child = self._child(name)
        try:
            await asyncio.wait_for(child.ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{name} not healthy within {timeout:g}s ({child.restarts} restarts so far)"
            ) from None

    async def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the service and wait for it to exit; the monitor then restarts it
        like any crashed service. `sig` must be one that ends the process."""
        child = self._child(name)
        process = child.process
        if process is None or not child.send_signal(sig):
            raise ProcessLookupError(f"{name} is not running")
        await process.wait()
        # So that a wait_healthy() right after this waits for the replacement.
        child.ready.clear()

    async def restart(self, name: str) -> None:
        """Stop the service gracefully, start it again and wait until it is ready."""
        if not self._started or self._stopping:
            raise RuntimeError("the supervisor is not running")
        child = self._child(name)
        await self._unwatch(child)
        await child.stop(self._grace)
        try:
            await self._bring_up(child)
        finally:
            # Even after a failed start: the monitor then retries it like a crash.
            if not self._stopping:
                self._watch(child)

    def _child(self, name: str) -> Child:
        try:
            return self._children[name]
        except KeyError:
            raise KeyError(f"no service named {name!r}") from None

    async def _bring_up(self, child: Child) -> None:
        await child.launch()
        try:
            await child.wait_ready(self._poll_interval)
        except ServiceStartError:
            await child.stop(self._grace)  # it may still be running, just not healthy
            raise

    def _watch(self, child: Child) -> None:
        child.monitor = asyncio.create_task(self._monitor(child), name=f"monitor {child.spec.name}")
        child.monitor.add_done_callback(_log_monitor_failure)

    async def _unwatch(self, child: Child) -> None:
        monitor, child.monitor = child.monitor, None
        if monitor is not None:
            monitor.cancel()
            await asyncio.wait({monitor})

    async def _monitor(self, child: Child) -> None:
        """Restart the service whenever its process exits, until cancelled by stop()."""
        name = child.spec.name
        loop = asyncio.get_running_loop()
        while True:
            process = child.process
            assert process is not None, "monitored before launch"
            returncode = await process.wait()
            child.ready.clear()
            await child.drain_output()  # its last words (a traceback) before our log line
            healthy_for = None if child.healthy_since is None else loop.time() - child.healthy_since
            delay = self._policy.delay(child.last_delay, healthy_for)
            child.last_delay = delay
            log.warning(
                "%s exited with %s; restart #%d in %.1fs",
                name,
                describe_exit(returncode),
                child.restarts + 1,
                delay,
            )
            await asyncio.sleep(delay)
            child.restarts += 1
            try:
                await self._bring_up(child)
            except ServiceStartError as exc:
                log.error("restart of %s failed: %s", name, exc)


def _log_monitor_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s crashed; the service is no longer supervised", task.get_name(), exc_info=exc)

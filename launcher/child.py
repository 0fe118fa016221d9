"""One supervised service's process: launch, readiness probe, signals, stop, output.

Each process runs in its own session (so its own process group). A Ctrl-C in the terminal
then reaches only the launcher, which stops services in reverse order instead of letting them
all die at once; and signals go to the whole group, so helpers a service spawned go with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys

from launcher.osuser import as_user
from launcher.spec import Hook, ServiceSpec, ServiceStartError

log = logging.getLogger(__name__)

# Longest output line passed through whole; longer ones are dropped with a marker.
_LINE_LIMIT = 1 << 20
STDERR_FD = 2
# How long to wait for the rest of an exited process's output.
_DRAIN_TIMEOUT = 1.0


def describe_exit(returncode: int) -> str:
    """'exit code 3' or 'signal SIGKILL', from an asyncio/subprocess return code."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


class Child:
    """The current process of one service, plus the bookkeeping the supervisor keeps on it."""

    def __init__(self, spec: ServiceSpec, *, prefix_output: bool) -> None:
        self.spec = spec
        self.process: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()  # set while the current process is up and was healthy
        self.healthy_since: float | None = None  # loop time it last became ready
        self.restarts = 0
        self.last_delay: float | None = None  # previous restart backoff
        self.monitor: asyncio.Task[None] | None = None
        self._prefix_output = prefix_output
        self._pumps: set[asyncio.Task[None]] = set()

    async def launch(self) -> None:
        """Start a new process for the spec (not waiting for readiness)."""
        spec = self.spec
        if spec.probe is not None and await spec.probe.check(timeout=1.0):
            # Otherwise the readiness probe would pass on the stray server while ours fails
            # to bind its port.
            raise ServiceStartError(
                f"{spec.name}: something already answers at {spec.probe.target}; "
                "is another instance running?"
            )
        if spec.prepare is not None:
            await _run_step(spec.name, "prepare", spec.prepare)
        try:
            argv = as_user(spec.user, spec.argv)
        except LookupError as exc:
            raise ServiceStartError(f"{spec.name}: {exc}") from None
        env = dict(os.environ)
        pipe: int | None = None
        if self._prefix_output:
            pipe = asyncio.subprocess.PIPE
            # Python block-buffers output into a pipe; lines should show up as they happen.
            env["PYTHONUNBUFFERED"] = "1"
        env.update(spec.env)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=spec.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                # Unrelayed, a child writes to our stderr: what we print on stdout (a
                # benchmark's JSON) stays ours alone.
                stdout=pipe if pipe is not None else STDERR_FD,
                stderr=asyncio.subprocess.STDOUT if pipe is not None else None,
                start_new_session=True,
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            raise ServiceStartError(f"{spec.name}: cannot run {argv[0]!r}: {exc}") from exc
        self.process = process
        self.ready.clear()
        self.healthy_since = None
        if process.stdout is not None:
            pump = asyncio.create_task(_pump(f"[{spec.name}] ", process.stdout))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)
        log.info("%s started, pid %d: %s", spec.name, process.pid, shlex.join(spec.argv))

    async def wait_ready(self, poll_interval: float) -> None:
        """Return once the process passes its readiness probe and its after_ready step has
        run; raise if it exits or times out."""
        spec = self.spec
        probe = spec.probe
        process = self._current()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.ready_timeout
        while True:
            if process.returncode is not None:
                raise ServiceStartError(
                    f"{spec.name} exited with {describe_exit(process.returncode)} "
                    "before becoming ready"
                )
            remaining = deadline - loop.time()
            if probe is None or await probe.check(timeout=min(1.0, max(remaining, 0.1))):
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ServiceStartError(
                    f"{spec.name} was not ready within {spec.ready_timeout:g}s "
                    f"({probe.target} did not answer)"
                )
            # Sleep until the next probe, but wake at once if the process exits.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), min(poll_interval, remaining))
        if spec.after_ready is not None:
            await _run_step(spec.name, "after_ready", spec.after_ready)
        self.healthy_since = loop.time()
        self.ready.set()
        log.info("%s ready", spec.name)

    def send_signal(self, sig: int) -> bool:
        """Signal the process group; False if the process is not running."""
        process = self.process
        if process is None or process.returncode is not None:
            return False
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return False
        return True

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL if the process is still there after `grace` seconds."""
        process = self.process
        if process is None:
            return
        if self.send_signal(signal.SIGTERM):
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                log.warning(
                    "%s still running %gs after SIGTERM; sending SIGKILL", self.spec.name, grace
                )
                self.send_signal(signal.SIGKILL)
            returncode = await process.wait()
            log.info("%s stopped (%s)", self.spec.name, describe_exit(returncode))
        self.ready.clear()
        await self.drain_output()

    async def drain_output(self) -> None:
        """Let the output of exited processes be printed (a grandchild may hold the pipe)."""
        if self._pumps:
            await asyncio.wait(set(self._pumps), timeout=_DRAIN_TIMEOUT)

    def close(self) -> None:
        """Stop relaying output; called once the supervisor is done."""
        for pump in self._pumps:
            pump.cancel()

    def _current(self) -> asyncio.subprocess.Process:
        if self.process is None:
            raise ProcessLookupError(f"{self.spec.name} has not been started")
        return self.process


async def _run_step(name: str, step: str, hook: Hook) -> None:
    """Await a spec's hook; its failure fails the start, whatever the exception."""
    try:
        await hook()
    except Exception as exc:
        raise ServiceStartError(f"{name}: {step} failed: {exc}") from exc


async def _pump(prefix: str, reader: asyncio.StreamReader) -> None:
    """Copy a child's output to our stdout line by line, each line prefixed with its name."""
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # over _LINE_LIMIT; the reader has discarded it
            line = b"<output line too long, dropped>"
        if not line:
            return
        text = line.decode(errors="replace").rstrip("\r\n")
        sys.stdout.write(f"{prefix}{text}\n")
        sys.stdout.flush()

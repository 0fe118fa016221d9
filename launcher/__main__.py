"""`python -m launcher` (`make run`): run the local exchange until Ctrl-C or SIGTERM.

Starts every service of `launcher.stack` under a Supervisor, prints where each one answers
and then a status line every few seconds (launcher.status), and on Ctrl-C or SIGTERM stops
them all in reverse order and exits 0. Exits 1 if a service cannot be started, 2 if the
launcher's own configuration is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

import aiohttp

from launcher.demo import seed_demo_account
from launcher.spec import ServiceStartError
from launcher.stack import LOCALHOST, StackSettings, exchange_specs, summary
from launcher.status import print_status
from launcher.supervisor import Supervisor

log = logging.getLogger("launcher")  # __name__ is "__main__" here


async def run(settings: StackSettings) -> int:
    specs = exchange_specs(settings)
    settings.engine_data_dir.mkdir(parents=True, exist_ok=True)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)

    if (postgres := settings.local_postgres) is not None:
        log.info(
            "PostgreSQL: %s",
            "with TimescaleDB preloaded (the ledger's Timescale track)"
            if postgres.timescale
            else "plain, no TimescaleDB (`make deps` builds it from ../shared/vendor)",
        )
    supervisor = Supervisor(specs)
    if not await _start_unless_stopped(supervisor, stop_requested):
        return 0
    print(summary(settings, specs))
    try:
        print(await seed_demo_account(f"http://{LOCALHOST}:{settings.gateway_port}"))
    except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
        log.warning("demo account not ready: %s", exc)
    print("exchange running; Ctrl-C to stop", flush=True)
    status = asyncio.create_task(print_status(specs, settings))
    await stop_requested.wait()
    status.cancel()
    log.info("stopping")
    await supervisor.stop()
    return 0


async def _start_unless_stopped(supervisor: Supervisor, stop_requested: asyncio.Event) -> bool:
    """Start the supervisor; False if a stop was requested first (start() cleans up then).

    A Ctrl-C during a slow start should not wait for every service to become ready first.
    """
    starting = asyncio.create_task(supervisor.start())
    stopping = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if starting.done():
        starting.result()  # raises ServiceStartError
        return True
    starting.cancel()
    await asyncio.wait({starting})
    return False


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = StackSettings.from_env()
    except ValueError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        try:
            return runner.run(run(settings))
        except ServiceStartError as exc:
            log.error("%s", exc)
            return 1


if __name__ == "__main__":
    sys.exit(main())

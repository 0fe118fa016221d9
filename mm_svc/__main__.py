"""python -m mm_svc: run the market maker (see mm_svc/mm.toml and the README)."""

import asyncio

from mm_svc.maker import Maker
from mm_svc.metrics import MakerMetrics
from mm_svc.service import serve
from mm_svc.settings import MmSettings
from servicekit.process import start_process

HEALTH_PORT = 50061
METRICS_PORT = 9161


def main() -> None:
    settings = start_process("mm", lambda: MmSettings.from_env(HEALTH_PORT, METRICS_PORT))
    asyncio.run(
        serve(
            settings,
            "maker",
            lambda client, registry: Maker(settings.config, client, MakerMetrics(registry)),
        )
    )


if __name__ == "__main__":
    main()

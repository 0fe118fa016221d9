"""python -m engine_svc: run the matching engine service."""

import asyncio
import sys

from engine_svc.settings import EngineSettings
from servicekit.logs import configure_logging
from servicekit.settings import SettingsError


def main() -> None:
    try:
        settings = EngineSettings.from_env()
    except SettingsError as exc:
        sys.exit(f"engine_svc: configuration error: {exc}")
    configure_logging("engine", settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from engine_svc.server import serve

    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

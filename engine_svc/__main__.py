"""python -m engine_svc: run the matching engine service."""

import asyncio

from engine_svc.settings import EngineSettings
from servicekit.process import start_process


def main() -> None:
    settings = start_process("engine", EngineSettings.from_env)
    from engine_svc.server import serve

    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

"""python -m stream_svc: serve live market data (StreamService) from Redis."""

import asyncio

from servicekit.process import start_process
from stream_svc.settings import StreamSettings


def main() -> None:
    settings = start_process("stream", StreamSettings.from_env)
    from stream_svc.server import serve

    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

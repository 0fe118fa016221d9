"""python -m gateway_svc: run the REST gateway (SIGTERM: stop accepting, drain, close)."""

import sys

from aiohttp import web

from gateway_svc.settings import GatewaySettings
from servicekit.logs import configure_logging
from servicekit.settings import SettingsError


def main() -> None:
    try:
        settings = GatewaySettings.from_env()
    except SettingsError as exc:
        sys.exit(f"gateway_svc: configuration error: {exc}")
    configure_logging("gateway", settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from gateway_svc.app import create_app

    print(f"gateway: http://{settings.host}:{settings.port}/", flush=True)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.grace_seconds,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()

"""python -m gateway_svc: run the REST gateway (SIGTERM: stop accepting, drain, close)."""

from aiohttp import web

from gateway_svc.settings import GatewaySettings
from servicekit.process import start_process


def main() -> None:
    settings = start_process("gateway", GatewaySettings.from_env)
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

"""python -m gateway_svc: run the REST gateway (SIGTERM: stop accepting, drain, close)."""

from aiohttp import web

from gateway_svc.settings import GatewaySettings
from servicekit.memory import tune_gc
from servicekit.process import start_process


def main() -> None:
    settings = start_process("gateway", GatewaySettings.from_env)
    from gateway_svc.app import create_app

    # Each request allocates a few hundred objects and almost none form cycles: with the
    # default thresholds the collector ran several times per request (3% of the gateway's
    # CPU in py-spy under the order bench); its modules, once loaded, leave its sight.
    tune_gc()

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

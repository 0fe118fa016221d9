"""python -m gateway_svc: run the REST gateway (SIGTERM: stop accepting, drain, close)."""

from aiohttp import web

from gateway_svc.settings import GatewaySettings
from servicekit.memory import tune_gc
from servicekit.process import start_process


def main() -> None:
    settings = start_process("gateway", GatewaySettings.from_env)
    from gateway_svc.app import create_app
    from gateway_svc.tls import reloading, server_context

    # Each request allocates a few hundred objects and almost none form cycles: with the
    # default thresholds the collector ran several times per request (3% of the gateway's
    # CPU in py-spy under the order bench); its modules, once loaded, leave its sight.
    tune_gc()

    app = create_app(settings)
    context = None
    if settings.tls_cert:
        context = server_context(settings.tls_cert, settings.tls_key)
        app.cleanup_ctx.append(reloading(context, settings.tls_cert, settings.tls_key))
    scheme = "https" if context else "http"
    print(f"gateway: {scheme}://{settings.host}:{settings.port}/", flush=True)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=settings.reuse_port,
        ssl_context=context,
        shutdown_timeout=settings.grace_seconds,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()

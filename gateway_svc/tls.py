"""HTTPS and WSS at the edge: the gateway's certificate, reloaded when its files change.

GATEWAY_TLS_CERT and GATEWAY_TLS_KEY (PEM files, e.g. a mounted Kubernetes Secret) turn the
listener into TLS 1.2+ only. The files are checked every few seconds; a renewed pair is
loaded into the same context, so new connections get it without a restart while open ones
keep theirs. A pair that fails to load (half written) is retried at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable

from aiohttp import web

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 5.0


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def _stamp(*paths: str) -> tuple[float, ...]:
    return tuple(os.stat(p).st_mtime_ns for p in paths)


def reloading(
    context: ssl.SSLContext, cert_path: str, key_path: str, every: float = RELOAD_CHECK_SECONDS
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that reloads the pair into `context` whenever the files change."""

    async def watch() -> None:
        loaded = _stamp(cert_path, key_path)
        while True:
            await asyncio.sleep(every)
            try:
                stamp = _stamp(cert_path, key_path)
                if stamp != loaded:
                    context.load_cert_chain(cert_path, key_path)
                    loaded = stamp
                    log.info("TLS certificate reloaded", extra={"cert": cert_path})
            except (OSError, ssl.SSLError) as exc:
                log.warning("TLS certificate not reloaded: %s", exc)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(watch(), name="tls reload")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx

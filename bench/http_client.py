"""The benchmarks' HTTP client: one keep-alive HTTP/1.1 connection, one request at a time.

The load generator shares the machine's cores with the services it measures, so every
microsecond it spends is taken from them. aiohttp's client costs a few hundred microseconds
of CPU per request (sessions, cookies, tracing, timeouts, a response object); this one
writes the request in one call and reads only the status and a `Content-Length` body, which
is all a benchmark needs from the gateway's answers (over TLS when given a context). Not a
general client: no chunked bodies, no redirects.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import cast

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class HttpConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._lost: Exception | None = None

    @classmethod
    async def open(cls, host: str, port: int, tls: ssl.SSLContext | None = None) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(cls, host, port, ssl=tls)
        return connection

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, bytes]:
        """The status and body of the answer; ConnectionError if the connection is gone."""
        if self._transport is None or self._lost is not None:
            raise ConnectionError(f"connection closed: {self._lost}")
        lines = [f"{method} {target} HTTP/1.1\r\nHost: bench\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n\r\n")
        head = "".join(lines).encode()
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(head + body if body else head)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end])
        length = _CONTENT_LENGTH.search(head)
        if length is None:
            waiter.set_exception(ConnectionError("an answer without Content-Length"))
            return
        total = end + 4 + int(length.group(1))
        if len(self._buffer) < total:
            return
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        waiter.set_result((int(head[9:12]), body))  # "HTTP/1.1 200 OK"

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("closed by the server")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection lost: {self._lost}"))

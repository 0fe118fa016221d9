"""Security headers on every answer (API, UI, errors, WebSocket handshakes).

The UI is served from the gateway itself, so its policy is "self" for everything: scripts
and styles from the build (styles may be set inline by the chart), data from the same
origin over HTTP(S) and WebSocket, no framing by other sites. HSTS tells browsers to use
HTTPS for a year; they ignore it on plain-HTTP answers, so `make run` is unaffected.
"""

from __future__ import annotations

from aiohttp import web

HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: a handler's own value of a header wins."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)

"""The OpenAPI 3.1 document of the REST API, served at /api/v1/openapi.json, and a docs page.

The document is Python data built once at import, next to the code it describes, so that a
test can hold the two together: every route the app registers is an operation here and
every operation is a route (tests/gateway/test_openapi.py), and schemathesis calls each
operation on a live stack and checks the answers against it. HEAD, which aiohttp adds to
every GET, is left implicit. Its parts live in gateway_svc/apidoc/ (the native dialects)
and gateway_svc/binance/openapi.py.
"""

from __future__ import annotations

import html

import orjson
from aiohttp import web

from gateway_svc.apidoc import accounts, app, private, public
from gateway_svc.apidoc.app import DOC_PATH, DOCS_PATH
from gateway_svc.apidoc.bodies import BODIES
from gateway_svc.apidoc.operations import (
    ACCOUNT,
    OPS,
    PRIVATE,
    PUBLIC,
    RESPONSES,
    STREAMS,
    Operations,
)
from gateway_svc.apidoc.schemas import SCHEMAS, Json
from gateway_svc.auth import DEFAULT_WINDOW_MS, MAX_WINDOW_MS
from gateway_svc.binance import openapi as binance_openapi


def _paths() -> dict[str, dict[str, Json]]:
    """Every route of the native dialects, one table per module of routes, in their order."""
    p = Operations()
    for table in (public, private, accounts, app):
        table.describe(p)
    return p.paths


def build() -> Json:
    """The whole document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Exchange REST API",
            "version": "1",
            "description": (
                "A spot exchange, in two dialects: the project's spec and Backpack's "
                "(what ccxt speaks). Amounts are decimal strings. Private operations take a "
                "bearer token (`POST /api/v1/auth/login`) or a request signed the Backpack "
                "way: ED25519 over `instruction=<x-backpack-instruction>&<params sorted by "
                "key>&timestamp=<X-Timestamp>&window=<X-Window>`, the window at most "
                f"{MAX_WINDOW_MS} ms. Every error is `{{code, message, error: {{code, "
                "message, details}}`."
            ),
        },
        "tags": [
            {"name": PUBLIC, "description": "market data; no authentication"},
            {"name": PRIVATE, "description": "the caller's orders, balances and history"},
            {"name": ACCOUNT, "description": "sign-up, log-in and API keys"},
            {"name": STREAMS, "description": "live market data: WebSocket and SSE"},
            {"name": OPS, "description": "health, metrics and this document"},
            {"name": binance_openapi.TAG, "description": binance_openapi.TAG_DESCRIPTION},
        ],
        "paths": {**_paths(), **binance_openapi.paths()},
        "components": {
            "schemas": {**SCHEMAS, **BODIES},
            "responses": RESPONSES,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "binanceApiKey": binance_openapi.SECURITY_SCHEME,
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "base64 ED25519 public key",
                },
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Signature",
                    "description": "base64 ED25519 signature of the signing string",
                },
                "timestamp": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Timestamp",
                    "description": "milliseconds since the epoch; within the window of now",
                },
                "window": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Window",
                    "description": (
                        f"validity in ms, {DEFAULT_WINDOW_MS} when absent, at most {MAX_WINDOW_MS}"
                    ),
                },
            },
        },
    }


DOCUMENT = build()
_DOCUMENT_JSON = orjson.dumps(DOCUMENT)


def render_docs(document: Json) -> str:
    """A self-contained page listing every operation: no script, nothing fetched."""
    e = html.escape
    rows = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            params = [q["name"] for q in op.get("parameters", [])]
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                params.append("JSON body: " + schema.get("$ref", "array").rsplit("/", 1)[-1])
            auth = " or ".join(" + ".join(req) for req in op.get("security", [])) or "none"
            rows.append(
                f"<tr><td><b>{e(method.upper())}</b></td><td><code>{e(path)}</code></td>"
                f"<td>{e(op['summary'])}</td><td>{e(', '.join(params))}</td>"
                f"<td>{e(auth)}</td><td>{e(' '.join(op['responses']))}</td></tr>"
            )
    info = document["info"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{e(info['title'])}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "</style></head><body>"
        f"<h1>{e(info['title'])}</h1><p>{e(info['description'])}</p>"
        f"<p>The full document: <a href='{DOC_PATH}'>{DOC_PATH}</a> (OpenAPI 3.1).</p>"
        "<table><tr><th>method</th><th>path</th><th>summary</th><th>parameters</th>"
        "<th>authentication</th><th>statuses</th></tr>" + "".join(rows) + "</table>"
        "</body></html>"
    )


_DOCS_HTML = render_docs(DOCUMENT)

routes = web.RouteTableDef()


@routes.get(DOC_PATH)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=_DOCUMENT_JSON, content_type="application/json")


@routes.get(DOCS_PATH)
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_HTML, content_type="text/html")

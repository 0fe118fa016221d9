"""The trading UI: the built files of web/ (GATEWAY_WEB_DIR, `web/dist`) served at `/`.

The UI's own addresses (`/`, `/markets`, `/trade/<market>`, `/login`, `/signup`,
`/account`, `/funds`) all answer `index.html`, and the browser-side router shows the page.
Vite names the files under `assets/` by their content's hash, so those are cached for a year
and never revalidated; `index.html`, which names them, is never cached, so a new build is
seen on the next load. `/web-config.json` tells the UI what this gateway offers (the demo faucet).

The UI is served by a middleware that answers only requests no route matched: the API's
route table (and the OpenAPI document that mirrors it) stays the API alone, and an unknown
API path still gets the API's JSON 404.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway_svc.errors import Handler
from gateway_svc.settings import GatewaySettings

log = logging.getLogger(__name__)

APP_PAGES = re.compile(r"^/(?:markets|login|signup|account|funds|trade/[A-Za-z0-9_-]{1,32})?/?$")
CONFIG_PATH = "/web-config.json"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
OTHER_FILES = "public, max-age=3600"  # favicon and the like: not hashed, rarely changed


class Site:
    """Finds the file for a path inside the build folder, and never outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def built(self) -> bool:
        return (self.root / "index.html").is_file()

    def file(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        if not relative or relative.startswith(".") or "\\" in relative or "\0" in relative:
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate


def _file_response(path: Path, cache_control: str) -> web.FileResponse:
    response = web.FileResponse(path)
    response.headers["Cache-Control"] = cache_control
    return response


def ui_middleware(settings: GatewaySettings) -> Middleware:
    """The middleware that serves the UI for requests the API's routes did not match."""
    site = Site(Path(settings.web_dir))
    if not site.built:
        log.warning("no web UI at %s (build it with `make web`); / answers 404", site.root)

    @web.middleware
    async def serve_ui(request: web.Request, handler: Handler) -> web.StreamResponse:
        unmatched = request.match_info.http_exception is not None
        if not unmatched or request.method not in ("GET", "HEAD"):
            return await handler(request)
        path = request.path
        if path == CONFIG_PATH:
            response = web.json_response(
                {"faucet": settings.faucet_enabled, "faucetCap": settings.faucet_cap}
            )
            response.headers["Cache-Control"] = NO_CACHE
            return response
        if APP_PAGES.match(path) and site.built:
            return _file_response(site.root / "index.html", NO_CACHE)
        found = site.file(path)
        if found is not None and found.name != "index.html":
            hashed = found.parent == site.root / "assets"
            return _file_response(found, IMMUTABLE if hashed else OTHER_FILES)
        return await handler(request)

    return serve_ui

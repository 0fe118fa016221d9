"""Every error the API returns, and the one table that maps backend results onto them.

An error body carries the code twice, once where Backpack clients (ccxt) read it and once
in the spec's envelope:

    {"code": "INSUFFICIENT_FUNDS", "message": "...",
     "error": {"code": "INSUFFICIENT_FUNDS", "message": "...", "details": {...}}}

Codes are Backpack's where one fits (so ccxt raises the right exception class); the
engine's finer result code is in `details.reason`. No request ever gets a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from exchange.common.v1 import common_pb2 as cpb
from gateway_svc.limits import LimitsUnavailable
from tradekit.engine_client import EngineUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP status, stable code, message and optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body (also one item of a batch's answer)."""
        return {
            "code": self.code,
            "message": self.message,
            "error": {"code": self.code, "message": self.message, "details": self.details},
        }

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            body=orjson.dumps(self.body()),
            content_type="application/json",
            headers=self.headers,
        )


def bad_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, "INVALID_CLIENT_REQUEST", message, details)


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, "RESOURCE_NOT_FOUND", message)


def unauthorized(message: str, code: str = "UNAUTHORIZED") -> ApiError:
    return ApiError(401, code, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "FORBIDDEN", message)


def unavailable(message: str) -> ApiError:
    return ApiError(503, "SERVICE_UNAVAILABLE", message, headers={"Retry-After": "1"})


# The engine's result codes: (HTTP status, API code).
_ENGINE: dict[int, tuple[int, str]] = {
    cpb.RESULT_CODE_INVALID_AMOUNT: (400, "INVALID_QUANTITY"),
    cpb.RESULT_CODE_INVALID_PRICE: (400, "INVALID_PRICE"),
    cpb.RESULT_CODE_INVALID_QUANTITY: (400, "INVALID_QUANTITY"),
    cpb.RESULT_CODE_BELOW_MIN_QUANTITY: (400, "INVALID_QUANTITY"),
    cpb.RESULT_CODE_BELOW_MIN_NOTIONAL: (400, "INVALID_ORDER"),
    cpb.RESULT_CODE_INVALID_ORDER: (400, "INVALID_ORDER"),
    cpb.RESULT_CODE_INVALID_USER: (400, "INVALID_CLIENT_REQUEST"),
    cpb.RESULT_CODE_UNKNOWN_MARKET: (400, "INVALID_MARKET"),
    cpb.RESULT_CODE_UNKNOWN_ASSET: (400, "INVALID_ASSET"),
    cpb.RESULT_CODE_MARKET_HALTED: (409, "TRADING_PAUSED"),
    cpb.RESULT_CODE_INVALID_MARKET_CONFIG: (400, "INVALID_CLIENT_REQUEST"),
    cpb.RESULT_CODE_ALREADY_EXISTS: (409, "ALREADY_EXISTS"),
    cpb.RESULT_CODE_INSUFFICIENT_FUNDS: (400, "INSUFFICIENT_FUNDS"),
    cpb.RESULT_CODE_BALANCE_LIMIT: (400, "INVALID_QUANTITY"),
    cpb.RESULT_CODE_POST_ONLY_WOULD_TAKE: (400, "INVALID_ORDER"),
    cpb.RESULT_CODE_FOK_NOT_FILLABLE: (400, "INVALID_ORDER"),
    cpb.RESULT_CODE_DUPLICATE_CLIENT_ID: (409, "DUPLICATE_CLIENT_ID"),
    cpb.RESULT_CODE_TRIGGER_WOULD_FIRE: (400, "INVALID_ORDER"),
    cpb.RESULT_CODE_TRIGGER_LIMIT: (400, "INVALID_ORDER"),
    cpb.RESULT_CODE_ORDER_NOT_FOUND: (404, "RESOURCE_NOT_FOUND"),
    cpb.RESULT_CODE_UNAVAILABLE: (503, "SERVICE_UNAVAILABLE"),
    # capital: Backpack's codes, so ccxt raises BadRequest; the reason tells them apart
    cpb.RESULT_CODE_UNKNOWN_NETWORK: (400, "INVALID_CLIENT_REQUEST"),
    cpb.RESULT_CODE_NETWORK_DISABLED: (400, "INVALID_CLIENT_REQUEST"),
    cpb.RESULT_CODE_INVALID_ADDRESS: (400, "INVALID_CLIENT_REQUEST"),
    cpb.RESULT_CODE_BELOW_MIN_WITHDRAWAL: (400, "INVALID_QUANTITY"),
    cpb.RESULT_CODE_ABOVE_MAX_WITHDRAWAL: (400, "INVALID_QUANTITY"),
    cpb.RESULT_CODE_WITHDRAWAL_LIMIT: (400, "INVALID_QUANTITY"),
    cpb.RESULT_CODE_DEPOSIT_CONFLICT: (409, "ALREADY_EXISTS"),
    cpb.RESULT_CODE_WITHDRAWAL_NOT_FOUND: (404, "RESOURCE_NOT_FOUND"),
    cpb.RESULT_CODE_WITHDRAWAL_FINAL: (409, "INVALID_CLIENT_REQUEST"),
    cpb.RESULT_CODE_NOT_APPROVED: (409, "INVALID_CLIENT_REQUEST"),
    cpb.RESULT_CODE_INVALID_MEMO: (400, "INVALID_CLIENT_REQUEST"),
}


def engine_error(code: int, message: str, **details: Any) -> ApiError:
    """The API error for an engine rejection (`code` is a ResultCode other than OK)."""
    status, api_code = _ENGINE.get(code, (500, "SERVER_ERROR"))
    known = code in _ENGINE
    reason = cpb.ResultCode.Name(code)[len("RESULT_CODE_") :] if known else str(code)  # type: ignore[arg-type]
    return ApiError(status, api_code, message, {"reason": reason, **details})


# The ledger's gRPC status codes; its details read "WORD: message".
_LEDGER: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
}
_LEDGER_WORDS = {
    "UNKNOWN_MARKET": (400, "INVALID_MARKET"),
    "KEY_NOT_FOUND": (404, "RESOURCE_NOT_FOUND"),
}


def grpc_error(exc: grpc.aio.AioRpcError) -> ApiError:
    """The API error for a failed gRPC call to a backend."""
    details = exc.details() or ""
    word, _, message = details.partition(": ")
    if word in _LEDGER_WORDS:
        status, code = _LEDGER_WORDS[word]
        return ApiError(status, code, message)
    mapped = _LEDGER.get(exc.code())
    if mapped is not None and word.isupper() and message:
        return ApiError(mapped, word, message)
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return unavailable("a backend service is not answering; try again")
    log.error("backend call failed: %s %s", exc.code().name, details)
    return ApiError(500, "SERVER_ERROR", "internal error")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Renders an error in one dialect's body, for the paths under its prefix.
Renderer = Callable[[ApiError], web.Response]


def error_middleware(dialects: Mapping[str, Renderer]) -> Middleware:
    """Turns every failure into the JSON error body (the dialect's own under its path
    prefix); nothing escapes as a traceback."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            error = _http_error(exc)
        except Exception as exc:
            error = _api_error(request, exc)
        for prefix, render in dialects.items():
            if request.path.startswith(prefix):
                return render(error)
        return error.response()

    return middleware


def _http_error(exc: web.HTTPException) -> ApiError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return ApiError(413, "PAYLOAD_TOO_LARGE", "the request body is too large")
    # 403 comes from aiohttp-cors: a preflight from an origin that is not allowed.
    code = {403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
        exc.status, "INVALID_CLIENT_REQUEST"
    )
    allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None  # 405
    return ApiError(exc.status, code, exc.reason, headers=allow)


def _api_error(request: web.Request, exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, grpc.aio.AioRpcError):
        return grpc_error(exc)
    if isinstance(exc, EngineUnavailable | LimitsUnavailable):
        return unavailable(str(exc))
    log.exception("unhandled error on %s %s", request.method, request.path)
    return ApiError(500, "SERVER_ERROR", "internal error")

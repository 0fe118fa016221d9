"""How the document writes down an operation: its parameters, answers, errors and security.

An error status refers to the one response of RESPONSES for it (the body of errors.py); an
operation's security follows from its tag and from INSTRUCTIONS, the Backpack instruction
a signed request names (tradekit.backpack).
"""

from __future__ import annotations

from typing import Any

from gateway_svc.apidoc.schemas import DIGITS, MAX_ID, Json, ref
from gateway_svc.private import MAX_MS
from tradekit.backpack import INSTRUCTIONS

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": DIGITS}}
_ERRORS: dict[int, tuple[str, Json]] = {
    400: ("A malformed request, or a rejection by the engine (`code`, `details.reason`).", {}),
    401: ("No valid bearer token or signature (UNAUTHORIZED, INVALID_SIGNATURE).", {}),
    403: (
        "Authenticated, but not allowed (FORBIDDEN; `details.reason` MISSING_PERMISSION when "
        "the API key lacks the scope, IP_NOT_ALLOWED outside its allowlist).",
        {},
    ),
    404: ("No such order or key, or not the caller's (RESOURCE_NOT_FOUND).", {}),
    409: ("Conflicts with the current state (DUPLICATE_CLIENT_ID, TRADING_PAUSED, ...).", {}),
    413: ("The body is larger than the gateway accepts (PAYLOAD_TOO_LARGE).", {}),
    429: ("Over a rate limit (TOO_MANY_REQUESTS); see Retry-After.", _RETRY_AFTER),
    503: ("A backend is not answering (SERVICE_UNAVAILABLE); try again.", _RETRY_AFTER),
}
RESPONSES: dict[str, Json] = {
    str(status): {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    for status, (description, headers) in _ERRORS.items()
}

PUBLIC, PRIVATE, ACCOUNT, OPS = "public", "private", "account", "operations"
STREAMS = "Streams"
BEARER: Json = {"bearer": []}
SIGNED: Json = {"apiKey": [], "signature": [], "timestamp": []}
MARKET_DATA = (429, 503)
READ = (400, 401, 403, 503)
WRITE = (400, 401, 403, 413, 429, 503)


def query(name: str, schema: Json, description: str, **extra: Any) -> Json:
    return {"name": name, "in": "query", "schema": schema, "description": description, **extra}


def as_json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def list_of(name: str) -> Json:
    return as_json({"type": "array", "items": ref(name)})


UINT = {"type": "integer", "minimum": 0}
ID = {**UINT, "maximum": MAX_ID}
MS_INPUT = {**UINT, "maximum": MAX_MS}
SYMBOL_TEXT = {"type": "string", "maxLength": 32}
SYMBOL = query("symbol", SYMBOL_TEXT, "the market (Backpack)", example="TATA_INR")
MARKET = query("market", SYMBOL_TEXT, "the market (the spec), when there is no `symbol`")
MARKETS = (SYMBOL, MARKET)
LIMIT = query("limit", {**UINT, "maximum": 1000}, "at most this many")
USER_ID = query("userId", UINT, "optional; must be the caller (else 403)")


class Operations:
    """Collects operations; an operation's security follows from its tag and INSTRUCTIONS."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Json]] = {}

    def add(
        self,
        method: str,
        path: str,
        operation_id: str,
        summary: str,
        tag: str,
        ok: Json,
        *,
        errors: tuple[int, ...] = (),
        params: tuple[Json, ...] = (),
        body: Json | None = None,
        examples: Json | None = None,
        status: int = 200,
        description: str = "",
        body_required: bool = True,
        bearer_only: bool = False,
    ) -> None:
        responses: Json = {str(status): {"description": "success", "content": ok}}
        for error in errors:
            responses[str(error)] = {"$ref": f"#/components/responses/{error}"}
        op: Json = {
            "operationId": operation_id,
            "summary": summary,
            "tags": [tag],
            "responses": responses,
        }
        if description:
            op["description"] = description
        if params:
            op["parameters"] = list(params)
        if body is not None:
            media: Json = {"schema": body}
            if examples:
                media["examples"] = {name: {"value": v} for name, v in examples.items()}
            op["requestBody"] = {
                "required": body_required,
                "content": {"application/json": media},
            }
        instruction = INSTRUCTIONS.get((method.upper(), path))
        if instruction is not None:
            op["security"] = [BEARER, SIGNED, {**SIGNED, "window": []}]
            op["x-backpack-instruction"] = instruction
        elif tag == PRIVATE or bearer_only:
            op["security"] = [BEARER]
        self.paths.setdefault(path, {})[method] = op

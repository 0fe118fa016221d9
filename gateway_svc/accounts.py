"""Sign-up, log-in and API keys: the browser's token and the keys that sign API requests."""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web

from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc import audit, lockout
from gateway_svc.auth import Caller
from gateway_svc.context import backends, caller, json_body, limit, params
from gateway_svc.dialect import uint
from gateway_svc.errors import ApiError, bad_request, forbidden
from gateway_svc.respond import json_response
from tradekit.binance import new_hmac_credentials

routes = web.RouteTableDef()


async def _credentials(request: web.Request) -> tuple[str, str]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise bad_request("email and password are required strings")
    # Sign-ups and log-ins share the per-address limit of market data: cheap to ask, and
    # each one costs an Argon2 hash.
    await limit(request, backends(request).market_rule, f"ip:{request.remote}", cost=10)

    return email, password


@routes.post("/api/v1/auth/signup")
async def signup(request: web.Request) -> web.Response:
    email, password = await _credentials(request)
    b = backends(request)
    user = await b.ledger.CreateUser(lpb.CreateUserRequest(email=email, password=password))
    await audit.record(request, "signup", f"user:{user.user_id}", user.user_id, email=email)
    return json_response(
        {"userId": str(user.user_id), "token": b.tokens.issue(user.user_id)}, status=201
    )


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    email, password = await _credentials(request)
    b = backends(request)
    address = request.remote or ""
    await lockout.check(b.redis, email, address)
    try:
        user = await b.ledger.Authenticate(lpb.AuthenticateRequest(email=email, password=password))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            await lockout.failed(b.redis, email, address)
            await audit.record(request, "login_failed", email)
        raise
    await lockout.succeeded(b.redis, email, address)
    await audit.record(request, "login", f"user:{user.user_id}", user.user_id)
    return json_response({"userId": str(user.user_id), "token": b.tokens.issue(user.user_id)})


async def _browser_user(request: web.Request) -> Caller:
    """API keys are managed with the log-in token, never with an API key itself."""
    who = await caller(request)
    if who.via != "token":
        raise forbidden("manage API keys with the bearer token from log-in")
    return who


def key_json(key: lpb.ApiKey) -> dict[str, Any]:
    return {
        "keyId": str(key.key_id),
        "publicKey": key.public_key,
        "label": key.label,
        "createdAt": key.created_at_us // 1000,
        "revokedAt": key.revoked_at_us // 1000 or None,
        "permissions": list(key.permissions),
        "ipAllowlist": list(key.ip_allowlist),
        "type": key.kind or "ed25519",
    }


def _strings(p: dict[str, Any], field: str) -> list[str]:
    """An optional list of strings (the ledger checks what they say)."""
    value = p.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{field} must be a list of strings", field=field)
    return value


@routes.post("/api/v1/auth/apikeys")
async def create_key(request: web.Request) -> web.Response:
    """Register `publicKey` (base64 ED25519), or without one generate a key pair and return
    its secret, once; `type` "hmac" makes an HMAC-SHA256 key for Binance clients instead
    (`apiKey` and `secret`, once). `permissions` (default read and trade) and `ipAllowlist`
    (CIDRs, default any address) are fixed for the key's life."""
    who = await _browser_user(request)
    p = await params(request)
    label = p.get("label", "")
    public_key = p.get("publicKey", "")
    kind = p.get("type", "ed25519")
    if not isinstance(label, str) or not isinstance(public_key, str):
        raise bad_request("label and publicKey must be strings")
    if kind not in ("ed25519", "hmac"):
        raise bad_request("type must be ed25519 or hmac", field="type")
    fences = {
        "permissions": _strings(p, "permissions"),
        "ip_allowlist": _strings(p, "ipAllowlist"),
    }
    ledger = backends(request).ledger
    if kind == "hmac":
        if public_key:
            raise bad_request("an HMAC key is made here: send no publicKey", field="publicKey")
        return await _create_hmac_key(request, who.user_id, label, fences)
    if public_key:
        key = await ledger.RegisterApiKey(
            lpb.RegisterApiKeyRequest(
                user_id=who.user_id, public_key=public_key, label=label, **fences
            )
        )
        await _audit_key(request, "apikey_create", key)
        return json_response(key_json(key), status=201)
    generated = await ledger.GenerateApiKey(
        lpb.GenerateApiKeyRequest(user_id=who.user_id, label=label, **fences)
    )
    await _audit_key(request, "apikey_create", generated.key)
    return json_response({**key_json(generated.key), "secret": generated.secret}, status=201)


async def _create_hmac_key(
    request: web.Request, user_id: int, label: str, fences: dict[str, list[str]]
) -> web.Response:
    """The secret is sealed here before it leaves the gateway; the answer is its only copy
    in clear."""
    sealer = backends(request).api_keys.sealer
    if sealer is None:
        raise ApiError(
            400, "HMAC_KEYS_DISABLED", "this deployment makes no HMAC keys (API_SECRET_SEAL_KEY)"
        )
    api_key, secret = new_hmac_credentials()
    key = await backends(request).ledger.RegisterHmacApiKey(
        lpb.RegisterHmacApiKeyRequest(
            user_id=user_id,
            api_key=api_key,
            sealed_secret=sealer.seal(secret.encode(), api_key),
            label=label,
            **fences,
        )
    )
    await _audit_key(request, "apikey_create", key)
    return json_response({**key_json(key), "apiKey": api_key, "secret": secret}, status=201)


@routes.get("/api/v1/auth/apikeys")
async def list_keys(request: web.Request) -> web.Response:
    who = await _browser_user(request)
    reply = await backends(request).ledger.ListApiKeys(lpb.ListApiKeysRequest(user_id=who.user_id))
    return json_response([key_json(k) for k in reply.keys])


@routes.delete("/api/v1/auth/apikeys")
async def revoke_key(request: web.Request) -> web.Response:
    who = await _browser_user(request)
    p = await params(request)
    b = backends(request)
    key = await b.ledger.RevokeApiKey(
        lpb.RevokeApiKeyRequest(user_id=who.user_id, key_id=uint(p, "keyId"))
    )
    b.api_keys.forget(key.public_key)
    await _audit_key(request, "apikey_revoke", key)
    return json_response(key_json(key))


async def _audit_key(request: web.Request, action: str, key: lpb.ApiKey) -> None:
    await audit.record(
        request,
        action,
        f"user:{key.user_id}",
        key.user_id,
        keyId=str(key.key_id),
        publicKey=key.public_key,
        permissions=list(key.permissions),
        ipAllowlist=list(key.ip_allowlist),
    )

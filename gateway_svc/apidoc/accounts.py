"""The account operations: sign-up, log-in and API keys (gateway_svc/accounts.py)."""

from __future__ import annotations

from gateway_svc.apidoc.operations import ACCOUNT, Operations, as_json, list_of
from gateway_svc.apidoc.schemas import ref


def describe(p: Operations) -> None:
    add = p.add
    # fmt: off
    add("post", "/api/v1/auth/signup", "signup", "Create a user; returns a bearer token",
        ACCOUNT, as_json(ref("Session")), status=201, errors=(400, 409, 413, 429, 503),
        body=ref("Credentials"))
    add("post", "/api/v1/auth/login", "login", "Log in; returns a bearer token", ACCOUNT,
        as_json(ref("Session")), errors=(400, 401, 413, 429, 503), body=ref("Credentials"))
    keys = "With the bearer token only: an API key cannot manage keys (403)."
    add("post", "/api/v1/auth/apikeys", "createApiKey", "Register or generate an API key",
        ACCOUNT, as_json(ref("CreatedApiKey")), status=201,
        errors=(400, 401, 403, 404, 409, 413, 503), body=ref("NewApiKey"), description=keys,
        body_required=False, bearer_only=True)
    add("get", "/api/v1/auth/apikeys", "listApiKeys", "API keys of the caller", ACCOUNT,
        list_of("ApiKey"), errors=(401, 403, 503), description=keys, bearer_only=True)
    add("delete", "/api/v1/auth/apikeys", "revokeApiKey", "Revoke an API key", ACCOUNT,
        as_json(ref("ApiKey")), errors=(400, 401, 403, 404, 413, 503), body=ref("RevokeApiKey"),
        description=keys, bearer_only=True)
    # fmt: on

"""Signing requests the Backpack way, as an API client does (for tests)."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def signed_headers(
    secret_b64: str,
    instruction: str,
    params: dict[str, Any] | None = None,
    *,
    timestamp_ms: int | None = None,
    window_ms: int = 5000,
) -> dict[str, str]:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(secret_b64))
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    pairs = "".join(
        f"&{k}={quote(str(v).lower() if isinstance(v, bool) else str(v), safe='')}"
        for k, v in sorted((params or {}).items())
    )
    message = f"instruction={instruction}{pairs}&timestamp={ts}&window={window_ms}"
    signature = base64.b64encode(key.sign(message.encode())).decode()
    return {
        "X-API-Key": public,
        "X-Signature": signature,
        "X-Timestamp": ts,
        "X-Window": str(window_ms),
    }

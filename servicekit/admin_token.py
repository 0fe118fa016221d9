"""The admin credential: a bearer token in gRPC metadata, shared by the engine and its callers.

The engine reads ENGINE_ADMIN_TOKEN and requires it on the calls that create money or change
markets; every trusted caller of those (the gateway's faucet, the market maker, exchangectl)
reads the same variable and sends it with `admin_metadata`.
"""

from __future__ import annotations

METADATA_KEY = "authorization"  # gRPC metadata keys are lower case
ENV = "ENGINE_ADMIN_TOKEN"

Metadata = tuple[tuple[str, str], ...]


def admin_metadata(token: str) -> Metadata:
    """The metadata that carries `token`; none when there is no token to send."""
    return ((METADATA_KEY, f"Bearer {token}"),) if token else ()

"""Users and API keys of record: sign-up, log-in, and the ED25519 keys that sign API requests.

Invariants: a password is stored only as an Argon2id hash, never in clear; emails are unique
whatever their case (the `users_email` index on lower(email) is the arbiter, so concurrent
sign-ups cannot both win); an API key is stored as the canonical base64 of a 32-byte ED25519
public key that is a point of the curve and not of small order, unique across all users; a
revoked key keeps the time of its first revocation. A server-generated secret is returned once
and never stored. A key's permissions and address allowlist are fixed when it is made (no
statement here changes them): known permission names only, CIDR networks in canonical form.
An HMAC key's secret arrives sealed by the gateway and is stored only so: the ledger can
neither read nor make one.

No gRPC or protobuf here: methods return frozen records and raise `UserError` subclasses whose
class says which status the service edge maps them to and whose `code` says why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NewType, TypeAlias

import asyncpg
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servicekit.clock import now_us
from tradekit.binance import HMAC_API_KEY

UserId = NewType("UserId", int)
KeyId = NewType("KeyId", int)

Database: TypeAlias = "asyncpg.Pool | asyncpg.Connection"

MAX_EMAIL_CHARS = 254  # RFC 5321's limit on a forward path
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256  # bounds the work one request can ask of the hasher
MAX_LABEL_CHARS = 64
_MAX_BIGINT = 2**63 - 1  # ids are PostgreSQL bigints; larger ones cannot exist
PERMISSIONS = ("read", "trade", "withdraw")  # balances and history; orders; capital requests
DEFAULT_PERMISSIONS = ("read", "trade")  # never withdraw unless asked for
MAX_ALLOWLIST_ENTRIES = 64
MAX_SEALED_SECRET_BYTES = 512

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class ErrorCode(StrEnum):
    """Why a request was refused; stable strings that clients may match on."""

    INVALID_EMAIL = "INVALID_EMAIL"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_PASSWORD = "INVALID_PASSWORD"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"
    INVALID_PUBLIC_KEY = "INVALID_PUBLIC_KEY"
    INVALID_LABEL = "INVALID_LABEL"
    KEY_EXISTS = "KEY_EXISTS"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    INVALID_PERMISSION = "INVALID_PERMISSION"
    INVALID_IP_ALLOWLIST = "INVALID_IP_ALLOWLIST"
    USER_NOT_FOUND = "USER_NOT_FOUND"


class UserError(Exception):
    """A refusal the caller can act on; the subclass picks the gRPC status at the edge."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidArgument(UserError):
    """A field is malformed (INVALID_ARGUMENT)."""


class AlreadyExists(UserError):
    """The email or key is already registered (ALREADY_EXISTS)."""


class NotFound(UserError):
    """No such user or key, or not one of the caller's (NOT_FOUND)."""


class Unauthenticated(UserError):
    """Wrong email or password, deliberately not saying which (UNAUTHENTICATED)."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: UserId
    email: str  # as the user typed it (stripped); uniqueness ignores case
    created_at_us: int


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: KeyId
    user_id: UserId
    public_key: str  # canonical base64 of the 32-byte ED25519 public key
    label: str
    created_at_us: int
    revoked_at_us: int | None  # None while the key is active
    permissions: tuple[str, ...] = DEFAULT_PERMISSIONS  # sorted
    ip_allowlist: tuple[str, ...] = ()  # CIDR networks; empty = any address
    kind: str = "ed25519"  # or "hmac": public_key is then the API key
    sealed_secret: bytes = b""  # an HMAC key's secret as the gateway sealed it

    @property
    def active(self) -> bool:
        return self.revoked_at_us is None


_USER_COLUMNS = "user_id, email, created_at_us"
_KEY_COLUMNS = (
    "key_id, user_id, public_key, label, created_at_us, revoked_at_us, permissions, ip_allowlist,"
    " kind, sealed_secret"
)


class UserStore:
    """Users and API keys over a pool (or one connection); every write is one statement.

    `hasher` sets the Argon2 cost (tests pass a cheap one); it must be Argon2id. Hashing runs
    in threads so the event loop keeps serving, at most `hash_concurrency` at a time because
    each one holds the hasher's `memory_cost` KiB.
    """

    def __init__(
        self,
        db: Database,
        *,
        hasher: PasswordHasher | None = None,
        hash_concurrency: int = 4,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._db = db
        self._hasher = PasswordHasher() if hasher is None else hasher
        if self._hasher.type is not Type.ID:
            raise ValueError("passwords are hashed with Argon2id only")
        self._hash_slots = asyncio.Semaphore(hash_concurrency)
        self._clock = clock
        self._dummy_hash: str | None = None

    # ---- users ----

    async def create_user(self, email: str, password: str) -> UserRecord:
        """Sign up. The email is kept as typed; the database refuses it in any other case."""
        email = _checked_email(email)
        _check_new_password(password)
        password_hash = await self._hash(password)
        try:
            row = await self._db.fetchrow(
                f"""INSERT INTO users (email, password_hash, created_at_us)
                    VALUES ($1, $2, $3) RETURNING {_USER_COLUMNS}""",
                email,
                password_hash,
                self._clock(),
            )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(ErrorCode.EMAIL_TAKEN, "this email is already registered") from None
        assert row is not None
        return _user(row)

    async def authenticate(self, email: str, password: str) -> UserRecord:
        """The user with this email and password; one error for every kind of miss.

        An unknown email still costs one hash verification, so response times do not tell
        which emails are registered. A hash made with other parameters than the current
        hasher's is replaced while the password is at hand.
        """
        refused = Unauthenticated(ErrorCode.BAD_CREDENTIALS, "wrong email or password")
        email = email.strip()
        if not _valid_email(email) or not _hashable_password(password):
            raise refused  # no such account can exist, so there is nothing to hide
        row = await self._db.fetchrow(
            f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)",
            email,
        )
        if row is None:
            await self._verify(await self._spare_hash(), password)
            raise refused
        stored: str = row["password_hash"]
        if not await self._verify(stored, password):
            raise refused
        if self._hasher.check_needs_rehash(stored):
            await self._db.execute(
                # Compare-and-set: a password changed meanwhile is not overwritten.
                "UPDATE users SET password_hash = $2 WHERE user_id = $1 AND password_hash = $3",
                row["user_id"],
                await self._hash(password),
                stored,
            )
        return _user(row)

    async def get_user(self, user_id: int) -> UserRecord:
        row = None
        if _valid_id(user_id):
            row = await self._db.fetchrow(
                f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = $1", user_id
            )
        if row is None:
            raise NotFound(ErrorCode.USER_NOT_FOUND, f"no user {user_id}")
        return _user(row)

    async def get_user_by_email(self, email: str) -> UserRecord:
        """The user with this email, whatever its case (an operator's lookup)."""
        email = email.strip()
        row = None
        if _valid_email(email):
            row = await self._db.fetchrow(
                f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
            )
        if row is None:
            raise NotFound(ErrorCode.USER_NOT_FOUND, f"no user with email {email[:64]!r}")
        return _user(row)

    # ---- API keys ----

    async def register_api_key(
        self,
        user_id: int,
        public_key_b64: str,
        label: str,
        permissions: Sequence[str] = (),
        ip_allowlist: Sequence[str] = (),
    ) -> ApiKeyRecord:
        """Register a public key the user made; the private key never leaves the user.
        No `permissions` means the default ones (read and trade)."""
        raw = _decode_public_key(public_key_b64)
        if not _is_safe_ed25519_point(raw):
            raise InvalidArgument(
                ErrorCode.INVALID_PUBLIC_KEY, "public_key is not a usable ED25519 public key"
            )
        fences = _checked_permissions(permissions), _checked_allowlist(ip_allowlist)
        return await self._insert_key(user_id, raw, _checked_label(label), *fences)

    async def generate_api_key(
        self,
        user_id: int,
        label: str,
        permissions: Sequence[str] = (),
        ip_allowlist: Sequence[str] = (),
    ) -> tuple[ApiKeyRecord, str]:
        """Make a key pair here and keep only its public half.

        Returns the record and the secret: base64 of the 32-byte private seed, the format of
        Backpack's API secrets. It is not stored, so this is the one chance to hand it out.
        """
        label = _checked_label(label)
        fences = _checked_permissions(permissions), _checked_allowlist(ip_allowlist)
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes_raw()
        record = await self._insert_key(user_id, public, label, *fences)
        return record, base64.b64encode(private.private_bytes_raw()).decode("ascii")

    async def register_hmac_api_key(
        self,
        user_id: int,
        api_key: str,
        sealed_secret: bytes,
        label: str,
        permissions: Sequence[str] = (),
        ip_allowlist: Sequence[str] = (),
    ) -> ApiKeyRecord:
        """Register an HMAC key the gateway made, with its secret as the gateway sealed it."""
        if not HMAC_API_KEY(api_key):
            raise InvalidArgument(
                ErrorCode.INVALID_PUBLIC_KEY, "an HMAC API key is 64 ASCII letters and digits"
            )
        if not 0 < len(sealed_secret) <= MAX_SEALED_SECRET_BYTES:
            raise InvalidArgument(
                ErrorCode.INVALID_PUBLIC_KEY,
                f"the sealed secret must be 1 to {MAX_SEALED_SECRET_BYTES} bytes",
            )
        fences = _checked_permissions(permissions), _checked_allowlist(ip_allowlist)
        return await self._insert_key(
            user_id, api_key, _checked_label(label), *fences, sealed_secret=sealed_secret
        )

    async def list_api_keys(self, user_id: int) -> list[ApiKeyRecord]:
        """Every key of the user, revoked ones included, oldest first (none for no such user)."""
        if not _valid_id(user_id):
            return []
        rows = await self._db.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY key_id", user_id
        )
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, user_id: int, key_id: int) -> ApiKeyRecord:
        """Revoke one of the user's keys; revoking again keeps the first revocation time."""
        row = None
        if _valid_id(user_id) and _valid_id(key_id):
            row = await self._db.fetchrow(
                f"""UPDATE api_keys SET revoked_at_us = coalesce(revoked_at_us, $3)
                    WHERE key_id = $1 AND user_id = $2 RETURNING {_KEY_COLUMNS}""",
                key_id,
                user_id,
                self._clock(),
            )
        if row is None:  # another user's key gets the same answer as a missing one
            raise NotFound(ErrorCode.KEY_NOT_FOUND, f"the user has no key {key_id}")
        return _api_key(row)

    async def lookup_api_key(self, public_key_b64: str) -> ApiKeyRecord:
        """The key with this public key (or HMAC API key), revoked or not: the caller decides
        what revoked means."""
        if HMAC_API_KEY(public_key_b64):
            public_key = public_key_b64
        else:
            public_key = _canonical(_decode_public_key(public_key_b64))
        row = await self._db.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE public_key = $1", public_key
        )
        if row is None:
            raise NotFound(ErrorCode.KEY_NOT_FOUND, "no such API key")
        return _api_key(row)

    # ---- internals ----

    async def _insert_key(
        self,
        user_id: int,
        key: bytes | str,
        label: str,
        permissions: tuple[str, ...],
        ip_allowlist: tuple[str, ...],
        *,
        sealed_secret: bytes | None = None,
    ) -> ApiKeyRecord:
        """An ED25519 key (its raw bytes), or an HMAC key (its API key, with its secret)."""
        if not _valid_id(user_id):
            raise NotFound(ErrorCode.USER_NOT_FOUND, f"no user {user_id}")
        try:
            row = await self._db.fetchrow(
                f"""INSERT INTO api_keys (user_id, public_key, label, created_at_us,
                        permissions, ip_allowlist, kind, sealed_secret)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_KEY_COLUMNS}""",
                user_id,
                key if isinstance(key, str) else _canonical(key),
                label,
                self._clock(),
                list(permissions),
                list(ip_allowlist),
                "ed25519" if sealed_secret is None else "hmac",
                sealed_secret,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(ErrorCode.USER_NOT_FOUND, f"no user {user_id}") from None
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(ErrorCode.KEY_EXISTS, "this key is already registered") from None
        assert row is not None
        return _api_key(row)

    async def _hash(self, password: str) -> str:
        async with self._hash_slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._hash_slots:
            return await asyncio.to_thread(_verify, self._hasher, password_hash, password)

    async def _spare_hash(self) -> str:
        """A hash of nothing anyone knows, made with the current parameters, for timing."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(24))
        return self._dummy_hash


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except VerificationError:  # a mismatch; a corrupt stored hash still raises
        return False


def _user(row: asyncpg.Record) -> UserRecord:
    return UserRecord(UserId(row["user_id"]), row["email"], row["created_at_us"])


def _api_key(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=KeyId(row["key_id"]),
        user_id=UserId(row["user_id"]),
        public_key=row["public_key"],
        label=row["label"],
        created_at_us=row["created_at_us"],
        revoked_at_us=row["revoked_at_us"],
        permissions=tuple(row["permissions"]),
        ip_allowlist=tuple(row["ip_allowlist"]),
        kind=row["kind"],
        sealed_secret=row["sealed_secret"] or b"",
    )


def _valid_id(value: int) -> bool:
    return 0 < value <= _MAX_BIGINT


def _valid_email(email: str) -> bool:
    # isprintable() also turns away control characters (PostgreSQL refuses NUL in text)
    # and lone surrogates (not encodable).
    return (
        len(email) <= MAX_EMAIL_CHARS
        and email.isprintable()
        and _EMAIL.fullmatch(email) is not None
    )


def _checked_email(email: str) -> str:
    email = email.strip()
    if not _valid_email(email):
        raise InvalidArgument(
            ErrorCode.INVALID_EMAIL,
            f"email must be name@domain, printable, at most {MAX_EMAIL_CHARS} characters",
        )
    return email


def _hashable_password(password: str) -> bool:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        return False
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidArgument(
            ErrorCode.WEAK_PASSWORD, f"password must have at least {MIN_PASSWORD_CHARS} characters"
        )
    if not _hashable_password(password):
        raise InvalidArgument(
            ErrorCode.INVALID_PASSWORD,
            f"password must be valid text of at most {MAX_PASSWORD_CHARS} characters",
        )


def _checked_label(label: str) -> str:
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise InvalidArgument(
            ErrorCode.INVALID_LABEL,
            f"label must be printable and at most {MAX_LABEL_CHARS} characters",
        )
    return label


def _checked_permissions(permissions: Sequence[str]) -> tuple[str, ...]:
    """Known names only, each once, sorted; none given means the defaults."""
    unknown = [p for p in permissions if p not in PERMISSIONS]
    if unknown:
        raise InvalidArgument(
            ErrorCode.INVALID_PERMISSION,
            f"unknown permission {unknown[0][:32]!r}; known: {', '.join(PERMISSIONS)}",
        )
    return tuple(sorted(set(permissions))) if permissions else DEFAULT_PERMISSIONS


def _checked_allowlist(entries: Sequence[str]) -> tuple[str, ...]:
    """CIDR networks (an address alone is its /32 or /128) in canonical form, each once."""
    if len(entries) > MAX_ALLOWLIST_ENTRIES:
        raise InvalidArgument(
            ErrorCode.INVALID_IP_ALLOWLIST, f"at most {MAX_ALLOWLIST_ENTRIES} allowlist entries"
        )
    networks: list[str] = []
    for entry in entries:
        try:
            # strict: "203.0.113.7/24" is refused, since the caller meant something else.
            network = str(ipaddress.ip_network(entry.strip(), strict=True))
        except ValueError:
            raise InvalidArgument(
                ErrorCode.INVALID_IP_ALLOWLIST,
                f"{entry[:64]!r} is not an IPv4 or IPv6 network such as 203.0.113.0/24",
            ) from None
        if network not in networks:
            networks.append(network)
    return tuple(networks)


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def _decode_public_key(text: str) -> bytes:
    """The 32 bytes of a base64 key; standard or URL-safe alphabet, padding optional."""
    refused = InvalidArgument(
        ErrorCode.INVALID_PUBLIC_KEY, "public_key must be base64 of a 32-byte ED25519 public key"
    )
    text = text.strip()
    if len(text) > 64:
        raise refused
    text = text.translate(_URLSAFE_TO_STANDARD).rstrip("=")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise refused from None
    if len(raw) != 32:
        raise refused
    return raw


def _canonical(raw: bytes) -> str:
    """One spelling per key, so that uniqueness and look-ups cannot be dodged by re-encoding."""
    return base64.b64encode(raw).decode("ascii")


# ED25519 point checks (RFC 8032, 5.1.3). cryptography accepts any 32 bytes as a public key,
# including the identity point, for which (R = identity, S = 0) verifies for every message:
# anyone could then sign as that key. Keys of small order, and bytes that are no point at all,
# are refused at registration.
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _is_safe_ed25519_point(raw: bytes) -> bool:
    encoded = int.from_bytes(raw, "little")
    sign, y = encoded >> 255, encoded & ((1 << 255) - 1)
    if y >= _P:
        return False  # a non-canonical encoding
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        if (v * x * x + u) % _P != 0:
            return False  # y is on no point of the curve
        x = x * _SQRT_M1 % _P
    if x == 0 and sign:
        return False
    # Small order means [8]P is the identity (0, 1); three doublings tell.
    for _ in range(3):
        xy = x * y % _P
        t = _D * xy * xy % _P
        x, y = (
            2 * xy * pow(1 + t, -1, _P) % _P,
            (y * y + x * x) * pow(1 - t, -1, _P) % _P,
        )
    return not (x == 0 and y == 1)

"""Users and API keys against a real PostgreSQL: alice signs up, logs in, and manages keys."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import Literal

import asyncpg
import pytest
from argon2 import PasswordHasher, Type
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger_svc.migrate import migrate
from ledger_svc.users import (
    AlreadyExists,
    ApiKeyRecord,
    ErrorCode,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    UserError,
    UserStore,
)

PASSWORD = "correct horse battery"
T0 = 1_700_000_000_000_000


def cheap_hasher(time_cost: int = 1) -> PasswordHasher:
    """Argon2id at a cost tests can afford; production uses argon2-cffi's defaults."""
    return PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


class Clock:
    """Microseconds that advance by one millisecond per reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        self.now += 1000
        return self.now


class CountingHasher(PasswordHasher):
    """Records which threads hashed and verified, to prove the event loop's is spared."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0
        self.threads: set[int] = set()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.add(threading.get_ident())
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        self.threads.add(threading.get_ident())
        return super().verify(hash, password)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, use_timescale=False)
    finally:
        await conn.close()
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(pool: asyncpg.Pool, clock: Clock) -> UserStore:
    return UserStore(pool, hasher=cheap_hasher(), clock=clock)


def new_public_key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return base64.b64encode(raw).decode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def refused(excinfo: pytest.ExceptionInfo[UserError], cls: type[UserError], code: str) -> None:
    assert type(excinfo.value) is cls
    assert excinfo.value.code == code


# ---- sign-up and log-in ----


async def test_alice_signs_up_and_logs_in_whatever_the_case_of_her_email(
    store: UserStore,
) -> None:
    alice = await store.create_user("  Alice@Example.com ", PASSWORD)
    assert alice.user_id > 0
    assert alice.email == "Alice@Example.com"  # stripped, case kept
    assert alice.created_at_us == T0 + 1000

    assert await store.authenticate("alice@example.COM", PASSWORD) == alice
    assert await store.authenticate(" Alice@Example.com", PASSWORD) == alice
    assert await store.get_user(alice.user_id) == alice


async def test_only_an_argon2id_hash_of_the_password_is_stored(
    store: UserStore, pool: asyncpg.Pool
) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    stored = await pool.fetchval(
        "SELECT password_hash FROM users WHERE user_id = $1", alice.user_id
    )
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert PASSWORD not in stored
    assert cheap_hasher().verify(stored, PASSWORD)
    bob = await store.create_user("bob@example.com", PASSWORD)
    stored_bob = await pool.fetchval(
        "SELECT password_hash FROM users WHERE user_id = $1", bob.user_id
    )
    assert stored_bob != stored  # salted


async def test_an_email_is_taken_whatever_its_case(store: UserStore, pool: asyncpg.Pool) -> None:
    await store.create_user("alice@example.com", PASSWORD)
    with pytest.raises(AlreadyExists) as excinfo:
        await store.create_user(" ALICE@example.COM", "another password")
    refused(excinfo, AlreadyExists, "EMAIL_TAKEN")
    assert await pool.fetchval("SELECT count(*) FROM users") == 1
    assert await store.authenticate("alice@example.com", PASSWORD)


async def test_two_racing_sign_ups_for_one_email_let_exactly_one_win(store: UserStore) -> None:
    results = await asyncio.gather(
        *(store.create_user(email, PASSWORD) for email in ["bob@x.io", "BOB@x.io", "Bob@X.io"]),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 2
    assert all(isinstance(e, AlreadyExists) and e.code == "EMAIL_TAKEN" for e in errors)


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "a@b@example.com",
        "al ice@example.com",
        "alice@exam\tple.com",
        "alice@exa\x00mple.com",
        "alice\ud800@example.com",
        "a" * 243 + "@example.com",  # 255 characters
    ],
)
async def test_a_malformed_email_is_refused(
    store: UserStore, pool: asyncpg.Pool, email: str
) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        await store.create_user(email, PASSWORD)
    refused(excinfo, InvalidArgument, "INVALID_EMAIL")
    assert await pool.fetchval("SELECT count(*) FROM users") == 0


async def test_an_email_of_254_characters_is_accepted(store: UserStore) -> None:
    email = "a" * 242 + "@example.com"
    assert len(email) == 254
    assert (await store.create_user(email, PASSWORD)).email == email


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("", "WEAK_PASSWORD"),
        ("1234567", "WEAK_PASSWORD"),
        ("x" * 257, "INVALID_PASSWORD"),
        ("\ud800" * 8, "INVALID_PASSWORD"),
    ],
)
async def test_a_short_long_or_unencodable_password_is_refused(
    store: UserStore, pool: asyncpg.Pool, password: str, code: str
) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        await store.create_user("alice@example.com", password)
    refused(excinfo, InvalidArgument, code)
    assert await pool.fetchval("SELECT count(*) FROM users") == 0


@pytest.mark.parametrize("password", ["12345678", "p" * 256, "pässwörd ✓ 🔑"])
async def test_passwords_from_8_to_256_characters_work(store: UserStore, password: str) -> None:
    alice = await store.create_user("alice@example.com", password)
    assert await store.authenticate("alice@example.com", password) == alice


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("alice@example.com", "wrong password"),
        ("alice@example.com", PASSWORD.upper()),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("alice@example.com", "short"),
        ("alice@example.com", "x" * 10_000),
        ("alice@example.com", "\ud800" * 8),
    ],
)
async def test_every_failed_log_in_gets_the_same_answer(
    store: UserStore, email: str, password: str
) -> None:
    await store.create_user("alice@example.com", PASSWORD)
    with pytest.raises(Unauthenticated) as excinfo:
        await store.authenticate(email, password)
    refused(excinfo, Unauthenticated, "BAD_CREDENTIALS")
    assert str(excinfo.value) == "wrong email or password"


async def test_an_unknown_email_costs_a_hash_verification_like_a_known_one(
    pool: asyncpg.Pool,
) -> None:
    hasher = CountingHasher()
    store = UserStore(pool, hasher=hasher)
    await store.create_user("alice@example.com", PASSWORD)
    for email in ["alice@example.com", "nobody@example.com", "nobody@example.com"]:
        before = hasher.verified
        with pytest.raises(Unauthenticated):
            await store.authenticate(email, "wrong password")
        assert hasher.verified == before + 1


async def test_hashing_and_verifying_run_off_the_event_loop_thread(pool: asyncpg.Pool) -> None:
    hasher = CountingHasher()
    store = UserStore(pool, hasher=hasher)
    await store.create_user("alice@example.com", PASSWORD)
    await store.authenticate("alice@example.com", PASSWORD)
    assert hasher.threads
    assert threading.get_ident() not in hasher.threads


async def test_a_hash_with_old_parameters_is_upgraded_at_log_in(
    store: UserStore, pool: asyncpg.Pool
) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    query = "SELECT password_hash FROM users WHERE user_id = $1"
    old = await pool.fetchval(query, alice.user_id)

    same = await store.authenticate("alice@example.com", PASSWORD)
    assert await pool.fetchval(query, alice.user_id) == old  # nothing to upgrade

    upgraded = UserStore(pool, hasher=cheap_hasher(time_cost=2))
    with pytest.raises(Unauthenticated):
        await upgraded.authenticate("alice@example.com", "wrong password")
    assert await pool.fetchval(query, alice.user_id) == old  # never on a failed log-in

    assert await upgraded.authenticate("alice@example.com", PASSWORD) == same == alice
    new = await pool.fetchval(query, alice.user_id)
    assert new.startswith("$argon2id$v=19$m=8,t=2,p=1$")
    assert await upgraded.authenticate("alice@example.com", PASSWORD) == alice
    assert await pool.fetchval(query, alice.user_id) == new


async def test_only_argon2id_is_accepted_as_the_hasher(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="Argon2id"):
        UserStore(pool, hasher=PasswordHasher(type=Type.I))


async def test_a_single_connection_works_as_well_as_a_pool(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, use_timescale=False)
        store = UserStore(conn, hasher=cheap_hasher())
        alice = await store.create_user("alice@example.com", PASSWORD)
        assert await store.authenticate("alice@example.com", PASSWORD) == alice
    finally:
        await conn.close()


@pytest.mark.parametrize("user_id", [0, -1, 2**64 - 1, 12345])
async def test_get_user_of_no_such_user(store: UserStore, user_id: int) -> None:
    with pytest.raises(NotFound) as excinfo:
        await store.get_user(user_id)
    refused(excinfo, NotFound, "USER_NOT_FOUND")


# ---- API keys ----


async def test_alice_registers_her_public_key(store: UserStore, clock: Clock) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    public_key = new_public_key()
    key = await store.register_api_key(alice.user_id, public_key, "trading bot")
    assert key == ApiKeyRecord(
        key_id=key.key_id,
        user_id=alice.user_id,
        public_key=public_key,
        label="trading bot",
        created_at_us=clock.now,
        revoked_at_us=None,
    )
    assert key.active
    assert await store.lookup_api_key(public_key) == key
    assert await store.list_api_keys(alice.user_id) == [key]


async def test_a_key_is_stored_in_one_canonical_spelling(store: UserStore) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    canonical = b64(raw)
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    key = await store.register_api_key(alice.user_id, f" {urlsafe}\n", "")
    assert key.public_key == canonical
    assert await store.lookup_api_key(canonical) == key
    assert await store.lookup_api_key(urlsafe) == key

    # 32 bytes leave two spare bits in the last base64 digit; setting them changes the text,
    # not the key, and must not make it a different key.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(canonical[42])
    assert last & 3 == 0
    spare_bits_set = canonical[:42] + alphabet[last | 1] + "="
    assert spare_bits_set != canonical
    assert await store.lookup_api_key(spare_bits_set) == key
    with pytest.raises(AlreadyExists) as excinfo:
        await store.register_api_key(alice.user_id, spare_bits_set, "")
    refused(excinfo, AlreadyExists, "KEY_EXISTS")


async def test_a_key_belongs_to_one_user_only(store: UserStore, pool: asyncpg.Pool) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    bob = await store.create_user("bob@example.com", PASSWORD)
    public_key = new_public_key()
    await store.register_api_key(alice.user_id, public_key, "mine")
    for user in (alice, bob):
        with pytest.raises(AlreadyExists) as excinfo:
            await store.register_api_key(user.user_id, public_key, "again")
        refused(excinfo, AlreadyExists, "KEY_EXISTS")
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 1


@pytest.mark.parametrize("user_id", [0, -5, 2**63, 2**64 - 1, 999])
async def test_keys_of_no_such_user_are_refused(store: UserStore, user_id: int) -> None:
    with pytest.raises(NotFound) as excinfo:
        await store.register_api_key(user_id, new_public_key(), "")
    refused(excinfo, NotFound, "USER_NOT_FOUND")
    with pytest.raises(NotFound) as excinfo:
        await store.generate_api_key(user_id, "")
    refused(excinfo, NotFound, "USER_NOT_FOUND")


P = 2**255 - 19


def point(y: int, sign: int = 0) -> str:
    return b64((y | sign << 255).to_bytes(32, "little"))


@pytest.mark.parametrize(
    "public_key",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64 at all!", id="not-base64"),
        pytest.param(b64(bytes(31)), id="31-bytes"),
        pytest.param(b64(bytes(33)), id="33-bytes"),
        pytest.param(b64(bytes(64)), id="64-bytes"),
        pytest.param("A" * 1000, id="huge"),
        pytest.param("AAAAé" + "A" * 38, id="non-ascii"),
        pytest.param(b64(bytes(32))[:-1] + "==", id="bad-padding"),
        # Small-order points, for which forged signatures verify.
        pytest.param(point(1), id="identity"),
        pytest.param(point(P - 1), id="order-2"),
        pytest.param(point(0), id="order-4"),
        pytest.param(point(0, sign=1), id="order-4-other"),
        pytest.param(
            b64(bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")),
            id="order-8",
        ),
        pytest.param(
            b64(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85")),
            id="order-8-other",
        ),
        pytest.param(point(1, sign=1), id="x-zero-with-sign"),
        pytest.param(point(P + 1), id="non-canonical-y"),
        pytest.param(point(2), id="not-on-curve"),
    ],
)
async def test_what_is_not_a_usable_ed25519_public_key_is_refused(
    store: UserStore, pool: asyncpg.Pool, public_key: str
) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    with pytest.raises(InvalidArgument) as excinfo:
        await store.register_api_key(alice.user_id, public_key, "")
    refused(excinfo, InvalidArgument, "INVALID_PUBLIC_KEY")
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 0


@pytest.mark.parametrize("label", ["x" * 65, "tab\there", "nul\x00", "\ud800"])
async def test_a_bad_label_is_refused(store: UserStore, pool: asyncpg.Pool, label: str) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    with pytest.raises(InvalidArgument) as excinfo:
        await store.register_api_key(alice.user_id, new_public_key(), label)
    refused(excinfo, InvalidArgument, "INVALID_LABEL")
    with pytest.raises(InvalidArgument) as excinfo:
        await store.generate_api_key(alice.user_id, label)
    refused(excinfo, InvalidArgument, "INVALID_LABEL")
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 0


async def test_a_label_of_64_characters_is_accepted(store: UserStore) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    key = await store.register_api_key(alice.user_id, new_public_key(), "é" * 64)
    assert key.label == "é" * 64


async def test_a_generated_secret_signs_what_the_stored_public_key_verifies(
    store: UserStore, pool: asyncpg.Pool
) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    key, secret = await store.generate_api_key(alice.user_id, "generated")
    assert key.user_id == alice.user_id
    assert key.label == "generated"
    assert key.active

    seed = base64.b64decode(secret, validate=True)
    assert len(seed) == 32
    message = b"instruction=orderExecute&price=1600&quantity=7&side=Ask&timestamp=1&window=5000"
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(message)
    stored = await store.lookup_api_key(key.public_key)
    assert stored == key
    Ed25519PublicKey.from_public_bytes(base64.b64decode(stored.public_key)).verify(
        signature, message
    )

    row = await pool.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key.key_id)
    assert row is not None
    assert not any(secret in str(value) for value in row.values())


async def test_every_generated_key_is_new(store: UserStore) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    generated = [await store.generate_api_key(alice.user_id, "") for _ in range(3)]
    assert len({key.public_key for key, _ in generated}) == 3
    assert len({secret for _, secret in generated}) == 3


async def test_each_user_lists_only_their_own_keys_oldest_first(store: UserStore) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    bob = await store.create_user("bob@example.com", PASSWORD)
    first = await store.register_api_key(alice.user_id, new_public_key(), "first")
    bobs, _ = await store.generate_api_key(bob.user_id, "bob's")
    second, _ = await store.generate_api_key(alice.user_id, "second")
    revoked = await store.revoke_api_key(alice.user_id, first.key_id)

    assert await store.list_api_keys(alice.user_id) == [revoked, second]
    assert await store.list_api_keys(bob.user_id) == [bobs]
    for nobody in (0, -1, 2**64 - 1, 999):
        assert await store.list_api_keys(nobody) == []


async def test_a_revoked_key_shows_when_it_was_first_revoked(
    store: UserStore, clock: Clock
) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    key = await store.register_api_key(alice.user_id, new_public_key(), "bot")

    revoked = await store.revoke_api_key(alice.user_id, key.key_id)
    assert revoked.revoked_at_us == clock.now
    assert revoked.created_at_us == key.created_at_us < clock.now
    assert not revoked.active
    assert revoked == dataclasses.replace(key, revoked_at_us=clock.now)

    again = await store.revoke_api_key(alice.user_id, key.key_id)
    assert again == revoked
    assert again.revoked_at_us is not None
    assert again.revoked_at_us < clock.now  # the clock moved on, the revocation did not
    assert await store.lookup_api_key(key.public_key) == revoked
    assert await store.list_api_keys(alice.user_id) == [revoked]


async def test_nobody_revokes_another_users_key(store: UserStore) -> None:
    alice = await store.create_user("alice@example.com", PASSWORD)
    bob = await store.create_user("bob@example.com", PASSWORD)
    key = await store.register_api_key(alice.user_id, new_public_key(), "")
    for user_id, key_id in [
        (bob.user_id, key.key_id),
        (alice.user_id, key.key_id + 1000),
        (alice.user_id, 0),
        (alice.user_id, 2**64 - 1),
        (0, key.key_id),
        (2**63, key.key_id),
    ]:
        with pytest.raises(NotFound) as excinfo:
            await store.revoke_api_key(user_id, key_id)
        refused(excinfo, NotFound, "KEY_NOT_FOUND")
    assert (await store.lookup_api_key(key.public_key)).active


async def test_looking_up_an_unknown_or_malformed_key(store: UserStore) -> None:
    with pytest.raises(NotFound) as not_found:
        await store.lookup_api_key(new_public_key())
    refused(not_found, NotFound, "KEY_NOT_FOUND")
    with pytest.raises(InvalidArgument) as malformed:
        await store.lookup_api_key("nope")
    refused(malformed, InvalidArgument, "INVALID_PUBLIC_KEY")


def test_error_codes_are_stable_strings() -> None:
    assert {code.value for code in ErrorCode} == {
        "INVALID_EMAIL",
        "WEAK_PASSWORD",
        "INVALID_PASSWORD",
        "EMAIL_TAKEN",
        "BAD_CREDENTIALS",
        "INVALID_PUBLIC_KEY",
        "INVALID_LABEL",
        "KEY_EXISTS",
        "KEY_NOT_FOUND",
        "USER_NOT_FOUND",
        "INVALID_PERMISSION",
        "INVALID_IP_ALLOWLIST",
    }
    error = NotFound(ErrorCode.KEY_NOT_FOUND, "gone")
    assert error.code == "KEY_NOT_FOUND"
    assert isinstance(error, UserError)
    assert str(error) == "gone"

"""Authorization, case by case, against the real stack: an attacker with an account of her
own tries to read, cancel or act as a victim who has a resting order, a fill, history and an
API key. Every case asserts the exact status and stable code, and that the victim's balances
and open orders are unchanged (and the engine's state hash, where nothing else may change);
each is filed as pass or fail under "authorization" in the abuse report.

The engine here requires its admin credential, as in production (tests/admin's fixture), so
the internal RPC cases run against the same stack; the gateway holds the credential for the
faucet.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.engine.v1 import engine_pb2 as epb
from servicekit.admin_token import admin_metadata
from tests.abuse.rest import state_hash
from tests.abuse.tally import TALLY
from tests.admin.conftest import TOKEN, engine
from tests.admin.test_admin_auth import ADMIN_CALLS
from tests.deploy.manifests import OVERLAYS, name_of, of_kind, pod_spec, render, workloads
from tests.deploy.test_policy import admits
from tests.gateway.conftest import SECRET, Stack
from tests.gateway.signing import signed_headers
from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.stream.test_ws import next_json, subscribe

__all__ = ["engine"]  # the engine that requires its admin credential, for every test here

MARKET = "TATA_INR"
Headers = dict[str, str]


@pytest.fixture
async def stack(stack_factory: Callable[..., Awaitable[Stack]]) -> Stack:
    return await stack_factory(engine_admin_token=TOKEN)


@dataclass
class Scene:
    stack: Stack
    victim: int
    victim_auth: Headers
    victim_secret: str  # the victim's API key secret
    victim_order: str  # resting, partly filled
    attacker: int
    attacker_auth: Headers
    attacker_order: str  # resting
    attacker_fill_order: str  # the attacker's order that traded with the victim's

    async def send(self, method: str, path: str, headers: Headers, body: Any = None) -> Any:
        return await self.stack.client.request(method, path, json=body, headers=headers)


async def funded(stack: Stack, email: str) -> tuple[int, Headers]:
    user, auth = await signup(stack, email)
    for asset, amount in (("INR", "100000"), ("TATA", "1000")):
        await fund(stack, auth, asset, amount)
    return user, auth


async def placed(stack: Stack, auth: Headers, side: str, price: str, quantity: str) -> Any:
    order = {"symbol": MARKET, "side": side, "price": price, "quantity": quantity}
    response = await stack.client.post("/api/v1/order", json=order, headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


async def api_key(stack: Stack, auth: Headers) -> dict[str, str]:
    response = await stack.client.post("/api/v1/auth/apikeys", json={}, headers=auth)
    assert response.status == 201, await response.text()
    created: dict[str, str] = await response.json()
    return created


@pytest.fixture
async def scene(stack: Stack) -> Scene:
    """The victim sells 2 at 1600; the attacker buys 1 of them and bids 1 at 1000."""
    victim, victim_auth = await funded(stack, "victim@example.test")
    attacker, attacker_auth = await funded(stack, "attacker@example.test")
    victim_order = await placed(stack, victim_auth, "Ask", "1600", "2")
    taken = await placed(stack, attacker_auth, "Bid", "1600", "1")
    assert taken["executedQty"] == "1"
    resting = await placed(stack, attacker_auth, "Bid", "1000", "1")
    victim_key = await api_key(stack, victim_auth)
    await stack.caught_up()
    return Scene(
        stack, victim, victim_auth, victim_key["secret"], victim_order["orderId"],
        attacker, attacker_auth, resting["orderId"], taken["orderId"],
    )  # fmt: skip


async def victim_state(scene: Scene) -> tuple[list[tuple[str, str, str]], list[tuple[int, str]]]:
    """The victim's balances and open orders, read from the engine."""
    stub = scene.stack.engine.stub
    balances = await stub.GetBalances(epb.GetBalancesRequest(user_id=scene.victim))
    orders = await stub.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=scene.victim))
    return (
        sorted((b.asset, b.available, b.locked) for b in balances.balances),
        sorted((o.order_id, o.executed_quantity) for o in orders.orders),
    )


@asynccontextmanager
async def untouched(scene: Scene, *, engine_state: bool = True) -> AsyncIterator[None]:
    """The victim's state (and with `engine_state` the whole engine's) is the same after."""
    before = await victim_state(scene)
    hash_before = await state_hash(scene.stack)
    yield
    assert await victim_state(scene) == before, "the victim's balances or orders changed"
    if engine_state:
        assert await state_hash(scene.stack) == hash_before, "the engine's state changed"


async def refused(response: Any, status: int, code: str) -> None:
    body = await response.json()
    assert (response.status, body["code"], body["error"]["code"]) == (status, code, code), body


# --- another user's orders (the attacker is authenticated as herself) ---


async def read_by_id(s: Scene) -> None:
    async with untouched(s):
        answer = await s.send("GET", f"/api/v1/order?orderId={s.victim_order}", s.attacker_auth)
        await refused(answer, 404, "RESOURCE_NOT_FOUND")
        by_market = f"/api/v1/order?orderId={s.victim_order}&symbol={MARKET}"
        await refused(await s.send("GET", by_market, s.attacker_auth), 404, "RESOURCE_NOT_FOUND")


async def cancel_by_id(s: Scene) -> None:
    async with untouched(s):
        body = {"orderId": s.victim_order, "symbol": MARKET}
        answer = await s.send("DELETE", "/api/v1/order", s.attacker_auth, body)
        await refused(answer, 404, "RESOURCE_NOT_FOUND")


async def cancel_all_spares_others(s: Scene) -> None:
    async with untouched(s, engine_state=False):  # the attacker's own order is cancelled
        answer = await s.send("DELETE", "/api/v1/orders", s.attacker_auth, {"symbol": MARKET})
        assert answer.status == 200, await answer.text()
        cancelled = await answer.json()
        assert [(o["orderId"], o["userId"]) for o in cancelled] == [
            (s.attacker_order, str(s.attacker))
        ]


async def open_orders_only_own(s: Scene) -> None:
    async with untouched(s):
        for path in ("/api/v1/orders", "/api/v1/openOrders", f"/api/v1/orders?symbol={MARKET}"):
            answer = await s.send("GET", path, s.attacker_auth)
            assert answer.status == 200
            assert [o["orderId"] for o in await answer.json()] == [s.attacker_order], path


async def history_only_own(s: Scene) -> None:
    async with untouched(s):
        answer = await s.send("GET", "/wapi/v1/history/orders", s.attacker_auth)
        assert answer.status == 200
        seen = {o["orderId"] for o in await answer.json()}
        assert seen == {s.attacker_order, s.attacker_fill_order}
        by_id = await s.send("GET", f"/wapi/v1/history/orders?orderId={s.victim_order}",
                             s.attacker_auth)  # fmt: skip
        assert (by_id.status, await by_id.json()) == (200, [])


async def fills_only_own(s: Scene) -> None:
    async with untouched(s):
        answer = await s.send("GET", "/wapi/v1/history/fills", s.attacker_auth)
        assert answer.status == 200
        fills = await answer.json()
        assert [(f["orderId"], f["side"]) for f in fills] == [(s.attacker_fill_order, "Bid")]
        by_id = await s.send("GET", f"/wapi/v1/history/fills?orderId={s.victim_order}",
                             s.attacker_auth)  # fmt: skip
        assert (by_id.status, await by_id.json()) == (200, [])


async def user_id_of_another(s: Scene) -> None:
    async with untouched(s):
        answer = await s.send("DELETE", "/api/v1/orders", s.attacker_auth,
                              {"symbol": MARKET, "userId": s.victim})  # fmt: skip
        await refused(answer, 403, "FORBIDDEN")
        answer = await s.send("GET", f"/api/v1/capital?userId={s.victim}", s.attacker_auth)
        await refused(answer, 403, "FORBIDDEN")


# --- another user's deposits and withdrawals ---

OUT = "0x" + "0b" * 20


async def victim_withdrew(s: Scene) -> Any:
    """The victim takes USDT from the faucet and asks to withdraw some of it."""
    await fund(s.stack, s.victim_auth, "USDT", "100")
    body = {"symbol": "USDT", "blockchain": "Ethereum", "quantity": "10", "address": OUT,
            "clientId": 77}  # fmt: skip
    answer = await s.send("POST", "/wapi/v1/capital/withdrawals", s.victim_auth, body)
    assert answer.status == 200, await answer.text()
    return await answer.json()


async def capital_only_own(s: Scene) -> None:
    paths = ("/wapi/v1/capital/withdrawals", "/api/v1/capital/withdrawals",
             "/wapi/v1/capital/deposits")  # fmt: skip
    # The attacker's own onramp credits are deposits too: its lists must not change.
    before = [await (await s.send("GET", path, s.attacker_auth)).json() for path in paths]
    await victim_withdrew(s)
    async with untouched(s):
        for path, own in zip(paths, before, strict=True):
            answer = await s.send("GET", path, s.attacker_auth)
            assert (answer.status, await answer.json()) == (200, own), path
        assert before[:2] == [[], []]
        for path in ("/wapi/v1/capital/withdrawals", "/wapi/v1/capital/deposits",
                     "/wapi/v1/capital/deposit/address?blockchain=Ethereum",
                     "/api/v1/account/limits/withdrawal?symbol=USDT"):  # fmt: skip
            joiner = "&" if "?" in path else "?"
            answer = await s.send("GET", f"{path}{joiner}userId={s.victim}", s.attacker_auth)
            await refused(answer, 403, "FORBIDDEN")


async def withdraw_as_another(s: Scene) -> None:
    """The attacker asks to withdraw the victim's funds: by userId, by a retry of the
    victim's clientId, and with the victim's key signing another body."""
    await victim_withdrew(s)
    body = {"symbol": "USDT", "blockchain": "Ethereum", "quantity": "10", "address": OUT}
    async with untouched(s):
        answer = await s.send("POST", "/wapi/v1/capital/withdrawals", s.attacker_auth,
                              {**body, "userId": s.victim})  # fmt: skip
        await refused(answer, 403, "FORBIDDEN")
        answer = await s.send("POST", "/wapi/v1/capital/withdrawals", s.attacker_auth,
                              {**body, "clientId": 77})  # fmt: skip
        await refused(answer, 400, "INSUFFICIENT_FUNDS")  # her own, empty, account
        signed = victim_signed(s, "withdraw", params={**body, "quantity": "1"})
        answer = await s.send("POST", "/wapi/v1/capital/withdrawals", signed, body)
        await refused(answer, 401, "INVALID_SIGNATURE")


# --- signatures: each tries to cancel all of the victim's orders ---

CANCEL_ALL = {"symbol": MARKET}


def victim_signed(s: Scene, instruction: str = "orderCancelAll", **kwargs: Any) -> Headers:
    params = kwargs.pop("params", CANCEL_ALL)
    return signed_headers(s.victim_secret, instruction, params, **kwargs)


async def cancel_all_signed(s: Scene, headers: Headers, status: int, code: str) -> None:
    async with untouched(s):
        answer = await s.send("DELETE", "/api/v1/orders", headers, CANCEL_ALL)
        await refused(answer, status, code)


def new_secret() -> str:
    """A fresh ED25519 key's secret, registered nowhere."""
    return base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()


async def forged_signature(s: Scene) -> None:
    """The victim's key, signed with another key."""
    forged = signed_headers(new_secret(), "orderCancelAll", CANCEL_ALL)
    headers = {**forged, "X-API-Key": victim_signed(s)["X-API-Key"]}
    await cancel_all_signed(s, headers, 401, "INVALID_SIGNATURE")


async def signature_of_another_body(s: Scene) -> None:
    headers = victim_signed(s, params={"symbol": "BTC_USDT"})
    await cancel_all_signed(s, headers, 401, "INVALID_SIGNATURE")


async def signature_of_another_instruction(s: Scene) -> None:
    headers = victim_signed(s, "orderQueryAll")  # a read, replayed as a cancel-all
    await cancel_all_signed(s, headers, 401, "INVALID_SIGNATURE")


async def replayed_signature(s: Scene) -> None:
    """The victim's own order, sent again by whoever captured it."""
    order = {"symbol": MARKET, "side": "Ask", "price": "1700", "quantity": "1"}
    headers = victim_signed(s, "orderExecute", params=order)
    first = await s.send("POST", "/api/v1/order", headers, order)
    assert first.status == 200, await first.text()
    async with untouched(s):
        await refused(await s.send("POST", "/api/v1/order", headers, order),
                      401, "INVALID_SIGNATURE")  # fmt: skip


async def stale_timestamp(s: Scene) -> None:
    stale = victim_signed(s, timestamp_ms=int(time.time() * 1000) - 6_000, window_ms=5_000)
    await cancel_all_signed(s, stale, 401, "UNAUTHORIZED")


async def future_timestamp(s: Scene) -> None:
    future = victim_signed(s, timestamp_ms=int(time.time() * 1000) + 600_000, window_ms=5_000)
    await cancel_all_signed(s, future, 401, "UNAUTHORIZED")


async def window_over_60s(s: Scene) -> None:
    await cancel_all_signed(s, victim_signed(s, window_ms=60_001), 401, "UNAUTHORIZED")


async def revoked_key(s: Scene) -> None:
    second = await api_key(s.stack, s.victim_auth)
    revoked = await s.send("DELETE", "/api/v1/auth/apikeys", s.victim_auth,
                           {"keyId": second["keyId"]})  # fmt: skip
    assert revoked.status == 200, await revoked.text()
    headers = signed_headers(second["secret"], "orderCancelAll", CANCEL_ALL)
    await cancel_all_signed(s, headers, 401, "UNAUTHORIZED")


async def unknown_key(s: Scene) -> None:
    headers = signed_headers(new_secret(), "orderCancelAll", CANCEL_ALL)
    await cancel_all_signed(s, headers, 401, "UNAUTHORIZED")


# --- bearer tokens (HS256, claims sub/iat/exp): each tries the victim's cancel-all ---


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(user: int, *, age: int = 0, ttl: int = 3600) -> dict[str, Any]:
    now = int(time.time()) - age
    return {"sub": str(user), "iat": now, "exp": now + ttl}


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    parts = (json.dumps(header).encode(), json.dumps(payload).encode())
    return ".".join([*(b64url(p) for p in parts), signature])


async def cancel_all_as(s: Scene, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    await cancel_all_signed(s, headers, 401, "UNAUTHORIZED")


async def expired_token(s: Scene) -> None:
    token = jwt.encode(claims(s.victim, age=7200), SECRET, algorithm="HS256")
    await cancel_all_as(s, f"Bearer {token}")


async def tampered_payload(s: Scene) -> None:
    """The attacker's genuine token with its payload rewritten to name the victim."""
    own = s.attacker_auth["Authorization"].removeprefix("Bearer ")
    header, _, signature = own.split(".")
    payload = b64url(json.dumps(claims(s.victim)).encode())
    await cancel_all_as(s, f"Bearer {header}.{payload}.{signature}")


async def tampered_signature(s: Scene) -> None:
    token = jwt.encode(claims(s.victim), SECRET, algorithm="HS256")
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await cancel_all_as(s, f"Bearer {head}.{flipped}")


async def another_secret(s: Scene) -> None:
    token = jwt.encode(claims(s.victim), "another-secret-another-secret-0123", algorithm="HS256")
    await cancel_all_as(s, f"Bearer {token}")


async def alg_none(s: Scene) -> None:
    for alg in ("none", "None", "NONE"):
        await cancel_all_as(s, f"Bearer {unsigned({'alg': alg, 'typ': 'JWT'}, claims(s.victim))}")


async def alg_other_than_hs256(s: Scene) -> None:
    """The right secret under another algorithm: the gateway accepts HS256 only."""
    for alg in ("HS512", "HS384"):
        await cancel_all_as(s, f"Bearer {jwt.encode(claims(s.victim), SECRET, algorithm=alg)}")


async def missing_or_garbage_authorization(s: Scene) -> None:
    for value in (None, "", "Bearer", "Bearer ", "Bearer garbage", "Bearer a.b.c",
                  "Basic dmljdGltOnBhc3N3b3Jk", "bearer " + s.victim_auth["Authorization"][7:],
                  "Bearer " + "A" * 5000):  # fmt: skip
        await cancel_all_as(s, value)


REST_CASES: dict[str, Callable[[Scene], Awaitable[None]]] = {
    "orders: read another's order by id": read_by_id,
    "orders: cancel another's order by id": cancel_by_id,
    "orders: cancel-all leaves another's orders": cancel_all_spares_others,
    "orders: open orders list only own": open_orders_only_own,
    "orders: order history lists only own": history_only_own,
    "orders: fills list only own": fills_only_own,
    "orders: userId of another user": user_id_of_another,
    "capital: deposits, withdrawals and addresses only own": capital_only_own,
    "capital: withdraw another's funds": withdraw_as_another,
    "signature: forged (another key)": forged_signature,
    "signature: of another body": signature_of_another_body,
    "signature: of another instruction": signature_of_another_instruction,
    "signature: replayed": replayed_signature,
    "signature: stale timestamp": stale_timestamp,
    "signature: future timestamp": future_timestamp,
    "signature: window over 60 s": window_over_60s,
    "signature: revoked API key": revoked_key,
    "signature: unknown API key": unknown_key,
    "token: expired": expired_token,
    "token: tampered payload (userId)": tampered_payload,
    "token: tampered signature": tampered_signature,
    "token: signed with another secret": another_secret,
    "token: alg none": alg_none,
    "token: alg other than HS256": alg_other_than_hs256,
    "token: missing or garbage Authorization": missing_or_garbage_authorization,
}


@pytest.mark.parametrize("name", list(REST_CASES))
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 on purpose
async def test_rest(scene: Scene, name: str) -> None:
    with TALLY.case("authorization", name):
        await REST_CASES[name](scene)


# --- WebSocket private topics ---


@pytest.fixture
async def live_funded(stack_factory: Callable[..., Awaitable[Stack]], live: Live) -> Live:
    """`live`, through a gateway that holds the admin credential (for the faucet)."""
    stream = f"127.0.0.1:{live.stream_port}"
    stack = await stack_factory(engine_admin_token=TOKEN, stream_address=stream)
    return dataclasses.replace(live, stack=stack)


async def own_token_sees_only_own(live: Live, victim: Headers, attacker: Headers) -> None:
    """The attacker's own token subscribes to account.orderUpdate: the victim's next order
    does not reach her; her own next order is the first frame she gets."""
    token = attacker["Authorization"].removeprefix("Bearer ")
    async with aiohttp.ClientSession() as session, session.ws_connect(live.ws_url) as ws:
        assert await subscribe(ws, "account.orderUpdate", token=token) == {"id": 7, "result": None}
        victims = await placed(live.stack, victim, "Ask", "1950", "1")
        own = await placed(live.stack, attacker, "Bid", "900", "1")
        frame = await next_json(ws)
        assert frame["stream"] == "account.orderUpdate"
        assert frame["data"]["i"] == own["orderId"] != victims["orderId"]


WS_CASES = [
    "ws: no credentials",
    "ws: expired token",
    "ws: token of another secret",
    "ws: signature with another's key",
    "ws: own token sees only own orders",
]


@pytest.mark.parametrize("name", WS_CASES)
async def test_websocket(live_funded: Live, name: str) -> None:
    live = live_funded
    with TALLY.case("authorization", name):
        victim, victim_auth = await funded(live.stack, "ws-victim@example.test")
        _, attacker_auth = await funded(live.stack, "ws-attacker@example.test")
        await placed(live.stack, victim_auth, "Ask", "1900", "1")  # something to leak
        if name == "ws: own token sees only own orders":
            await own_token_sees_only_own(live, victim_auth, attacker_auth)
            return
        credentials: dict[str, Any] = {}
        if name == "ws: expired token":
            credentials["token"] = jwt.encode(claims(victim, age=7200), SECRET, algorithm="HS256")
        elif name == "ws: token of another secret":
            credentials["token"] = jwt.encode(claims(victim), "x" * 40, algorithm="HS256")
        elif name == "ws: signature with another's key":
            victim_key = await api_key(live.stack, victim_auth)
            signed = signed_headers(new_secret(), "subscribe")
            credentials["signature"] = [victim_key["publicKey"], signed["X-Signature"],
                                        signed["X-Timestamp"], signed["X-Window"]]  # fmt: skip
        before = await state_hash(live.stack)
        async with aiohttp.ClientSession() as session, session.ws_connect(live.ws_url) as ws:
            answer = await subscribe(ws, "account.orderUpdate", **credentials)
        assert (answer["error"]["code"], answer["error"]["name"]) == (4003, "UNAUTHORIZED")
        assert await state_hash(live.stack) == before


# --- internal RPCs and the manifests ---


@pytest.mark.parametrize(("method", "request_"), ADMIN_CALLS, ids=[m for m, _ in ADMIN_CALLS])
@pytest.mark.parametrize("credential", ["none", "wrong"])
async def test_engine_admin_rpcs(
    scene: Scene, method: str, request_: object, credential: str
) -> None:
    """tests/admin checks the denial itself; here on the whole stack, the victim's state and
    the engine's state hash are unchanged."""
    metadata = () if credential == "none" else admin_metadata(TOKEN[:-1] + "x")
    with TALLY.case("authorization", f"internal: engine {method}, {credential} credential"):
        async with untouched(scene):
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await getattr(scene.stack.engine.stub, method)(request_, metadata=metadata)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grpc_services_are_unreachable_from_outside(overlay: str) -> None:
    """Every gRPC port is closed to traffic from outside the namespace by the NetworkPolicies;
    no Service is exposed beyond the cluster, and the Ingress reaches the gateway only."""
    with TALLY.case(
        "authorization", f"internal: gRPC unreachable from outside ({overlay} manifests)"
    ):
        objects = render(overlay)
        grpc_ports = [
            (name_of(w), port)
            for w in workloads(objects)
            for c in pod_spec(w)["containers"]
            for port in c.get("ports", [])
            if port["name"] in ("grpc", "health", "probe")
        ]
        assert {name for name, _ in grpc_ports} >= {"engine", "ledger", "stream"}
        for name, port in grpc_ports:
            workload = next(w for w in workloads(objects) if name_of(w) == name)
            assert not admits(objects, None, workload, port), f"{name}:{port['name']} is open"
        for service in of_kind(objects, "Service"):
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name_of(service)
        backends = {
            path["backend"]["service"]["name"]
            for ingress in of_kind(objects, "Ingress")
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        }
        assert backends == {"gateway"}

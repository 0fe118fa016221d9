"""Capital endpoints: deposit addresses, deposits, withdrawals and withdrawal limits.

One handler per action, served at Backpack's paths (`/wapi/v1/capital/...`, what ccxt
calls) and at the spec's (`/api/v1/capital/...`). Both dialects' names are read: the
asset is `symbol` (Backpack) or `asset`, the network `blockchain` (Backpack) or `network`;
answers carry both. Every handler acts for the caller only: the engine is asked for the
authenticated user's records, never for a user the request names.

Statuses are Backpack's (`pending`, `confirmed`, `declined`, what ccxt maps); `stage` keeps
the engine's finer one (a withdrawal is `pending` while it waits for an operator and while
it waits for custody).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

from aiohttp import web

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from gateway_svc import audit
from gateway_svc.auth import Caller
from gateway_svc.context import backends, caller, params
from gateway_svc.dialect import MAX_CLIENT_ID, check_user, decimal_text, iso_ms, uint
from gateway_svc.errors import ApiError, bad_request, engine_error
from gateway_svc.fences import Scope, requires
from gateway_svc.respond import json_response

routes = web.RouteTableDef()

MAX_MS = (2**63 - 1) // 1000
MAX_LIST = 1000
MAX_ADDRESS = 128
_MEMO = re.compile(r"[ -~]{0,64}")  # printable ASCII, as the engine takes it
DAY_US = 86_400_000_000
_DEPOSIT_STATUS = {cpb.DEPOSIT_STATUS_PENDING: "pending", cpb.DEPOSIT_STATUS_CONFIRMED: "confirmed"}
_WITHDRAWAL_STATUS = {
    cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL: ("pending", "pendingApproval"),
    cpb.WITHDRAWAL_STATUS_APPROVED: ("pending", "approved"),
    cpb.WITHDRAWAL_STATUS_CONFIRMED: ("confirmed", "confirmed"),
    cpb.WITHDRAWAL_STATUS_DECLINED: ("declined", "declined"),
}
DEPOSIT_STATUSES = sorted(set(_DEPOSIT_STATUS.values()))
WITHDRAWAL_STATUSES = sorted({s for s, _ in _WITHDRAWAL_STATUS.values()})
WITHDRAWAL_STAGES = [stage for _, stage in _WITHDRAWAL_STATUS.values()]


# ---- reading requests -------------------------------------------------------------------


def _name(p: dict[str, Any], backpack: str, spec: str, *, required: bool) -> str:
    """Backpack's field, else the spec's; both are checked when both are given."""
    names = [_one_name(p, field) for field in (backpack, spec)]
    value = names[0] or names[1]
    if required and not value:
        raise bad_request(f"{backpack} (or {spec}) is required", field=backpack)
    return value


def _one_name(p: dict[str, Any], field: str) -> str:
    value = p.get(field)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 32:
        raise bad_request(f"{field} must be a name of at most 32 characters", field=field)
    return value


def asset_of(p: dict[str, Any], *, required: bool = True) -> str:
    return _name(p, "symbol", "asset", required=required)


def network_of(p: dict[str, Any], *, required: bool = True) -> str:
    return _name(p, "blockchain", "network", required=required)


def client_id_of(p: dict[str, Any]) -> int:
    """A withdrawal's clientId: a number, or a string of its digits (Backpack documents a
    string; ccxt sends its `tag` there). It names the request for retries, so it is digits
    or refused, never a memo (a memo is its own field, `memo`)."""
    try:
        return uint(p, "clientId", maximum=MAX_CLIENT_ID)
    except ApiError:
        raise bad_request(
            f"clientId must be a whole number from 0 to {MAX_CLIENT_ID} (or a string of its "
            "digits); a memo or tag goes in memo",
            field="clientId",
            reason="INVALID_CLIENT_ID",
        ) from None


def memo_of(p: dict[str, Any]) -> str:
    """A withdrawal's memo (a chain's memo or destination tag) for custody to send with it."""
    memo = p.get("memo", "")
    if not isinstance(memo, str) or not _MEMO.fullmatch(memo):
        raise bad_request(
            "memo must be a string of at most 64 printable ASCII characters", field="memo"
        )
    return memo


def _range(p: dict[str, Any], who: Caller) -> epb.ListCapitalRequest:
    """`from`, `to` (or `endTime`, what ccxt's fetchDeposits sends) in ms, limit, offset."""
    to_ms, end_ms = uint(p, "to", maximum=MAX_MS), uint(p, "endTime", maximum=MAX_MS)
    to_ms = to_ms or end_ms
    return epb.ListCapitalRequest(
        user_id=who.user_id,
        from_us=uint(p, "from", maximum=MAX_MS) * 1000,
        to_us=to_ms * 1000,
        limit=uint(p, "limit", maximum=MAX_LIST) or 100,
        offset=uint(p, "offset", maximum=2**31 - 1),
    )


async def _acting(request: web.Request, *, counted: bool = False) -> tuple[Caller, dict[str, Any]]:
    b = backends(request)
    who = await caller(request, b.order_rule if counted else None)
    p = await params(request)
    check_user(p, who.user_id)
    return who, p


# ---- writing answers --------------------------------------------------------------------


def token_json(n: cpb.Network) -> dict[str, Any]:
    """One network of an asset, as Backpack's `tokens` (what ccxt's fetchCurrencies reads)."""
    return {
        "blockchain": n.network,
        "contractAddress": None,
        "depositEnabled": n.deposit_enabled,
        "withdrawEnabled": n.withdraw_enabled,
        "minimumDeposit": "0",
        "minimumWithdrawal": n.min_withdrawal,
        "maximumWithdrawal": None if Decimal(n.max_withdrawal) == 0 else n.max_withdrawal,
        "withdrawalFee": n.withdrawal_fee,
        "depositConfirmations": n.confirmations,
        "approvalThreshold": None if Decimal(n.approval_threshold) == 0 else n.approval_threshold,
        "dailyLimit": None if Decimal(n.daily_limit) == 0 else n.daily_limit,
    }


def deposit_json(d: cpb.Deposit) -> dict[str, Any]:
    return {
        "id": f"{d.network}:{d.transaction_hash}",
        "symbol": d.asset,
        "asset": d.asset,
        "source": d.network.lower(),  # Backpack names a deposit's chain in lower case
        "blockchain": d.network,
        "network": d.network,
        "quantity": d.quantity,
        "status": _DEPOSIT_STATUS.get(d.status, "pending"),
        "confirmations": d.confirmations,
        "fromAddress": None,  # custody reports where funds arrived, not where from
        "toAddress": d.address,
        "transactionHash": d.transaction_hash,
        "createdAt": iso_ms(d.created_at_us),
        "updatedAt": iso_ms(d.updated_at_us),
    }


def withdrawal_json(w: cpb.Withdrawal) -> dict[str, Any]:
    status, stage = _WITHDRAWAL_STATUS.get(w.status, ("pending", "approved"))
    return {
        "id": w.withdrawal_id,
        "clientId": w.client_id or None,
        "memo": w.memo or None,
        "symbol": w.asset,
        "asset": w.asset,
        "blockchain": w.network,
        "network": w.network,
        "quantity": w.quantity,
        "fee": w.fee,
        "status": status,
        "stage": stage,
        "toAddress": w.address,
        "transactionHash": w.transaction_hash or None,
        "isInternal": False,
        "triggerAt": None,
        "createdAt": iso_ms(w.created_at_us),
        "updatedAt": iso_ms(w.updated_at_us),
    }


# ---- handlers ---------------------------------------------------------------------------


@routes.get("/wapi/v1/capital/deposit/address")
@routes.get("/api/v1/capital/deposit/address")
@requires(Scope.READ)
async def deposit_address(request: web.Request) -> web.Response:
    """The caller's address on a network: one per network, every asset on it arrives there
    (ccxt names only the network)."""
    who, p = await _acting(request)
    network, asset = network_of(p), asset_of(p, required=False)
    if not asset:
        on_it = [n for n in await backends(request).markets.networks() if n.network == network]
        enabled = [n for n in on_it if n.deposit_enabled] or on_it
        asset = enabled[0].asset if enabled else ""
    reply = await backends(request).engine.stub.GetDepositAddress(
        epb.GetDepositAddressRequest(user_id=who.user_id, asset=asset, network=network)
    )
    if reply.code:
        raise engine_error(reply.code, reply.message)
    return json_response({"address": reply.address, "blockchain": network, "network": network})


@routes.get("/wapi/v1/capital/deposits")
@routes.get("/api/v1/capital/deposits")
@requires(Scope.READ)
async def deposits(request: web.Request) -> web.Response:
    """The caller's deposits, newest first."""
    who, p = await _acting(request)
    reply = await backends(request).engine.stub.ListDeposits(_range(p, who))
    return json_response([deposit_json(d) for d in reply.deposits])


@routes.get("/wapi/v1/capital/withdrawals")
@routes.get("/api/v1/capital/withdrawals")
@requires(Scope.READ)
async def withdrawals(request: web.Request) -> web.Response:
    """The caller's withdrawals, newest first."""
    who, p = await _acting(request)
    reply = await backends(request).engine.stub.ListWithdrawals(_range(p, who))
    return json_response([withdrawal_json(w) for w in reply.withdrawals])


@routes.post("/wapi/v1/capital/withdrawals")
@routes.post("/api/v1/capital/withdrawals")
@requires(Scope.WITHDRAW)
async def request_withdrawal(request: web.Request) -> web.Response:
    """Locks quantity + fee at once; the withdrawal then waits for custody (and, above the
    network's threshold, an operator). A retry with the same clientId is the same one."""
    who, p = await _acting(request, counted=True)
    address = p.get("address")
    if not isinstance(address, str) or not 0 < len(address) <= MAX_ADDRESS:
        raise bad_request(f"address must be 1-{MAX_ADDRESS} characters", field="address")
    quantity = decimal_text(p, "quantity")
    if not quantity:
        raise bad_request("quantity is required", field="quantity")
    reply = await backends(request).engine.stub.RequestWithdrawal(
        epb.RequestWithdrawalRequest(
            user_id=who.user_id,
            asset=asset_of(p),
            network=network_of(p),
            address=address,
            quantity=quantity,
            client_id=client_id_of(p),
            memo=memo_of(p),
        )
    )
    if reply.code:
        raise engine_error(reply.code, reply.message, **reply.details)
    w = reply.withdrawal
    if reply.seq:  # a new request, not a retry
        await audit.record(
            request, "withdrawal_request", f"user:{who.user_id}", who.user_id,
            withdrawalId=str(w.withdrawal_id), asset=w.asset, network=w.network,
            address=w.address, quantity=w.quantity, fee=w.fee, clientId=w.client_id or None,
            memo=w.memo or None, via=who.via,
            keyId=str(who.key.key_id) if who.key else None,
        )  # fmt: skip
    return json_response(withdrawal_json(w))


@routes.get("/api/v1/account/limits/withdrawal")
@requires(Scope.READ)
async def withdrawal_limits(request: web.Request) -> web.Response:
    """How much of an asset the caller can withdraw now, per network: the available balance
    less the fee, within the network's maximum and what is left of its daily limit."""
    who, p = await _acting(request)
    asset, only = asset_of(p), network_of(p, required=False)
    b = backends(request)
    networks = [
        n for n in await b.markets.networks() if n.asset == asset and only in ("", n.network)
    ]
    if not networks:
        raise engine_error(cpb.RESULT_CODE_UNKNOWN_NETWORK, f"{asset[:16]} has no such network")
    balances = await b.engine.stub.GetBalances(epb.GetBalancesRequest(user_id=who.user_id))
    available = sum(
        (Decimal(x.available) for x in balances.balances if x.asset == asset), Decimal()
    )
    recent = await b.engine.stub.ListWithdrawals(
        epb.ListCapitalRequest(
            user_id=who.user_id, from_us=time.time_ns() // 1000 - DAY_US, limit=MAX_LIST
        )
    )
    rows = []
    for n in networks:
        used = sum(
            (
                Decimal(w.quantity)
                for w in recent.withdrawals
                if (w.asset, w.network) == (n.asset, n.network)
                and w.status != cpb.WITHDRAWAL_STATUS_DECLINED
            ),
            Decimal(),
        )
        bounds = [available - Decimal(n.withdrawal_fee)]
        if Decimal(n.max_withdrawal):
            bounds.append(Decimal(n.max_withdrawal))
        if Decimal(n.daily_limit):
            bounds.append(Decimal(n.daily_limit) - used)
        most = min(bounds)
        if not n.withdraw_enabled or most < Decimal(n.min_withdrawal):
            most = Decimal()
        rows.append((most, {**token_json(n), "withdrawnToday": _text(used)}))
    return json_response(
        {
            "symbol": asset,
            "asset": asset,
            "maxWithdrawalQuantity": _text(max(most for most, _ in rows)),
            "networks": [{**row, "maxWithdrawalQuantity": _text(most)} for most, row in rows],
        }
    )


def _text(value: Decimal) -> str:
    return format(value, "f")  # never an exponent: Decimal("0E-6") is "0.000000"

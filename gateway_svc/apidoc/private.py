"""The private operations: the caller's orders, balances and history (gateway_svc/private.py)."""

from __future__ import annotations

from gateway_svc.apidoc.operations import (
    ID,
    LIMIT,
    MARKETS,
    MS_INPUT,
    PRIVATE,
    READ,
    SYMBOL_TEXT,
    UINT,
    USER_ID,
    WRITE,
    Operations,
    as_json,
    list_of,
    query,
)
from gateway_svc.apidoc.schemas import MAX_ID, ORDER_STATUSES, ref
from gateway_svc.private import MAX_BATCH_ORDERS

SPEC_ORDER = {"market": "TATA_INR", "side": "buy", "price": "10", "quantity": "1"}
BACKPACK_ORDER = {
    "symbol": "TATA_INR",
    "side": "Bid",
    "orderType": "Limit",
    "price": "10",
    "quantity": "1",
    "timeInForce": "GTC",
}


def describe(p: Operations) -> None:
    add = p.add
    # fmt: off
    add("get", "/api/v1/capital", "getCapital", "Balances of the caller", PRIVATE,
        as_json(ref("Capital")), errors=READ, params=(USER_ID,))
    add("post", "/api/v1/order", "placeOrder", "Place an order", PRIVATE, as_json(ref("Order")),
        errors=(*WRITE, 409), body=ref("OrderRequest"),
        examples={"spec": SPEC_ORDER, "backpack": BACKPACK_ORDER})
    add("post", "/api/v1/orders", "placeOrders", f"Place up to {MAX_BATCH_ORDERS} orders",
        PRIVATE, list_of("OrderResult"), errors=WRITE,
        body={"type": "array", "items": ref("OrderRequest"), "minItems": 1,
              "maxItems": MAX_BATCH_ORDERS},
        examples={"batch": [SPEC_ORDER, BACKPACK_ORDER]},
        description="One result per order, in order: the order, or its error body. "
        "The batch counts once against the order rate limit.")
    add("get", "/api/v1/order", "getOrder", "One open order of the caller", PRIVATE,
        as_json(ref("Order")), errors=(*READ, 404), params=(
            query("orderId", ID, "the order's id; this or clientId"),
            query("clientId", ID, "the client's id of the order"),
            *MARKETS,
            USER_ID,
        ))
    add("delete", "/api/v1/order", "cancelOrder", "Cancel an order", PRIVATE,
        as_json(ref("Order")), errors=(*WRITE, 404, 409), body=ref("OrderReference"),
        examples={"backpack": {"symbol": "TATA_INR", "orderId": "1"}})
    for path, operation_id in (("/api/v1/orders", "getOpenOrders"),
                               ("/api/v1/openOrders", "getOpenOrdersBinanceStyle"),
                               ("/api/v1/order/open", "getOpenOrdersSpec")):
        add("get", path, operation_id, "Open orders of the caller", PRIVATE, list_of("Order"),
            errors=READ, params=(*MARKETS, USER_ID))
    add("delete", "/api/v1/orders", "cancelOpenOrders", "Cancel the caller's open orders",
        PRIVATE, list_of("Order"), errors=(*WRITE, 409), body=ref("MarketFilter"),
        examples={"one market": {"symbol": "TATA_INR"}, "every market": {}},
        body_required=False)
    add("get", "/wapi/v1/history/orders", "getOrderHistory", "Orders of the caller, newest first",
        PRIVATE, list_of("Order"), errors=READ, params=(
            *MARKETS,
            query("orderId", {**ID, "maximum": MAX_ID - 1}, "only this order"),
            query("status", {"enum": ORDER_STATUSES}, "only this status; any case"),
            LIMIT,
            USER_ID,
        ))
    add("get", "/wapi/v1/history/fills", "getFillHistory", "Fills of the caller, newest first",
        PRIVATE, list_of("UserFill"), errors=READ, params=(
            *MARKETS,
            query("from", MS_INPUT, "milliseconds since the epoch"),
            query("to", MS_INPUT, "milliseconds since the epoch"),
            query("orderId", ID, "only fills of this order"),
            LIMIT,
            USER_ID,
        ))
    add("post", "/api/v1/onramp", "onramp", "Demo faucet: credit the caller", PRIVATE,
        as_json(ref("Credited")), errors=WRITE, body=ref("Onramp"),
        examples={"rupees": {"asset": "INR", "amount": "1000"}},
        description="Up to the configured cap per user and asset (400 FAUCET_LIMIT); "
        "403 where the faucet is disabled.")

    asset = (query("symbol", SYMBOL_TEXT, "the asset (Backpack)", example="USDT"),
             query("asset", SYMBOL_TEXT, "the asset (the spec), without `symbol`"))
    network = (query("blockchain", SYMBOL_TEXT, "the network (Backpack)", example="Ethereum"),
               query("network", SYMBOL_TEXT, "the network (the spec), without `blockchain`"))
    history = (
        query("from", MS_INPUT, "created at or after, ms since the epoch"),
        query("to", MS_INPUT, "created before, ms since the epoch"),
        query("endTime", MS_INPUT, "the same as `to` (ccxt's fetchDeposits), without `to`"),
        LIMIT,
        query("offset", {**UINT, "maximum": 2**31 - 1}, "skip this many, newest first"),
        USER_ID,
    )
    for prefix, dialect in (("/wapi/v1/capital", ""), ("/api/v1/capital", "Spec")):
        add("get", f"{prefix}/deposit/address", f"getDepositAddress{dialect}",
            "The caller's deposit address on a network", PRIVATE,
            as_json(ref("DepositAddress")), errors=READ, params=(*network, *asset, USER_ID),
            description="One address per network: every asset on it arrives there. "
            "400 (`details.reason` UNKNOWN_NETWORK, NETWORK_DISABLED).")
        add("get", f"{prefix}/deposits", f"getDeposits{dialect}",
            "Deposits of the caller, newest first", PRIVATE, list_of("Deposit"), errors=READ,
            params=history)
        add("get", f"{prefix}/withdrawals", f"getWithdrawals{dialect}",
            "Withdrawals of the caller, newest first", PRIVATE, list_of("Withdrawal"),
            errors=READ, params=history)
        add("post", f"{prefix}/withdrawals", f"requestWithdrawal{dialect}",
            "Request a withdrawal: quantity + fee are locked at once", PRIVATE,
            as_json(ref("Withdrawal")), errors=(*WRITE, 409), body=ref("WithdrawalRequest"),
            examples={"backpack": {"symbol": "USDT", "blockchain": "Ethereum",
                                   "quantity": "10", "address": "0x" + "0b" * 20}},
            description="Needs the `withdraw` scope of an API key. 400 with `details.reason` "
            "INSUFFICIENT_FUNDS, BELOW_MIN_WITHDRAWAL, ABOVE_MAX_WITHDRAWAL, "
            "WITHDRAWAL_LIMIT, INVALID_ADDRESS, UNKNOWN_NETWORK, NETWORK_DISABLED, "
            "INVALID_AMOUNT; 409 DUPLICATE_CLIENT_ID for a clientId used with other facts.")
    add("get", "/api/v1/account/limits/withdrawal", "getWithdrawalLimits",
        "How much of an asset the caller can withdraw now, per network", PRIVATE,
        as_json(ref("WithdrawalLimits")), errors=READ, params=(*asset, *network, USER_ID))
    # fmt: on

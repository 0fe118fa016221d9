"""The command line: parse, connect, run one command, print its result, exit with its status.

    exchangectl [--engine ADDR] [--ledger ADDR] [--token-file PATH] [--json] COMMAND ...

The admin credential is ENGINE_ADMIN_TOKEN from the environment, or the first line of
--token-file (under `make run`: .run/admin-token). With --json every outcome, errors
included, is one JSON document on stdout; otherwise results go to stdout and errors to
stderr. Exit statuses are in `exchangectl.errors`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from exchangectl import audit, capital, funds, markets, operations, orders, users
from exchangectl.backends import Backends, connect
from exchangectl.errors import EXIT_OK, EXIT_USAGE, CtlError
from exchangectl.output import Result
from servicekit.admin_token import ENV as TOKEN_ENV

Handler = Callable[[Backends, argparse.Namespace], Awaitable[Result]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already explained
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        result = asyncio.run(_run(args, _token(args.token_file)))
    except CtlError as exc:
        _print_error(exc, as_json=args.json)
        return exc.exit_status
    print(json.dumps(result.data, indent=2) if args.json else result.text)
    return result.exit_status


async def _run(args: argparse.Namespace, token: str) -> Result:
    handler: Handler = args.handler
    async with connect(args.engine, args.ledger, token, args.timeout) as backends:
        result = await handler(backends, args)
        if result.exit_status == EXIT_OK:
            try:
                await audit.record(backends, args)
            except CtlError as exc:  # done, but not on record: say so, keep the outcome
                print(f"warning: not written to the audit log: {exc}", file=sys.stderr)
        return result


def _token(path: str | None) -> str:
    if path is None:
        return os.environ.get(TOKEN_ENV, "")
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise CtlError("USAGE", f"cannot read --token-file: {exc}", EXIT_USAGE) from None
    return lines[0].strip() if lines else ""


def _print_error(exc: CtlError, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message}}, indent=2))
    else:
        print(f"exchangectl: error: {exc.code}: {exc.message}", file=sys.stderr)


def _id(text: str) -> int:
    """A user or order id: a whole number the engine's uint64 fields and the ledger take."""
    if not text.isdigit() or int(text) >= 2**63:
        raise argparse.ArgumentTypeError(f"an id is a whole number, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exchangectl", description="Operate the exchange: markets, funds, users, orders."
    )
    parser.add_argument(
        "--engine",
        default=os.environ.get("ENGINE_ADDRESS", "127.0.0.1:50051"),
        help="the engine's gRPC address (ENGINE_ADDRESS)",
    )
    parser.add_argument(
        "--ledger",
        default=os.environ.get("LEDGER_ADDRESS", "127.0.0.1:50052"),
        help="the ledger's gRPC address (LEDGER_ADDRESS)",
    )
    parser.add_argument(
        "--token-file", help=f"file holding the engine's admin token (else ${TOKEN_ENV})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call (30)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        text: str,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    def group(name: str, text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = commands.add_parser(name, help=text, description=text)
        return sub.add_subparsers(dest="action", required=True, metavar="ACTION")

    m = group("markets", "list, add, halt and resume markets; the pending-trigger limit")
    command(m, "list", markets.list_markets, "markets and assets the engine lists")
    add = command(m, "add", markets.add_market, "list a new market (it opens at once)")
    add.add_argument("symbol", help="BASE_QUOTE, e.g. SOL_USDT")
    add.add_argument("--base", help="base asset (default: from the symbol)")
    add.add_argument("--quote", help="quote asset (default: from the symbol)")
    for flag, meaning in [
        ("--tick", "price increment, quote per base unit"),
        ("--step", "quantity increment, base"),
        ("--min-quantity", "smallest order quantity, base"),
        ("--min-notional", "smallest price x quantity, quote"),
        ("--max-quantity", "largest order quantity, base"),
        ("--max-price", "highest price, quote per base unit"),
    ]:
        add.add_argument(flag, required=True, help=meaning)
    add.add_argument("--maker-fee-bps", type=int, default=0, help="basis points (0)")
    add.add_argument("--taker-fee-bps", type=int, default=0, help="basis points (0)")
    add.add_argument(
        "--max-triggers", type=int, default=0, help="pending triggers per user (0: default)"
    )
    for name, handler, text in [
        ("halt", markets.halt, "refuse new orders on a market (cancels still work)"),
        ("resume", markets.resume, "open a halted market again"),
    ]:
        command(m, name, handler, text).add_argument("symbol")
    limit = command(
        m, "trigger-limit", markets.set_trigger_limit,
        "set the pending triggers a user may have in all markets (each market has its own)",
    )  # fmt: skip
    limit.add_argument("total", type=int, help="1 to 1,000,000 (500 until set)")

    a = group("assets", "list new assets")
    asset = command(a, "add", markets.add_asset, "list a new asset")
    asset.add_argument("symbol")
    asset.add_argument("decimals", type=int, help="decimals of its smallest unit (INR: 2)")

    for name, handler, text in [
        ("credit", funds.credit, "deposit: add to a user's available balance"),
        ("debit", funds.debit, "withdraw: take from a user's available balance"),
    ]:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        sub.add_argument("user", type=_id)
        sub.add_argument("asset")
        sub.add_argument("amount", help="a decimal string, at most the asset's decimals")

    d = group("deposit", "custody's deposit reports (credited at the network's confirmations)")
    report = command(d, "credit", capital.credit, "report a chain transfer to a deposit address")
    report.add_argument("network", help="e.g. Ethereum")
    report.add_argument("asset")
    report.add_argument("address", help="the user's deposit address on that network")
    report.add_argument("quantity", help="a decimal string, at most the asset's decimals")
    report.add_argument("tx", metavar="TX_HASH", help="with the network, the deposit's identity")
    report.add_argument(
        "--confirmations", type=int, default=0, help="seen so far (default: 0, pending)"
    )
    listed = command(d, "list", capital.list_deposits, "deposits, newest first")
    listed.add_argument("--user", type=_id)
    listed.add_argument("--limit", type=int, default=100, choices=range(1, 1001), metavar="1..1000")

    w = group("withdrawal", "approve, decline, complete and list withdrawals")
    for name, handler, text in [
        ("approve", capital.approve, "let a withdrawal above the approval threshold go"),
        ("decline", capital.decline, "refuse a withdrawal: its lock goes back to available"),
        ("complete", capital.complete, "record custody's payment of an approved withdrawal"),
    ]:
        sub = command(w, name, handler, text)
        sub.add_argument("withdrawal_id", type=_id, metavar="WITHDRAWAL_ID")
        if name == "complete":
            sub.add_argument("tx", metavar="TX_HASH", help="the chain transaction that paid it")
    listed = command(w, "list", capital.list_withdrawals, "withdrawals, newest first")
    listed.add_argument("--user", type=_id)
    listed.add_argument("--open", action="store_true", help="only those not yet ended")
    listed.add_argument("--limit", type=int, default=100, choices=range(1, 1001), metavar="1..1000")

    u = group("users", "look up users")
    command(u, "lookup", users.lookup, "a user, balances, open orders and API keys").add_argument(
        "who", help="user id or email"
    )

    o = group("orders", "look up and cancel orders")
    for name, handler, text in [
        ("list", orders.list_orders, "open orders of a user, of a market, or of both"),
        ("cancel-all", orders.cancel_all, "cancel the open orders of a user, a market or both"),
    ]:
        sub = command(o, name, handler, text)
        sub.add_argument("--user", type=_id)
        sub.add_argument("--market")
    get = command(o, "get", orders.get_order, "one order of a user, open or not")
    get.add_argument("--user", type=_id, required=True)
    get.add_argument("order_id", type=_id, metavar="ORDER_ID")

    sub = commands.add_parser("audit", help="the audit log, newest first")
    sub.set_defaults(handler=audit.show)
    sub.add_argument("--user", type=_id, help="only records about this user id")
    sub.add_argument("--action", help="only this action (login_failed, apikey_create, ...)")
    sub.add_argument("--limit", type=int, default=50, choices=range(1, 1001), metavar="1..1000")
    sub.add_argument("--before", type=_id, help="only records below this id (paging)")

    sub = commands.add_parser("snapshot", help="make the engine write a snapshot now")
    sub.set_defaults(handler=operations.snapshot)
    sub = commands.add_parser("reconcile", help="compare the ledger's balances with the engine's")
    sub.set_defaults(handler=operations.reconcile)
    sub = commands.add_parser("status", help="health of every service, the ledger's lag")
    sub.set_defaults(handler=operations.status)
    sub.add_argument(
        "--service",
        action="append",
        type=operations.parse_service,
        default=[],
        metavar="NAME=ADDRESS",
        help="another service: host:port (gRPC health) or an http(s) URL; repeatable",
    )
    sub.add_argument(
        "--local", action="store_true", help="also every other service `make run` starts"
    )
    sub.add_argument("--max-lag", type=int, help="a problem when the ledger is further behind")
    return parser

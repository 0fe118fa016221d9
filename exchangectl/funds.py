"""credit and debit: the operator's deposit and withdrawal path (the engine's admin calls).

The amount is a decimal string in the asset (at most its decimals); a debit takes from what
is available, never from what open orders hold locked.
"""

from __future__ import annotations

import argparse

from exchange.engine.v1 import engine_pb2 as epb
from exchangectl.backends import Backends
from exchangectl.errors import check_result
from exchangectl.output import Result


async def credit(b: Backends, args: argparse.Namespace) -> Result:
    request = epb.DepositRequest(user_id=args.user, asset=args.asset, amount=args.amount)
    reply = await b.from_engine(b.engine.Deposit(request, metadata=b.admin, timeout=b.timeout))
    return _moved(reply, "credited to", args)


async def debit(b: Backends, args: argparse.Namespace) -> Result:
    request = epb.WithdrawRequest(user_id=args.user, asset=args.asset, amount=args.amount)
    reply = await b.from_engine(b.engine.Withdraw(request, metadata=b.admin, timeout=b.timeout))
    return _moved(reply, "debited from", args)


def _moved(reply: epb.BalanceReply, verb: str, args: argparse.Namespace) -> Result:
    check_result(reply.code, reply.message)
    balance = reply.balance
    data = {
        "user_id": args.user,
        "asset": args.asset,
        "amount": args.amount,
        "available": balance.available,
        "locked": balance.locked,
        "seq": reply.seq,
    }
    text = (
        f"{args.amount} {args.asset} {verb} user {args.user}: available {balance.available},"
        f" locked {balance.locked} (seq {reply.seq})"
    )
    return Result(data, text)

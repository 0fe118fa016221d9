"""LedgerService over gRPC: requests in, queries and user records out.

Errors leave as gRPC status codes whose details start with a stable code word
("UNKNOWN_MARKET: ..."), which the gateway maps to its HTTP errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import asyncpg
import grpc

from exchange.common.v1 import common_pb2 as cpb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc
from ledger_svc import audit, client_names, queries
from ledger_svc.db import CONNECTION_ERRORS, Conn
from ledger_svc.ingest import Ingest
from ledger_svc.metrics import DatabaseMetrics
from ledger_svc.queries import Directory, UnknownMarket
from ledger_svc.reconcile import NotCaughtUp, reconcile
from ledger_svc.users import (
    AlreadyExists,
    ApiKeyRecord,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    UserError,
    UserRecord,
    UserStore,
)
from servicekit.clock import now_us

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

Ctx = grpc.aio.ServicerContext[object, object]
T = TypeVar("T")


class LedgerServicer(ledger_pb2_grpc.LedgerServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        engine: EngineServiceAsyncStub,
        ingest: Ingest | None,
        users: UserStore,
        metrics: DatabaseMetrics,
    ) -> None:
        self._pool = pool
        self._engine = engine
        self._ingest = ingest
        self._users = users
        self._metrics = metrics
        self._directory = Directory()

    # -- plumbing -------------------------------------------------------------------------

    @asynccontextmanager
    async def _conn(self, context: Ctx) -> AsyncIterator[Conn]:
        """A connection; a lost database becomes UNAVAILABLE, our typed errors their codes."""
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except UnknownMarket as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"UNKNOWN_MARKET: {exc} is not listed")
        except CONNECTION_ERRORS as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"DATABASE_UNAVAILABLE: {exc}")

    async def _users_call(self, context: Ctx, call: Awaitable[T]) -> T:
        try:
            return await call
        except UserError as exc:
            await context.abort(_USER_ERROR_STATUS[type(exc)], f"{exc.code}: {exc}")
        except CONNECTION_ERRORS as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"DATABASE_UNAVAILABLE: {exc}")

    async def _query(
        self, context: Ctx, name: str, run: Callable[[Conn, Directory], Awaitable[T]]
    ) -> T:
        """Run query `name`, which formats money; reload the directory once if it lacks a
        name. Its database time goes to the metrics."""
        with self._metrics.query(name):
            return await self._query_once_reloading(context, run)

    async def _query_once_reloading(
        self, context: Ctx, run: Callable[[Conn, Directory], Awaitable[T]]
    ) -> T:
        async with self._conn(context) as conn:
            try:
                return await run(conn, self._directory)
            except (UnknownMarket, KeyError):
                self._directory = await Directory.load(conn)
                return await run(conn, self._directory)

    # -- market history -------------------------------------------------------------------

    async def GetTrades(self, request: lpb.GetTradesRequest, context: Ctx) -> lpb.GetTradesReply:
        return await self._query(
            context, "trades", lambda conn, d: queries.get_trades(conn, d, request)
        )

    async def GetKlines(self, request: lpb.GetKlinesRequest, context: Ctx) -> lpb.GetKlinesReply:
        if request.interval not in lpb.KlineInterval.values() or not request.interval:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"INVALID_INTERVAL: {request.interval}"
            )
        now = now_us()
        return await self._query(
            context, "klines", lambda conn, d: queries.get_klines(conn, d, request, now)
        )

    async def GetTicker(self, request: lpb.GetTickerRequest, context: Ctx) -> lpb.Ticker:
        now = now_us()

        async def run(conn: Conn, d: Directory) -> lpb.Ticker:
            d.scales(request.market)  # unknown market: NOT_FOUND
            (ticker,) = await queries.get_tickers(conn, d, [request.market], now)
            return ticker

        return await self._query(context, "ticker", run)

    async def GetTickers(self, request: lpb.GetTickersRequest, context: Ctx) -> lpb.GetTickersReply:
        now = now_us()

        async def run(conn: Conn, d: Directory) -> lpb.GetTickersReply:
            return lpb.GetTickersReply(
                tickers=await queries.get_tickers(conn, d, sorted(d.markets), now)
            )

        with self._metrics.query("tickers"):
            async with self._conn(context) as conn:
                self._directory = await Directory.load(conn)  # new markets appear in the list
                return await run(conn, self._directory)

    async def ListMarkets(
        self, request: lpb.ListMarketsRequest, context: Ctx
    ) -> lpb.ListMarketsReply:
        async with self._conn(context) as conn:
            self._directory = d = await Directory.load(conn)
        return lpb.ListMarketsReply(
            assets=[
                cpb.Asset(symbol=symbol, decimals=decimals)
                for symbol, decimals in sorted(d.asset_decimals.items())
            ],
            markets=list(d.markets.values()),
        )

    # -- a user's history -----------------------------------------------------------------

    async def GetOrderHistory(
        self, request: lpb.GetOrderHistoryRequest, context: Ctx
    ) -> lpb.GetOrderHistoryReply:
        return await self._query(
            context, "order_history", lambda conn, d: queries.get_order_history(conn, d, request)
        )

    async def GetFills(self, request: lpb.GetFillsRequest, context: Ctx) -> lpb.GetFillsReply:
        return await self._query(
            context, "fills", lambda conn, d: queries.get_fills(conn, d, request)
        )

    async def GetLedger(self, request: lpb.GetLedgerRequest, context: Ctx) -> lpb.GetLedgerReply:
        return await self._query(
            context, "ledger", lambda conn, d: queries.get_ledger(conn, d, request)
        )

    async def GetBalances(
        self, request: lpb.GetBalancesRequest, context: Ctx
    ) -> lpb.GetBalancesReply:
        return await self._query(
            context, "balances", lambda conn, d: queries.get_balances(conn, d, request.user_id)
        )

    # -- users and API keys --------------------------------------------------------------

    async def CreateUser(self, request: lpb.CreateUserRequest, context: Ctx) -> lpb.User:
        call = self._users.create_user(request.email, request.password)
        return _user(await self._users_call(context, call))

    async def GetUser(self, request: lpb.GetUserRequest, context: Ctx) -> lpb.User:
        if request.email:
            call = self._users.get_user_by_email(request.email)
        else:
            call = self._users.get_user(request.user_id)
        return _user(await self._users_call(context, call))

    async def Authenticate(self, request: lpb.AuthenticateRequest, context: Ctx) -> lpb.User:
        call = self._users.authenticate(request.email, request.password)
        return _user(await self._users_call(context, call))

    async def RegisterApiKey(self, request: lpb.RegisterApiKeyRequest, context: Ctx) -> lpb.ApiKey:
        call = self._users.register_api_key(
            request.user_id,
            request.public_key,
            request.label,
            request.permissions,
            request.ip_allowlist,
        )
        return _api_key(await self._users_call(context, call))

    async def GenerateApiKey(
        self, request: lpb.GenerateApiKeyRequest, context: Ctx
    ) -> lpb.GeneratedApiKey:
        call = self._users.generate_api_key(
            request.user_id, request.label, request.permissions, request.ip_allowlist
        )
        key, secret = await self._users_call(context, call)
        return lpb.GeneratedApiKey(key=_api_key(key), secret=secret)

    async def ListApiKeys(
        self, request: lpb.ListApiKeysRequest, context: Ctx
    ) -> lpb.ListApiKeysReply:
        keys = await self._users_call(context, self._users.list_api_keys(request.user_id))
        return lpb.ListApiKeysReply(keys=[_api_key(k) for k in keys])

    async def RevokeApiKey(self, request: lpb.RevokeApiKeyRequest, context: Ctx) -> lpb.ApiKey:
        call = self._users.revoke_api_key(request.user_id, request.key_id)
        return _api_key(await self._users_call(context, call))

    async def LookupApiKey(self, request: lpb.LookupApiKeyRequest, context: Ctx) -> lpb.ApiKey:
        call = self._users.lookup_api_key(request.public_key)
        return _api_key(await self._users_call(context, call), with_secret=True)

    async def RegisterHmacApiKey(
        self, request: lpb.RegisterHmacApiKeyRequest, context: Ctx
    ) -> lpb.ApiKey:
        call = self._users.register_hmac_api_key(
            request.user_id,
            request.api_key,
            request.sealed_secret,
            request.label,
            request.permissions,
            request.ip_allowlist,
        )
        return _api_key(await self._users_call(context, call))

    # -- Binance's client order names ---------------------------------------------------

    async def NameClientOrder(
        self, request: lpb.NameClientOrderRequest, context: Ctx
    ) -> lpb.NameClientOrderReply:
        async with self._conn(context) as conn:
            try:
                await client_names.name(
                    conn, request.user_id, request.client_order_id, request.name
                )
            except client_names.InvalidName as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"INVALID_NAME: {exc}")
        return lpb.NameClientOrderReply()

    async def GetClientOrderNames(
        self, request: lpb.GetClientOrderNamesRequest, context: Ctx
    ) -> lpb.GetClientOrderNamesReply:
        async with self._conn(context) as conn:
            try:
                found = await client_names.names(conn, request.user_id, request.client_order_ids)
            except client_names.InvalidName as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"INVALID_NAME: {exc}")
        return lpb.GetClientOrderNamesReply(names=found)

    # -- audit log ------------------------------------------------------------------------

    async def AppendAudit(self, request: lpb.AuditRecord, context: Ctx) -> lpb.AuditRecord:
        async with self._conn(context) as conn:
            try:
                return await audit.append(conn, request)
            except audit.InvalidRecord as exc:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"INVALID_AUDIT_RECORD: {exc}"
                )
        raise AssertionError("unreachable")

    async def ListAudit(self, request: lpb.ListAuditRequest, context: Ctx) -> lpb.ListAuditReply:
        async with self._conn(context) as conn:
            return await audit.list_records(conn, request)

    # -- operations -----------------------------------------------------------------------

    async def GetIngestStatus(
        self, request: lpb.GetIngestStatusRequest, context: Ctx
    ) -> lpb.IngestStatus:
        if self._ingest is not None:
            s = self._ingest.status
            return lpb.IngestStatus(
                last_seq=s.last_seq, last_event_ts_us=s.last_event_ts_us, connected=s.connected
            )
        async with self._conn(context) as conn:
            row = await conn.fetchrow("SELECT last_seq, last_ts_us FROM ingest_cursor")
        assert row is not None
        return lpb.IngestStatus(last_seq=row[0], last_event_ts_us=row[1])

    async def Reconcile(self, request: lpb.ReconcileRequest, context: Ctx) -> lpb.ReconcileReply:
        async with self._conn(context) as conn:
            try:
                return await reconcile(conn, self._engine)
            except NotCaughtUp as exc:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"NOT_CAUGHT_UP: {exc}")
            except grpc.aio.AioRpcError as exc:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, f"ENGINE_UNAVAILABLE: {exc.details()}"
                )
        raise AssertionError("unreachable")


_USER_ERROR_STATUS: dict[type[UserError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def _user(record: UserRecord) -> lpb.User:
    return lpb.User(user_id=record.user_id, email=record.email, created_at_us=record.created_at_us)


def _api_key(record: ApiKeyRecord, *, with_secret: bool = False) -> lpb.ApiKey:
    """`with_secret`: the sealed HMAC secret too, for the gateway's lookup only."""
    return lpb.ApiKey(
        key_id=record.key_id,
        user_id=record.user_id,
        public_key=record.public_key,
        label=record.label,
        created_at_us=record.created_at_us,
        revoked_at_us=record.revoked_at_us or 0,
        permissions=record.permissions,
        ip_allowlist=record.ip_allowlist,
        kind=record.kind,
        sealed_secret=record.sealed_secret if with_secret else b"",
    )

"""Fixtures for the market maker: a real engine (in-process, or a process of its own where
crashes matter), configurations written to files, makers and flows run in-process cycle by
cycle so a test decides exactly when each one acts, and other users' stops resting in the
maker's market."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from launcher.health import check_health
from launcher.ports import free_port
from mm_svc.config import Config, load_config
from mm_svc.engine import open_channel
from mm_svc.flow import Flow
from mm_svc.maker import Maker
from mm_svc.metrics import FlowMetrics, MakerMetrics
from tests.engine.conftest import RunningEngine, deposit, engine
from tradekit.engine_client import EngineClient

__all__ = ["engine"]

MAKER = 500
FLOW_USERS = (601, 602, 603)
TAKER = 700
STOPPER, COUNTERPARTY = 800, 801  # a user with stops in the market, and who traded with it

MARKET = {
    "symbol": "TATA_INR",
    "reference": "book",
    "start_price": "1000",
    "levels": 3,
    "spread_bps": 20,
    "level_spacing_bps": 10,
    "size": "10",
    "size_growth": "1.5",
    "requote_tolerance_bps": 5,
    "refill_below": "0.5",
    "skew_bps": 0,
    "inventory_target": "2000",  # what the maker is funded with: position 0
    "max_position": "1000",
    "max_order_size": "100",
    "flow_size": "30",
}


def _toml(values: Mapping[str, object]) -> str:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    return "".join(f"{key} = {value(v)}\n" for key, v in values.items())


def config_text(
    *,
    market: Mapping[str, object] | None = None,
    maker: Mapping[str, object] | None = None,
    maker_fund: Mapping[str, str] | None = None,
    flow: Mapping[str, object] | None = None,
    flow_fund: Mapping[str, str] | None = None,
) -> str:
    """A configuration for one market, TATA_INR, with MARKET's values updated by `market`."""
    maker_values = {
        "user_id": MAKER, "client_tag": 0x4D4D, "cycle_seconds": 0.05,
        "fund_on_start": True, "cancel_on_stop": True, **(maker or {}),
    }  # fmt: skip
    flow_values = {
        "users": list(FLOW_USERS), "rate": 0, "market_order_share": 0.6,
        "limit_offset_bps": 15, "max_open_per_user": 3, "seed": 11, **(flow or {}),
    }  # fmt: skip
    return (
        f"[maker]\n{_toml(maker_values)}"
        f"[maker.fund]\n{_toml(maker_fund or {'INR': '10000000', 'TATA': '2000'})}"
        f"[flow]\n{_toml(flow_values)}"
        f"[flow.fund]\n{_toml(flow_fund or {'INR': '1000000', 'TATA': '1000'})}"
        f"[[markets]]\n{_toml({**MARKET, **(market or {})})}"
    )


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mm.toml"
    path.write_text(text)
    return path


def make_config(tmp_path: Path, **parts: Any) -> Config:
    """`config_text(**parts)` written to a file and loaded."""
    return load_config(write_config(tmp_path, config_text(**parts)))


@dataclass
class Harness:
    """A maker and a flow run in-process, each with its own metrics registry."""

    maker: Maker
    flow: Flow
    maker_registry: CollectorRegistry
    flow_registry: CollectorRegistry
    client: EngineClient

    def maker_metric(self, name: str, **labels: str) -> float:
        return self.maker_registry.get_sample_value(name, labels) or 0.0

    def flow_metric(self, name: str, **labels: str) -> float:
        return self.flow_registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def harness_factory(engine: RunningEngine) -> AsyncIterator[object]:
    channels = []

    async def make(config: Config) -> Harness:
        channel = open_channel(engine.address)
        channels.append(channel)
        client = EngineClient(channel)
        maker_registry, flow_registry = CollectorRegistry(), CollectorRegistry()
        maker = Maker(config, client, MakerMetrics(maker_registry))
        flow = Flow(config, client, FlowMetrics(flow_registry))
        return Harness(maker, flow, maker_registry, flow_registry, client)

    yield make
    for channel in channels:
        await channel.close()


async def open_orders(stub: epb_grpc.EngineServiceAsyncStub, user: int = MAKER) -> list[cpb.Order]:
    reply = await stub.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=user))
    return list(reply.orders)


async def holdings(stub: epb_grpc.EngineServiceAsyncStub, user: int, asset: str) -> Decimal:
    reply = await stub.GetBalances(epb.GetBalancesRequest(user_id=user))
    for balance in reply.balances:
        if balance.asset == asset:
            return Decimal(balance.available) + Decimal(balance.locked)
    return Decimal(0)


def remaining(order: cpb.Order) -> Decimal:
    return Decimal(order.quantity) - Decimal(order.executed_quantity)


async def market_order(
    stub: epb_grpc.EngineServiceAsyncStub, user: int, side: int, quantity: str
) -> epb.PlaceOrderReply:
    reply: epb.PlaceOrderReply = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=user, market="TATA_INR", side=side, type=cpb.ORDER_TYPE_MARKET,  # type: ignore[arg-type]
            quantity=quantity, time_in_force=cpb.TIME_IN_FORCE_IOC,
        )
    )  # fmt: skip
    assert reply.code == cpb.RESULT_CODE_OK, reply.message
    return reply


@dataclass(frozen=True)
class UserStop:
    side: int
    trigger: str
    limit: str = ""  # "" = a market order once it fires
    bracket: bool = False  # a buy at the trigger with take-profit 1030 and stop-loss 970


# Near the mid (the flow's and the takers' trades reach them) and far (they keep waiting):
# stop-loss sells below, stop buys above, limit and market, and a bracket order waiting.
USER_STOPS = (
    UserStop(cpb.SIDE_SELL, "999.50"),
    UserStop(cpb.SIDE_SELL, "998.00", limit="997.00"),
    UserStop(cpb.SIDE_SELL, "950.00"),
    UserStop(cpb.SIDE_BUY, "1000.50"),
    UserStop(cpb.SIDE_BUY, "1002.00", limit="1003.00"),
    UserStop(cpb.SIDE_BUY, "1050.00", limit="1050.00"),
    UserStop(cpb.SIDE_BUY, "1001.00", limit="1001.00", bracket=True),
)


async def rest_user_stops(stub: epb_grpc.EngineServiceAsyncStub) -> set[int]:
    """USER_STOPS placed by STOPPER in TATA_INR, after one trade at 1000 between STOPPER and
    COUNTERPARTY that gives the market its last price (the book is empty again after it).
    Returns the ids of the pending triggers."""
    for user in (STOPPER, COUNTERPARTY):
        await deposit(stub, user, "INR", "1000000")
        await deposit(stub, user, "TATA", "1000")
    for user, side in ((STOPPER, cpb.SIDE_SELL), (COUNTERPARTY, cpb.SIDE_BUY)):
        reply = await stub.PlaceOrder(
            epb.PlaceOrderRequest(
                user_id=user, market="TATA_INR", side=side, type=cpb.ORDER_TYPE_LIMIT,
                price="1000", quantity="1", time_in_force=cpb.TIME_IN_FORCE_GTC,
            )
        )  # fmt: skip
        assert reply.code == cpb.RESULT_CODE_OK, reply.message
    ids = set()
    for stop in USER_STOPS:
        limit = bool(stop.limit)
        reply = await stub.PlaceOrder(
            epb.PlaceOrderRequest(
                user_id=STOPPER, market="TATA_INR", side=stop.side,  # type: ignore[arg-type]
                type=cpb.ORDER_TYPE_LIMIT if limit else cpb.ORDER_TYPE_MARKET,
                time_in_force=cpb.TIME_IN_FORCE_GTC if limit else cpb.TIME_IN_FORCE_IOC,
                price=stop.limit, quantity="5", trigger_price=stop.trigger,
                take_profit_trigger_price="1030" if stop.bracket else "",
                stop_loss_trigger_price="970" if stop.bracket else "",
            )
        )  # fmt: skip
        assert reply.code == cpb.RESULT_CODE_OK, reply.message
        assert reply.order.status == cpb.ORDER_STATUS_TRIGGER_PENDING
        ids.add(reply.order.order_id)
    return ids


async def pending_stops(stub: epb_grpc.EngineServiceAsyncStub, ids: set[int]) -> set[int]:
    """Which of `ids` are still pending triggers."""
    held = await open_orders(stub, STOPPER)
    return {o.order_id for o in held if o.status == cpb.ORDER_STATUS_TRIGGER_PENDING} & ids


# ---- services in processes of their own ----


class Service:
    """`python -m <module>` with extra environment; stopped by kill -9 or SIGTERM."""

    def __init__(self, module: str, env: Mapping[str, str]) -> None:
        self.module = module
        self.env = {**os.environ, **env}
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, env=self.env
        )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await self.process.wait()

    async def wait_healthy(self, address: str) -> None:
        async with asyncio.timeout(60):
            while not await check_health(address):
                assert self.process is not None
                assert self.process.returncode is None
                await asyncio.sleep(0.1)


@pytest.fixture
async def services() -> AsyncIterator[list[Service]]:
    """Every Service a test appends is killed at its end if still running."""
    started: list[Service] = []
    yield started
    for service in started:
        if service.process is not None and service.process.returncode is None:
            await service.kill()


def engine_service(data_dir: Path, port: int) -> Service:
    return Service(
        "engine_svc",
        {"ENGINE_GRPC_PORT": str(port), "ENGINE_HOST": "127.0.0.1",
         "ENGINE_DATA_DIR": str(data_dir)},
    )  # fmt: skip


def maker_service(config: Path, engine_port: int) -> tuple[Service, int, int]:
    """The maker process, its health port and its metrics port."""
    health, metrics = free_port(), free_port()
    service = Service(
        "mm_svc",
        {"ENGINE_ADDRESS": f"127.0.0.1:{engine_port}", "MM_CONFIG": str(config),
         "MM_HOST": "127.0.0.1", "MM_HEALTH_PORT": str(health),
         "MM_METRICS_PORT": str(metrics)},
    )  # fmt: skip
    return service, health, metrics


async def metric(port: int, name: str) -> float:
    """A metric of the endpoint on `port`, summed over its labels; 0 when it has no sample
    or nothing listens there yet."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
    except aiohttp.ClientConnectionError:
        return 0.0
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )

"""k8s/monitoring: the alert rules pass promtool's checks and unit tests, the dashboard's
queries are valid PromQL, and every metric either names is one the services really export
(read from their /metrics pages, the services running in-process)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from ledger_svc.server import LedgerRuntime
from mm_svc.metrics import FlowMetrics, MakerMetrics
from stream_svc.metrics import hub_registry, publisher_registry
from tests.engine.conftest import engine
from tests.gateway.conftest import Stack, ledger_address, stack, stack_factory
from tests.monitoring.scrape import Page, scrape
from tests.stream.conftest import publishing, stream_settings, streaming

__all__ = ["engine", "ledger_address", "stack", "stack_factory"]

MONITORING = Path(__file__).parents[2] / "k8s" / "monitoring"
RULES = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "dashboards" / "exchange.json"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yaml")
PROMTOOL = shutil.which("promtool")  # Debian's `prometheus` package (the Makefile installs it)

# Made by Prometheus itself for every scrape target.
SCRAPE_SERIES = {"up"}


def rule_groups() -> dict[str, Any]:
    document = yaml.safe_load(RULES.read_text())
    assert document["kind"] == "PrometheusRule"
    groups: dict[str, Any] = document["spec"]
    return groups


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for g in rule_groups()["groups"] for rule in g["rules"] if "alert" in rule]


def recorded() -> set[str]:
    return {
        rule["record"] for g in rule_groups()["groups"] for rule in g["rules"] if "record" in rule
    }


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def promtool(*args: str, cwd: Path) -> str:
    assert PROMTOOL is not None, "promtool is missing: `make deps` installs Debian's prometheus"
    result = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_rules_pass_promtool_and_their_unit_tests(tmp_path: Path) -> None:
    (tmp_path / "exchange.rules.yml").write_text(yaml.safe_dump(rule_groups()))
    assert "SUCCESS" in promtool("check", "rules", "exchange.rules.yml", cwd=tmp_path)
    # A case's expected alert carries the rule's own annotations unless it spells them out.
    own = {rule["alert"]: rule.get("annotations", {}) for rule in alerting_rules()}
    cases = yaml.safe_load(UNIT_TESTS.read_text())
    tested = set()
    for case in cases["tests"]:
        for check in case["alert_rule_test"]:
            tested.add(check["alertname"])
            for alert in check.get("exp_alerts") or []:
                alert["exp_annotations"] = own[check["alertname"]] | alert.get(
                    "exp_annotations", {}
                )
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(cases))
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert tested == set(own), "every alert has a unit test"


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses them as recording rules; Grafana itself is not available here."""
    queries = dashboard_queries()
    rules = [{"record": f"dashboard:query_{n}", "expr": q} for n, q in enumerate(queries)]
    (tmp_path / "dashboard.rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    assert f"SUCCESS: {len(queries)} rules found" in promtool(
        "check", "rules", "dashboard.rules.yml", cwd=tmp_path
    )


def test_the_dashboard_is_laid_out_on_grafanas_grid() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBERS = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_:][\w:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (not functions, labels or keywords)."""
    for pattern in (_STRINGS, _MATCHERS, _RANGES, _GROUPING, _NUMBERS):
        expr = pattern.sub(" ", expr)
    names = set()
    for match in _NAME.finditer(expr):
        if match.group() not in _KEYWORDS and not expr[match.end() :].lstrip().startswith("("):
            names.add(match.group())
    return names


def test_metric_names_are_read_from_expressions() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) (rate(gateway_request_seconds_bucket"
        '{route!~"/ws|/api"}[5m]))) > 0.5 and on() max(engine_last_seq - x:y_z) == bool 1e6'
    )
    assert metric_names(expr) == {"gateway_request_seconds_bucket", "engine_last_seq", "x:y_z"}


async def test_every_metric_in_the_rules_and_the_dashboard_is_exported(
    stack: Stack, ledger_address: tuple[str, LedgerRuntime], redis_url: str
) -> None:
    """One page per service: the engine's and the ledger's registries served as their
    processes serve them, the gateway's own /metrics, the market maker's and the flow's,
    and those of the publisher and stream_svc following the stack's engine through Redis."""
    await stack.client.get("/api/v1/markets")
    maker = CollectorRegistry()
    MakerMetrics(maker)
    FlowMetrics(maker)
    pages: list[Page] = [
        await scrape(stack.engine.runtime.registry),
        await scrape(stack.ledger.registry),
        await scrape(maker),
    ]
    engine_address = stack.engine.address
    async with (
        publishing(engine_address, ledger_address[0], redis_url) as publisher,
        streaming(stream_settings(engine_address, redis_url)) as (hub, _),
    ):
        pages += [await scrape(publisher_registry(publisher)), await scrape(hub_registry(hub))]
    response = await stack.client.get("/metrics")
    assert response.status == 200
    pages.append(Page(await response.text()))
    exported = set().union(*(page.names for page in pages))
    used: dict[str, set[str]] = {}
    for rule in rule_groups()["groups"]:
        for r in rule["rules"]:
            for name in metric_names(r["expr"]):
                used.setdefault(name, set()).add(r.get("alert") or r["record"])
    for n, query in enumerate(dashboard_queries()):
        for name in metric_names(query):
            used.setdefault(name, set()).add(f"dashboard query {n}")
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exported | recorded() | SCRAPE_SERIES
    }
    assert not missing, f"not exported by any service: {missing}"
    assert {
        "engine_journal_fsync_seconds_bucket", "ledger_ingest_last_seq",
        "stream_publisher_last_seq", "stream_redis_connected",
        "stream_publisher_redis_failures_total", "stream_subscribers",
    } <= set(used)  # fmt: skip


@pytest.mark.parametrize("kind", ["PrometheusRule", "PodMonitor", "ConfigMap"])
def test_the_kustomization_renders(kind: str) -> None:
    kubectl = shutil.which("kubectl", path=str(Path(__file__).parents[2] / ".venv" / "bin"))
    kubectl = kubectl or shutil.which("kubectl")
    assert kubectl is not None
    result = subprocess.run(
        [kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    documents = {d["kind"]: d for d in yaml.safe_load_all(result.stdout)}
    assert documents[kind]["metadata"]["namespace"] == "exchange"
    if kind == "ConfigMap":
        assert documents[kind]["metadata"]["labels"] == {"grafana_dashboard": "1"}
        assert json.loads(documents[kind]["data"]["exchange.json"]) == json.loads(
            DASHBOARD.read_text()
        )

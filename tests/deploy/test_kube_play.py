"""deploy/kube.py turns the dev overlay into what `podman kube play` runs (make kube-smoke):
one Pod per workload, every address a Pod's name, nothing kube play cannot do left in."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import yaml

from deploy import kube
from tests.deploy.manifests import render, workloads

HOST_PORT = re.compile(r"^(?:\w+://(?:\w+@)?)?(?P<host>[a-z][a-z0-9.-]*):(?P<port>\d+)(?:/.*)?$")


def played(tmp_path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    gaps = kube.play("localhost/exchange:smoke", "smoke", 18081, tmp_path)
    return list(yaml.safe_load_all((tmp_path / "play.yaml").read_text())), gaps


def test_every_workload_is_one_pod_with_the_local_images(tmp_path: Path) -> None:
    objects, _ = played(tmp_path)
    pods = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Pod"}
    assert set(pods) == {w["metadata"]["name"] for w in workloads(render("dev"))}
    assert {o["kind"] for o in objects} == {"ConfigMap", "PersistentVolumeClaim", "Pod"}
    images = {c["image"] for spec in pods.values() for c in spec["containers"]}
    assert images == {
        "localhost/exchange:smoke",
        "localhost/exchange-postgres:smoke",
        "localhost/exchange-redis:smoke",
    }
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    assert claims == {"data-engine-0", "data-timescaledb-0"}
    # Debian's server in the local image cannot preload TimescaleDB: it starts plain.
    (store,) = pods["timescaledb"]["containers"]
    assert store["args"] == ["postgres"]


def test_addresses_name_pods_and_only_exec_liveness_probes_remain(tmp_path: Path) -> None:
    objects, _ = played(tmp_path)
    pods = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Pod"}
    for name, spec in pods.items():
        for container in spec["containers"]:
            assert "envFrom" not in container, name
            for item in container["env"]:
                assert set(item) == {"name", "value"}, item
                assert "$(" not in item["value"], item
                match = HOST_PORT.match(item["value"])
                if match and "." not in match["host"]:
                    assert match["host"] in pods, f"{name}: {item}"
            for probe in ("readinessProbe", "startupProbe"):
                assert probe not in container, name
            assert "grpc" not in container.get("livenessProbe", {}), name
    published = [p for spec in pods.values() for c in spec["containers"]
                 for p in c.get("ports", []) if "hostPort" in p]  # fmt: skip
    assert published == [
        {"name": "http", "containerPort": 8080, "hostPort": 18081, "hostIP": "127.0.0.1"}
    ]


def test_the_secret_is_a_map_of_base64_values_and_the_gaps_are_named(tmp_path: Path) -> None:
    _, gaps = played(tmp_path)
    values = json.loads((tmp_path / "secret.json").read_text())
    assert set(values) == set(kube.SECRET_KEYS)
    assert all(len(base64.b64decode(v)) == 64 for v in values.values())
    for kind in ("StatefulSet", "Service", "NetworkPolicy", "PodDisruptionBudget", "TimescaleDB"):
        assert any(gap.startswith(f"{kind}:") for gap in gaps), kind

"""compose.yaml runs what the manifests run: the same image and entry points, the same
store images, variables the services read, and addresses that reach a service's port."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.deploy.manifests import (
    OVERLAYS,
    REPO,
    containers,
    is_ours,
    render,
    variables_read,
)

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if "build" in s}
STORE_PORTS = {"redis": 6379, "timescaledb": 5432}
# ${NAME:-default} gives the default; ${NAME:?message} is one the operator must set.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+):(?P<op>[-?])(?P<text>[^}]*)\}")
HOST_PORT = re.compile(r"^(?P<host>[a-z][a-z0-9-]*):(?P<port>\d+)$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    def value(match: re.Match[str]) -> str:
        return match["text"] if match["op"] == "-" else "set-by-the-operator"

    return {k: INTERPOLATION.sub(value, str(v)) for k, v in service["environment"].items()}


def test_the_entry_points_of_the_manifests() -> None:
    manifests = {
        tuple(c["command"]) for o in OVERLAYS for _, c in containers(render(o)) if is_ours(c)
    }
    assert {tuple(s["command"]) for s in OURS.values()} == manifests


def test_the_store_images_of_the_manifests() -> None:
    manifests = {c["image"] for _, c in containers(render("prod")) if not is_ours(c)}
    assert {s["image"] for name, s in SERVICES.items() if name not in OURS} == manifests


def test_every_variable_is_one_the_service_reads() -> None:
    for name, service in OURS.items():
        package = service["command"][2].split(".")[0]
        read = variables_read(package) | variables_read("servicekit") | {"PGPASSWORD"}
        assert set(environment(service)) - read == set(), name


def test_addresses_reach_a_service_port() -> None:
    for name, service in OURS.items():
        for variable, value in environment(service).items():
            match = HOST_PORT.match(value)
            url = urlsplit(value)
            if match:
                host, port = match["host"], int(match["port"])
            elif url.scheme and url.hostname and url.port:
                host, port = url.hostname, url.port
            else:
                continue
            assert host in SERVICES, f"{name}: {variable}={value} names no service"
            if host in STORE_PORTS:
                assert port == STORE_PORTS[host], f"{name}: {variable}={value}"
            else:
                # The target listens where its own variables say.
                assert str(port) in environment(SERVICES[host]).values(), f"{name}: {variable}"


def test_health_checks_ask_the_service_port() -> None:
    for name, service in OURS.items():
        test = service.get("healthcheck", {}).get("test", [])
        if "-c" in test and test[-1].isdigit():
            assert test[-1] in environment(service).values(), name


def test_only_the_gateway_is_published_and_all_are_locked_down() -> None:
    assert [name for name, s in SERVICES.items() if "ports" in s] == ["gateway"]
    for name, service in OURS.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name

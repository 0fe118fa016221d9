"""What an SRE checks in the rendered manifests of each overlay before accepting them:
locked-down containers, requests and limits, pinned images, probes on the health services,
named ports, disruption budgets, network isolation, shutdown within the grace period, no
committed secret, and variables that the services actually read."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import (
    OVERLAYS,
    REPO,
    Obj,
    container_env,
    containers,
    find,
    is_ours,
    matches,
    name_of,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    resolve,
    selected,
    variables_read,
    workloads,
)

# Placeholders for the Secret the operator creates (README, "Deployment").
SECRETS = {
    "exchange-secrets": {
        "gateway-token-secret": "-" * 32,
        "engine-admin-token": "-" * 32,
        "postgres-password": "-",
    }
}
HOST_PORT = re.compile(r"^(?P<host>[a-z][a-z0-9.-]*):(?P<port>\d+)$")


def quantity(value: str | int) -> float:
    """A CPU or memory quantity ("250m", "1", "512Mi", "2Gi") as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    text = str(value)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_are_locked_down(overlay: str) -> None:
    objects = render(overlay)
    labels = of_kind(objects, "Namespace")[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    problems = []
    for workload, container in containers(objects):
        where = f"{name_of(workload)}/{container['name']}"
        pod = pod_spec(workload)
        pod_security = pod.get("securityContext", {})
        security = container.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: seccompProfile")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: a service account token it does not use")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem")
        if security.get("capabilities") != {"drop": ["ALL"]}:
            problems.append(f"{where}: capabilities")
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_requests_and_limits(overlay: str) -> None:
    for workload, container in containers(render(overlay)):
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = quantity(resources["requests"][resource])
            limit = quantity(resources["limits"][resource])
            assert 0 < request <= limit, (name_of(workload), resource)


@pytest.mark.parametrize(("overlay", "image"), [("dev", "exchange:dev"), ("prod", None)])
def test_images_are_pinned(overlay: str, image: str | None) -> None:
    ours = set()
    for _, container in containers(render(overlay)):
        repository, _, tag = container["image"].rpartition(":")
        assert repository, container["image"]
        assert tag not in ("", "latest"), container["image"]
        if is_ours(container):
            ours.add(container["image"])
    assert len(ours) == 1, ours  # one image for every service
    if image is not None:
        assert ours == {image}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_health_services(overlay: str) -> None:
    for workload, container in containers(render(overlay)):
        where = name_of(workload)
        readiness, liveness = container["readinessProbe"], container["livenessProbe"]
        if not is_ours(container):
            continue
        declared = {p["containerPort"] for p in container["ports"]}
        if workload["metadata"]["name"] == "gateway":
            assert readiness["httpGet"] == {"path": "/health", "port": "http"}
            # Liveness must not depend on the backends: an engine outage takes the gateway
            # out of rotation; restarting it would not help.
            assert liveness["httpGet"] == {"path": "/metrics", "port": "http"}
        else:
            kinds = ("readinessProbe", "livenessProbe", "startupProbe")
            for probe in [container[kind] for kind in kinds if kind in container]:
                assert probe["grpc"]["port"] in declared, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_are_named_and_services_target_them(overlay: str) -> None:
    objects = render(overlay)
    for _, container in containers(objects):
        for port in container.get("ports", []):
            assert port.get("name"), container["name"]
    for service in of_kind(objects, "Service"):
        backends = selected(objects, service["spec"]["selector"])
        assert backends, name_of(service)
        for port in service["spec"]["ports"]:
            assert port.get("name"), name_of(service)
            assert isinstance(port["targetPort"], str), name_of(service)
            names = {
                p.get("name")
                for b in backends
                for c in pod_spec(b)["containers"]
                for p in c.get("ports", [])
            }
            assert port["targetPort"] in names, name_of(service)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_one_disruption_budget(overlay: str) -> None:
    objects = render(overlay)
    budgets = of_kind(objects, "PodDisruptionBudget")
    for workload in workloads(objects):
        covering = [b for b in budgets if matches(b["spec"]["selector"], pod_labels(workload))]
        assert len(covering) == 1, name_of(workload)
    # A single writer of state is moved by the operator, not by a node drain.
    for name in ("engine", "timescaledb"):
        assert find(objects, "PodDisruptionBudget", name)["spec"] == {
            "maxUnavailable": 0,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        }


def admits(objects: tuple[Obj, ...], source: Obj | None, target: Obj, port: Obj) -> bool:
    """Whether the NetworkPolicies let `source` (a workload, or None: outside the namespace)
    reach `port` of `target`'s pods."""
    policies = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if "Ingress" in p["spec"]["policyTypes"]
        and matches(p["spec"]["podSelector"], pod_labels(target))
    ]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            if ports and port["containerPort"] not in ports and port["name"] not in ports:
                continue
            if "from" not in rule:
                return True
            for peer in rule["from"]:
                # A podSelector alone means pods of this namespace.
                if (
                    source is not None
                    and set(peer) == {"podSelector"}
                    and matches(peer["podSelector"], pod_labels(source))
                ):
                    return True
    return False


def addresses(objects: tuple[Obj, ...], workload: Obj, container: Obj) -> list[tuple[str, int]]:
    """The cluster addresses (host, port) in a container's environment."""
    found = []
    for value in container_env(objects, workload, container, SECRETS).values():
        if match := HOST_PORT.match(value):
            found.append((match["host"], int(match["port"])))
        elif (parts := urlsplit(value)).scheme and parts.hostname and parts.port:
            found.append((parts.hostname, parts.port))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_isolate_the_services(overlay: str) -> None:
    objects = render(overlay)
    assert any(
        p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        for p in of_kind(objects, "NetworkPolicy")
    ), "no default deny of ingress"

    def reachable_from(source: Obj | None) -> set[str]:
        return {
            name_of(target)
            for target in workloads(objects)
            for c in pod_spec(target)["containers"]
            for port in c.get("ports", [])
            if admits(objects, source, target, port)
        }

    assert reachable_from(None) == {"gateway"}, "only the gateway is reachable from outside"
    database_clients = {
        name_of(source)
        for source in workloads(objects)
        if "timescaledb" in reachable_from(source) and name_of(source) != "timescaledb"
    }
    assert database_clients == {"ledger", "ledger-reader"}

    # ...and every address a service is configured with is open to it.
    for workload, container in containers(objects):
        for host, port in addresses(objects, workload, container):
            target, declared = resolve(objects, host, port)
            assert admits(objects, workload, target, declared), (name_of(workload), host)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_fits_the_grace_period(overlay: str) -> None:
    objects = render(overlay)
    for workload, container in containers(objects):
        if not is_ours(container):
            continue
        env = container_env(objects, workload, container, SECRETS)
        drain = [float(v) for k, v in env.items() if k.endswith("_SHUTDOWN_GRACE_SECONDS")]
        assert len(drain) == 1, name_of(workload)
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
        sleep = float(pre_stop["command"][1]) if pre_stop else 0.0
        # Room left for the engine's snapshot and the service's own cleanup.
        grace = pod_spec(workload)["terminationGracePeriodSeconds"]
        assert sleep + drain[0] <= grace / 2, name_of(workload)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_state_lives_on_persistent_volumes(overlay: str) -> None:
    objects = render(overlay)
    for name, variable in (("engine", "ENGINE_DATA_DIR"), ("timescaledb", "PGDATA")):
        workload = find(objects, "StatefulSet", name)
        container = pod_spec(workload)["containers"][0]
        claim = workload["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == claim)
        path = container_env(objects, workload, container, SECRETS)[variable]
        assert Path(path).is_relative_to(mount["mountPath"]), name


def test_dev_runs_one_of_everything_with_the_faucet() -> None:
    objects = render("dev")
    assert all(w["spec"]["replicas"] == 1 for w in workloads(objects))
    assert gateway_env(objects)["GATEWAY_FAUCET"] == "true"


def gateway_env(objects: tuple[Obj, ...]) -> dict[str, str]:
    gateway = find(objects, "Deployment", "gateway")
    return container_env(objects, gateway, pod_spec(gateway)["containers"][0], SECRETS)


def test_prod_scales_out_spreads_and_mints_nothing() -> None:
    objects = render("prod")
    assert gateway_env(objects)["GATEWAY_FAUCET"] == "false"
    mm = find(objects, "Deployment", "mm")
    assert container_env(objects, mm, pod_spec(mm)["containers"][0], SECRETS)["MM_FUND"] == "false"
    assert "mm-flow" not in {name_of(w) for w in workloads(objects)}
    # Only the engine knows the admin token: nothing else deposits or lists markets.
    holders = {
        name_of(w)
        for w, c in containers(objects)
        for item in c.get("env", [])
        if item.get("valueFrom", {}).get("secretKeyRef", {}).get("key") == "engine-admin-token"
    }
    assert holders == {"engine"}
    autoscaled = {}
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = find(
            objects, hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]
        )
        # The Deployment starts at the autoscaler's floor, so an apply does not fight it.
        assert target["spec"]["replicas"] == hpa["spec"]["minReplicas"] > 1
        autoscaled[name_of(target)] = hpa["spec"]["maxReplicas"]
    assert set(autoscaled) == {"gateway", "stream"}
    for name in ("gateway", "stream", "ledger-reader"):
        affinity = pod_spec(find(objects, "Deployment", name))["affinity"]["podAntiAffinity"]
        term = affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_committed(overlay: str) -> None:
    objects = render(overlay)
    assert of_kind(objects, "Secret") == []
    readme = (REPO / "README.md").read_text()
    deployment = readme[readme.index("## Deployment") :]
    for _, container in containers(objects):
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == "exchange-secrets"
                assert f"--from-literal={ref['key']}=" in deployment, ref["key"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_reaches_the_gateway_with_websockets(overlay: str) -> None:
    objects = render(overlay)
    ingress = find(objects, "Ingress", "gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = find(objects, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert selected(objects, service["spec"]["selector"]) == [
        find(objects, "Deployment", "gateway")
    ]
    annotations = ingress["metadata"]["annotations"]
    # Idle WebSocket connections outlive the proxy's 60 s default.
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_one_the_service_reads(overlay: str) -> None:
    objects = render(overlay)
    for workload, container in containers(objects):
        if not is_ours(container):
            continue
        package = container["command"][2].split(".")[0]
        values = [item.get("value", "") for item in container.get("env", [])]
        # Set only to build another value, as POD_NAME in ENGINE_MARKETS_FILE.
        helpers = {
            item["name"] for item in container.get("env", []) if f"$({item['name']})" in str(values)
        }
        # PGPASSWORD is libpq's variable, read by asyncpg when DATABASE_URL has no password.
        library = {"PGPASSWORD"}
        read = variables_read(package) | variables_read("servicekit")
        env = container_env(objects, workload, container, SECRETS)
        unread = set(env) - read - helpers - library
        assert unread == set(), f"{name_of(workload)} sets variables it never reads: {unread}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_sends_interval_frames(overlay: str) -> None:
    """Topics go out merged per interval (issue 29): the manifests say so explicitly."""
    assert gateway_env(render(overlay))["GATEWAY_WS_INTERVAL_MS"] == "100"

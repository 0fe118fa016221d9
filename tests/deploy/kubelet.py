"""A kubelet for one machine: the containers of rendered manifests as local processes.

It does with a container spec what Kubernetes does, as far as a service can tell: the
command, the environment (envFrom, configMapKeyRef, secretKeyRef, fieldRef, `$(VAR)`
expansion), volumes (ConfigMap and Secret files, empty and persistent folders) and
probes. Only where things are differs on one machine, and only that is rewritten:
container ports become free local ports, cluster DNS names the local address of the pod
behind them (or a store of the test fixtures), mount paths local folders. A DNS name,
Service port or secret that does not resolve is an error, so the manifests cannot point
at something that does not exist.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from launcher.health import HttpProbe, check_health
from launcher.ports import free_port
from tests.deploy.manifests import (
    REPO,
    Obj,
    container_env,
    expand,
    find,
    namespace,
    pod_name,
    pod_spec,
    resolve,
    workloads,
)

LOCALHOST = "127.0.0.1"
HOST_PORT = re.compile(r"^(?P<host>[a-z0-9]([a-z0-9.-]*[a-z0-9])?):(?P<port>\d+)$")
# What the image itself puts in the environment (Dockerfile ENV) that matters here: the
# installed packages (the source tree stands in for them) and unbuffered, bytecode-free runs.
IMAGE_ENV = {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


class ManifestError(AssertionError):
    """The manifests say something Kubernetes could not carry out."""


@dataclass(frozen=True)
class LocalContainer:
    """One container, ready to run here: `argv` in `cwd` (standing for the image's empty,
    read-only working directory) with `env`."""

    workload: Obj
    container: Obj
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    ports: dict[int, int]  # containerPort -> local port

    @property
    def name(self) -> str:
        name: str = self.workload["metadata"]["name"]
        return name

    @property
    def grace_seconds(self) -> int:
        grace: int = pod_spec(self.workload).get("terminationGracePeriodSeconds", 30)
        return grace

    def local_port(self, port: int | str) -> int:
        """The local port of a container port given by number or by name."""
        for declared in self.container.get("ports", []):
            if port in (declared["containerPort"], declared.get("name")):
                return self.ports[declared["containerPort"]]
        raise ManifestError(f"{self.name}: no container port {port!r}")

    async def probe(self, kind: str) -> bool:
        """Whether the container's `kind` probe (readinessProbe, ...) passes now."""
        probe: Obj = self.container[kind]
        timeout = float(probe.get("timeoutSeconds", 1))
        if "grpc" in probe:
            address = f"{LOCALHOST}:{self.local_port(probe['grpc']['port'])}"
            return await check_health(address, probe["grpc"].get("service", ""), timeout)
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://{LOCALHOST}:{self.local_port(get['port'])}{get['path']}"
            return await HttpProbe(url).check(timeout)
        raise ManifestError(f"{self.name}: {kind} {sorted(probe)} is not run here")


class LocalCluster:
    """The rendered manifests of one overlay on this machine, under the folder `root`.

    `secrets` holds the Secrets an operator creates (name -> key -> value); `stores` maps
    the workloads that are not started here (Redis, the database) to the URL of the server
    that stands in for them.
    """

    def __init__(
        self,
        objects: tuple[Obj, ...],
        root: Path,
        *,
        secrets: Mapping[str, Mapping[str, str]],
        stores: Mapping[str, str],
    ) -> None:
        self.objects = objects
        self.root = root
        self.secrets = secrets
        self.stores = stores
        self.namespace = namespace(objects)
        self.ports: dict[tuple[str, int], int] = {
            (w["metadata"]["name"], port["containerPort"]): free_port()
            for w in workloads(objects)
            if w["metadata"]["name"] not in stores
            for c in pod_spec(w)["containers"]
            for port in c.get("ports", [])
        }

    def container(self, workload_name: str) -> LocalContainer:
        """The first container of the workload, resolved to run here."""
        workload = self._workload(workload_name)
        container: Obj = pod_spec(workload)["containers"][0]
        mounts = self._mounts(workload, container)
        ports = {
            p["containerPort"]: self.ports[(workload_name, p["containerPort"])]
            for p in container.get("ports", [])
        }
        env = {
            name: self._localize(value, ports, mounts)
            for name, value in container_env(
                self.objects, workload, container, self.secrets
            ).items()
        }
        argv = [expand(arg, env) for arg in [*container["command"], *container.get("args", [])]]
        if argv[0] == "python":
            argv[0] = sys.executable
        cwd = self.root / pod_name(workload) / "workdir"
        cwd.mkdir(parents=True, exist_ok=True)
        return LocalContainer(workload, container, argv, {**IMAGE_ENV, **env}, cwd, ports)

    def _workload(self, name: str) -> Obj:
        for workload in workloads(self.objects):
            if workload["metadata"]["name"] == name:
                return workload
        raise ManifestError(f"no workload named {name!r}")

    def _mounts(self, workload: Obj, container: Obj) -> dict[str, Path]:
        """Mount path -> local folder, with ConfigMap volumes' files written into theirs."""
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            folder = self.root / pod_name(workload) / "volumes" / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            volume = volumes.get(mount["name"], {})
            if "configMap" in volume:
                data = find(self.objects, "ConfigMap", volume["configMap"]["name"])["data"]
                for key, text in data.items():
                    (folder / key).write_text(text)
            elif "secret" in volume:
                self._write_secret(volume["secret"], folder)
            elif "emptyDir" not in volume and mount["name"] not in claims:
                raise ManifestError(f"volume {mount['name']!r} is not defined or not supported")
            mounts[mount["mountPath"]] = folder
        return mounts

    def _write_secret(self, volume: Obj, folder: Path) -> None:
        """A Secret volume's files (all keys, or its `items`), from the test's secrets."""
        name = volume["secretName"]
        if name not in self.secrets:
            raise ManifestError(f"secret {name!r} is not one the operator creates")
        data = self.secrets[name]
        items = volume.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] not in data:
                raise ManifestError(f"secret {name} has no key {item['key']!r}")
            (folder / item["path"]).write_text(data[item["key"]])

    def _localize(self, value: str, ports: Mapping[int, int], mounts: Mapping[str, Path]) -> str:
        """`value` with a container port, mount path or cluster address made local."""
        if value.isdigit() and int(value) in ports:
            return str(ports[int(value)])
        for mount_path, folder in sorted(mounts.items(), key=lambda m: -len(m[0])):
            if value == mount_path or value.startswith(f"{mount_path}/"):
                return str(folder) + value[len(mount_path) :]
        if match := HOST_PORT.match(value):
            address = self._address(match["host"], int(match["port"]))
            if "://" in address:  # a store's URL
                store = urlsplit(address)
                return f"{store.hostname}:{store.port}"
            return address
        parts = urlsplit(value)
        if parts.scheme and parts.hostname and parts.port:
            address = self._address(parts.hostname, parts.port)
            if "://" in address:
                return address
            user, at, _ = parts.netloc.rpartition("@")
            return parts._replace(netloc=f"{user}{at}{address}").geturl()
        return value

    def _address(self, host: str, port: int) -> str:
        """Where `host:port` (a cluster DNS name) answers here: the local address of the
        container behind it, or the URL of the store standing in for it."""
        try:
            workload, declared = resolve(self.objects, host, port)
        except (AssertionError, ValueError) as exc:
            raise ManifestError(str(exc)) from None
        name: str = workload["metadata"]["name"]
        if name in self.stores:
            return self.stores[name]
        return f"{LOCALHOST}:{self.ports[(name, declared['containerPort'])]}"

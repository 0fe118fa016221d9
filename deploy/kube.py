"""The dev overlay as `podman kube play` (Debian's podman 4.3) can run it, for `make kube-smoke`:

  python -m deploy.kube IMAGE TAG PORT OUT   # writes OUT/play.yaml and OUT/secret.json

What kube play does not run is adapted here, each in one place, and GAPS says why; the
README's deployment section lists the same:
- it creates Pods from Deployments but knows no StatefulSet: each workload becomes one Pod,
  its volumeClaimTemplates a PersistentVolumeClaim (a podman volume);
- it makes no Service: a Pod is named after its workload and reached by that name on the
  network's DNS, so `engine-0.engine` (the headless Service's pod name) reads `engine`;
- the downward API and `$(NAME)` expansion are resolved here to the values the kubelet
  would give, as `tests/deploy` does (`container_env`);
- it has no gRPC probe and runs only exec liveness probes (as a health check): the gRPC
  ones are left out, the services' health is checked by the smoke test through the gateway;
- its Secrets are podman secrets holding a JSON map of base64 values: OUT/secret.json,
  created with `podman secret create` before the play;
- it publishes every declared container port on the host: only the gateway's is kept, on
  127.0.0.1:PORT (the others are declarations; pods reach each other on the network);
- the stores' images are the ones deploy/image.sh builds; that of PostgreSQL is Debian's
  server, without TimescaleDB, so it starts without the manifests' Timescale settings
  (`shared_preload_libraries=timescaledb` would stop it at start) and the ledger takes its
  plain track (PLAIN_POSTGRES).
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import sys
from pathlib import Path

import yaml

from tests.deploy.manifests import (
    Obj,
    container_env,
    containers,
    is_ours,
    pod_name,
    pod_spec,
    render,
    workloads,
)

SECRET = "exchange-secrets"
SECRET_KEYS = ("gateway-token-secret", "engine-admin-token", "postgres-password")
STORE_IMAGES = {"timescale/timescaledb": "exchange-postgres", "redis": "exchange-redis"}
# Kinds kube play has no use for, and why they are not exercised here.
GAPS = {
    "Namespace": "kube play has no namespaces",
    "ServiceAccount": "no API server: nothing to authenticate to",
    "Service": "no Services: pods are reached by name on the podman network's DNS",
    "Ingress": "no ingress controller",
    "NetworkPolicy": "no network policy enforcement in podman",
    "PodDisruptionBudget": "no evictions or drains without a cluster",
    "StatefulSet": "not a kind kube play knows: played as a Pod with a volume claim",
}
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
PLAIN_POSTGRES = (
    "TimescaleDB: the local PostgreSQL image has none; the ledger runs its plain track there"
)


def store_image(image: str, tag: str) -> str:
    repository = image.rsplit(":", 1)[0]
    return f"localhost/{STORE_IMAGES[repository]}:{tag}"


def pod(objects: tuple[Obj, ...], workload: Obj, values: dict[str, dict[str, str]],
        image: str, tag: str, port: int) -> list[Obj]:  # fmt: skip
    """The workload as one Pod (and its volume claims), every container's environment given
    as the values the kubelet would compute."""
    name = workload["metadata"]["name"]
    spec = pod_spec(workload)
    claims = []
    for template in workload["spec"].get("volumeClaimTemplates", []):
        claim = f"{template['metadata']['name']}-{pod_name(workload)}"
        claims.append(obj("PersistentVolumeClaim", claim, spec=template["spec"]))
        spec.setdefault("volumes", []).append(
            {"name": template["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}}
        )
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind, []):
            env = container_env(objects, workload, container, values)
            container["env"] = [{"name": k, "value": local_names(v)} for k, v in env.items()]
            container.pop("envFrom", None)
            container["image"] = (
                image if is_ours(container) else store_image(container["image"], tag)
            )
            if container["image"].startswith("localhost/exchange-postgres:"):
                container["args"] = ["postgres"]
            for probe in PROBES:
                if probe != "livenessProbe" or "exec" not in container.get(probe, {}):
                    container.pop(probe, None)
            # kube play publishes every declared port on the host: only the gateway's.
            if name == "gateway":
                published = {"hostPort": port, "hostIP": "127.0.0.1"}
                container["ports"] = [{**p, **published} for p in container["ports"]]
            else:
                container.pop("ports", None)
    return [*claims, obj("Pod", name, spec=spec)]


def obj(kind: str, name: str, spec: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def local_names(value: str) -> str:
    """`engine-0.engine` is the engine's pod through its headless Service; here the pod is
    `engine` on the network."""
    return value.replace("engine-0.engine", "engine")


def play(image: str, tag: str, port: int, out: Path) -> list[str]:
    """Writes the play and the secret; returns what is not exercised, one line each."""
    objects = copy.deepcopy(render("dev"))  # render's objects are shared: this edits them
    values = {SECRET: {key: secrets.token_hex(32) for key in SECRET_KEYS}}
    probes = sorted({p for _, c in containers(objects) for p in PROBES if p in c})
    played = [o for o in objects if o["kind"] == "ConfigMap"]  # the engine's markets volume
    for workload in workloads(objects):
        played += pod(objects, workload, values, image, tag, port)
    out.mkdir(parents=True, exist_ok=True)
    (out / "play.yaml").write_text(yaml.safe_dump_all(played, sort_keys=False))
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in values[SECRET].items()}
    (out / "secret.json").write_text(json.dumps(encoded))
    kinds = sorted({o["kind"] for o in objects} & set(GAPS))
    return [f"{kind}: {GAPS[kind]}" for kind in kinds] + [
        f"probes ({', '.join(probes)}): only exec liveness probes run, as health checks",
        PLAIN_POSTGRES,
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    for gap in play(argv[0], argv[1], int(argv[2]), Path(argv[3])):
        print(f"not exercised by kube play: {gap}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

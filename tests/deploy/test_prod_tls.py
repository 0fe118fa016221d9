"""What the prod overlay enforces on the wire, read from its rendered manifests: every gRPC
server and client of ours has mutual TLS configured with files that a Secret mounts (and
only its user can read), its probes ask the plaintext health port rather than the mTLS one,
every database and Redis URL requires verified TLS, and the stores serve TLS only. Every
Secret and the names each certificate must carry are in the README. The dev overlay
(played by `make kube-smoke` with no certificates) stays plaintext.

tests/deploy/test_store_tls.py runs the overlay's URLs against real TLS servers.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.deploy.manifests import (
    REPO,
    Obj,
    container_env,
    containers,
    find,
    is_ours,
    name_of,
    pod_spec,
    render,
    resolve,
)
from tests.deploy.test_policy import SECRETS, addresses

MESH = ("GRPC_TLS_CA", "GRPC_TLS_CERT", "GRPC_TLS_KEY")
# The layout of every TLS Secret (cert-manager's): the deployment CA, a certificate, its key.
TLS_KEYS = ("ca.crt", "tls.crt", "tls.key")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def secret_files(workload: Obj, container: Obj) -> dict[str, str]:
    """Path -> Secret name of every file the container sees from a Secret volume."""
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")  # else a claim, an emptyDir…
        if secret is None:
            continue
        items = secret.get("items") or [{"key": k, "path": k} for k in TLS_KEYS]
        for item in items:
            files[f"{mount['mountPath']}/{item['path']}"] = secret["secretName"]
    return files


def readable_by_its_user_alone(workload: Obj) -> bool:
    """Secret files are root's: the pod's group (fsGroup) may read them, nobody else."""
    pod = pod_spec(workload)
    modes = [v["secret"].get("defaultMode", 0o644) for v in pod["volumes"] if "secret" in v]
    group = pod["securityContext"].get("fsGroup")
    return group == pod["securityContext"]["runAsGroup"] and all(m == 0o440 for m in modes)


def env_of(objects: tuple[Obj, ...], workload: Obj, container: Obj) -> dict[str, str]:
    return container_env(objects, workload, container, SECRETS)


def test_every_grpc_server_and_client_in_prod_has_mutual_tls() -> None:
    objects = render("prod")
    ours = [(w, c) for w, c in containers(objects) if is_ours(c)]
    assert {name_of(w) for w, _ in ours} >= {"engine", "ledger", "stream", "gateway", "mm"}
    for workload, container in ours:
        where = name_of(workload)
        env, files = env_of(objects, workload, container), secret_files(workload, container)
        for variable in MESH:
            assert env.get(variable) in files, (where, variable)
        (secret,) = {files[env[v]] for v in MESH}  # one Secret: the service's own
        assert secret.startswith("mesh-tls-"), where
        assert readable_by_its_user_alone(workload), where


def test_grpc_probes_ask_the_plaintext_health_port() -> None:
    """Under mTLS the kubelet, which holds no certificate, cannot ask the gRPC port."""
    objects = render("prod")
    for workload, container in containers(objects):
        probes = [container[k]["grpc"] for k in PROBES if "grpc" in container.get(k, {})]
        if not is_ours(container) or not probes:
            continue
        env = env_of(objects, workload, container)
        served = {p["name"]: p["containerPort"] for p in container["ports"]}
        if "GRPC_HEALTH_PORT" not in env:  # mm: its health port is plaintext only
            assert name_of(workload) == "mm"
            continue
        assert served["probe"] == int(env["GRPC_HEALTH_PORT"]), name_of(workload)
        assert all(p["port"] == served["probe"] for p in probes), name_of(workload)


def test_every_database_and_redis_url_requires_verified_tls() -> None:
    objects = render("prod")
    urls = 0
    for workload, container in containers(objects):
        files = secret_files(workload, container)
        for name, value in env_of(objects, workload, container).items():
            parts = urlsplit(value)
            query = dict(parse_qsl(parts.query))
            where = (name_of(workload), name)
            if parts.scheme in ("postgres", "postgresql"):
                assert query["sslmode"] == "verify-full", where
                assert query["sslrootcert"] in files, where
            elif parts.scheme.startswith("redis"):
                assert parts.scheme == "rediss", where
                assert query["ssl_cert_reqs"] == "required", where
                assert query["ssl_check_hostname"] == "true", where
                for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
                    assert query[key] in files, (where, key)
            else:
                continue
            urls += 1
    assert urls >= 5  # ledger, ledger-reader; gateway, stream, publisher


def test_the_stores_serve_tls_only() -> None:
    objects = render("prod")
    redis = find(objects, "Deployment", "redis")
    container = pod_spec(redis)["containers"][0]
    args, files = container["args"], secret_files(redis, container)
    option = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert (option["--port"], option["--tls-port"]) == ("0", "6379")  # no plaintext port
    assert option["--tls-auth-clients"] == "yes"
    for flag in ("--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file"):
        assert files.get(option[flag]) == "redis-tls", flag
    assert "--tls" in container["readinessProbe"]["exec"]["command"]
    assert readable_by_its_user_alone(redis)

    database = find(objects, "StatefulSet", "timescaledb")
    container = pod_spec(database)["containers"][0]
    files = secret_files(database, container)
    settings = dict(
        arg.split("=", 1) for arg in container["args"] if "=" in arg and not arg.startswith("-")
    )
    assert settings["ssl"] == "on"
    for key in ("ssl_cert_file", "ssl_key_file"):
        assert files.get(settings[key]) == "timescaledb-tls", key
    assert readable_by_its_user_alone(database)


def test_every_secret_and_the_names_its_certificate_carries_are_documented() -> None:
    """The README's Deployment section names each Secret the overlay mounts, on one line
    with every host its clients dial (the certificate must name it: clients check)."""
    objects = render("prod")
    readme = (REPO / "README.md").read_text()
    lines = readme[readme.index("## Deployment") :].splitlines()
    mounted = {s for w, c in containers(objects) for s in secret_files(w, c).values()}
    for secret in mounted:
        assert any(f"`{secret}`" in line for line in lines), secret
    for workload, container in containers(objects):
        for host, port in addresses(objects, workload, container):
            target, _ = resolve(objects, host, port)
            served = next(c for c in pod_spec(target)["containers"])
            secrets = set(secret_files(target, served).values())
            assert any(
                f"`{host}`" in line and any(f"`{s}`" in line for s in secrets) for line in lines
            ), (name_of(workload), host, secrets)


def test_dev_stays_plaintext() -> None:
    objects = render("dev")
    for workload, container in containers(objects):
        env = env_of(objects, workload, container)
        assert not set(MESH) & set(env), name_of(workload)
        assert not secret_files(workload, container), name_of(workload)

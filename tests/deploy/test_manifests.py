"""The deployment artefacts in deploy/: the Dockerfile linted by hadolint, every Kubernetes manifest
validated against the API schemas (kubernetes-validate, offline), the compose file checked for
what it references, and all of them checked against the gateway itself: its settings, its
routes, and the shutdown timeline (drain < grace period)."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from crossroads.app import admin_key
from crossroads.governance.vault import VaultError, load_master
from crossroads.http.routes import match
from crossroads.settings import SettingsError, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
NGINX = DEPLOY / "nginx.conf"
K8S = DEPLOY / "k8s"
# The oldest and newest Kubernetes versions the manifests are checked against.
K8S_VERSIONS = ("1.29.0", "1.37.0")
DOCKER_STOP_DEFAULT_S = 10
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# Valid stand-ins for the values that come from secrets.
STAND_INS = {
    "CROSSROADS_DATABASE_URL": "postgresql://crossroads:x@postgres:5432/crossroads",
    "CROSSROADS_REDIS_URL": "redis://redis:6379/0",
}


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (requirements/dev.txt)")
    return found


# -- the Dockerfile -----------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        word, _, rest = whole.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _env_pairs(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    stages = [i for i, (word, _) in enumerate(INSTRUCTIONS) if word == "FROM"]
    for word, args in INSTRUCTIONS[stages[-1] :]:
        if word == "ENV":
            env.update(_env_pairs(args))
    return env


INSTRUCTIONS = _instructions(DOCKERFILE.read_text())


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, check=False
    )


def test_hadolint_passes_the_dockerfile() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install crossroads\nCMD crossroads serve\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_the_image_is_multi_stage_from_one_pinned_base() -> None:
    args = {}
    for word, rest in INSTRUCTIONS:
        if word == "ARG" and "=" in rest:
            name, value = rest.split("=", 1)
            args[name] = value.strip('"')
    froms = [rest.split() for word, rest in INSTRUCTIONS if word == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    assert froms[0][-1] == "builder"
    bases = {re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0]) for parts in froms}
    assert len(bases) == 1, bases
    (base,) = bases
    assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim-[a-z]+", base), f"an exact tag, not {base}"
    runtime = [w for w, _ in INSTRUCTIONS][[w for w, _ in INSTRUCTIONS].index("FROM", 1) :]
    copies = [rest for word, rest in INSTRUCTIONS if word in ("COPY", "RUN")]
    assert any("from=builder" in c for c in copies), "the runtime stage takes the builder's wheels"
    assert "USER" in runtime


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in INSTRUCTIONS if word == "USER"]
    assert users, "a USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user


def test_the_image_healthcheck_hits_health_and_the_port_is_exposed() -> None:
    (check,) = [rest for word, rest in INSTRUCTIONS if word == "HEALTHCHECK"]
    assert "/health'" in check or '/health"' in check, check
    assert "curl" not in check and "wget" not in check  # the slim image has neither
    assert match("GET", "/health").endpoint == "health"
    env = _image_env()
    exposed = [rest for word, rest in INSTRUCTIONS if word == "EXPOSE"]
    assert exposed == [env["CROSSROADS_PORT"]] == ["8787"]
    assert env["CROSSROADS_HOST"] == "0.0.0.0"


def test_the_image_drains_within_docker_stops_grace_period() -> None:
    assert ("STOPSIGNAL", "SIGTERM") in INSTRUCTIONS
    settings = load_settings(env=_image_env())  # the image's variables are valid settings
    assert settings.drain_timeout_s < DOCKER_STOP_DEFAULT_S
    assert settings.host == "0.0.0.0" and settings.port == 8787
    entry = [rest for word, rest in INSTRUCTIONS if word == "ENTRYPOINT"]
    assert entry == ['["crossroads"]'], "exec form: the gateway is PID 1 and gets SIGTERM itself"


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    for word, rest in INSTRUCTIONS:
        if word == "COPY" and "--from" not in rest:
            *sources, _ = rest.split()
            for source in sources:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"
                assert (ROOT / source).exists(), source


# -- Kubernetes -------------------------------------------------------------------------------


def _documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                yield path, document


DOCUMENTS = list(_documents())


def _one(kind: str) -> dict[str, Any]:
    found = [d for _, d in DOCUMENTS if d["kind"] == kind]
    assert len(found) == 1, f"one {kind}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    "document", [d for _, d in DOCUMENTS], ids=[f"{p.name}:{d['kind']}" for p, d in DOCUMENTS]
)
def test_every_manifest_validates_against_the_kubernetes_schema(
    document: dict[str, Any], version: str
) -> None:
    validator: Any = importlib.import_module("kubernetes_validate")
    # strict: unknown fields are errors; a kind without a schema raises too (not a warning).
    validator.validate(document, version, strict=True)


def test_the_schema_validator_does_reject_a_broken_manifest() -> None:
    validator: Any = importlib.import_module("kubernetes_validate")
    broken = yaml.safe_load((K8S / "deployment.yaml").read_text())
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/ready"
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_every_kind_a_deployment_needs_is_there() -> None:
    kinds = sorted(d["kind"] for _, d in DOCUMENTS)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "Service"]
    )
    assert _one("HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"


def _container() -> dict[str, Any]:
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = container
    return result


def _pod() -> dict[str, Any]:
    pod: dict[str, Any] = _one("Deployment")["spec"]["template"]["spec"]
    return pod


def _container_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in _container()["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == _one("Secret")["metadata"]["name"]
            assert ref["key"] in _one("Secret")["stringData"], ref
            env[entry["name"]] = STAND_INS[entry["name"]]
    return env


def _mounts() -> dict[str, dict[str, Any]]:
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in _container()["volumeMounts"]}


def _file_in_pod(path: str) -> str:
    """The contents of a file the pod reads from a ConfigMap or Secret volume."""
    directory, _, name = path.rpartition("/")
    volume = _mounts()[directory]
    if "configMap" in volume:
        source = _one("ConfigMap")
        assert volume["configMap"]["name"] == source["metadata"]["name"]
        data: Mapping[str, str] = source["data"]
    else:
        source = _one("Secret")
        assert volume["secret"]["secretName"] == source["metadata"]["name"]
        items = {i["path"]: i["key"] for i in volume["secret"].get("items", [])}
        name = items.get(name, name)
        data = source["stringData"]
    assert name in data, f"{path}: no key {name} in {source['metadata']['name']}"
    return data[name]


def _pod_settings(tmp_path: Path) -> Any:
    """The settings a pod runs with: the image's variables, the Deployment's, the ConfigMap's file."""
    env = {**_image_env(), **_container_env()}
    settings_file = tmp_path / "crossroads.yaml"
    settings_file.write_text(_file_in_pod(env["CROSSROADS_CONFIG"]))
    for name in ("CROSSROADS_MASTER_KEY_FILE", "CROSSROADS_ADMIN_KEY_FILE"):
        _file_in_pod(env[name])  # mounted from the Secret
        env[name] = str(tmp_path / "unused")  # read by the app at start-up, not by load_settings
    return load_settings(settings_file, env={**env, "CROSSROADS_CONFIG": str(settings_file)})


def test_the_pod_settings_are_valid_and_production_ready(tmp_path: Path) -> None:
    settings = _pod_settings(tmp_path)
    assert settings.host == "0.0.0.0"
    assert settings.require_api_key
    assert settings.database_url.startswith("postgresql://")
    assert settings.redis_url is not None
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    assert ports == {"http": settings.port}
    assert _container()["image"] == f"crossroads:{VERSION}"


def test_termination_grace_covers_the_pre_stop_sleep_and_the_drain(tmp_path: Path) -> None:
    drain = _pod_settings(tmp_path).drain_timeout_s
    grace = _pod()["terminationGracePeriodSeconds"]
    command = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    pre_stop = float(command[1])
    assert pre_stop > 0, "a pause for the endpoints to drop the pod before it stops listening"
    assert drain < grace - pre_stop, f"drain {drain} s must end before grace {grace} s - preStop {pre_stop} s"
    assert grace - pre_stop - drain >= 5, "a margin for closing pools after the drain"


def test_the_probes_hit_the_gateways_health_and_readiness_routes() -> None:
    container = _container()
    ports = {p["name"] for p in container["ports"]}
    expected = {"readinessProbe": "ready", "livenessProbe": "health", "startupProbe": "ready"}
    for probe, endpoint in expected.items():
        get = container[probe]["httpGet"]
        assert get["port"] in ports
        assert match("GET", get["path"]).endpoint == endpoint, (probe, get["path"])


def test_the_pod_is_non_root_with_a_read_only_root_filesystem(tmp_path: Path) -> None:
    pod, container = _pod(), _container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    users = [rest for word, rest in INSTRUCTIONS if word == "USER"]
    assert str(pod["securityContext"]["runAsUser"]) == users[-1].split(":")[0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # What the app writes: an embedded SQLite catalog (not used here: PostgreSQL), and with
    # workers > 1 the metrics files under the temporary directory, the image's WORKDIR.
    assert not _pod_settings(tmp_path).database_url.startswith("sqlite")
    workdir = [rest for word, rest in INSTRUCTIONS if word == "WORKDIR"][-1]
    assert workdir == "/tmp"
    assert "emptyDir" in _mounts()["/tmp"]
    assert pod["automountServiceAccountToken"] is False


def test_selectors_and_the_autoscaler_point_at_the_deployment() -> None:
    deployment = _one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert _one("Service")["spec"]["selector"].items() <= labels.items()
    assert _one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = _one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    port_names = {p["name"] for p in _container()["ports"]}
    assert all(p["targetPort"] in port_names for p in _one("Service")["spec"]["ports"])
    # A voluntary disruption (a node drain) can always go ahead without taking the service down.
    hpa, pdb = _one("HorizontalPodAutoscaler")["spec"], _one("PodDisruptionBudget")["spec"]
    assert hpa["minReplicas"] > pdb["minAvailable"] >= 1
    assert deployment["spec"]["replicas"] >= hpa["minReplicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    requests = _container()["resources"]["requests"]
    assert "cpu" in requests, "the CPU utilisation target needs a CPU request"


def test_the_secret_placeholders_are_marked_and_refused_by_the_gateway() -> None:
    text = (K8S / "secret.yaml").read_text()
    assert "PLACEHOLDER" in text
    data = _one("Secret")["stringData"]
    assert all("REPLACE-ME" in value for key, value in data.items() if key != "redis-url")
    with pytest.raises(VaultError):
        load_master(data["master-key"], None)
    with pytest.raises(SettingsError):
        admin_key(parse_settings({"admin_key": data["admin-key"]}))


# -- docker compose ---------------------------------------------------------------------------

COMPOSE_DOC: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
_SUBSTITUTION = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {k: _SUBSTITUTION.sub("secret", str(v)) for k, v in env.items()}


def _gateways() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = COMPOSE_DOC["services"]
    return {
        name: s for name, s in services.items() if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def _seconds(value: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", value)
    assert found, value
    return float(found.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[found.group(2)]


def test_compose_runs_two_gateway_replicas_on_shared_postgres_and_redis(tmp_path: Path) -> None:
    services = COMPOSE_DOC["services"]
    gateways = _gateways()
    assert len(gateways) >= 2, sorted(services)
    for name, service in gateways.items():
        assert service["image"] == f"crossroads:{VERSION}"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
        env = {**_image_env(), **_compose_env(service)}
        for variable in ("CROSSROADS_MASTER_KEY_FILE", "CROSSROADS_ADMIN_KEY_FILE"):
            secret = Path(env[variable]).name
            assert env[variable] == f"/run/secrets/{secret}" and secret in service["secrets"], variable
            env[variable] = str(tmp_path / secret)
        settings = load_settings(env=env)
        assert settings.require_api_key
        assert settings.database_url.startswith("postgresql://")
        assert settings.redis_url is not None
        db_host = settings.database_url.split("@", 1)[1].split(":")[0]
        redis_host = settings.redis_url.split("//", 1)[1].split(":")[0]
        assert db_host in services and redis_host in services, (db_host, redis_host)
        assert {db_host, redis_host} <= set(service["depends_on"]), name
        grace = _seconds(service["stop_grace_period"])
        assert settings.drain_timeout_s < grace, (
            f"{name}: drain {settings.drain_timeout_s} s vs grace {grace} s"
        )
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert len({str(_compose_env(s)) for s in gateways.values()}) == 1, "replicas are configured alike"


def test_compose_references_only_what_exists() -> None:
    services = COMPOSE_DOC["services"]
    secrets_ = COMPOSE_DOC.get("secrets", {})
    volumes = COMPOSE_DOC.get("volumes", {})
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown {needed}"
            if service["depends_on"][needed].get("condition") == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no healthcheck"
        for secret in service.get("secrets", []):
            assert secret in secrets_, f"{name}: unknown secret {secret}"
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in volumes, f"{name}: unknown volume {source}"
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
        assert "healthcheck" in service, f"{name} has no healthcheck"
    for spec in secrets_.values():
        assert (DEPLOY / spec["file"]).parent.is_dir()
        assert spec["file"].startswith("./secrets/")
    ignored = (DEPLOY / "secrets" / ".gitignore").read_text().splitlines()
    assert "*" in ignored, "secret files are never committed"


def test_compose_gateway_healthchecks_hit_health() -> None:
    for name, service in _gateways().items():
        test = " ".join(service["healthcheck"]["test"])
        path = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", test)
        assert path, f"{name}: {test}"
        assert path.group(1) == "8787" and match("GET", path.group(2)).endpoint == "health"


def test_the_load_balancer_sends_to_every_replica_and_relays_streams() -> None:
    services = COMPOSE_DOC["services"]
    (lb,) = [s for s in services.values() if s["image"].startswith("nginx:")]
    (mount,) = [m for m in lb["volumes"] if m.startswith("./nginx.conf:")]
    assert mount.split(":")[1] == "/etc/nginx/nginx.conf"
    conf = NGINX.read_text()
    upstream = re.search(r"upstream\s+(\w+)\s*\{([^}]*)\}", conf)
    assert upstream, "an upstream block"
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream.group(2), re.MULTILINE)
    assert sorted(host for host, _ in servers) == sorted(_gateways())
    assert all(port == "8787" for _, port in servers)
    assert f"proxy_pass http://{upstream.group(1)};" in conf
    assert re.search(r"^\s*proxy_buffering off;", conf, re.MULTILINE), "streams are not buffered"
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    assert size and int(size.group(1)) * 1024 * 1024 > parse_settings({}).max_request_bytes
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", conf)
    assert read_timeout and int(read_timeout.group(1)) * 1000 > parse_settings({}).request_timeout_ms
    published = lb["ports"][0].split(":")[-1]
    assert re.search(rf"listen {published};", conf)

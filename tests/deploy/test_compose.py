"""Structure of compose.yaml (and the Dockerfile it builds): what the Compose schema cannot say.

Docker cannot run on the development machine, so `make compose-check` validates compose.yaml against the Compose
JSON schema and then these rules: only the edge publishes a port, every image is pinned, every service has a
health check that `docker compose up --wait` can rely on, the database and log services stay on internal
networks, no secret is written in the file, and the API runs hardened. .github/workflows/compose-e2e.yml runs
the stack for real.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
K8S_DIR = ROOT / "deploy" / "k8s"

sys.path.insert(0, str(ROOT / "tests" / "stack"))
import harness  # noqa: E402  (the stack test's view of the nginx template and Prometheus flags)

COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
NETWORKS: dict[str, dict] = COMPOSE.get("networks") or {}

EDGE = "nginx"
API = "revwallet-api"
DATABASE = "revwallet-db"
LOG_SERVICES = ("loki", "alloy")
ALERTS = "alertmanager"
EXPECTED_SERVICES = {API, DATABASE, EDGE, "prometheus", "grafana", "loki", "alloy", ALERTS, "revwallet-backup"}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; `$$` is a literal dollar.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# `_KEY$` covers REVWALLET_BOOTSTRAP_ADMIN_KEY (an API key) and any later *_KEY credential.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE|API_?KEY|_KEY$", re.IGNORECASE)


def service_networks(service: dict) -> list[str]:
    networks = service.get("networks", ["default"])
    return list(networks) if isinstance(networks, (list, dict)) else []


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def strings(node) -> list[str]:
    """Every string value in a YAML tree (comments are not part of it)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def image_reference(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    last = image.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        tag = last.split(":", 1)[1]
        image = image[: len(image) - len(tag) - 1]
    return image, tag, digest


def test_the_stack_has_exactly_the_expected_services():
    assert set(SERVICES) == EXPECTED_SERVICES


def test_only_the_edge_publishes_a_port():
    publishing = sorted(name for name, svc in SERVICES.items() if svc.get("ports"))
    assert publishing == [EDGE], f"only {EDGE} may publish ports, these do: {publishing}"
    ports = SERVICES[EDGE]["ports"]
    assert len(ports) == 1, ports
    published = str(ports[0])
    assert published.endswith(":80") and "${HTTP_PORT:-80}" in published, published


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_to_a_version(name):
    service = SERVICES[name]
    image = service.get("image")
    assert image, f"{name} has no image name"
    repository, tag, digest = image_reference(image)
    if "build" in service:
        # Built from this repository: never pulled, never :latest.
        assert service.get("pull_policy") == "build", f"{name} is built here; set pull_policy: build"
        assert tag and tag != "latest", f"{name}: give the built image a tag other than latest ({image})"
        return
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{name}: malformed digest in {image}"
    assert tag or digest, f"{name}: {image} is not pinned (no tag or digest)"
    if tag:
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: tag of {image} is not a version"


def test_the_dockerfile_pins_its_base_images_and_runs_hardened():
    text = DOCKERFILE.read_text()
    stages: set[str] = set()
    bases = []
    for match in re.finditer(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I):
        base, alias = match.group(1), match.group(2)
        # `scratch` is the empty image: nothing is pulled, so there is nothing to pin.
        if base not in stages and base != "scratch":
            bases.append(base)
            repository, tag, digest = image_reference(base)
            assert digest or (tag and tag != "latest"), f"Dockerfile: base image {base} is not pinned"
            # Project rule: no registry host in a committed file; base images are named by repository alone.
            first = repository.split("/", 1)[0]
            assert "/" not in repository or not ("." in first or ":" in first or first == "localhost"), (
                f"Dockerfile: base image {base} names a registry host")
        if alias:
            stages.add(alias)
    assert any(re.search(r":\d+\.\d+", b) for b in bases), f"the build image carries no version: {bases}"
    # A `scratch` runtime (ADR 0040) has no libc: the builder must check that the binary needs no shared library.
    runtime = re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", text, re.M | re.I)[-1]
    if runtime == "scratch":
        assert "readelf" in text, "the runtime is scratch but the builder does not check the binary is static"
    assert re.search(r"cargo auditable build --release --locked", text), "release build with --locked"
    assert re.search(r"cargo install cargo-chef --locked --version \d", text), "cargo-chef pinned"
    assert re.search(r"^USER 10001:10001$", text, re.M), "runtime user uid 10001"
    assert re.search(r'^\s*CMD \["/usr/local/bin/revwallet", "healthcheck"\]', text, re.M), "HEALTHCHECK"
    assert "REVWALLET_LISTEN=0.0.0.0:8080" in text and "REVWALLET_LOG_FORMAT=json" in text
    assert re.search(r"^EXPOSE 8080$", text, re.M)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_health_check(name):
    check = SERVICES[name].get("healthcheck") or {}
    assert not check.get("disable"), f"{name}: health check disabled"
    test = check.get("test")
    assert test and test not in (["NONE"], "NONE"), f"{name} has no health check; `up --wait` cannot know it is ready"
    assert check.get("interval") and check.get("retries"), f"{name}: set interval and retries"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dependencies_wait_for_health(name):
    depends = SERVICES[name].get("depends_on") or {}
    assert isinstance(depends, dict), f"{name}: use the long depends_on form with conditions"
    for dependency, spec in depends.items():
        assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
        assert spec.get("condition") == "service_healthy", f"{name} -> {dependency}: condition: service_healthy"


def test_the_internal_network_is_internal_and_only_the_edge_leaves_it():
    internal = {n for n, spec in NETWORKS.items() if (spec or {}).get("internal") is True}
    assert internal, "no network with internal: true"
    for name, service in SERVICES.items():
        networks = set(service_networks(service))
        assert networks, f"{name} is on no network"
        if name == EDGE:
            assert networks & internal and networks - internal, f"{EDGE} joins the internal and the edge network"
        elif name == ALERTS:
            # Alertmanager's way out to the receiver, a network no other service joins.
            assert networks - internal == {"alerts"}, f"{ALERTS} joins the internal network and `alerts` only"
        else:
            assert networks <= internal, f"{name} must be on internal networks only, is on {sorted(networks)}"


@pytest.mark.parametrize("name", [DATABASE, *LOG_SERVICES])
def test_database_and_log_services_are_only_on_internal_networks(name):
    for network in service_networks(SERVICES[name]):
        assert (NETWORKS.get(network) or {}).get("internal") is True, f"{name} is on non-internal network {network}"


def test_no_secret_is_written_in_the_compose_file():
    for name, service in SERVICES.items():
        for key, value in environment(service).items():
            refs = INTERPOLATION.findall(value)
            if SECRET_NAME.search(key):
                assert refs, f"{name}.{key} holds a literal; take it from .env (${{{key}:?...}})"
                assert INTERPOLATION.sub("", value).strip() == "", f"{name}.{key} mixes a literal into a secret"
            for var, operator, default in refs:
                if SECRET_NAME.search(var):
                    assert operator in ("", ":?", "?"), f"{name}.{key}: secret {var} must not have a default"
    # Secrets inside URLs: the userinfo password must be one interpolation and nothing else.
    for name, service in SERVICES.items():
        for key, value in environment(service).items():
            refs: list[str] = []
            masked = INTERPOLATION.sub(lambda m: refs.append(m.group(0)) or f"\0{len(refs) - 1}\0", value)
            match = re.match(r"^[a-z][a-z0-9+.-]*://([^@/]*)@", masked)
            if match and ":" in match.group(1):
                password = match.group(1).split(":", 1)[1]
                assert re.fullmatch(r"\0\d+\0", password), f"{name}.{key}: the password in the URL is literal"


def test_every_interpolated_variable_is_documented_in_env_example():
    example = {
        line.split("=", 1)[0].strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    refs = [ref for value in strings(COMPOSE) for ref in INTERPOLATION.findall(value)]
    for var, operator, _ in refs:
        assert var in example, f"compose.yaml reads ${{{var}}}; document it in .env.example"
    required = {var for var, operator, _ in refs if operator in ("", ":?", "?")}
    assert {"POSTGRES_PASSWORD", "REVWALLET_ADMIN_PASSWORD", "REVWALLET_BOOTSTRAP_ADMIN_KEY"} <= required, (
        "passwords and the bootstrap API key have no default in compose.yaml")
    assert ".env" in (ROOT / ".gitignore").read_text().split(), ".env must be ignored by git"


def test_the_api_runs_hardened():
    api = SERVICES[API]
    assert api.get("read_only") is True, "read-only root filesystem"
    assert "no-new-privileges:true" in (api.get("security_opt") or []), "no-new-privileges"
    assert "ALL" in (api.get("cap_drop") or []), "cap_drop: ALL"
    assert not api.get("cap_add"), "the API needs no capability"
    assert not api.get("privileged")
    user = str(api.get("user", ""))
    assert user and not user.startswith(("0", "root")), "runs as a non-root user"
    env = environment(api)
    assert env.get("REVWALLET_LISTEN") == "0.0.0.0:8080"
    assert env.get("REVWALLET_LOG_FORMAT") == "json"
    assert re.match(r"^postgres://[^@]+@revwallet-db:5432/", env.get("DATABASE_URL", "")), env.get("DATABASE_URL")


def test_the_api_gets_its_first_admin_key_from_env_and_keeps_auth_on():
    env = environment(SERVICES[API])
    # Required (`:?`): no stack starts with a guessable key or without one it can hand to its clients.
    assert env.get("REVWALLET_BOOTSTRAP_ADMIN_KEY", "").startswith("${REVWALLET_BOOTSTRAP_ADMIN_KEY:?"), env
    # api-key is the default; the Compose stack must never switch access control off.
    assert env.get("REVWALLET_AUTH", "api-key") == "api-key", "the stack serves the API with access control on"
    # The example leaves the key empty: `make up` generates a fresh one, so no committed key can ever work.
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    assert example.get("REVWALLET_BOOTSTRAP_ADMIN_KEY") == "", ".env.example must leave the API key empty"
    makefile = (ROOT / "mk" / "stack.mk").read_text()
    up = makefile.split("\nup:", 1)[1].split("\n\n", 1)[0]
    assert "REVWALLET_BOOTSTRAP_ADMIN_KEY" in up and "openssl rand" in up, "make up generates the key into .env"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_service_is_privileged_or_can_gain_privileges(name):
    service = SERVICES[name]
    assert not service.get("privileged"), f"{name} is privileged"
    assert "no-new-privileges:true" in (service.get("security_opt") or []), f"{name}: no-new-privileges"
    assert service.get("network_mode") != "host" and service.get("pid") != "host", name


def test_only_alloy_sees_the_docker_socket_and_read_only():
    for name, service in SERVICES.items():
        for volume in service.get("volumes") or []:
            if "docker.sock" in str(volume):
                assert name == "alloy", f"{name} mounts the Docker socket"
                assert str(volume).endswith(":ro"), "the socket is mounted read-only"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounts_exist_in_the_repository(name):
    for volume in SERVICES[name].get("volumes") or []:
        source = str(volume).split(":", 1)[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_the_edge_gets_the_template_variables_the_stack_test_uses():
    env = environment(SERVICES[EDGE])
    assert set(harness.NGINX_TEMPLATE_VARIABLES) <= set(env), "every template variable is set for nginx"
    assert harness.template_variables(harness.NGINX_TEMPLATE.read_text()) <= set(harness.NGINX_TEMPLATE_VARIABLES)
    # The image's envsubst filter (an awk regex; `$$` is Compose's escaped `$`) selects exactly those names.
    pattern = re.compile(env["NGINX_ENVSUBST_FILTER"].replace("$$", "$"))
    assert all(pattern.search(v) for v in harness.NGINX_TEMPLATE_VARIABLES)
    assert not any(pattern.search(v) for v in ("PATH", "HOSTNAME", "ADMIN_PASSWORD", "NGINX_VERSION"))
    assert env["REVWALLET_UPSTREAM"] == f"{API}:8080"
    assert env["GRAFANA_UPSTREAM"] == "grafana:3000" and env["PROMETHEUS_UPSTREAM"] == "prometheus:9090"
    assert "ADMIN_USER" in env and "ADMIN_PASSWORD" in env, "the htpasswd entrypoint script's inputs"
    volumes = [str(v) for v in SERVICES[EDGE].get("volumes") or []]
    assert any(v.startswith("./deploy/nginx/templates:/etc/nginx/templates") for v in volumes)
    assert any("/docker-entrypoint.d/40-revwallet-htpasswd.sh" in v for v in volumes)


def test_prometheus_runs_with_the_flags_the_stack_test_uses():
    command = SERVICES["prometheus"].get("command") or []
    for flag in harness.PROMETHEUS_PATH_FLAGS:
        assert flag in command, f"compose's Prometheus lacks {flag} (the stack test and Grafana rely on it)"


def test_images_match_the_kubernetes_manifests():
    # One version per image across Compose and Kubernetes (the manifests say so; Dependabot bumps both).
    k8s_images: dict[str, set[str]] = {}
    for manifest in K8S_DIR.rglob("*.yaml"):
        for match in re.finditer(r"^\s*(?:-\s*)?image:\s*[\"']?([^\s\"'#]+)", manifest.read_text(), re.M):
            repository, tag, _ = image_reference(match.group(1))
            if tag:
                k8s_images.setdefault(repository, set()).add(tag)
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        repository, tag, _ = image_reference(service["image"])
        if repository in k8s_images:
            assert k8s_images[repository] == {tag}, (
                f"{name}: compose.yaml uses {repository}:{tag}, deploy/k8s uses {sorted(k8s_images[repository])}"
            )


def test_the_edge_restarts_with_every_upstream_it_resolves():
    # nginx resolves `server name:port` once at start; a recreated upstream container has a new address.
    edge = COMPOSE["services"]["nginx"]
    upstreams = {v.split(":")[0] for k, v in edge["environment"].items() if k.endswith("_UPSTREAM")}
    assert upstreams == {"revwallet-api", "grafana", "prometheus"}, upstreams
    for name in upstreams:
        dep = edge["depends_on"].get(name) or {}
        assert dep.get("restart") is True and dep.get("condition") == "service_healthy", (
            f"nginx must depend on {name} with restart: true (else a recreated {name} leaves it a dead address)")


def test_grafana_knows_the_addresses_browsers_use():
    env = COMPOSE["services"]["grafana"]["environment"]
    assert env["GF_SERVER_ROOT_URL"].startswith("${GRAFANA_ROOT_URL:-http://revwallet.com/grafana/")
    # Without the README's hosts entry the stack is reached as http://localhost/: Live must accept that too.
    assert "http://localhost" in env["GF_LIVE_ALLOWED_ORIGINS"]


def test_alloy_sends_no_usage_reports():
    # The internal network has no way out; Alloy would try (and log failures) without the flag.
    assert "--disable-reporting" in COMPOSE["services"]["alloy"]["command"]


def test_the_image_has_a_tmp_for_the_read_only_roots_scratch_volume():
    # ECS mounts a task volume on /tmp and Kubernetes an emptyDir; the scratch image must have the directory.
    text = (ROOT / "Dockerfile").read_text()
    assert "install -d -m 1777 /out/tmp" in text and "COPY --from=builder /out/tmp /tmp" in text


def test_the_build_context_leaves_out_the_browser_tests_packages():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "tests/ui/node_modules" in ignored


def test_prometheus_alerts_reach_a_receiver_through_alertmanager():
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for am in prometheus["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == [f"{ALERTS}:9093"], targets
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    (hook,) = receivers[config["route"]["receiver"]]["webhook_configs"]
    # The receiver's URL is a secret Compose mounts from .env, never a literal in the repository.
    secret = hook["url_file"].removeprefix("/run/secrets/")
    assert secret in SERVICES[ALERTS]["secrets"] and COMPOSE["secrets"][secret] == {"environment": "REVWALLET_ALERT_WEBHOOK_URL"}
    mounted = [v.split(":")[0] for v in SERVICES[ALERTS]["volumes"]]
    assert "./deploy/alertmanager/alertmanager.yml" in mounted


def test_the_backup_service_dumps_with_the_database_image_hardened_and_bounded():
    backup, database = SERVICES["revwallet-backup"], SERVICES[DATABASE]
    assert backup["image"] == database["image"], "pg_dump must match the server's major version: use its image"
    user = str(backup.get("user", ""))
    assert user and not user.startswith(("0:", "root")) and user != "0", "runs as a non-root user"
    assert backup.get("read_only") is True and "ALL" in (backup.get("cap_drop") or [])
    assert not backup.get("cap_add")
    assert backup.get("cpus") and backup.get("mem_limit"), "cpu and memory limits"
    assert backup["depends_on"] == {DATABASE: {"condition": "service_healthy"}}
    env = environment(backup)
    assert env["PGHOST"] == DATABASE and env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    volumes = [str(v) for v in backup.get("volumes") or []]
    assert any(v.startswith("revwallet-backups:") for v in volumes), "archives go to the named volume"
    assert "./deploy/backup/pg-backup.sh:/usr/local/bin/pg-backup.sh:ro" in volumes
    assert backup["entrypoint"][-1] == "/usr/local/bin/pg-backup.sh" and backup["command"] == ["schedule"]

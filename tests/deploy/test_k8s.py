"""Checks of the rendered Kubernetes manifests (deploy/k8s), for every overlay.

Each overlay is rendered the way `kubectl apply -k` renders it (plain kustomize, no flags: ADR 0059), and every
kustomize command the documentation gives (`kubectl apply -k DIR`, `kubectl kustomize DIR`) is run the same way,
minus the cluster, so the docs cannot name a command that fails. The objects are checked
for what the deployment promises: hardened, bounded, probed containers on pinned images; the edge as the only
way in and NetworkPolicies that allow exactly the listed paths; no secret in a committed file; and the same
configuration files as Compose, mounted unchanged. Run: `make k8s-check`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
COMPOSE = ROOT / "compose.yaml"

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# The images Compose also runs (compared with compose.yaml below), by repository.
THIRD_PARTY = {"postgres", "nginx", "prom/prometheus", "grafana/grafana", "grafana/loki", "grafana/alloy"}


@cache
def kustomize() -> list[str]:
    """What `kubectl apply -k` renders with, without a cluster (the same choice as K8S_RENDER in mk/k8s.mk)."""
    if shutil.which("kubectl"):
        help_text = subprocess.run(["kubectl", "kustomize", "--help"], capture_output=True, text=True).stdout
        if "--load-restrictor" in help_text:  # kubectl 1.21+ (Debian 12's 1.20 carries kustomize v2)
            return ["kubectl", "kustomize"]
    return ["kustomize", "build"]


def make_kind_secrets() -> None:
    example = K8S / "overlays" / "kind" / "secrets.env.example"
    # The same step `make k8s-check` takes: the git-ignored secrets.env, made once with random passwords.
    subprocess.run([K8S / "make-secrets.sh", example, example.with_suffix("")], check=True)


@cache
def rendered(overlay: str) -> list[dict]:
    if (K8S / "overlays" / overlay / "secrets.env.example").exists():
        make_kind_secrets()
    out = subprocess.run(
        [*kustomize(), K8S / "overlays" / overlay], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


# --- the documented commands ------------------------------------------------------------------------------

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), DEPLOY / "terraform" / "README.md",
             *sorted(K8S.glob("**/*.md")), *sorted(K8S.glob("**/kustomization.yaml"))]
# `kubectl [flags] apply [flags] -k DIR` (or --kustomize), `kubectl kustomize DIR`, `kustomize build DIR`.
PATH_ARG = r"((?:[^\s`'\"|)<>]|<[^>\s]+>)+)"
DOC_COMMANDS = [
    re.compile(r"kubectl\b[^`\n|;]*?\bapply\b[^`\n|;]*?(?:\s-k|\s--kustomize)(?:\s+|=)" + PATH_ARG),
    re.compile(r"kubectl\b[^`\n|;]*?\skustomize\s+(?:--?[\w-]+(?:=\S+)?\s+)*" + PATH_ARG),
    re.compile(r"(?<!kubectl )\bkustomize\s+build\s+(?:--?[\w-]+(?:=\S+)?\s+)*" + PATH_ARG),
]


def documented_kustomize_commands() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOC_FILES:
        if not doc.is_file():
            continue
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for pattern in DOC_COMMANDS:
                for m in pattern.finditer(line):
                    found.append((f"{doc.relative_to(ROOT)}:{number}", m.group(0).strip(), m.group(1)))
    return found


def overlay_paths(arg: str) -> list[str]:
    """A documented path, with a placeholder (`<overlay>`, `…`) standing for every overlay."""
    if re.search(r"<[^>]+>|…", arg):
        return [re.sub(r"<[^>]+>|…", name, arg) for name in OVERLAYS]
    return [arg]


def test_every_kustomize_command_in_the_docs_renders_as_written():
    make_kind_secrets()
    commands = documented_kustomize_commands()
    assert commands, "the docs name no kustomize/apply -k command for the overlays"
    problems, covered = [], set()
    for where, command, arg in commands:
        if "--load-restrictor" in command:
            problems.append(f"{where}: `{command}` needs --load-restrictor, which `kubectl apply -k` cannot pass")
        for path in overlay_paths(arg):
            result = subprocess.run([*kustomize(), path], capture_output=True, text=True, cwd=ROOT)
            if result.returncode != 0:
                problems.append(f"{where}: `{command}` does not render ({path}): {result.stderr.strip()[:300]}")
            elif (ROOT / path).resolve().parent == (K8S / "overlays").resolve():
                covered.add((ROOT / path).resolve().name)
    assert not problems, "\n".join(problems)
    assert set(OVERLAYS) <= covered, f"overlays no documented command deploys: {sorted(set(OVERLAYS) - covered)}"


def test_the_docs_name_no_render_wrapper_that_does_not_exist():
    problems = []
    for doc in DOC_FILES:
        if not doc.is_file():
            continue
        text = doc.read_text()
        for m in re.finditer(r"[\w./-]*render\.sh", text):
            if not (ROOT / m.group(0)).is_file() and not (K8S / m.group(0)).is_file():
                problems.append(f"{doc.relative_to(ROOT)} names {m.group(0)}, which does not exist")
        if "--load-restrictor" in text and doc.suffix == ".md":
            problems.append(f"{doc.relative_to(ROOT)} mentions --load-restrictor: the overlays need no flag (ADR 0059)")
    assert not problems, "\n".join(problems)


def test_the_shared_config_copies_match_their_sources():
    result = subprocess.run([K8S / "sync-shared-config.sh", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    base = (K8S / "base" / "kustomization.yaml").read_text()
    assert "../" not in re.sub(r"#.*", "", base), "the base must load nothing from outside its directory"


def of_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: list[dict], kind: str, name: str) -> dict:
    (obj,) = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == name]
    return obj


def pod_specs(objs: list[dict]):
    for o in objs:
        if o["kind"] in WORKLOAD_KINDS:
            spec = o["spec"]["jobTemplate"]["spec"] if o["kind"] == "CronJob" else o["spec"]
            yield f'{o["kind"]}/{o["metadata"]["name"]}', spec["template"]


def containers(objs: list[dict], init: bool = True):
    for where, template in pod_specs(objs):
        spec = template["spec"]
        kinds = ["containers", "initContainers"] if init else ["containers"]
        for k in kinds:
            for c in spec.get(k, []):
                yield f"{where}/{c['name']}", spec, c


def configmap(objs: list[dict], prefix: str) -> dict:
    """The generated ConfigMap whose name is PREFIX plus kustomize's hash suffix."""
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if re.fullmatch(rf"{prefix}-[a-z0-9]{{10}}", o["metadata"]["name"])]
    return cm


@pytest.fixture(params=OVERLAYS)
def objs(request) -> list[dict]:
    return rendered(request.param)


# --- containers --------------------------------------------------------------------------------------------


def test_every_container_has_cpu_and_memory_requests_and_limits(objs):
    for where, _, c in containers(objs):
        res = c.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(bound, {})), f"{where}: {bound} must set cpu and memory"


def test_every_long_running_container_has_readiness_and_liveness_probes(objs):
    for where, _, c in containers(objs, init=False):
        if where.startswith(("Job/", "CronJob/")):
            continue  # runs to completion; its Job's status is the probe
        assert "readinessProbe" in c, f"{where}: no readinessProbe"
        assert "livenessProbe" in c, f"{where}: no livenessProbe"


def test_every_container_runs_as_non_root_on_a_read_only_root_without_privileges(objs):
    for where, spec, c in containers(objs):
        pod_sc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
        run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        assert run_as_non_root is True, f"{where}: runAsNonRoot must be true"
        # A high uid (or nobody's) cannot collide with a host user.
        assert uid is not None and (uid >= 10000 or uid == 65534), f"{where}: run as a high, non-root uid ({uid})"
        assert sc.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem must be read-only"
        assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation must be false"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: must drop ALL capabilities"
        assert not sc.get("capabilities", {}).get("add"), f"{where}: must add no capability"
        assert not sc.get("privileged"), f"{where}: must not be privileged"
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", f"{where}: seccomp must be RuntimeDefault"


def test_no_pod_uses_the_host(objs):
    for where, template in pod_specs(objs):
        spec = template["spec"]
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(field), f"{where}: {field}"
        for v in spec.get("volumes", []):
            assert "hostPath" not in v, f"{where}: hostPath volume {v['name']}"
        for k in ("containers", "initContainers"):
            for c in spec.get(k, []):
                for p in c.get("ports", []):
                    assert "hostPort" not in p, f"{where}/{c['name']}: hostPort"


def test_only_pods_that_call_the_kubernetes_api_get_a_token(objs):
    needs_api = {"prometheus", "alloy"}  # pod discovery, log tailing
    for where, template in pod_specs(objs):
        name = where.split("/")[1]
        assert template["spec"].get("automountServiceAccountToken") is (name in needs_api), where


def test_every_image_is_pinned(objs):
    for where, _, c in containers(objs):
        image = c["image"]
        repo, _, digest = image.partition("@")
        name, _, tag = repo.rpartition(":") if ":" in repo.rsplit("/", 1)[-1] else (repo, "", "")
        # (a registry host's ":port" is not a tag, hence the look at the last path segment only)
        if digest:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{where}: bad digest in {image}"
            continue
        assert tag and tag != "latest", f"{where}: {image} is not pinned"
        if name in THIRD_PARTY:
            # major.minor[.patch][-variant]: postgres versions have two parts (17.6), the others three.
            assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?", tag), f"{where}: {image} is not an exact version"
        else:
            # Only kind runs an image by a plain tag: the one built locally and loaded onto the node.
            assert image == "revwallet:dev", f"{where}: {image} must be pinned by digest"


def test_the_api_image_is_deployed_by_digest_in_production():
    for where, _, c in containers(rendered("production")):
        if where.startswith("Deployment/revwallet/"):
            assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), f"{where}: {c['image']}"


def test_third_party_images_are_the_ones_compose_runs(objs):
    if not COMPOSE.exists():
        pytest.skip("compose.yaml is not there yet")
    compose_images = {
        s["image"].split("@")[0] for s in yaml.safe_load(COMPOSE.read_text())["services"].values() if "image" in s
    }
    for where, _, c in containers(objs):
        image = c["image"].split("@")[0]
        if image.rpartition(":")[0] in THIRD_PARTY:
            assert image in compose_images, f"{where}: {image} differs from compose.yaml ({sorted(compose_images)})"


# --- the API -----------------------------------------------------------------------------------------------


def probe_path(c: dict, probe: str) -> str:
    return c[probe]["httpGet"]["path"]


def test_the_api_rolls_out_without_losing_capacity_and_migrates_before_serving(objs):
    deploy = named(objs, "Deployment", "revwallet")
    spec = deploy["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["topologySpreadConstraints"], "replicas must be spread"
    (init,) = pod["initContainers"]
    assert init["args"] == ["migrate"]
    (api,) = pod["containers"]
    assert api["name"] == "revwallet-api"  # Alloy's `service` label, the dashboard's {service="revwallet-api"}
    assert api["args"] == ["serve", "--no-migrate"]
    assert probe_path(api, "startupProbe") == "/readyz"
    assert probe_path(api, "readinessProbe") == "/readyz"
    assert probe_path(api, "livenessProbe") == "/healthz"
    hpa = named(objs, "HorizontalPodAutoscaler", "revwallet")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "revwallet"}
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = named(objs, "PodDisruptionBudget", "revwallet")
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_the_in_cluster_database_is_only_in_kind():
    kind, production = rendered("kind"), rendered("production")
    db = named(kind, "StatefulSet", "revwallet-db")
    assert db["spec"]["volumeClaimTemplates"], "the database needs a PersistentVolumeClaim"
    assert not [o for o in production if o["metadata"]["name"] == "revwallet-db"]
    assert configmap(production, "revwallet-config")["data"]["DB_HOST"] != "revwallet-db"


def test_everything_namespaced_is_in_the_revwallet_namespace(objs):
    assert named(objs, "Namespace", "revwallet")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "revwallet", f'{o["kind"]}/{o["metadata"]["name"]}'


# --- the edge is the only way in ---------------------------------------------------------------------------


def test_only_the_edge_service_is_exposed_outside_the_cluster(objs):
    assert not of_kind(objs, "Ingress")
    for svc in of_kind(objs, "Service"):
        name, kind = svc["metadata"]["name"], svc["spec"].get("type", "ClusterIP")
        if name == "edge":
            assert kind in {"NodePort", "LoadBalancer"}, "the edge must be reachable"
        else:
            assert kind == "ClusterIP", f"Service/{name} is {kind}; only the edge may leave the cluster"


def test_kind_maps_localhost_80_to_the_edge_node_port_only():
    cluster = yaml.safe_load((K8S / "kind-cluster.yaml").read_text())
    mappings = [m for node in cluster["nodes"] for m in node.get("extraPortMappings", [])]
    (port,) = named(rendered("kind"), "Service", "edge")["spec"]["ports"]
    assert mappings == [
        {"containerPort": port["nodePort"], "hostPort": 80, "listenAddress": "127.0.0.1", "protocol": "TCP"}
    ]


def app_names(peers: list[dict] | None) -> set[str]:
    """The pods a NetworkPolicy rule's from/to names, by app.kubernetes.io/name; special peers by a keyword."""
    if not peers:
        return {"*"}
    names = set()
    for peer in peers:
        if "ipBlock" in peer:
            names.add(f"cidr:{peer['ipBlock']['cidr']}")
        elif "namespaceSelector" in peer:
            assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
            assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
            names.add("dns")
        else:
            names.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    return names


def allowed_paths(objs: list[dict], direction: str) -> set[tuple[str, str, str]]:
    """(source, destination, port) for every path the NetworkPolicies allow in DIRECTION."""
    paths = set()
    for pol in of_kind(objs, "NetworkPolicy"):
        spec = pol["spec"]
        selected = spec["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name", "*")
        for rule in spec.get(direction, []):
            peers = app_names(rule.get("from" if direction == "ingress" else "to"))
            for port in rule.get("ports", [{"port": "any"}]):
                for peer in peers:
                    pair = (peer, selected) if direction == "ingress" else (selected, peer)
                    paths.add((*pair, str(port["port"])))
    return paths


def test_network_policies_deny_by_default(objs):
    deny = named(objs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def in_cluster_database(objs: list[dict]) -> bool:
    return any(o["metadata"]["name"] == "revwallet-db" for o in of_kind(objs, "StatefulSet"))


def test_network_policies_allow_exactly_the_listed_ingress(objs):
    database = (
        {("revwallet", "revwallet-db", "5432"), ("revwallet-db-backup", "revwallet-db", "5432")}
        if in_cluster_database(objs)
        else set()
    )
    assert allowed_paths(objs, "ingress") == {
        ("*", "edge", "8080"),  # from outside: the edge only
        ("edge", "revwallet", "8080"),
        ("prometheus", "revwallet", "8080"),
        ("edge", "prometheus", "9090"),
        ("grafana", "prometheus", "9090"),
        ("edge", "grafana", "3000"),
        ("alloy", "loki", "3100"),
        ("grafana", "loki", "3100"),
    } | database


def test_network_policies_allow_exactly_the_listed_egress(objs):
    # The API reaches either the in-cluster database or the managed one (an address range outside the cluster).
    if in_cluster_database(objs):
        # The backup and restore jobs reach the database and nothing else.
        database = {("revwallet", "revwallet-db", "5432"), ("revwallet-db-backup", "revwallet-db", "5432")}
    else:
        (cidr,) = {dst for (_, dst, _) in allowed_paths(objs, "egress") if dst.startswith("cidr:")}
        database = {("revwallet", cidr, "5432")}
    assert allowed_paths(objs, "egress") == {
        ("*", "dns", "53"),
        ("edge", "revwallet", "8080"),
        ("edge", "grafana", "3000"),
        ("edge", "prometheus", "9090"),
        ("prometheus", "revwallet", "8080"),
        ("prometheus", "*", "443"),  # the Kubernetes API, for pod discovery
        ("prometheus", "*", "6443"),
        ("grafana", "prometheus", "9090"),
        ("grafana", "loki", "3100"),
        ("alloy", "loki", "3100"),
        ("alloy", "*", "443"),  # the Kubernetes API, for log tailing
        ("alloy", "*", "6443"),
    } | database


def test_every_pod_port_the_policies_open_is_a_declared_container_port(objs):
    ports = {}
    for where, _, c in containers(objs, init=False):
        name = where.split("/")[1]
        ports.setdefault(name, set()).update(str(p["containerPort"]) for p in c.get("ports", []))
    for _, dst, port in allowed_paths(objs, "ingress"):
        assert port in ports[dst], f"ingress to {dst}:{port}, which no container of {dst} listens on"


# --- no secrets in the repository --------------------------------------------------------------------------


def committed_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "deploy/k8s"],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def test_no_committed_manifest_holds_a_secret():
    files = committed_files()
    assert files and not [f for f in files if f.name == "secrets.env"], "secrets.env must stay git-ignored"
    for f in files:
        if f.suffix in {".yaml", ".yml"}:
            for doc in yaml.safe_load_all(f.read_text()):
                if doc and doc.get("kind") == "Secret":
                    pytest.fail(f"{f.relative_to(ROOT)} commits a Secret")


def test_the_committed_secret_examples_leave_every_password_empty():
    for example in (K8S / "overlays").glob("*/secrets.env.example"):
        for line in example.read_text().splitlines():
            key, _, value = line.partition("=")
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY", key):
                assert value == "", f"{example.relative_to(ROOT)}: {key} must be empty (generated at deploy time)"


def test_generated_passwords_appear_in_no_committed_file():
    rendered("kind")  # makes secrets.env if it is missing
    values = [
        line.partition("=")[2]
        for line in (K8S / "overlays" / "kind" / "secrets.env").read_text().splitlines()
        if "PASSWORD" in line.partition("=")[0]
    ]
    assert values and all(len(v) >= 16 for v in values)
    for f in committed_files():
        text = f.read_text(errors="replace")
        assert not [v for v in values if v in text], f"{f.relative_to(ROOT)} contains a generated password"


def test_the_generated_api_key_has_revwallets_format():
    rendered("kind")  # makes secrets.env if it is missing
    env = dict(
        line.split("=", 1)
        for line in (K8S / "overlays" / "kind" / "secrets.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert re.fullmatch(r"rw_[A-Za-z0-9_-]{32,200}", env.get("REVWALLET_BOOTSTRAP_ADMIN_KEY", "")), (
        "secrets.env needs REVWALLET_BOOTSTRAP_ADMIN_KEY=rw_... (make-secrets.sh generates it)")


def test_the_api_gets_its_bootstrap_key_from_the_secret(objs):
    (deployment,) = [o for o in of_kind(objs, "Deployment") if o["metadata"]["name"] == "revwallet"]
    (api,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "revwallet-api"]
    env = {e["name"]: e for e in api.get("env", [])}
    ref = env["REVWALLET_BOOTSTRAP_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] == "REVWALLET_BOOTSTRAP_ADMIN_KEY" and ref["name"].startswith("revwallet-secrets")
    assert not ref.get("optional"), "a pod without the key would mint one of its own and log it"
    # Access control stays on (api-key is the default; nothing may switch it off).
    assert "REVWALLET_AUTH" not in env or env["REVWALLET_AUTH"].get("value") == "api-key"


def test_credentials_reach_containers_only_from_the_secret(objs):
    for where, _, c in containers(objs):
        for env in c.get("env", []):
            if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$", env["name"]) and not env["name"].endswith("_FILE"):
                assert "secretKeyRef" in env.get("valueFrom", {}), f"{where}: {env['name']} must come from a Secret"
        for src in c.get("envFrom", []):
            assert "secretRef" not in src, f"{where}: envFrom a whole Secret exposes every key"
    secrets = of_kind(objs, "Secret")
    # kind generates it from the git-ignored secrets.env; production syncs it from its secret store.
    assert [s["metadata"]["name"].rsplit("-", 1)[0] for s in secrets] == (["revwallet-secrets"] if secrets else [])


# --- the same configuration files as Compose, unchanged ----------------------------------------------------


def mounts(objs: list[dict], workload: str, container: str) -> dict[str, tuple[dict, dict]]:
    """mountPath -> (volumeMount, volume) of one container."""
    (template,) = [t for where, t in pod_specs(objs) if where.split("/")[1] == workload]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    (c,) = [c for c in template["spec"]["containers"] if c["name"] == container]
    # A volumeClaimTemplate has no entry in volumes.
    return {m["mountPath"]: (m, volumes.get(m["name"], {})) for m in c.get("volumeMounts", [])}


def assert_configmap_holds(objs: list[dict], prefix: str, files: dict[str, Path]) -> str:
    cm = configmap(objs, prefix)
    assert set(cm["data"]) == set(files), f"{prefix}: keys {sorted(cm['data'])}, files {sorted(files)}"
    for key, path in files.items():
        assert cm["data"][key] == path.read_text(), f"{prefix}[{key}] is not {path.relative_to(ROOT)}"
    return cm["metadata"]["name"]


def mounted_configmap(objs, workload, container, path) -> str:
    mount, volume = mounts(objs, workload, container)[path]
    return volume["configMap"]["name"]


def test_the_edge_runs_the_compose_nginx_template_and_entrypoint_script(objs):
    template = DEPLOY / "nginx" / "templates" / "revwallet.conf.template"
    scripts = sorted((DEPLOY / "nginx" / "docker-entrypoint.d").glob("*.sh"))
    cm = assert_configmap_holds(objs, "edge-templates", {template.name: template})
    assert mounted_configmap(objs, "edge", "nginx", "/etc/nginx/templates") == cm
    cm = assert_configmap_holds(objs, "edge-entrypoint", {s.name: s for s in scripts})
    for s in scripts:
        mount, volume = mounts(objs, "edge", "nginx")[f"/docker-entrypoint.d/{s.name}"]
        assert volume["configMap"]["name"] == cm and mount["subPath"] == s.name
        assert volume["configMap"]["defaultMode"] & 0o111, "the image runs only executable entrypoint scripts"
    # Every variable of the template is set.
    env = {e["name"] for where, _, c in containers(objs) if where.startswith("Deployment/edge/") for e in c["env"]}
    wanted = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", template.read_text()))
    assert wanted <= env, f"the edge does not set {sorted(wanted - env)}"


def test_grafana_gets_the_compose_provisioning_and_dashboards_at_the_paths_they_name(objs):
    grafana = DEPLOY / "grafana"
    datasources = {p.name: p for p in sorted((grafana / "provisioning" / "datasources").glob("*.y*ml"))}
    providers = {p.name: p for p in sorted((grafana / "provisioning" / "dashboards").glob("*.y*ml"))}
    dashboards = {p.name: p for p in sorted((grafana / "dashboards").glob("*.json"))}
    assert mounted_configmap(objs, "grafana", "grafana", "/etc/grafana/provisioning/datasources") == (
        assert_configmap_holds(objs, "grafana-datasources", datasources)
    )
    assert mounted_configmap(objs, "grafana", "grafana", "/etc/grafana/provisioning/dashboards") == (
        assert_configmap_holds(objs, "grafana-dashboard-providers", providers)
    )
    cm = assert_configmap_holds(objs, "grafana-dashboards", dashboards)
    for provider_file in providers.values():
        for provider in yaml.safe_load(provider_file.read_text())["providers"]:
            assert mounted_configmap(objs, "grafana", "grafana", provider["options"]["path"]) == cm


def test_loki_alloy_and_the_alert_rules_are_the_compose_files(objs):
    cm = assert_configmap_holds(objs, "loki-config", {"loki.yml": DEPLOY / "loki" / "loki.yml"})
    assert mounted_configmap(objs, "loki", "loki", "/etc/loki/config") == cm
    (loki,) = [c for w, _, c in containers(objs) if w == "StatefulSet/loki/loki"]
    assert "-config.file=/etc/loki/config/loki.yml" in loki["args"]

    cm = assert_configmap_holds(objs, "alloy-config", {"config.alloy": DEPLOY / "alloy" / "config.k8s.alloy"})
    assert mounted_configmap(objs, "alloy", "alloy", "/etc/alloy") == cm

    rules = {p.name: p for p in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))}
    cm = assert_configmap_holds(objs, "prometheus-rules", rules)
    assert mounted_configmap(objs, "prometheus", "prometheus", "/etc/prometheus/rules") == cm


def test_prometheus_discovers_the_api_pods_under_the_compose_job_names():
    config = yaml.safe_load((K8S / "base" / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert [j["job_name"] for j in config["scrape_configs"]] == [j["job_name"] for j in compose["scrape_configs"]]
    assert config["global"] == compose["global"]
    (revwallet,) = [j for j in config["scrape_configs"] if j["job_name"] == "revwallet"]
    (sd,) = revwallet["kubernetes_sd_configs"]
    assert sd["role"] == "pod" and sd["selectors"] == [{"role": "pod", "label": "app.kubernetes.io/name=revwallet"}]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def grafana_root_url(objs: list[dict]) -> str:
    (grafana,) = [c for where, _, c in containers(objs, init=False) if c["name"] == "grafana"]
    (env,) = [e for e in grafana["env"] if e["name"] == "GF_SERVER_ROOT_URL"]
    ref = env["valueFrom"]["configMapKeyRef"]
    (cm,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"] == ref["name"]]
    return cm["data"][ref["key"]]


def test_grafanas_root_url_is_set_by_each_overlay():
    # kind maps http://localhost/ to the edge (kind-cluster.yaml); production must name its own address.
    assert grafana_root_url(rendered("kind")) == "http://localhost/grafana/"
    for overlay in OVERLAYS:
        url = grafana_root_url(rendered(overlay))
        assert url.endswith("/grafana/") and "%(" not in url, f"{overlay}: {url}"
        if overlay != "kind":
            assert "localhost" not in url and url.startswith("https://"), (
                f"{overlay}: Grafana's root URL {url} must be the public https address (links, Live WebSockets)")


def test_kind_test_checks_loki_with_compose_e2es_code_and_fallback():
    script = (K8S / "kind-test.sh").read_text()
    assert ".github/scripts/compose_e2e.py" in script, "kind-test.sh must use compose_e2e.py's Loki check"
    assert "loki/api/v1/query" not in script, "no second, proxy-only Loki query in kind-test.sh"
    e2e = (ROOT / ".github" / "scripts" / "compose_e2e.py").read_text()
    assert "/grafana/api/ds/query" in e2e, "compose_e2e.py keeps the fallback to Grafana's query API"


def test_the_in_cluster_database_is_backed_up_into_a_volume_and_restored_only_by_hand():
    objs = rendered("kind")
    backup = named(objs, "CronJob", "revwallet-db-backup")["spec"]
    assert backup["concurrencyPolicy"] == "Forbid" and not backup.get("suspend")
    pod = backup["jobTemplate"]["spec"]["template"]["spec"]
    (claim,) = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert named(objs, "PersistentVolumeClaim", claim)
    assert "pg_dump --format=custom" in pod["containers"][0]["args"][0]
    db_image = named(objs, "StatefulSet", "revwallet-db")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert pod["containers"][0]["image"] == db_image, "pg_dump must match the server's major version"
    restore = named(objs, "CronJob", "revwallet-db-restore")["spec"]
    assert restore["suspend"] is True, "a restore runs only when an operator creates a Job from it"
    assert "pg_restore" in restore["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]

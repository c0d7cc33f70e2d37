"""Structural tests for .github/: what neither the workflow schema nor zizmor checks.

- Every `uses:` (GitHub's own actions included) is pinned to a full 40-hex commit SHA with the version in a
  trailing comment, the same action always at the same SHA, and each pin listed in docs/ci-cd.md, where the
  public sources that confirmed it are named. Container and service images are pinned by digest.
- Every workflow declares `permissions` at the top (empty) and every job its own.
- Every `make` a step runs names a target that exists (the Makefile and mk/*.mk are the one source of truth),
  and no step runs a project check inline instead of through make.
- The pipeline the issue asks for is there (which checks CI runs, triggers, caching, concurrency, signing).
- .github/scripts/pin_image_digest.py pins digests in overlays and tfvars and leaves local-build overlays alone.

Run by `make workflows-check`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml")) + sorted(WORKFLOWS_DIR.glob("*.yaml"))
ACTION_FILES = sorted((ROOT / ".github").glob("**/action.yml")) + sorted((ROOT / ".github").glob("**/action.yaml"))
DOC = ROOT / "docs" / "ci-cd.md"

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
PINNED = re.compile(r"^(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^v\d+(\.\d+){0,2}\b")
IMAGE_DIGEST = re.compile(r"^[^\s@]+:[^\s@]+@sha256:[0-9a-f]{64}$")

# Commands that are project checks: they must run through a make target, never inline in a workflow.
INLINE_CHECKS = [
    (re.compile(r"(^|[\s;&|(])cargo\s"), "cargo (use make fmt-check / clippy / test / deny)"),
    (re.compile(r"(^|[\s;&|(])hadolint\b"), "hadolint (use make docker-lint)"),
    (re.compile(r"(^|[\s;&|(])promtool\b"), "promtool (use make observability-check)"),
    (re.compile(r"(^|[\s;&|(])zizmor\b"), "zizmor (use make workflows-check)"),
    (re.compile(r"(^|[\s;&|(])check-jsonschema\b"), "check-jsonschema (use make workflows-check / compose-check)"),
    (re.compile(r"(^|[\s;&|(])(python3?\s+-m\s+)?pytest\b"), "pytest (use the area's make check target)"),
    (re.compile(r"(^|[\s;&|(])nginx\s+-t\b"), "nginx -t (use make nginx-check)"),
    (re.compile(r"(^|[\s;&|(])kubernetes-validate\b"), "kubernetes-validate (use make k8s-check)"),
    (re.compile(r"(^|[\s;&|(])kubectl\s+kustomize\b"), "kubectl kustomize (use make k8s-check)"),
    (re.compile(r"(^|[\s;&|(])checkov\b"), "checkov (use make terraform-check)"),
    (re.compile(r"(^|[\s;&|(])trivy\b"), "trivy (use make terraform-check / image-scan)"),
    (re.compile(r"(^|[\s;&|(])terraform(\s+-chdir=\S+)?\s+(fmt|validate|test)\b"), "terraform fmt/validate/test (use make terraform-check)"),
    (re.compile(r"(^|[\s;&|(])docker\s+compose\s+config\s+(-q|--quiet)\b"), "docker compose config -q (use make compose-check)"),
]


def load(path: Path) -> dict:
    with path.open() as fh:
        doc = yaml.safe_load(fh)
    assert isinstance(doc, dict), f"{path.name}: not a YAML mapping"
    return doc


def triggers(doc: dict) -> dict:
    # PyYAML (YAML 1.1) reads the key `on` as the boolean True.
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {name: None for name in on}
    return on or {}


def jobs(doc: dict) -> dict:
    return doc.get("jobs") or {}


def steps(doc: dict):
    for job_id, job in jobs(doc).items():
        for index, step in enumerate(job.get("steps") or []):
            yield job_id, job, index, step


@pytest.fixture(scope="session")
def make_targets() -> set[str]:
    """Targets make knows, from `make -qp` (its database after reading Makefile and mk/*.mk).

    A name only counts when it has a recipe or prerequisites: a bare `.PHONY` entry would make
    `make name` succeed doing nothing, which is worse than failing.
    """
    env = dict(os.environ, LC_ALL="C")
    out = subprocess.run(["make", "-qp", "-C", str(ROOT)], capture_output=True, text=True, env=env).stdout
    lines = out.splitlines()
    targets: set[str] = set()
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.\-/ ]*?):(?!=)\s*(.*)$", line)
        if not m or (i > 0 and lines[i - 1].startswith("# Not a target")):
            continue
        prerequisites = m.group(2).split("#", 1)[0].strip()
        has_recipe = False
        for following in lines[i + 1:]:
            if not following.strip():
                break
            if following.startswith("\t"):
                has_recipe = True
                break
        if prerequisites or has_recipe:
            targets.update(m.group(1).split())
    assert "help" in targets, "could not read the make targets from `make -qp` (is make installed?)"
    return targets


def expand(token: str, env: dict[str, str], matrix_values) -> list[str]:
    """Expand $VAR / ${VAR} / ${{ matrix.x }} in a make argument into the concrete words it can take."""
    m = re.fullmatch(r'"?\$\{?(\w+)\}?"?', token)
    if m and m.group(1) in env:
        return expand_value(env[m.group(1)], matrix_values)
    m = re.fullmatch(r'"?([\w.-]*)\$\{?(\w+)\}?"?', token)  # deps-${AREA}
    if m and m.group(2) in env:
        return [m.group(1) + v for v in expand_value(env[m.group(2)], matrix_values)]
    return expand_value(token, matrix_values)


def expand_value(value: str, matrix_values) -> list[str]:
    m = re.search(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", value)
    if not m:
        return value.split()
    words: list[str] = []
    for v in matrix_values(m.group(1)):
        words.extend(value.replace(m.group(0), str(v)).split())
    return words


def make_invocations(script: str):
    """Yield the argument lists of every `make ...` command in a run script."""
    for raw in script.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|\|", raw):
            try:
                words = shlex.split(part, comments=True, posix=True)
            except ValueError:
                words = part.split()
            # Strip prefixes: sudo [opts], env [VAR=x ...].
            while words and (words[0] in ("sudo", "env", "exec") or words[0].startswith("--preserve-env")
                             or re.match(r"^\w+=", words[0]) or (words[0].startswith("-") and words[0] != "-")):
                words = words[1:]
            if words and words[0] == "make":
                yield words[1:]


def test_there_are_workflows_and_dependabot():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "compose-e2e.yml", "kind-e2e.yml", "release.yml", "terraform.yml"} <= names, names
    assert (ROOT / ".github" / "dependabot.yml").is_file()


@pytest.mark.parametrize("path", WORKFLOWS + ACTION_FILES, ids=lambda p: p.name)
def test_every_uses_is_pinned_to_a_full_sha_with_a_version_comment(path: Path):
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = USES_LINE.match(line)
        if not m:
            continue
        ref = m.group("ref").strip("'\"")
        if ref.startswith("./"):
            continue  # a local action: part of this repository, pinned by the commit itself
        if ref.startswith("docker://"):
            if not re.search(r"@sha256:[0-9a-f]{64}$", ref):
                problems.append(f"{path.name}:{number}: {ref} is not pinned by sha256 digest")
            continue
        if not PINNED.match(ref):
            problems.append(f"{path.name}:{number}: {ref} is not pinned to a full 40-hex commit SHA")
        comment = (m.group("comment") or "").strip()
        if not VERSION_COMMENT.match(comment):
            problems.append(f"{path.name}:{number}: {ref} needs its version as a trailing comment (# v1.2.3)")
    assert not problems, "\n".join(problems)


def all_pins() -> dict[str, set[tuple[str, str]]]:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in WORKFLOWS + ACTION_FILES:
        for line in path.read_text().splitlines():
            m = USES_LINE.match(line)
            if m and (p := PINNED.match(m.group("ref").strip("'\""))):
                version = (m.group("comment") or "").split()[0] if m.group("comment") else ""
                pins.setdefault(p.group("action"), set()).add((p.group("sha"), version))
    return pins


def test_each_action_is_pinned_to_one_sha_everywhere():
    mixed = {action: sorted(v) for action, v in all_pins().items() if len(v) > 1}
    assert not mixed, f"the same action at different SHAs/versions: {mixed}"


def test_each_pin_is_documented_with_its_sources():
    doc = DOC.read_text()
    missing = [f"{action}@{sha}" for action, v in all_pins().items() for sha, _ in v if sha not in doc]
    assert not missing, f"pins not listed in docs/ci-cd.md (say where each SHA was confirmed): {missing}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_container_and_service_images_are_pinned_by_digest(path: Path):
    problems = []
    for job_id, job in jobs(load(path)).items():
        images = []
        container = job.get("container")
        if container:
            images.append(container if isinstance(container, str) else container.get("image"))
        for name, service in (job.get("services") or {}).items():
            images.append(service.get("image"))
        for image in images:
            if not IMAGE_DIGEST.match(str(image)):
                problems.append(f"{path.name} job {job_id}: image {image!r} must be name:version@sha256:<digest>")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_and_job_declares_permissions(path: Path):
    doc = load(path)
    assert "permissions" in doc, f"{path.name}: no top-level permissions"
    assert doc["permissions"] in ({}, None, "read-all") or all(
        v in ("read", "none") for v in doc["permissions"].values()
    ), f"{path.name}: top-level permissions must not grant writes (grant them per job): {doc['permissions']}"
    missing = [job_id for job_id, job in jobs(doc).items() if "permissions" not in job]
    assert not missing, f"{path.name}: jobs without their own permissions: {missing}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path: Path):
    missing = [job_id for job_id, job in jobs(load(path)).items() if "timeout-minutes" not in job]
    assert not missing, f"{path.name}: jobs without timeout-minutes (the default is 6 hours): {missing}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_does_not_persist_credentials(path: Path):
    bad = [f"{job_id}[{i}]" for job_id, _, i, step in steps(load(path))
           if str(step.get("uses", "")).startswith("actions/checkout@")
           and (step.get("with") or {}).get("persist-credentials") is not False]
    assert not bad, f"{path.name}: checkout steps without persist-credentials: false: {bad}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_make_call_names_an_existing_target(path: Path, make_targets: set[str]):
    doc = load(path)
    problems = []
    for job_id, job, index, step in steps(doc):
        script = step.get("run")
        if not script:
            continue
        env = {**(doc.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
        env = {k: str(v) for k, v in env.items()}
        include = ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []
        matrix = (job.get("strategy") or {}).get("matrix") or {}

        def matrix_values(key: str, include=include, matrix=matrix):
            values = [entry[key] for entry in include if key in entry]
            values += list(matrix.get(key) or []) if isinstance(matrix.get(key), list) else []
            assert values, f"{path.name} job {job_id}: matrix.{key} has no values"
            return values

        for args in make_invocations(script):
            for token in args:
                if token.startswith("-") or re.match(r"^\w+=", token):
                    continue
                for target in expand(token, env, matrix_values):
                    if target not in make_targets:
                        problems.append(f"{path.name} job {job_id} step {step.get('name', index)}: "
                                        f"make target {target!r} does not exist")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_step_runs_a_project_check_inline(path: Path):
    problems = []
    for job_id, _, index, step in steps(load(path)):
        script = step.get("run") or ""
        for line in script.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for pattern, why in INLINE_CHECKS:
                if pattern.search(line):
                    problems.append(f"{path.name} job {job_id} step {step.get('name', index)}: runs {why}: {line.strip()}")
    assert not problems, "\n".join(problems)


def make_targets_run_by(path: Path) -> set[str]:
    doc = load(path)
    found: set[str] = set()
    for job_id, job, _, step in steps(doc):
        env = {**(doc.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
        include = ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []
        for args in make_invocations(step.get("run") or ""):
            for token in args:
                if not token.startswith("-") and not re.match(r"^\w+=", token):
                    found.update(expand(token, {k: str(v) for k, v in env.items()},
                                        lambda key: [e[key] for e in include if key in e]))
    return found


def test_ci_runs_every_check_the_issue_lists():
    run = make_targets_run_by(WORKFLOWS_DIR / "ci.yml")
    wanted = {"fmt-check", "clippy", "test", "ui-test", "stack-test", "docker-lint", "compose-check",
              "nginx-check", "observability-check", "k8s-check", "terraform-check", "workflows-check", "deny"}
    assert wanted <= run, f"ci.yml does not run: {sorted(wanted - run)}"


def test_ci_triggers_caching_concurrency_and_postgres_service():
    doc = load(WORKFLOWS_DIR / "ci.yml")
    on = triggers(doc)
    assert "pull_request" in on and "main" in on["push"]["branches"]
    assert "pull_request_target" not in on
    assert doc["concurrency"]["group"] and "cancel-in-progress" in doc["concurrency"]
    uses = [str(step.get("uses", "")) for _, _, _, step in steps(doc)]
    assert any(u.startswith("Swatinem/rust-cache@") for u in uses), "no Rust build cache"
    services = {name: svc for job in jobs(doc).values() for name, svc in (job.get("services") or {}).items()}
    assert "postgres" in services and services["postgres"]["image"].startswith("postgres:15")
    test_job = jobs(doc)["test"]
    assert test_job["env"]["REVWALLET_TEST_POSTGRES_URL"].startswith("postgres://")


def test_no_workflow_uses_pull_request_target_or_write_all():
    for path in WORKFLOWS:
        text = path.read_text()
        assert "pull_request_target" not in triggers(load(path)), path.name
        assert "write-all" not in text, path.name


# Actions or commands that set up CPU emulation; a release build of Rust under QEMU does not finish in time.
EMULATION = re.compile(r"setup-qemu-action|tonistiigi/binfmt|qemu-user-static|binfmt_misc", re.I)
ARM_RUNNER = re.compile(r"^ubuntu-\d+\.\d+-arm$|^ubuntu-24\.04-arm$")


def dockerfile_build_commands() -> list[str]:
    """The RUN instructions of the Dockerfile's stages, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("RUN ")]


def test_release_builds_each_architecture_natively_without_emulation():
    doc = load(WORKFLOWS_DIR / "release.yml")
    text = (WORKFLOWS_DIR / "release.yml").read_text()
    assert not EMULATION.search(text), "release.yml sets up QEMU/binfmt: build each architecture natively"
    builds = [(job_id, job, step) for job_id, job, _, step in steps(doc)
              if str(step.get("uses", "")).startswith("docker/build-push-action@")]
    assert builds, "release.yml builds no image"
    for job_id, job, step in builds:
        platforms = str(step["with"]["platforms"])
        assert "," not in platforms, f"{job_id}: one platform per build, on a runner of that architecture: {platforms}"
        include = job["strategy"]["matrix"]["include"]
        assert job["runs-on"] == "${{ matrix.runner }}" and platforms == "linux/${{ matrix.arch }}", (job_id, platforms)
        legs = {leg["arch"]: leg["runner"] for leg in include}
        assert set(legs) == {"amd64", "arm64"}, legs
        assert ARM_RUNNER.match(legs["arm64"]), f"arm64 must build on an Arm runner, not {legs['arm64']}"
        assert not legs["amd64"].endswith("-arm"), legs
        # From the repository's Dockerfile (which builds with cargo auditable), pushed by digest only.
        assert step["with"].get("context") == "." and step["with"].get("file", "Dockerfile") == "Dockerfile"
        assert "push-by-digest=true" in step["with"]["outputs"]
        assert step["with"]["sbom"] is True and str(step["with"]["provenance"]).startswith("mode=max")
        assert f"scope=release-${{{{ matrix.arch }}}}" in step["with"]["cache-to"]


def test_the_image_binary_is_built_with_cargo_auditable():
    runs = dockerfile_build_commands()
    builds = [r for r in runs if re.search(r"\bcargo\s+(auditable\s+)?build\b", r)]
    assert builds, "the Dockerfile builds no binary"
    assert all(re.search(r"\bcargo\s+auditable\s+build\b", r) for r in builds), (
        f"the image's binary must be built with `cargo auditable build` (scanners read its crate list): {builds}")
    assert any("cargo install cargo-auditable" in r and "--locked" in r and "--version" in r for r in runs)
    assert any(".dep-v0" in r for r in runs), "the build must fail when the binary carries no audit data"


def test_release_scans_in_a_job_that_can_write_nothing_and_gates_the_publish():
    doc = load(WORKFLOWS_DIR / "release.yml")
    all_jobs = jobs(doc)
    scanners = {job_id: job for job_id, job, _, step in steps(doc)
                if str(step.get("uses", "")).startswith("aquasecurity/trivy-action@")}
    assert list(scanners) == ["scan"], f"trivy runs from its maintainers' action, in the scan job only: {list(scanners)}"
    scan = scanners["scan"]
    permissions = scan.get("permissions")
    assert isinstance(permissions, dict), "the scan job must list its permissions"
    assert "id-token" not in permissions and all(v in ("read", "none") for v in permissions.values()), permissions
    assert set(scan["strategy"]["matrix"]["arch"]) == {"amd64", "arm64"}, "both architectures are scanned"
    trivy = next(s for s in scan["steps"] if str(s.get("uses", "")).startswith("aquasecurity/trivy-action@"))
    assert str(trivy["with"]["exit-code"]) == "1" and "CRITICAL" in trivy["with"]["severity"]
    assert "pip" not in "\n".join(str(s.get("run", "")) for s in scan["steps"]), "no PyPI repackaging of trivy"
    # Nothing is tagged or signed before the scan and the advisory check pass.
    publish = all_jobs["publish"]
    assert {"scan", "advisories", "build"} <= set(publish["needs"]), publish["needs"]
    runs = "\n".join(str(s.get("run", "")) for s in publish["steps"])
    assert "docker buildx imagetools create" in runs
    assert "cosign sign --yes" in runs and "@${DIGEST}" in runs
    # Cargo.lock is checked against the advisory database too (the binary's crates are those of the lock file).
    deny = [args for s in all_jobs["advisories"]["steps"] for args in make_invocations(str(s.get("run", "")))]
    assert ["deny", "DENY_CHECKS=advisories"] in deny, deny


def test_only_the_publish_job_signs_and_only_build_and_publish_push():
    doc = load(WORKFLOWS_DIR / "release.yml")
    for job_id, job in jobs(doc).items():
        permissions = job["permissions"]
        if job_id == "publish":
            assert permissions.get("id-token") == "write" and permissions.get("packages") == "write"
        else:
            assert "id-token" not in permissions, job_id
        if job_id not in ("build", "publish"):
            assert permissions.get("packages") != "write", job_id
    assert jobs(doc)["pin-digest"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "pin_image_digest.py" in "\n".join(str(s.get("run", "")) for s in jobs(doc)["pin-digest"]["steps"])
    assert triggers(doc)["push"]["tags"] == ["v*"]


def test_terraform_workflow_plans_only_with_a_role_and_applies_behind_an_environment():
    doc = load(WORKFLOWS_DIR / "terraform.yml")
    on = triggers(doc)
    assert any(p.startswith("deploy/terraform") for p in on["pull_request"]["paths"])
    assert "workflow_dispatch" in on
    all_jobs = jobs(doc)
    plan = next(j for j in all_jobs.values() if "AWS_PLAN_ROLE_ARN" in str(j.get("if", "")))
    assert plan["permissions"].get("id-token") == "write"
    apply = next(j for j in all_jobs.values()
                 if re.search(r"terraform\b.*\bapply\b", "\n".join(str(s.get("run", "")) for s in j["steps"])))
    assert apply.get("environment"), "apply must run behind a GitHub environment (required reviewers)"
    assert "workflow_dispatch" in str(apply.get("if", "")), "apply only by manual dispatch"


REGISTRY_FROM_VARS = "${{ vars.IMAGE_REGISTRY }}"


def run_step(step: dict, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run a step's bash script with the given env; return the process and what it wrote to GITHUB_OUTPUT."""
    output = tmp_path / "github_output"
    output.write_text("")
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), **env})
    return proc, output.read_text()


def test_release_takes_the_registry_from_a_variable_and_fails_early_without_it(tmp_path: Path):
    image = jobs(load(WORKFLOWS_DIR / "release.yml"))["build"]
    first = image["steps"][0]
    assert first.get("id") == "name" and first["env"]["REGISTRY"] == REGISTRY_FROM_VARS, (
        "the build job's first step must name the image from vars.IMAGE_REGISTRY (fail before any build)")
    for bad in ("", "https://registry.example.com", "registry.example.com/", "Registry.Example.com"):
        proc, out = run_step(first, tmp_path, REGISTRY=bad, REPOSITORY="Acme/RevWallet")
        assert proc.returncode == 1 and "IMAGE_REGISTRY" in proc.stdout and not out, (bad, proc.stdout)
    proc, out = run_step(first, tmp_path, REGISTRY="registry.example.com", REPOSITORY="Acme/RevWallet")
    assert proc.returncode == 0, proc.stderr
    assert out.splitlines() == ["registry=registry.example.com", "image=registry.example.com/acme/revwallet"]
    logins = [s for s in image["steps"] if str(s.get("uses", "")).startswith("docker/login-action@")]
    assert logins and all(s["with"]["registry"] == "${{ steps.name.outputs.registry }}" for s in logins)


def test_terraform_apply_takes_the_registry_from_a_variable_and_fails_early_without_it(tmp_path: Path):
    apply = jobs(load(WORKFLOWS_DIR / "terraform.yml"))["apply"]
    first = apply["steps"][0]
    assert first["env"]["REGISTRY"] == REGISTRY_FROM_VARS, "apply must check vars.IMAGE_REGISTRY before anything else"
    assert run_step(first, tmp_path, REGISTRY="")[0].returncode == 1
    assert run_step(first, tmp_path, REGISTRY="https://registry.example.com")[0].returncode == 1
    assert run_step(first, tmp_path, REGISTRY="registry.example.com")[0].returncode == 0
    copies = [s for s in apply["steps"] if "docker login" in str(s.get("run", ""))]
    assert copies and all(s["env"]["REGISTRY"] == REGISTRY_FROM_VARS for s in copies)
    assert all('docker login "${REGISTRY}"' in s["run"] for s in copies)


def test_compose_e2e_uploads_logs_on_failure_and_always_tears_down():
    doc = load(WORKFLOWS_DIR / "compose-e2e.yml")
    job = next(iter(jobs(doc).values()))
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and all(s.get("if") == "failure()" for s in uploads)
    teardown = job["steps"][-1]
    assert teardown.get("if") == "always()"
    # make down is docker compose down -v (mk/stack.mk); the test reads the recipe rather than trusting the name.
    recipe = subprocess.run(["make", "-n", "-C", str(ROOT), "down"], capture_output=True, text=True).stdout
    assert list(make_invocations(teardown["run"])) == [["down"]] and "docker compose down -v" in recipe, recipe
    starts = [args for s in job["steps"] for args in make_invocations(str(s.get("run", "")))]
    assert ["up"] in starts and ["compose-e2e"] in starts
    recipe = subprocess.run(["make", "-n", "-C", str(ROOT), "up"], capture_output=True, text=True).stdout
    assert "--build" in recipe and "--wait" in recipe, f"make up must be docker compose up --build --wait: {recipe}"


def test_kind_e2e_describes_the_cluster_on_failure():
    job = next(iter(jobs(load(WORKFLOWS_DIR / "kind-e2e.yml")).values()))
    failure_runs = "\n".join(str(s.get("run", "")) for s in job["steps"] if s.get("if") == "failure()")
    assert "kubectl describe" in failure_runs and "kubectl logs" in failure_runs
    assert any(["kind-up", "kind-test"] == args[:2] or args == ["kind-up"]
               for s in job["steps"] for args in make_invocations(str(s.get("run", ""))))


def test_dependabot_covers_cargo_actions_and_docker():
    doc = load(ROOT / ".github" / "dependabot.yml")
    ecosystems = {u["package-ecosystem"] for u in doc["updates"]}
    assert {"cargo", "github-actions", "docker"} <= ecosystems, ecosystems


# --- .github/scripts/pin_image_digest.py -------------------------------------------------------------------

sys.path.insert(0, str(ROOT / ".github" / "scripts"))
import pin_image_digest  # noqa: E402

DIGEST = "sha256:" + "ab" * 32
# A placeholder registry (the real one comes from the IMAGE_REGISTRY repository variable).
IMAGE = "registry.example.com/acme/revwallet"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_pin_replaces_tag_with_digest_and_keeps_comments(tmp_path: Path):
    prod = write(tmp_path, "deploy/k8s/overlays/production/kustomization.yaml",
                 "resources:\n  - ../../base\nimages:\n  # the service\n  - name: revwallet\n"
                 "    newName: registry.example.com/OWNER/revwallet  # set by release\n    newTag: 0.1.0\n"
                 "  - name: postgres\n    newTag: \"15\"\n")
    tfvars = write(tmp_path, "deploy/terraform/environments/production.tfvars",
                   'region = "eu-west-1"\nimage  = "registry.example.com/acme/revwallet@sha256:' + "0" * 64 + '" # pinned\n')
    assert pin_image_digest.main(["--image", IMAGE, "--digest", DIGEST, "--root", str(tmp_path)]) == 0
    data = yaml.safe_load(prod.read_text())
    assert data["images"][0] == {"name": "revwallet", "newName": IMAGE, "digest": DIGEST}
    assert data["images"][1] == {"name": "postgres", "newTag": "15"}
    assert "# the service" in prod.read_text()
    assert f'image  = "{IMAGE}@{DIGEST}" # pinned' in tfvars.read_text()
    assert 'region = "eu-west-1"' in tfvars.read_text()


def test_pin_leaves_an_overlay_that_runs_a_local_build_alone(tmp_path: Path):
    text = "images:\n- name: revwallet\n  newTag: dev\n"
    kind = write(tmp_path, "deploy/k8s/overlays/kind/kustomization.yaml", text)
    write(tmp_path, "deploy/terraform/environments/staging.tfvars", 'image = "x"\n')
    assert pin_image_digest.main(["--image", IMAGE, "--digest", DIGEST, "--root", str(tmp_path)]) == 0
    assert kind.read_text() == text


def test_pin_fails_when_there_is_nothing_to_pin(tmp_path: Path):
    write(tmp_path, "deploy/k8s/overlays/kind/kustomization.yaml", "images:\n- name: revwallet\n  newTag: dev\n")
    assert pin_image_digest.main(["--image", IMAGE, "--digest", DIGEST, "--root", str(tmp_path)]) == 1


@pytest.mark.parametrize("args", [["--digest", "sha256:abc"], ["--digest", "latest"],
                                  ["--image", "registry.example.com/Acme/revwallet"],
                                  ["--image", "registry.example.com/acme/revwallet:1.0"]])
def test_pin_rejects_bad_arguments(tmp_path: Path, args: list[str]):
    base = {"--image": IMAGE, "--digest": DIGEST}
    base[args[0]] = args[1]
    argv = [x for kv in base.items() for x in kv] + ["--root", str(tmp_path)]
    assert pin_image_digest.main(argv) == 2


def test_pinned_overlay_renders_with_kustomize(tmp_path: Path):
    kubectl = subprocess.run(["sh", "-c", "command -v kubectl"], capture_output=True, text=True).stdout.strip()
    if not kubectl:
        pytest.skip("kubectl not installed")
    write(tmp_path, "deploy/k8s/base/kustomization.yaml", "resources:\n  - deploy.yaml\n")
    write(tmp_path, "deploy/k8s/base/deploy.yaml",
          "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: revwallet\n")
    write(tmp_path, "deploy/k8s/overlays/production/kustomization.yaml",
          "resources:\n  - ../../base\nimages:\n  - name: revwallet\n    newName: registry.example.com/x/revwallet\n    newTag: old\n")
    assert pin_image_digest.main(["--image", IMAGE, "--digest", DIGEST, "--root", str(tmp_path)]) == 0
    out = subprocess.run([kubectl, "kustomize", str(tmp_path / "deploy/k8s/overlays/production")],
                         capture_output=True, text=True, check=True).stdout
    assert f"image: {IMAGE}@{DIGEST}" in out


def test_pin_sets_image_digest_where_the_tfvars_use_it(tmp_path: Path):
    tfvars = write(tmp_path, "deploy/terraform/environments/prod.tfvars",
                   'environment = "prod"\nimage_digest   = "sha256:' + "0" * 64 + '"  # pinned\n')
    assert pin_image_digest.main(["--image", IMAGE, "--digest", DIGEST, "--root", str(tmp_path)]) == 0
    assert f'image_digest   = "{DIGEST}"  # pinned' in tfvars.read_text()
    assert "@" not in tfvars.read_text()


def test_pin_appends_image_digest_when_the_tfvars_set_no_image(tmp_path: Path):
    tfvars = write(tmp_path, "deploy/terraform/environments/dev.tfvars", 'environment = "dev"')
    assert pin_image_digest.main(["--image", IMAGE, "--digest", DIGEST, "--root", str(tmp_path)]) == 0
    text = tfvars.read_text()
    assert text.startswith('environment = "dev"\n') and text.endswith(f'image_digest = "{DIGEST}"\n')


# --- .github/scripts/compose_e2e.py against a fake stack --------------------------------------------------

import base64  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import urllib.parse  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

import compose_e2e  # noqa: E402


class FakeStack(BaseHTTPRequestHandler):
    """Just enough of nginx + revwallet + Grafana (+ Loki through its proxy) for compose_e2e.py."""

    wallets: dict = {}
    replays: dict = {}
    log_lines: list = []
    auth = "Basic " + base64.b64encode(b"admin:secret").decode()
    bearer = "Bearer rw_" + "e2e" * 12
    break_loki = False
    refuse_proxy = False

    def log_message(self, *args):  # keep pytest output clean
        pass

    def reply(self, status, body=None, ctype="application/json", headers=None):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if self.headers.get("X-Request-Id"):
            self.send_header("X-Request-Id", self.headers["X-Request-Id"])
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def problem(self, status, code, headers=None):
        self.reply(status, {"status": status, "code": code}, "application/problem+json", headers)

    def refused(self):
        """revwallet's access control on /wallet: the one key, or 401 with a Bearer challenge."""
        if self.path.startswith("/wallet") and self.headers.get("Authorization") != self.bearer:
            self.problem(401, "unauthenticated", {"WWW-Authenticate": "Bearer"})
            return True
        return False

    def body(self):
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")

    def wallet(self, wid):
        w = self.wallets[wid]
        return {"id": wid, "owner": w["owner"], "currency": w["currency"], "balance": f"{w['cents'] / 100:.2f}"}

    def entry(self, wid, kind, cents):
        self.wallets[wid]["history"].insert(0, kind)
        return {"type": kind, "amount": f"{cents / 100:.2f}"}

    def log_request(self, code="-", size="-"):  # revwallet's "request completed" line, as Alloy ships it
        if not self.path.startswith(("/grafana", "/prometheus")):
            self.log_lines.append(json.dumps({"timestamp": "t", "level": "INFO", "message": "request completed",
                                              "request_id": self.headers.get("X-Request-Id", "-")}))

    def do_GET(self):  # noqa: N802
        path, _, query = self.path.partition("?")
        if path in ("/grafana/", "/prometheus/") or path.startswith("/grafana/api/"):
            if self.headers.get("Authorization") != self.auth:
                return self.reply(401, b"", "text/html")
            if path == "/prometheus/":
                return self.reply(200, b"<html>", "text/html")
            if path == "/grafana/":
                return self.reply(200, b"<html>", "text/html")
            if path == "/grafana/api/datasources":
                return self.reply(200, [{"uid": "p", "name": "Prometheus", "type": "prometheus"},
                                        {"uid": "l", "name": "Loki", "type": "loki"}])
            if path.endswith("/health"):
                return self.reply(200, {"status": "OK"})
            if path == "/grafana/api/datasources/proxy/uid/l/loki/api/v1/query_range":
                if self.refuse_proxy:
                    return self.reply(403, {"message": "proxy not allowed"})
                if self.break_loki:
                    return self.reply(200, {"data": {"result": []}})
                q = urllib.parse.parse_qs(query)["query"][0]
                needle = q.split('|= "', 1)[1].rstrip('"') if '|= "' in q else ""
                values = [["1", line] for line in self.log_lines if needle in line]
                return self.reply(200, {"data": {"result": [{"stream": {}, "values": values}]}})
            return self.reply(404)
        if path in ("/", "/ui/sign-in"):
            return self.reply(200, b"<html>", "text/html; charset=utf-8")
        if self.refused():
            return None
        if path == "/wallet/":
            return self.reply(200, [])
        if path == "/wallet/openapi.json":
            return self.reply(200, {"openapi": "3.1.0"})
        parts = path.strip("/").split("/")
        if parts[:2] == ["wallet", "balance"] and parts[2] in self.wallets:
            return self.reply(200, self.wallet(parts[2]))
        if len(parts) == 3 and parts[2] == "transactions" and parts[1] in self.wallets:
            return self.reply(200, [{"type": t} for t in self.wallets[parts[1]]["history"]])
        if len(parts) == 2 and parts[1] in self.wallets:
            return self.reply(200, self.wallet(parts[1]))
        if len(parts) == 2:
            return self.problem(404, "wallet_not_found")
        return self.problem(404, "not_found")

    def do_POST(self):  # noqa: N802
        body = self.body()
        if self.path == "/grafana/api/ds/query":
            if self.headers.get("Authorization") != self.auth:
                return self.reply(401)
            q = body["queries"][0]["expr"]
            needle = q.split('|= "', 1)[1].rstrip('"') if '|= "' in q else ""
            lines = [line for line in self.log_lines if needle in line]
            frame = {"schema": {"fields": [{"name": "labels"}, {"name": "Time"}, {"name": "Line"}]},
                     "data": {"values": [[{}] * len(lines), [1] * len(lines), lines]}}
            return self.reply(200, {"results": {"A": {"frames": [frame]}}})
        if self.refused():
            return None
        key = self.headers.get("Idempotency-Key")
        if key and key in self.replays:
            status, payload = self.replays[key]
            return self.reply(status, payload, headers={"Idempotent-Replayed": "true"})
        status, payload = self.post(body)
        if key:
            self.replays[key] = (status, payload)
        if isinstance(payload, dict) and "code" in payload:
            return self.problem(status, payload["code"])
        headers = {"Location": f"/wallet/{payload['id']}"} if status == 201 else None
        return self.reply(status, payload, headers=headers)

    def post(self, body):
        if self.path == "/wallet/":
            wid = str(len(self.wallets) + 1)
            cents = round(float(body.get("initial_balance", "0")) * 100)
            self.wallets[wid] = {"owner": body["owner"], "currency": body["currency"].upper(), "cents": cents,
                                 "history": ["opening"]}
            return 201, self.wallet(wid)
        cents = round(float(body["amount"]) * 100)
        if self.path == "/wallet/deposit":
            self.wallets[str(body["id"])]["cents"] += cents
            return 200, {**self.wallet(str(body["id"])), "transaction": self.entry(str(body["id"]), "deposit", cents)}
        if self.path == "/wallet/withdraw":
            if self.wallets[str(body["id"])]["cents"] < cents:
                return 409, {"code": "insufficient_funds"}
            self.wallets[str(body["id"])]["cents"] -= cents
            return 200, self.wallet(str(body["id"]))
        if self.path == "/wallet/transfer":
            src, dst = str(body["from_id"]), str(body["to_id"])
            self.wallets[src]["cents"] -= cents
            self.wallets[dst]["cents"] += cents
            self.entry(src, "transfer_out", cents)
            self.entry(dst, "transfer_in", cents)
            return 200, {"from": self.wallet(src), "to": self.wallet(dst)}
        return 404, {"code": "not_found"}

    def do_DELETE(self):  # noqa: N802
        if self.refused():
            return None
        wid = self.path.strip("/").split("/")[1]
        self.wallets.pop(wid)
        self.reply(204)


@pytest.fixture
def fake_stack(monkeypatch):
    FakeStack.wallets, FakeStack.replays, FakeStack.log_lines = {}, {}, []
    FakeStack.break_loki = FakeStack.refuse_proxy = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("E2E_ADMIN_USER", "admin")
    monkeypatch.setenv("E2E_ADMIN_PASSWORD", "secret")
    monkeypatch.setenv("E2E_API_KEY", FakeStack.bearer.removeprefix("Bearer "))
    # A fake clock: retries advance it instead of sleeping, so a check that never passes fails at once.
    clock = [0.0]
    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0], time_ns=time.time_ns,
                                      sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    monkeypatch.setattr(compose_e2e, "time", fake_time)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_compose_e2e_passes_against_a_stack_that_behaves(fake_stack, capsys):
    assert compose_e2e.main(["--base-url", fake_stack]) == 0, capsys.readouterr().err
    assert "all checks passed" in capsys.readouterr().out


def test_compose_e2e_falls_back_to_grafanas_query_api_when_the_proxy_is_refused(fake_stack, capsys):
    FakeStack.refuse_proxy = True
    assert compose_e2e.main(["--base-url", fake_stack]) == 0, capsys.readouterr().err


def test_compose_e2e_fails_and_says_why_when_loki_has_no_lines(fake_stack, capsys, monkeypatch):
    FakeStack.break_loki = True
    assert compose_e2e.main(["--base-url", fake_stack]) == 1
    assert "Loki has no lines" in capsys.readouterr().err


def test_compose_e2e_needs_the_admin_credentials(monkeypatch, capsys):
    monkeypatch.delenv("E2E_ADMIN_PASSWORD", raising=False)
    assert compose_e2e.main(["--base-url", "http://127.0.0.1:9"]) == 2


def test_compose_e2e_needs_the_api_key(monkeypatch, capsys):
    monkeypatch.setenv("E2E_ADMIN_USER", "admin")
    monkeypatch.setenv("E2E_ADMIN_PASSWORD", "secret")
    monkeypatch.delenv("E2E_API_KEY", raising=False)
    assert compose_e2e.main(["--base-url", "http://127.0.0.1:9"]) == 2
    assert "E2E_API_KEY" in capsys.readouterr().err


def test_compose_e2e_fails_when_the_api_takes_the_wrong_key(fake_stack, capsys, monkeypatch):
    monkeypatch.setenv("E2E_API_KEY", "rw_" + "x" * 40)
    assert compose_e2e.main(["--base-url", fake_stack]) == 1
    assert "401" in capsys.readouterr().err


def test_compose_e2e_fails_when_the_api_is_open(fake_stack, capsys, monkeypatch):
    monkeypatch.setattr(FakeStack, "refused", lambda self: False)
    assert compose_e2e.main(["--base-url", fake_stack]) == 1
    assert "without an API key" in capsys.readouterr().err


def test_compose_e2e_gets_the_stacks_key_from_the_workflow():
    workflow = (ROOT / ".github" / "workflows" / "compose-e2e.yml").read_text()
    # Generated per run, masked, and the same value for the stack (compose.yaml) and the checks.
    assert "REVWALLET_BOOTSTRAP_ADMIN_KEY=${key}" in workflow and "E2E_API_KEY=${key}" in workflow
    assert '::add-mask::${key}' in workflow

"""Static checks of the observability files: Prometheus, Grafana provisioning and dashboard, Loki, Alloy.

They catch what the tools that run here cannot: promtool checks the Prometheus side, but Grafana, Loki and
Alloy are not installable on this machine, so their files are checked for the contract they must keep
(datasource uids, metric names, log labels, retention, the log pipeline). Run: `make observability-check`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # dashboards.py sits beside this file
from dashboards import (  # noqa: E402
    dashboard_logql_queries,
    dashboard_promql_queries,
    iter_panels,
    load,
    substitute,
    variable_values,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DATASOURCE_FILES = sorted((DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yml"))
DASHBOARD_PROVIDER_FILES = sorted((DEPLOY / "grafana" / "provisioning" / "dashboards").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
LOKI_YML = DEPLOY / "loki" / "loki.yml"
ALLOY_COMPOSE = DEPLOY / "alloy" / "config.alloy"
ALLOY_K8S = DEPLOY / "alloy" / "config.k8s.alloy"
OPERATIONS_MD = ROOT / "docs" / "operations.md"

# The service's metric contract (the brief's "Metric names"); histograms also expose _bucket, _sum and _count.
CONTRACT_COUNTERS_AND_GAUGES = {
    "revwallet_http_requests_total",
    "revwallet_operations_total",
    "revwallet_money_moved_minor_units_total",
    "revwallet_wallets_open",
    "revwallet_database_up",
    "revwallet_db_pool_connections",
    "revwallet_db_pool_max_connections",
    "revwallet_idempotent_replays_total",
    "revwallet_build_info",
    # Holds (docs/adr/0100-holds-model.md): published once a hold exists or expires.
    "revwallet_held_minor_units",
    "revwallet_holds_expired_total",
    # Access control (SPEC §8): 401s by reason (missing, malformed, unknown, revoked, session_expired).
    "revwallet_auth_failures_total",
    # Webhooks (docs/adr/0130-webhooks.md): attempts by outcome, the oldest due delivery's age, the backlog.
    "revwallet_webhook_deliveries_total",
    "revwallet_webhook_delivery_lag_seconds",
    "revwallet_webhook_deliveries_pending",
}
CONTRACT_HISTOGRAMS = {
    "revwallet_http_request_duration_seconds",
    "revwallet_db_pool_acquire_duration_seconds",
    "revwallet_write_batch_size",
}
CONTRACT_METRICS = CONTRACT_COUNTERS_AND_GAUGES | {
    h + suffix for h in CONTRACT_HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}
ALLOWED_OTHER_METRICS = {"up"}
ALLOWED_PREFIXES = ("process_", "prometheus_")

REVWALLET_SERVICE = "revwallet-api"  # the Compose service name, also the `service` log label


# --- helpers ---------------------------------------------------------------------------------------------

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                   "offset", "bool", "inf", "nan", "atan2"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (label names, functions and keywords left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range and subquery selectors
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?\w+", " ", s)
    s = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", s)  # numbers
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end():].lstrip().startswith("("):  # a function call
            continue
        if m.group(0).lower() in PROMQL_KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def allowed_metric(name: str) -> bool:
    return name in CONTRACT_METRICS or name in ALLOWED_OTHER_METRICS or name.startswith(ALLOWED_PREFIXES)


def provisioned_datasources() -> dict[str, str]:
    """uid -> type of every provisioned Grafana datasource."""
    sources = {}
    for path in DATASOURCE_FILES:
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            assert ds["uid"] not in sources, f"{path.name}: datasource uid {ds['uid']} provisioned twice"
            sources[ds["uid"]] = ds["type"]
    return sources


def alert_rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


class Alloy:
    """Just enough of the Alloy configuration syntax to find blocks, attributes and references."""

    def __init__(self, path: Path):
        self.path = path
        self.text = path.read_text()
        self.clean, self.masked = self._strip(self.text)

    @staticmethod
    def _strip(text: str) -> tuple[str, str]:
        """(comments blanked, comments blanked and string contents masked), both keeping every offset."""
        clean, masked, i = [], [], 0
        while i < len(text):
            c = text[i]
            if text.startswith("//", i):
                end = text.find("\n", i)
                end = len(text) if end == -1 else end
                clean.append(" " * (end - i)); masked.append(" " * (end - i)); i = end
            elif text.startswith("/*", i):
                end = text.index("*/", i) + 2
                blank = re.sub(r"[^\n]", " ", text[i:end])
                clean.append(blank); masked.append(blank); i = end
            elif c in "\"`":
                j = i + 1
                while text[j] != c:
                    j += 2 if (c == '"' and text[j] == "\\") else 1
                clean.append(text[i:j + 1]); masked.append(c + "x" * (j - i - 1) + c); i = j + 1
            else:
                clean.append(c); masked.append(c); i += 1
        return "".join(clean), "".join(masked)

    def check_balanced(self) -> None:
        pairs, stack = {"}": "{", "]": "[", ")": "("}, []
        for pos, c in enumerate(self.masked):
            if c in "{[(":
                stack.append((c, pos))
            elif c in "}])":
                assert stack and stack[-1][0] == pairs[c], f"{self.path.name}: unbalanced {c!r} at offset {pos}"
                stack.pop()
        assert not stack, f"{self.path.name}: unclosed {stack[-1][0]!r} at offset {stack[-1][1]}"

    def _close(self, open_pos: int) -> int:
        depth = 0
        for pos in range(open_pos, len(self.masked)):
            depth += {"{": 1, "}": -1}.get(self.masked[pos], 0)
            if depth == 0:
                return pos
        raise AssertionError(f"{self.path.name}: block at {open_pos} never closes")

    def components(self) -> dict[tuple[str, str], str]:
        """(component name, label) -> body text, for the top-level labelled blocks."""
        found, pos = {}, 0
        pattern = re.compile(r'([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)\s+"([^"]*)"\s*\{')
        while (m := pattern.search(self.masked, pos)) is not None:
            label = self.clean[m.start(2):m.end(2)]
            close = self._close(m.end() - 1)
            found[(m.group(1), label)] = self.clean[m.end():close]
            pos = close + 1
        return found

    def references(self) -> set[tuple[str, str]]:
        """(component name, label) of every `component.name.label.export` reference."""
        refs = set()
        for m in re.finditer(r"\b((?:[a-z_][a-z0-9_]*\.)+[a-z_][a-z0-9_]*)\.(receiver|targets|rules|output)\b",
                             self.masked):
            *name, label = m.group(1).split(".")
            refs.add((".".join(name), label))
        return refs


def attr(body: str, name: str) -> str | None:
    m = re.search(rf'\b{name}\s*=\s*"([^"]*)"', body)
    return m.group(1) if m else None


# --- Prometheus --------------------------------------------------------------------------------------------

def test_prometheus_targets_sit_alone_on_their_lines_for_templating():
    lines = PROMETHEUS_YML.read_text().splitlines()
    for target in ("revwallet-api:8080", "prometheus:9090"):
        config_lines = [l for l in lines if target in l and not l.lstrip().startswith("#")]
        assert [l.strip() for l in config_lines] == [f"- {target}"], \
            f"{target} must appear exactly once, alone on its line as '- {target}'"


def test_prometheus_scrapes_revwallet_and_itself_under_its_route_prefix():
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["revwallet"]["static_configs"][0]["targets"] == ["revwallet-api:8080"]
    assert jobs["revwallet"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["prometheus"]["metrics_path"] == "/prometheus/metrics"
    for pattern in config["rule_files"]:
        assert not pattern.startswith("/"), "rule_files must be relative to prometheus.yml"
        assert list(PROMETHEUS_YML.parent.glob(pattern)), f"rule_files pattern {pattern} matches nothing"


def test_alert_rules_use_only_contract_metrics():
    for rule in alert_rules():
        unknown = {n for n in promql_metric_names(rule["expr"]) if not allowed_metric(n)}
        assert not unknown, f"alert {rule['alert']} uses metrics outside the contract: {sorted(unknown)}"


def test_every_alert_has_severity_summary_and_a_runbook_section():
    headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+\s+(.*)$", OPERATIONS_MD.read_text(), flags=re.M)}
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = rule["annotations"]["runbook"]
        doc, _, anchor = runbook.partition("#")
        assert doc == "docs/operations.md" and anchor in headings, \
            f"alert {rule['alert']}: runbook {runbook} has no matching heading in docs/operations.md"


# --- Grafana -----------------------------------------------------------------------------------------------

def test_datasources_point_at_prometheus_route_prefix_and_loki():
    urls = {}
    for path in DATASOURCE_FILES:
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            urls[ds["type"]] = ds["url"]
    assert urls["prometheus"] == "http://prometheus:9090/prometheus"
    assert urls["loki"] == "http://loki:3100"


def test_dashboard_provider_loads_the_dashboards_directory():
    providers = [p for path in DASHBOARD_PROVIDER_FILES for p in yaml.safe_load(path.read_text())["providers"]]
    assert providers and all(p["type"] == "file" and p["options"]["path"] for p in providers)
    assert DASHBOARDS, "no dashboard JSON in deploy/grafana/dashboards"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_panels_use_provisioned_datasources(path):
    sources = provisioned_datasources()
    dashboard = load(path)
    refs = []
    for panel in iter_panels(dashboard):
        if panel["type"] == "row":
            continue
        refs.append((panel["title"], panel.get("datasource")))
        refs += [(panel["title"], t.get("datasource") or panel.get("datasource")) for t in panel.get("targets", [])]
    refs += [(f"variable {v['name']}", v["datasource"])
             for v in dashboard["templating"]["list"] if "datasource" in v]
    assert refs
    for where, ds in refs:
        assert isinstance(ds, dict) and ds.get("uid") in sources, \
            f"{path.name}: {where} uses datasource {ds!r}, not one of the provisioned uids {sorted(sources)}"
        assert ds.get("type") == sources[ds["uid"]], f"{path.name}: {where}: type {ds.get('type')} != provisioned"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_has_unique_uid_and_panel_ids(path):
    dashboard = load(path)
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in iter_panels(dashboard)]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_promql_uses_only_contract_metrics(path):
    queries = dashboard_promql_queries(path)
    assert queries, f"{path.name}: no PromQL queries found"
    used = set()
    for title, expr in queries:
        assert "$" not in expr, f"{path.name}: panel {title!r}: variable left in {expr}"
        names = promql_metric_names(expr)
        assert names, f"{path.name}: panel {title!r}: no metric in {expr}"
        unknown = {n for n in names if not allowed_metric(n)}
        assert not unknown, f"{path.name}: panel {title!r} uses metrics outside the contract: {sorted(unknown)}"
        used |= names
    # The dashboard shows every metric the service promises (histograms through their buckets).
    expected = CONTRACT_COUNTERS_AND_GAUGES | {h + "_bucket" for h in CONTRACT_HISTOGRAMS}
    assert not expected - used, f"{path.name}: contract metrics with no panel: {sorted(expected - used)}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_logql_selects_revwallet_logs(path):
    queries = dashboard_logql_queries(path)
    assert queries, f"{path.name}: no Loki queries found"
    for title, expr in queries:
        selectors = re.findall(r"\{[^}]*\}", expr)
        assert selectors and all(re.search(rf'\bservice\s*=\s*"{REVWALLET_SERVICE}"', s) for s in selectors), \
            f"{path.name}: panel {title!r} does not select service=\"{REVWALLET_SERVICE}\": {expr}"


def test_dashboard_has_request_id_textbox_filtering_a_logs_panel():
    for path in DASHBOARDS:
        dashboard = load(path)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        if "request_id" not in variables:
            continue
        assert variables["request_id"]["type"] == "textbox"
        logs_exprs = [t["expr"] for p in iter_panels(dashboard) if p["type"] == "logs" for t in p["targets"]]
        assert any("request_id" in e and "$" in e for e in logs_exprs), f"{path.name}: no logs panel uses $request_id"
        return
    pytest.fail("no dashboard has a request_id textbox variable")


def test_dashboard_query_substitution_gives_all_values_and_rejects_unknown_variables():
    dashboard = load(DASHBOARDS[0])
    values = variable_values(dashboard)
    assert values["__rate_interval"] == "1m" and values["route"] == ".*"
    assert substitute('rate(x{route=~"${route:regex}"}[$__rate_interval])', values) == 'rate(x{route=~".*"}[1m])'
    with pytest.raises(KeyError):
        substitute("rate(x[$no_such_variable])", values)


# --- Loki --------------------------------------------------------------------------------------------------

def test_loki_keeps_a_bounded_retention_single_binary_config():
    config = yaml.safe_load(LOKI_YML.read_text())
    assert config["auth_enabled"] is False
    assert config["compactor"]["retention_enabled"] is True
    assert config["compactor"]["delete_request_store"] == "filesystem"
    period = config["limits_config"]["retention_period"]
    assert re.fullmatch(r"\d+h", period) and int(period[:-1]) >= 24, f"retention_period {period}"
    schemas = config["schema_config"]["configs"]
    latest = schemas[-1]
    assert (latest["store"], latest["schema"], latest["object_store"]) == ("tsdb", "v13", "filesystem")
    assert latest["index"]["period"] == "24h"
    assert config["limits_config"].get("allow_structured_metadata", True) is True
    assert config["server"]["http_listen_port"] == 3100


# --- Alloy -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [ALLOY_COMPOSE, ALLOY_K8S], ids=lambda p: p.name)
def test_alloy_config_is_well_formed_and_every_reference_resolves(path):
    alloy = Alloy(path)
    alloy.check_balanced()
    components = alloy.components()
    missing = alloy.references() - components.keys()
    assert not missing, f"{path.name}: references to undefined components: {sorted(missing)}"


@pytest.mark.parametrize("path", [ALLOY_COMPOSE, ALLOY_K8S], ids=lambda p: p.name)
def test_alloy_ships_to_loki_and_parses_level_and_request_id(path):
    components = Alloy(path).components()
    writes = [body for (name, _), body in components.items() if name == "loki.write"]
    assert writes and all(attr(w, "url") == "http://loki:3100/loki/api/v1/push" for w in writes)

    process = "\n".join(body for (name, _), body in components.items() if name == "loki.process")
    json_stage = re.search(r"stage\.json\s*\{(.*?)\n\s*\}", process, flags=re.S)
    assert json_stage, f"{path.name}: no stage.json"
    assert re.search(r'\blevel\s*=\s*"level"', json_stage.group(1))
    assert re.search(r'\brequest_id\s*=\s*"request_id\s*\|\|\s*span\.request_id"', json_stage.group(1)), \
        "request_id must fall back to span.request_id"
    assert re.search(r"stage\.labels\s*\{[^}]*\blevel\s*=", process, flags=re.S), "level must become a label"
    assert re.search(r"stage\.structured_metadata\s*\{[^}]*\brequest_id\s*=", process, flags=re.S), \
        "request_id must be structured metadata"
    assert f'service=\\"{REVWALLET_SERVICE}\\"' in process, "the JSON pipeline must select revwallet's lines"


def test_alloy_compose_discovers_containers_through_the_docker_socket():
    components = Alloy(ALLOY_COMPOSE).components()
    discovery = [b for (name, _), b in components.items() if name == "discovery.docker"]
    source = [b for (name, _), b in components.items() if name == "loki.source.docker"]
    assert discovery and source
    assert attr(discovery[0], "host") == attr(source[0], "host") == "unix:///var/run/docker.sock"
    relabel = "\n".join(b for (name, _), b in components.items() if name == "discovery.relabel")
    assert "__meta_docker_container_label_com_docker_compose_service" in relabel
    assert re.search(r'target_label\s*=\s*"service"', relabel) and re.search(r'target_label\s*=\s*"container"', relabel)


def test_alloy_k8s_discovers_pods_and_tails_them_through_the_api():
    components = Alloy(ALLOY_K8S).components()
    assert any(name == "discovery.kubernetes" and 'role = "pod"' in body for (name, _), body in components.items())
    assert any(name == "loki.source.kubernetes" for name, _ in components)


def test_alloy_variants_share_the_same_log_pipeline():
    compose, k8s = Alloy(ALLOY_COMPOSE).components(), Alloy(ALLOY_K8S).components()
    for key in [k for k in compose if k[0] in ("loki.process", "loki.write")]:
        assert compose[key] == k8s.get(key), f"{key[0]} \"{key[1]}\" differs between the Alloy variants"

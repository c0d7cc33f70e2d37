"""Reads the Grafana dashboards' queries so tests can check them and run them against a real Prometheus.

`dashboard_promql_queries(path)` is what the stack test imports: it returns every PromQL query of a dashboard
with Grafana's variables replaced by values Prometheus accepts as-is, ready for `/api/v1/query`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

# Grafana's built-in interval variables, replaced by values that suit a short test run.
BUILTIN_VALUES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# `$name`, `${name}`, `${name:format}` and the old `[[name]]` form.
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w-]+)?\]\]")


def load(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def iter_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def datasource_type(panel: dict, target: dict) -> str | None:
    """A target's datasource type; a target without its own datasource uses its panel's."""
    ds = target.get("datasource") or panel.get("datasource") or {}
    return ds.get("type") if isinstance(ds, dict) else None


def variable_values(dashboard: dict) -> dict[str, str]:
    """A value for each dashboard variable: "All" (its allValue, else `.*`) where allowed, else the default."""
    values = dict(BUILTIN_VALUES)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("includeAll"):
            value = var.get("allValue") or ".*"
        else:
            current = var.get("current", {}).get("value", var.get("query", ""))
            value = current[0] if isinstance(current, list) and current else current
            value = value if isinstance(value, str) else ""
        values[var["name"]] = value
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replaces Grafana variables; an unknown variable is an error, not a silent empty string."""

    def repl(match: re.Match) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"unknown dashboard variable ${name} in: {expr}")
        return values[name]

    return _VARIABLE.sub(repl, expr)


def dashboard_queries(path: str | Path, ds_type: str) -> list[tuple[str, str]]:
    """(panel title, query) for every visible target of the given datasource type, variables substituted."""
    dashboard = load(path)
    values = variable_values(dashboard)
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("hide") or datasource_type(panel, target) != ds_type:
                continue
            expr = target.get("expr", "").strip()
            if expr:
                queries.append((panel.get("title", ""), substitute(expr, values)))
    return queries


def dashboard_promql_queries(path: str | Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every Prometheus query of the dashboard, variables substituted."""
    return dashboard_queries(path, "prometheus")


def dashboard_logql_queries(path: str | Path) -> list[tuple[str, str]]:
    """(panel title, LogQL) for every Loki query of the dashboard, variables substituted."""
    return dashboard_queries(path, "loki")

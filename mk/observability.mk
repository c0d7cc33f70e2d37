# Observability: Prometheus config, alert rules and their unit tests, Grafana provisioning and dashboard,
# Loki and Alloy configs. promtool comes from Debian's prometheus package (2.42 on bookworm); Grafana, Loki
# and Alloy are not installable here, so their files are checked by tests/deploy/test_observability.py.

OBS_PROMETHEUS_DIR := deploy/prometheus
OBS_DASHBOARDS     := $(wildcard deploy/grafana/dashboards/*.json)

.PHONY: deps-observability observability-check

deps-observability: deps-pytest ## install promtool (Debian prometheus package), pytest and pyyaml
	@$(call apt_need,promtool,prometheus)
	@command -v promtool >/dev/null 2>&1 || $(call fail,promtool still missing after installing the prometheus package)

observability-check: ## promtool config/rules/rule tests, dashboard JSON, observability pytest suite
	@echo "observability: promtool check config"
	@out=$$(promtool check config $(OBS_PROMETHEUS_DIR)/prometheus.yml 2>&1) \
		|| { echo "$$out"; $(call fail,$(OBS_PROMETHEUS_DIR)/prometheus.yml is not a valid Prometheus config); }
	@echo "observability: promtool check rules"
	@out=$$(promtool check rules $(OBS_PROMETHEUS_DIR)/rules/*.yml 2>&1) \
		|| { echo "$$out"; $(call fail,alert rules in $(OBS_PROMETHEUS_DIR)/rules/ are invalid); }
	@echo "observability: promtool test rules"
	@promtool test rules $(OBS_PROMETHEUS_DIR)/tests/*.yml \
		|| $(call fail,alert rule unit tests in $(OBS_PROMETHEUS_DIR)/tests/ (see above))
	@echo "observability: dashboard JSON"
	@test -n "$(OBS_DASHBOARDS)" || $(call fail,no dashboard in deploy/grafana/dashboards/)
	@for f in $(OBS_DASHBOARDS); do \
		python3 -m json.tool "$$f" >/dev/null || $(call fail,$$f is not valid JSON); \
	done
	@echo "observability: pytest tests/deploy/test_observability.py"
	@python3 -m pytest -q -p no:cacheprovider tests/deploy/test_observability.py \
		|| $(call fail,observability config tests (tests/deploy/test_observability.py; see above))
	@echo "observability-check: OK"

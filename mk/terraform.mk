# AWS Terraform (deploy/terraform): offline checks only — nothing here talks to AWS.
# Terraform itself and the provider mirror are part of the machine image (see docs/aws.md);
# deps-terraform installs the scanners, terraform-check runs every static and mocked check.

TF_DIR         := deploy/terraform
TF_PLUGIN_DIR  ?= /opt/tf-plugins
TF_VERSION_REQ := 1.11
# The offline checks run in a scratch copy: plan needs a local backend (the real one is S3),
# which an override file supplies there without touching the repository.
TF_WORK_DIR    ?= $(or $(TMPDIR),/tmp)/revwallet-terraform-check
# Any syntactically valid digest, for an environment whose tfvars pin none yet: plan never pulls the image.
TF_DUMMY_DIGEST := sha256:0000000000000000000000000000000000000000000000000000000000000000
# Dummy credentials and no shared config or instance metadata, so nothing can reach a real account.
TF_OFFLINE_ENV := env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=offline-check AWS_SECRET_ACCESS_KEY=offline-check \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null

.PHONY: deps-terraform
deps-terraform: deps-pip deps-trivy ## install checkov and trivy for the Terraform checks (terraform itself comes with the machine image)
	@command -v terraform >/dev/null 2>&1 || $(call fail,terraform $(TF_VERSION_REQ).x is not on PATH; it is part of the machine image (/usr/local/bin/terraform))
	@$(call pip_need,checkov,$(CHECKOV_VERSION))

.PHONY: terraform-check
terraform-check: ## Terraform offline: fmt, init, validate, plan dev+prod (dummy creds), mocked terraform test, checkov, trivy
	@test -n "$$(find $(TF_PLUGIN_DIR) -path '*/hashicorp/aws/*' -print -quit 2>/dev/null)" || { \
	  echo "terraform-check: the provider mirror is part of the machine image and cannot be downloaded here; run on a machine that has it$(comma) or set TF_PLUGIN_DIR." >&2; \
	  $(call fail,the offline provider mirror $(TF_PLUGIN_DIR) is missing (hashicorp/aws 5.100.0 expected under it)); }
	@command -v terraform >/dev/null 2>&1 && $(TF_OFFLINE_ENV) terraform version | grep '^Terraform v$(subst .,\.,$(TF_VERSION_REQ))\.' >/dev/null || \
	  $(call fail,Terraform $(TF_VERSION_REQ).x is required on PATH (machine image: /usr/local/bin/terraform))
	@command -v checkov >/dev/null 2>&1 && command -v trivy >/dev/null 2>&1 || \
	  $(call fail,checkov or trivy is missing; run 'make deps-terraform' first)
	@echo "terraform-check: fmt"
	@$(TF_OFFLINE_ENV) terraform -chdir=$(TF_DIR) fmt -check -recursive -diff || \
	  $(call fail,formatting differs; run 'terraform fmt -recursive $(TF_DIR)')
	@rm -rf $(TF_WORK_DIR) && mkdir -p $(TF_WORK_DIR) && tar -C $(TF_DIR) --exclude=.terraform --exclude='*.tfstate*' --exclude='*.tfplan' -cf - . | tar -C $(TF_WORK_DIR) -xf -
	@echo "terraform-check: init -backend=false (provider from $(TF_PLUGIN_DIR), lock file read-only)"
	@$(TF_OFFLINE_ENV) terraform -chdir=$(TF_WORK_DIR) init -backend=false -plugin-dir=$(TF_PLUGIN_DIR) -lockfile=readonly -input=false >/dev/null || \
	  $(call fail,terraform init (is .terraform.lock.hcl consistent with the mirror in $(TF_PLUGIN_DIR)?))
	@echo "terraform-check: validate"
	@$(TF_OFFLINE_ENV) terraform -chdir=$(TF_WORK_DIR) validate -no-color || \
	  $(call fail,terraform validate)
	@# plan needs an initialised backend; in the scratch copy a local one replaces S3 (offline, no real state).
	@printf 'terraform {\n  backend "local" {}\n}\n' > $(TF_WORK_DIR)/offline_check_override.tf
	@$(TF_OFFLINE_ENV) terraform -chdir=$(TF_WORK_DIR) init -reconfigure -plugin-dir=$(TF_PLUGIN_DIR) -lockfile=readonly -input=false >/dev/null || \
	  $(call fail,terraform init with the local backend override)
	@for env in dev prod; do \
	  echo "terraform-check: plan $$env (dummy credentials, offline)"; \
	  digest=(); grep -Eq '^[[:space:]]*image_digest[[:space:]]*=' $(TF_DIR)/environments/$$env.tfvars || digest=(-var image_digest=$(TF_DUMMY_DIGEST)); \
	  $(TF_OFFLINE_ENV) terraform -chdir=$(TF_WORK_DIR) plan -input=false -lock=false -refresh=false -no-color \
	    -var-file=environments/$$env.tfvars -var offline_check=true "$${digest[@]}" \
	    -out=$$env.tfplan > $(TF_WORK_DIR)/$$env.plan.txt 2>&1 || { \
	    cat $(TF_WORK_DIR)/$$env.plan.txt >&2; $(call fail,terraform plan for $$env); }; \
	  grep -E '^Plan:' $(TF_WORK_DIR)/$$env.plan.txt | sed 's/^/  /'; \
	  $(TF_OFFLINE_ENV) terraform -chdir=$(TF_WORK_DIR) show -json $$env.tfplan | python3 $(TF_DIR)/tests/plan_has_rotation.py || { \
	    echo "terraform-check: FAILED: the $$env plan lacks the database credential rotation (ADR 0045)." >&2; exit 1; }; \
	done
	@echo "terraform-check: terraform test (mocked AWS provider)"
	@$(TF_OFFLINE_ENV) terraform -chdir=$(TF_WORK_DIR) test -no-color > $(TF_WORK_DIR)/test.txt 2>&1 || { \
	  cat $(TF_WORK_DIR)/test.txt >&2; $(call fail,terraform test); }
	@tail -n1 $(TF_WORK_DIR)/test.txt | sed 's/^/  /'
	@echo "terraform-check: checkov (defaults, then prod.tfvars)"
	@checkov -d $(TF_DIR) --framework terraform --skip-path '\.terraform' --skip-download --quiet --compact || \
	  $(call fail,checkov found a failed check (fix it$(comma) or skip it inline with #checkov:skip=ID:reason))
	@checkov -d $(TF_DIR) --var-file $(TF_DIR)/environments/prod.tfvars --framework terraform --skip-path '\.terraform' --skip-download --quiet --compact || \
	  $(call fail,checkov with prod.tfvars found a failed check)
	@echo "terraform-check: trivy config (HIGH, CRITICAL; defaults, then prod.tfvars)"
	@trivy config --skip-check-update --quiet --skip-dirs '**/.terraform' --severity HIGH,CRITICAL --exit-code 1 $(TF_DIR) || \
	  $(call fail,trivy found a HIGH/CRITICAL misconfiguration (fix it$(comma) or ignore it inline with #trivy:ignore:AVD-...))
	@trivy config --skip-check-update --quiet --skip-dirs '**/.terraform' --severity HIGH,CRITICAL --exit-code 1 --tf-vars $(TF_DIR)/environments/prod.tfvars $(TF_DIR) || \
	  $(call fail,trivy with prod.tfvars found a HIGH/CRITICAL misconfiguration)
	@echo "terraform-check: OK"

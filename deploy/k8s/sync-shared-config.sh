#!/usr/bin/env bash
# Copies the configuration files Compose mounts from deploy/ into deploy/k8s/base/shared/, so the kustomization
# holds everything it loads and plain kustomize renders it: `kubectl apply -k`, `kubectl kustomize`, Argo CD and
# Flux, with no --load-restrictor flag (ADR 0059). deploy/ stays the one place to edit; the copies are checked in
# and `make k8s-check` fails when one differs from its source (`--check`).
#
#   deploy/k8s/sync-shared-config.sh           refresh the copies (make k8s-sync)
#   deploy/k8s/sync-shared-config.sh --check   exit 1 and name every copy that drifted or is missing
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
dest="$root/deploy/k8s/base/shared"

# Source files under deploy/, copied to the same relative path under deploy/k8s/base/shared/.
files=(
  nginx/templates/revwallet.conf.template
  nginx/docker-entrypoint.d/40-revwallet-htpasswd.sh
  prometheus/rules/revwallet.yml
  grafana/provisioning/datasources/datasources.yml
  grafana/provisioning/dashboards/revwallet.yml
  grafana/dashboards/revwallet.json
  loki/loki.yml
  alloy/config.k8s.alloy
)

mode=${1:-sync}
case "$mode" in
  sync | --check) ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

drift=0
for f in "${files[@]}"; do
  src="$root/deploy/$f"
  copy="$dest/$f"
  [ -f "$src" ] || { echo "sync-shared-config: $src is missing" >&2; exit 1; }
  if [ "$mode" = --check ]; then
    if ! cmp -s "$src" "$copy"; then
      echo "sync-shared-config: deploy/k8s/base/shared/$f differs from deploy/$f (run 'make k8s-sync' and commit)" >&2
      drift=1
    fi
  else
    install -D -m "$([ -x "$src" ] && echo 0755 || echo 0644)" "$src" "$copy"
  fi
done

# A copy whose source was dropped from the list would keep being deployed: refuse strays.
while IFS= read -r copy; do
  rel=${copy#"$dest/"}
  [ "$rel" = README.md ] && continue
  known=0
  for f in "${files[@]}"; do [ "$f" = "$rel" ] && known=1; done
  if [ $known = 0 ]; then
    echo "sync-shared-config: deploy/k8s/base/shared/$rel has no source in the list; delete it or add it" >&2
    drift=1
  fi
done < <(find "$dest" -type f 2>/dev/null | sort)

exit $drift

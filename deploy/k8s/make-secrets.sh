#!/usr/bin/env bash
# Creates an overlay's git-ignored secrets.env from its committed secrets.env.example: keys with a value keep
# it, keys left empty get a fresh random value. Never overwrites an existing file (your edits stay).
set -euo pipefail

example=${1:?usage: deploy/k8s/make-secrets.sh EXAMPLE TARGET}
target=${2:?usage: deploy/k8s/make-secrets.sh EXAMPLE TARGET}

if [[ -e $target ]]; then
  exit 0
fi

umask 077
tmp=$(mktemp "$target.XXXXXX")
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [[ -n $line ]]; do
  if [[ $line =~ ^[A-Z_][A-Z0-9_]*=$ ]]; then
    # 24 random bytes as hex: URL-safe, so it needs no escaping in a database URL or an htpasswd line.
    printf '%s%s\n' "$line" "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
  else
    printf '%s\n' "$line"
  fi
done <"$example" >"$tmp"
mv "$tmp" "$target"
trap - EXIT
echo "make-secrets.sh: wrote $target (random passwords; edit it to choose your own)" >&2

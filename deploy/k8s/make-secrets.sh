#!/usr/bin/env bash
# Creates an overlay's git-ignored secrets.env from its committed secrets.env.example: keys with a value keep
# it, keys left empty get a fresh random value. An existing file is never rewritten (your edits stay); keys the
# example gained since it was made are appended to it, so an upgrade that adds a secret needs no manual step.
# Generated values are never printed.
set -euo pipefail

example=${1:?usage: deploy/k8s/make-secrets.sh EXAMPLE TARGET}
target=${2:?usage: deploy/k8s/make-secrets.sh EXAMPLE TARGET}

# value NAME: a fresh random value for an empty key.
value() {
  if [[ $1 == *_KEY ]]; then
    # An API key (REVWALLET_BOOTSTRAP_ADMIN_KEY): revwallet's format, rw_ and 32 random bytes as hex.
    printf 'rw_%s' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
  else
    # 24 random bytes as hex: URL-safe, so it needs no escaping in a database URL or an htpasswd line.
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n'
  fi
}

# line LINE: the example's line, with a generated value when it names a key and leaves it empty.
line() {
  if [[ $1 =~ ^([A-Z_][A-Z0-9_]*)=$ ]]; then
    printf '%s%s\n' "$1" "$(value "${BASH_REMATCH[1]}")"
  else
    printf '%s\n' "$1"
  fi
}

umask 077

if [[ -e $target ]]; then
  added=()
  while IFS= read -r entry || [[ -n $entry ]]; do
    if [[ $entry =~ ^([A-Z_][A-Z0-9_]*)= ]] && ! grep -q "^${BASH_REMATCH[1]}=" "$target"; then
      line "$entry" >>"$target"
      added+=("${BASH_REMATCH[1]}")
    fi
  done <"$example"
  if ((${#added[@]})); then
    echo "make-secrets.sh: added ${added[*]} to $target" >&2
  fi
  exit 0
fi

tmp=$(mktemp "$target.XXXXXX")
trap 'rm -f "$tmp"' EXIT
while IFS= read -r entry || [[ -n $entry ]]; do
  line "$entry"
done <"$example" >"$tmp"
mv "$tmp" "$target"
trap - EXIT
echo "make-secrets.sh: wrote $target (random passwords and API key; edit it to choose your own)" >&2

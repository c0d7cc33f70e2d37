#!/usr/bin/env bash
# End-to-end checks against revwallet on kind (`make kind-up` first; `make kind-test` runs this).
# Everything goes through the edge at http://localhost/ (the kind port mapping), as a user's requests would:
# the wallet API flow with the bootstrap API key (and a 401 without it), the edge's 404s, basic auth on /grafana/
# and /prometheus/, Prometheus scraping every API pod, Grafana's datasources, revwallet's logs in Loki, and one
# NetworkPolicy denial.
#
# Environment: BASE_URL (default http://localhost), KUBE_CONTEXT (default kind-revwallet), SECRETS_ENV (the
# kind overlay's secrets.env, for ADMIN_USER/ADMIN_PASSWORD and REVWALLET_KEY unless those are set; REVWALLET_KEY
# defaults to its REVWALLET_BOOTSTRAP_ADMIN_KEY), NAMESPACE (revwallet).
# Needs curl, python3 (JSON) and kubectl.
set -euo pipefail

BASE_URL=${BASE_URL:-http://localhost}
KUBE_CONTEXT=${KUBE_CONTEXT:-kind-revwallet}
NAMESPACE=${NAMESPACE:-revwallet}
SECRETS_ENV=${SECRETS_ENV:-deploy/k8s/overlays/kind/secrets.env}

kubectl_ns() { kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" "$@"; }

# The admin credentials the edge was deployed with.
if [[ -z ${ADMIN_USER:-} || -z ${ADMIN_PASSWORD:-} ]]; then
  [[ -r $SECRETS_ENV ]] || { echo "kind-test: cannot read $SECRETS_ENV (set ADMIN_USER/ADMIN_PASSWORD)" >&2; exit 1; }
  ADMIN_USER=$(sed -n 's/^ADMIN_USER=//p' "$SECRETS_ENV")
  ADMIN_PASSWORD=$(sed -n 's/^ADMIN_PASSWORD=//p' "$SECRETS_ENV")
fi
# The API key every /wallet request carries: the admin key the Secret gave revwallet at start.
if [[ -z ${REVWALLET_KEY:-} ]]; then
  [[ -r $SECRETS_ENV ]] || { echo "kind-test: cannot read $SECRETS_ENV (set REVWALLET_KEY)" >&2; exit 1; }
  REVWALLET_KEY=$(sed -n 's/^REVWALLET_BOOTSTRAP_ADMIN_KEY=//p' "$SECRETS_ENV")
  [[ -n $REVWALLET_KEY ]] || { echo "kind-test: no REVWALLET_BOOTSTRAP_ADMIN_KEY in $SECRETS_ENV" >&2; exit 1; }
fi

passed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The key goes to curl in a header file (-H @file), never on a command line where ps or a log could show it.
umask 077
printf 'Authorization: Bearer %s\n' "$REVWALLET_KEY" >"$work/auth-header"

pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }

# request METHOD PATH [JSON_BODY] [curl args...]: sets $status, body in $work/body, headers in $work/headers.
# /wallet requests carry the API key; `anonymous request ...` sends none.
request() {
  local method=$1 path=$2 body=${3:-}
  shift $(($# < 3 ? $# : 3))
  local args=(--silent --show-error --max-time 15 -X "$method" -o "$work/body" -D "$work/headers" -w '%{http_code}')
  if [[ -n $body ]]; then
    args+=(-H 'Content-Type: application/json' --data "$body")
  fi
  if [[ $path == /wallet* && ${ANONYMOUS:-0} != 1 ]]; then
    args+=(-H "@$work/auth-header")
  fi
  status=$(curl "${args[@]}" "$@" "$BASE_URL$path") || status=000
}

anonymous() { ANONYMOUS=1 "$@"; }

# expect STATUS DESCRIPTION: the last request answered STATUS.
expect() {
  [[ $status == "$1" ]] || fail "$2: expected HTTP $1, got $status: $(head -c 500 "$work/body")"
}

# json EXPR: evaluates a Python expression over the last body, bound to `j`, and prints it.
json() {
  python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$work/body" "$1"
}

# header NAME: the value of a response header of the last request.
header() {
  sed -n "s/^$1: *//Ip" "$work/headers" | tr -d '\r' | tail -n 1
}

# Bounded wait for the API behind the edge (the rollout is done, but the edge may still be resolving).
for attempt in $(seq 1 60); do
  request GET /wallet/
  [[ $status == 200 ]] && break
  [[ $attempt == 60 ]] && fail "GET /wallet/ through the edge never answered 200 (last: $status)"
  sleep 2
done
pass "the edge answers GET /wallet/ (after $attempt attempt(s))"

# --- access control: no key, a wrong key ---
anonymous request GET /wallet/
expect 401 "GET /wallet/ without an API key"
[[ $(header Content-Type) == application/problem+json* && $(json 'j["code"]') == unauthenticated ]] \
  || fail "a request without a key is not problem JSON with code unauthenticated"
[[ $(header WWW-Authenticate) == Bearer* ]] || fail "a 401 without a key lacks WWW-Authenticate: Bearer"
anonymous request GET /wallet/ "" -H "Authorization: Bearer rw_kind-test-$RANDOM-not-a-key-0123456789abcdef"
expect 401 "GET /wallet/ with an unknown API key"
pass "without a key or with an unknown one, /wallet/ is 401 unauthenticated with WWW-Authenticate: Bearer"

# --- the wallet API through the edge ---
owner="kind-test-$(date +%s)-$RANDOM"

request POST /wallet/ "{\"owner\":\"$owner\",\"currency\":\"EUR\",\"initial_balance\":\"100.00\"}"
expect 201 "create a wallet"
a=$(json 'j["id"]')
[[ $(json 'j["balance"]') == 100.00 ]] || fail "new wallet balance is not 100.00"
[[ $(header Location) == "/wallet/$a" ]] || fail "Location header is not /wallet/$a"
pass "POST /wallet/ creates wallet $a with 100.00 EUR"

request POST /wallet/ "{\"owner\":\"$owner-2\",\"currency\":\"EUR\"}"
expect 201 "create a second wallet"
b=$(json 'j["id"]')
pass "POST /wallet/ creates wallet $b with the default balance"

request POST /wallet/deposit "{\"id\":\"$a\",\"amount\":\"50.25\"}"
expect 200 "deposit"
[[ $(json 'j["balance"]') == 150.25 ]] || fail "balance after deposit is not 150.25"
[[ $(json 'j["transaction"]["type"]') == deposit ]] || fail "deposit did not return its transaction"
pass "POST /wallet/deposit 50.25 -> 150.25"

request POST /wallet/withdraw "{\"id\":\"$a\",\"amount\":\"20.25\"}"
expect 200 "withdraw"
[[ $(json 'j["balance"]') == 130.00 ]] || fail "balance after withdrawal is not 130.00"
pass "POST /wallet/withdraw 20.25 -> 130.00"

request POST /wallet/transfer "{\"from_id\":\"$a\",\"to_id\":\"$b\",\"amount\":\"30.00\"}"
expect 200 "transfer"
[[ $(json 'j["from"]["balance"]') == 100.00 && $(json 'j["to"]["balance"]') == 30.00 ]] \
  || fail "balances after the transfer are not 100.00 / 30.00"
pass "POST /wallet/transfer 30.00 from $a to $b"

request POST /wallet/withdraw "{\"id\":\"$b\",\"amount\":\"1000.00\"}"
expect 409 "overdraft"
[[ $(header Content-Type) == application/problem+json* && $(json 'j["code"]') == insufficient_funds ]] \
  || fail "an overdraft is not problem JSON with code insufficient_funds"
pass "an overdraft is refused: 409 insufficient_funds"

request GET "/wallet/balance/$a"
expect 200 "balance"
[[ $(json 'j["balance"]') == 100.00 ]] || fail "GET /wallet/balance/$a is not 100.00"
pass "GET /wallet/balance/$a -> 100.00"

request GET "/wallet/$a/transactions"
expect 200 "history"
[[ $(json '" ".join(t["type"] for t in j)') == "transfer_out withdrawal deposit opening" ]] \
  || fail "history of $a is not transfer_out, withdrawal, deposit, opening (newest first): $(head -c 500 "$work/body")"
pass "GET /wallet/$a/transactions lists the four entries, newest first"

key="kind-test-$owner"
request POST /wallet/deposit "{\"id\":\"$b\",\"amount\":\"1.00\"}" -H "Idempotency-Key: $key"
expect 200 "idempotent deposit"
request POST /wallet/deposit "{\"id\":\"$b\",\"amount\":\"1.00\"}" -H "Idempotency-Key: $key"
expect 200 "idempotent replay"
[[ $(header Idempotent-Replayed) == true && $(json 'j["balance"]') == 31.00 ]] \
  || fail "a repeated Idempotency-Key was executed twice or not marked as replayed"
pass "a repeated Idempotency-Key is replayed, not executed again"

request GET /wallet/ "" -H "X-Request-Id: kind-test-$owner"
[[ $(header X-Request-Id) == "kind-test-$owner" ]] || fail "the edge did not pass X-Request-Id through"
pass "X-Request-Id goes through the edge and back"

request DELETE "/wallet/$a"
expect 204 "close"
request GET "/wallet/$a"
expect 404 "closed wallet"
[[ $(json 'j["code"]') == wallet_not_found ]] || fail "a closed wallet is not 404 wallet_not_found"
pass "DELETE /wallet/$a closes it; it is 404 afterwards"

# The web app needs a session: its sign-in page is what an anonymous browser gets.
request GET /ui/sign-in
expect 200 "web app sign-in page"
[[ $(header Content-Type) == text/html* ]] || fail "/ui/sign-in is not an HTML page"
request GET /
[[ $status == 200 || $status == 30[0-9] ]] || fail "GET / answered $status (expected the app or a redirect to sign-in)"
pass "the web app answers: GET /ui/sign-in is its HTML sign-in page, GET / is $status"

# --- what the edge keeps inside ---
for path in /metrics /healthz /readyz /nope /loki/api/v1/labels; do
  request GET "$path"
  expect 404 "GET $path at the edge"
done
pass "/metrics, /healthz, /readyz and unknown paths are 404 at the edge"

# --- basic auth on the admin tools ---
for path in /grafana/ /prometheus/; do
  request GET "$path"
  expect 401 "GET $path without credentials"
  request GET "$path" "" -u "$ADMIN_USER:wrong-$ADMIN_PASSWORD"
  expect 401 "GET $path with a wrong password"
done
pass "/grafana/ and /prometheus/ answer 401 without or with wrong credentials"

admin=(-u "$ADMIN_USER:$ADMIN_PASSWORD")
request GET /prometheus/-/ready "" "${admin[@]}"
expect 200 "Prometheus ready, with credentials"
request GET /grafana/api/health "" "${admin[@]}"
expect 200 "Grafana health, with credentials"
pass "with the admin credentials, /prometheus/ and /grafana/ answer"

# --- Prometheus scrapes every API pod (pod discovery) ---
for attempt in $(seq 1 30); do
  # Counted each time: pods of a finished rollout may still be terminating.
  want=$(kubectl_ns get pods -l app.kubernetes.io/name=revwallet --field-selector=status.phase=Running -o name | wc -l)
  request GET '/prometheus/api/v1/query?query=sum(up%7Bjob%3D%22revwallet%22%7D)' "" "${admin[@]}"
  up=0
  if [[ $status == 200 ]]; then
    up=$(json 'int(float(j["data"]["result"][0]["value"][1])) if j["data"]["result"] else 0')
  fi
  (( up >= want && want > 0 )) && break
  [[ $attempt == 30 ]] && fail "Prometheus sees $up revwallet target(s) up, expected $want"
  sleep 5
done
pass "Prometheus scrapes all $want revwallet pods (up == 1)"

# --- Grafana: provisioned datasources answer (the edge passes the admin's basic auth on to Grafana) ---
for uid in revwallet-prometheus revwallet-loki; do
  request GET "/grafana/api/datasources/uid/$uid/health" "" "${admin[@]}"
  expect 200 "Grafana datasource $uid health"
done
pass "Grafana's Prometheus and Loki datasources are healthy"

# --- Loki holds revwallet's log lines, including this run's request ---
# The same check as `make compose-e2e` (.github/scripts/compose_e2e.py): Grafana's data source proxy, and its
# /api/ds/query when a Grafana version refuses the proxy for Loki, so Compose and kind cannot drift apart.
# It makes a request of its own through the edge and waits for that request id in Loki.
E2E_ADMIN_USER=$ADMIN_USER E2E_ADMIN_PASSWORD=$ADMIN_PASSWORD E2E_API_KEY=$REVWALLET_KEY \
  python3 "$(dirname "$0")/../../.github/scripts/compose_e2e.py" --base-url "$BASE_URL" --skip auth \
  || fail "Loki has no revwallet-api log lines for this run (compose_e2e.py's check, output above)"
pass "Loki holds revwallet-api's log lines, this run's request among them (Alloy ships them)"

# --- NetworkPolicy: the edge may not talk to Loki (only to revwallet, Grafana and Prometheus) ---
edge_pod=$(kubectl_ns get pods -l app.kubernetes.io/name=edge -o name | head -n 1)
if kubectl_ns exec "$edge_pod" -c nginx -- sh -c \
  'if command -v curl >/dev/null; then curl -sf -m 5 -o /dev/null http://loki:3100/ready; else wget -q -T 5 -O /dev/null http://loki:3100/ready; fi' \
  >/dev/null 2>&1; then
  fail "the edge reached loki:3100; the NetworkPolicies are not enforced"
fi
pass "the edge cannot reach Loki (default deny holds)"

echo "kind-test: all $passed checks passed"

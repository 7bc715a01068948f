#!/usr/bin/env bash
# Property-tests the HTTP shim against its OpenAPI document with schemathesis
# (PyPI): a live `tessera serve` on a temp store, a registered client for
# Basic authentication, and a bounded number of generated requests per
# operation. Fails on any 5xx and on any response that does not conform to
# server/api/openapi.json (status code, content type, headers, schema), and
# checks that undocumented methods get 405. The admin API is run twice: as
# a Basic-authenticated client (refused before anything is looked at), and
# as an admin with a bearer token (its operations themselves).
#
# Usage: tests/schemathesis.sh [EXAMPLES_PER_OPERATION]   (default 100)
# Needs python3 with venv; installs schemathesis into target/schemathesis-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-100}"
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4,<5"
fi
cargo build --quiet -p tessera-server --bin tessera
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
store="sqlite://$work/tessera.db"
target/debug/tessera serve --listen 127.0.0.1:0 --store "$store" >"$work/out" 2>"$work/err" &
server_pid=$!
for _ in $(seq 100); do
  grep -q "tessera listening on" "$work/out" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^tessera listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/out")
[ -n "$base" ] || { echo "tessera did not start:"; cat "$work/err"; exit 1; }
secret=$(target/debug/tessera client create fuzz --scope read --scope tessera:introspect --store "$store" --json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method
"$venv/bin/schemathesis" run "$base/openapi.json" \
  --checks "$checks" \
  --auth "fuzz:$secret" \
  --max-examples "$examples" \
  --seed 7 \
  --warnings off
# The admin API again, as an admin: generated bodies, paths and queries
# reach the operations themselves, not only the authorisation in front.
admin_secret=$(target/debug/tessera client create fuzz-admin --scope tessera:admin --audience "$base/admin" --store "$store" --json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
admin_token=$(curl -sS -u "fuzz-admin:$admin_secret" -d grant_type=client_credentials "$base/oauth2/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
"$venv/bin/schemathesis" run "$base/openapi.json" \
  --checks "$checks" \
  --header "Authorization: Bearer $admin_token" \
  --include-path-regex '^/admin/' \
  --max-examples "$examples" \
  --seed 7 \
  --warnings off
# A pass that never got past authorisation would have tested nothing.
changes=$(grep -c 'actor=client:fuzz-admin' "$work/err" || true)
echo "admin changes made by the generated requests: $changes"
[ "$changes" -gt 0 ] || { echo "the admin pass made no change: was its token refused?"; exit 1; }

#!/usr/bin/env bash
# Installs the third-party clients of the interoperability suite into
# target/interop (ignored by git): a Python venv from requirements.txt and
# node_modules from package-lock.json. Idempotent: a second run with the same
# pins does nothing. Used by tests/interop.rs and .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${TESSERA_INTEROP_DIR:-$root/target/interop}"
mkdir -p "$out"

stamp() { cat "$@" | sha256sum | cut -c1-16; }

want="$(stamp "$here/requirements.txt")"
if [ "$(cat "$out/venv.stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$out/venv"
  python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$out/venv.stamp"
fi

want="$(stamp "$here/package.json" "$here/package-lock.json")"
if [ "$(cat "$out/node.stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$out/node"
  mkdir -p "$out/node"
  cp "$here/package.json" "$here/package-lock.json" "$out/node/"
  (cd "$out/node" && npm ci --silent --no-audit --no-fund)
  echo "$want" > "$out/node.stamp"
fi

#!/usr/bin/env bash
# Long fuzzing run of the HTTP shim's request path (server/tests/fuzz.rs):
# hostile forms, Authorization headers, assertions and tokens, in process.
# Usage: bench/fuzz.sh [CASES_PER_TARGET]   (default 200000; CI runs 400)
# Prints the shrunk failing request if a property breaks; add it as a
# regression test named after what it found.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-200000}"
/usr/bin/time -v env TESSERA_FUZZ_CASES="$cases" cargo test --release -p tessera-server --test fuzz -- --nocapture 2>&1 \
  | grep -E "test |test result|Maximum resident|Elapsed|minimal failing|Test failed" || true

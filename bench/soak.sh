#!/usr/bin/env bash
# Holds a mixed load (issue, introspect, revoke, wrong secrets) against a real
# Tessera for SECONDS (default 600), sampling resident memory, then checks that
# nothing unexpected was answered, that every acknowledged revocation is still
# in force, and prints the RSS slope after warm-up. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
cargo build --release -q -p tessera-server -p tessera-bench
# 60 s tokens: revoked tokens leave the deny-list after 60 s, so it reaches its steady size early.
taskset -c 1 target/release/tessera-bench soak --seconds "$seconds" --token-ttl 60

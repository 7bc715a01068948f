#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md. Loopback only; every phase stops by itself.
# Servers are pinned to core 0 and the load generator to core 1 (taskset, util-linux).
# Usage: bench/run-all.sh [OUTPUT_DIR]   (about 30 minutes on 2 cores; needs wrk: apt-get install wrk)
# The soak is separate and longer: bench/soak.sh [SECONDS]
#
# The throughput comparisons run twice: on the machine as it is, and with idle
# cores polling before they halt (--halt-poll-ns, KVM guests only, needs root,
# restored afterwards), which takes the cost of waking the load generator out
# of the server's CPU time. bench/src/idle.rs and BENCHMARKS.md say why.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-results}
mkdir -p "$out"
cargo build --release -q -p tessera-server -p tessera-bench
bench=target/release/tessera-bench
knob=/sys/module/haltpoll/parameters/guest_halt_poll_ns
polling=()
if [ -w "$knob" ]; then polling=(--halt-poll-ns 200000); fi
echo "== machine" | tee "$out/machine.txt"
{ nproc; grep -m1 'model name' /proc/cpuinfo || true; uname -r; date -u; cat "$knob" 2>/dev/null || true; } | tee -a "$out/machine.txt"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
echo "== run: Tessera vs same-run ceilings, 3 rounds A B A B" | tee "$out/run.txt"
taskset -c 1 "$bench" run --rounds 3 --duration 8 2>&1 | tee -a "$out/run.txt"
echo "== http: the HTTP shim under wrk vs the ceilings' HTTP endpoints, 3 rounds A B A B" | tee "$out/http.txt"
"$bench" http --rounds 3 --duration 8 2>&1 | tee -a "$out/http.txt"
if [ ${#polling[@]} -gt 0 ]; then
  echo "== run, idle cores polling" | tee "$out/run-polling.txt"
  taskset -c 1 "$bench" run --rounds 3 --duration 8 "${polling[@]}" 2>&1 | tee -a "$out/run-polling.txt"
  echo "== http, idle cores polling" | tee "$out/http-polling.txt"
  "$bench" http --rounds 3 --duration 8 "${polling[@]}" 2>&1 | tee -a "$out/http-polling.txt"
fi
echo "== federated: platform tokens (Kubernetes RS256, JWT-SVID ES256), reused and new, vs the signing ceiling" | tee "$out/federated.txt"
taskset -c 1 "$bench" federated --rounds 3 --duration 8 2>&1 | tee -a "$out/federated.txt"
echo "== certificates: client certificates over mutual TLS (kept alive, and a handshake per call) vs TLS ceilings" | tee "$out/certificates.txt"
taskset -c 1 "$bench" certificates --rounds 3 --duration 8 2>&1 | tee -a "$out/certificates.txt"
echo "== hsm: ES256 signing in a SoftHSM2 token (PKCS#11) vs in process, 1 and 2 threads" | tee "$out/hsm.txt"
"$bench" hsm --rounds 3 --duration 5 2>&1 | tee -a "$out/hsm.txt"
echo "== timing: unknown vs wrong vs disabled client, 500 interleaved each" | tee "$out/timing.txt"
taskset -c 1 "$bench" timing --samples 500 2>&1 | tee -a "$out/timing.txt"
echo "== flood: warm client p99 alone and under a wrong-secret flood" | tee "$out/flood.txt"
taskset -c 1 "$bench" flood --duration 8 2>&1 | tee -a "$out/flood.txt"
echo "== assertions: what remembering private_key_jwt assertion ids costs" | tee "$out/assertions.txt"
taskset -c 1 "$bench" assertions --count 50000 2>&1 | tee -a "$out/assertions.txt"
echo "== denylist: memory per revoked token held" | tee "$out/denylist.txt"
"$bench" denylist --entries 1000000 2>&1 | tee -a "$out/denylist.txt"
echo "== writes: revocations on SQLite, then on a throwaway PostgreSQL cluster" | tee "$out/writes.txt"
taskset -c 1 "$bench" writes --duration 8 2>&1 | tee -a "$out/writes.txt"
taskset -c 1 "$bench" writes --duration 8 --postgres 2>&1 | tee -a "$out/writes.txt"
echo "== run on PostgreSQL: the read paths do not touch the store" | tee "$out/run-postgres.txt"
taskset -c 1 "$bench" run --rounds 1 --duration 8 --postgres 2>&1 | tee -a "$out/run-postgres.txt"
echo "== memory: 10,000 registered clients, 1,000 of them authenticated" | tee "$out/memory.txt"
taskset -c 1 "$bench" memory --clients 10000 --warm 1000 2>&1 | tee -a "$out/memory.txt"
echo "== criterion micro-benchmarks (core 0)" | tee "$out/criterion.txt"
taskset -c 0 cargo bench -q -p tessera-server --bench core 2>&1 | grep -E "time:" -B1 | grep -v "^--" | tee -a "$out/criterion.txt"
# The SDK's cached token(): 8 threads share the machine's cores, so no pinning.
cargo bench -q -p tessera-sdk --bench cache 2>&1 | grep -E "time:" -B1 | grep -v "^--" | tee -a "$out/criterion.txt"

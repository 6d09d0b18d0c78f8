#!/usr/bin/env bash
# certgate beside nginx and HAProxy at mTLS, from one run of the shared harness.
#
#   bench/run.sh                      # all scenarios, Certificate Authentication + limits
#   BENCH_API=keyless bench/run.sh    # TLS termination and proxying only
#   TLS_TICKETS=off bench/run.sh      # peers and certgate without session tickets
#   SCENARIOS="ka hs" bench/run.sh    # any knob of ../shared/bench/run.sh
#
# Needs ../shared/bench/setup.sh once per machine. Prints the harness report, then
#   certgate/nginx: ka_per_cpu=<x> hs=<x> p50=<x> mem_per_conn=<x>
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" && pwd)}
(cd "$ROOT" && cargo build --release --locked -q)
export GATEWAY_NAME=${GATEWAY_NAME:-certgate}
export GATEWAY_START="exec $HERE/gateway-start.sh"
export GATEWAY_SETUP="$HERE/gateway-setup.sh"
export CERTGATE_BIN=${CERTGATE_BIN:-$ROOT/target/release/certgate}
export WORK_DIR=${WORK_DIR:-/tmp/mtls-bench}
export OUT_DIR=${OUT_DIR:-$WORK_DIR/run-$(date +%Y%m%d-%H%M%S)}
bash "$SHARED/run.sh"
python3 "$HERE/ratios.py" "$OUT_DIR/results.jsonl"

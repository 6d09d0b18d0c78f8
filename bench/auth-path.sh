#!/usr/bin/env bash
# The per-request auth path (examples/auth_path.rs): ns per request natively, and
# instructions per request under callgrind, which are repeatable on a noisy machine, so a
# change that makes the path costlier shows up in review.
#
#   bench/auth-path.sh            # N=20000 requests under callgrind
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-20000}
WARMUP=100 # auth_loop calls before the measured ones (see the example)
(cd "$ROOT" && cargo build --release --locked -q --example auth_path)
BIN=$ROOT/target/release/examples/auth_path
CERTGATE_LOG=error "$BIN" 200000
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
CERTGATE_LOG=error valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
  --toggle-collect='*auth_loop*' "$BIN" "$N" >/dev/null 2>"$OUT/valgrind.log"
ir=$(callgrind_annotate "$OUT/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "auth path: $((ir / (N + WARMUP))) instructions/request (callgrind, $((N + WARMUP)) requests in auth_loop)"
echo "top functions (self instructions):"
callgrind_annotate "$OUT/cg.out" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '3,17p'

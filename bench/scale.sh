#!/usr/bin/env bash
# Keep-alive throughput with 1,000 and with 1,000,000 registered client certificates and
# certificate-bound sessions, on the embedded store and on Redis (issue 6).
#
#   bench/scale.sh                         # both sizes, both stores
#   SIZES="1000" STORES=redis bench/scale.sh
#
# Each store is filled once by examples/populate.rs (kept in $SCALE_DIR for the next run),
# then ../shared/bench/run.sh measures certgate alone (scenario ka, ROUNDS rounds) with the
# harness's 8 real clients registered on top. The filler sessions and certificates are
# never used by the load: what is measured is whether their presence costs anything.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SIZES=${SIZES:-"1000 1000000"}
STORES=${STORES:-"embedded redis"}
SCALE_DIR=${SCALE_DIR:-/tmp/certgate-scale}
export ROUNDS=${ROUNDS:-2}
mkdir -p "$SCALE_DIR"
if [[ -z ${POPULATE:-} ]]; then
  (cd "$ROOT" && cargo build --release --locked -q --example populate)
  POPULATE=$ROOT/target/release/examples/populate
fi
LOADER_CPU=${LOADER_CPU:-0}
declare -A RESULT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

measure() { # label, extra env... -> prints req per server CPU-second
  local label=$1; shift
  local out="$SCALE_DIR/run-$label"
  rm -rf "$out"
  env "$@" OUT_DIR="$out" SCENARIOS=ka CONTENDERS=" " "$HERE/run.sh" >"$SCALE_DIR/$label.log" 2>&1 \
    || { echo "run $label failed: see $SCALE_DIR/$label.log" >&2; return 1; }
  python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ka = [r for r in rows if r.get("contender") == "gateway" and r.get("scenario") == "ka" and r.get("rc", 0) == 0]
per_cpu = statistics.median(r["rps"] / (r["server_cpu_pct"] / 100) for r in ka)
errors = sum(r.get("errors", 0) + r.get("non200", 0) for r in ka)
print(f"{per_cpu:.0f} {statistics.median(r['rps'] for r in ka):.0f} {errors}")
PY
}

for store in $STORES; do
  for n in $SIZES; do
    label="$store-$n"
    if [[ $store == embedded ]]; then
      dir="$SCALE_DIR/embedded-$n"
      if [[ ! -f "$dir/.populated" ]]; then
        rm -rf "$dir"
        taskset -c "$LOADER_CPU" "$POPULATE" embedded "$dir" "$n"
        touch "$dir/.populated"
      fi
      RESULT[$label]=$(measure "$label" BENCH_DATA_DIR="$dir")
    else
      port=$(free_port)
      rdir="$SCALE_DIR/redis-$n"; mkdir -p "$rdir"
      taskset -c "$LOADER_CPU" redis-server --port "$port" --bind 127.0.0.1 --save "" \
        --appendonly no --dir "$rdir" --daemonize no >"$rdir/redis.log" 2>&1 &
      rpid=$!
      trap 'kill $rpid 2>/dev/null || true' EXIT
      for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
      taskset -c "$LOADER_CPU" "$POPULATE" redis "127.0.0.1:$port" "$n"
      echo "redis: $(redis-cli -p "$port" dbsize) keys, $(redis-cli -p "$port" info memory | grep used_memory_human: | tr -d '\r')"
      RESULT[$label]=$(measure "$label" BENCH_STORE=redis BENCH_REDIS_PORT="$port")
      kill "$rpid"; wait "$rpid" 2>/dev/null || true
      trap - EXIT
    fi
    echo "$label: ${RESULT[$label]} (req/srv-CPU-s, req/s, errors)"
  done
done

echo
echo "| store | registered | req/s | req per srv-CPU-s | errors |"
echo "|---|---:|---:|---:|---:|"
for store in $STORES; do
  for n in $SIZES; do
    read -r per rps err <<<"${RESULT[$store-$n]}"
    printf '| %s | %s | %s | %s | %s |\n' "$store" "$n" "$rps" "$per" "$err"
  done
  set -- $SIZES
  if [[ $# -ge 2 ]]; then
    read -r a _ <<<"${RESULT[$store-$1]}"; read -r b _ <<<"${RESULT[$store-${!#}]}"
    python3 -c "print(f'$store: {${!#}:,} vs {$1:,} registered: {$b/$a:.3f}x per CPU-second')"
  fi
done

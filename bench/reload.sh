#!/usr/bin/env bash
# Keep-alive load while /tyk/reload runs every second (issue 6): failed requests and the
# per-second throughput, against the same load without reloads.
#
#   bench/reload.sh            # 15 one-second samples each way
#   SAMPLES=30 bench/reload.sh
#
# Uses the shared harness's PKI and oha (../shared/bench/setup.sh once), an nginx upstream
# pinned to the loader core, and certgate pinned to the proxy core, configured by the same
# hooks as bench/run.sh (Certificate Authentication, rate limit and quota per key). Each
# sample is one `oha -z 1s` run of 64 mTLS keep-alive connections.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" && pwd)}
TOOLS_DIR=${TOOLS_DIR:-/tmp/mtls-bench-tools}
OHA=${OHA:-$TOOLS_DIR/bin/oha}
SAMPLES=${SAMPLES:-15}
PROXY_CPU=${PROXY_CPU:-1}
LOADER_CPU=${LOADER_CPU:-0}
[[ -x $OHA ]] || { echo "oha not found: run $SHARED/setup.sh" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --locked -q)
W=$(mktemp -d /tmp/certgate-reload.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

CERTS=$W/certs
KEY_TYPE=ec bash "$SHARED/gen-certs.sh" "$CERTS" 8 >/dev/null
UP_PORT=$(free_port); GW_PORT=$(free_port)
mkdir -p "$W/up"
sed -e "s|@@RUN@@|$W/up|g" -e "s|@@UP_PORT@@|$UP_PORT|g" -e "s|@@BODY@@|OK|g" \
  "$SHARED/conf/upstream-nginx.conf" >"$W/up/nginx.conf"
taskset -c "$LOADER_CPU" nginx -c "$W/up/nginx.conf" -p "$W/up" >"$W/up/log" 2>&1 &
PIDS+=($!)

export GW_WORKDIR=$W/gw GW_PORT GW_UPSTREAM_URL="http://127.0.0.1:$UP_PORT"
export GW_SERVER_CERT=$CERTS/server.crt GW_SERVER_KEY=$CERTS/server.key
export GW_CLIENTS_DIR=$CERTS/clients GW_CLIENTS_INDEX=$CERTS/clients/index.tsv
mkdir -p "$GW_WORKDIR"
taskset -c "$PROXY_CPU" "$HERE/gateway-start.sh" >"$W/gateway.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -sk -o /dev/null "https://127.0.0.1:$GW_PORT/hello" && break
  sleep 0.1
done
"$HERE/gateway-setup.sh"

sample() { # label -> one line per sample: rps non2xx errors
  local out=$W/$1.txt; : >"$out"
  for i in $(seq "$SAMPLES"); do
    taskset -c "$LOADER_CPU" "$OHA" --no-tui --output-format json -z 1s -c 64 \
      --worker-threads 1 --cert "$CERTS/clients/client-01.crt" \
      --key "$CERTS/clients/client-01.key" --cacert "$CERTS/ca.crt" \
      "https://localhost:$GW_PORT/" >"$W/$1-$i.json" 2>/dev/null || true
    python3 - "$W/$1-$i.json" >>"$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
ok = codes.get("200", 0)
bad = sum(v for k, v in codes.items() if k != "200")
# `oha -z` cuts the requests in flight at the deadline: not failures of the gateway.
errs = sum(v for k, v in d.get("errorDistribution", {}).items() if k != "aborted due to deadline")
print(f"{ok / d['summary']['total']:.0f} {bad} {errs}")
PY
  done
}

SAMPLES_WANTED=$SAMPLES; SAMPLES=2 sample warmup; SAMPLES=$SAMPLES_WANTED
sample baseline
# One reload a second, for as long as the gateway lives; each answer is logged.
(
  while :; do
    code=$(curl -sk -o /dev/null -w '%{http_code}' -H "X-Tyk-Authorization: $(cat "$GW_WORKDIR/gateway-secret")" \
      "https://127.0.0.1:$GW_PORT/tyk/reload?block=true") || break
    echo "$code" >>"$W/reloads.txt"
    sleep 1
  done
) &
PIDS+=($!)
sample reload
kill "${PIDS[-1]}" 2>/dev/null || true

python3 - "$W/baseline.txt" "$W/reload.txt" "$W/reloads.txt" <<'PY'
import statistics, sys
def load(p):
    return [tuple(map(int, l.split())) for l in open(p) if l.strip()]
base, rel = load(sys.argv[1]), load(sys.argv[2])
reloads = [l.strip() for l in open(sys.argv[3]) if l.strip()]
bmed = statistics.median(r[0] for r in base)
rmed = statistics.median(r[0] for r in rel)
rmin = min(r[0] for r in rel)
failed = sum(r[1] + r[2] for r in rel)
print(f"without reloads: median {bmed:,.0f} req/s over {len(base)} one-second samples "
      f"(lowest second {min(r[0] for r in base):,.0f} = {min(r[0] for r in base) / bmed:.0%}), "
      f"failed {sum(r[1] + r[2] for r in base)}")
print(f"with /tyk/reload every second ({len(reloads)} reloads, "
      f"{sum(1 for c in reloads if c == '200')} answered 200): median {rmed:,.0f} req/s, "
      f"lowest second {rmin:,.0f} = {rmin / bmed:.0%} of the median without, failed {failed}")
PY

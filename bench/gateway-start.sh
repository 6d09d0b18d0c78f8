#!/usr/bin/env bash
# GATEWAY_START hook for ../shared/bench/run.sh (see its README for the GW_* contract).
# Writes a tyk.conf and one API into $GW_WORKDIR, then execs certgate in the foreground.
#   BENCH_API=certauth (default): Certificate Authentication at /, keys created by
#             gateway-setup.sh with access rights, a rate limit and a quota;
#   BENCH_API=keyless: a keyless API at / (TLS termination and proxying only).
#   BENCH_STORE=embedded (default) or redis (BENCH_REDIS_PORT, default 6379);
#   BENCH_DATA_DIR: the embedded store's directory (default $GW_WORKDIR/data), e.g. one
#             filled by examples/populate.rs for bench/scale.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CERTGATE_BIN:-$HERE/target/release/certgate}
W=${GW_WORKDIR:?GW_WORKDIR is set by the harness}
mkdir -p "$W/apps"
if [[ "${BENCH_API:-certauth}" == keyless ]]; then
  AUTH='"use_keyless": true,'
else
  AUTH='"use_keyless": false, "auth_configs": {"authToken": {"use_certificate": true}},'
fi
if [[ "${BENCH_STORE:-embedded}" == redis ]]; then
  STORAGE="{\"type\": \"redis\", \"host\": \"127.0.0.1\", \"port\": ${BENCH_REDIS_PORT:-6379}}"
else
  STORAGE="{\"type\": \"embedded\", \"path\": \"${BENCH_DATA_DIR:-$W/data}\"}"
fi
if [[ "${GW_TLS_TICKETS:-on}" == off ]]; then TICKETS=false; else TICKETS=true; fi
# certgate refuses short or published secrets: a random one per work dir, which
# gateway-setup.sh and reload.sh read back from $W/gateway-secret.
if [[ ! -s "$W/gateway-secret" ]]; then
  (umask 077; od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$W/gateway-secret")
fi
SECRET=$(cat "$W/gateway-secret")
cat >"$W/apps/bench.json" <<JSON
{
  "api_id": "bench",
  "org_id": "default",
  "name": "bench",
  $AUTH
  "proxy": {"listen_path": "/", "strip_listen_path": false, "target_url": "$GW_UPSTREAM_URL"},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
}
JSON
cat >"$W/tyk.conf" <<JSON
{
  "listen_address": "127.0.0.1",
  "listen_port": $GW_PORT,
  "secret": "$SECRET",
  "node_secret": "$SECRET",
  "app_path": "$W/apps",
  "storage": $STORAGE,
  "http_server_options": {
    "use_ssl": true,
    "read_timeout": 600,
    "enable_session_resumption": $TICKETS,
    "certificates": [{"domain_name": "localhost", "cert_file": "$GW_SERVER_CERT", "key_file": "$GW_SERVER_KEY"}]
  }
}
JSON
export CERTGATE_LOG=${CERTGATE_LOG:-warn}
exec "$BIN" --conf "$W/tyk.conf"

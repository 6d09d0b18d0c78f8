#!/usr/bin/env bash
# GATEWAY_START hook for ../shared/bench/run.sh (see its README for the GW_* contract).
# Writes a tyk.conf and one API into $GW_WORKDIR, then execs certgate in the foreground.
#   BENCH_API=keyless (default): a keyless API at / proxied to $GW_UPSTREAM_URL.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CERTGATE_BIN:-$HERE/target/release/certgate}
W=${GW_WORKDIR:?GW_WORKDIR is set by the harness}
mkdir -p "$W/apps"
cat >"$W/apps/bench.json" <<JSON
{
  "api_id": "bench",
  "org_id": "default",
  "name": "bench",
  "use_keyless": true,
  "proxy": {"listen_path": "/", "strip_listen_path": false, "target_url": "$GW_UPSTREAM_URL"},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
}
JSON
cat >"$W/tyk.conf" <<JSON
{
  "listen_address": "127.0.0.1",
  "listen_port": $GW_PORT,
  "secret": "bench-secret",
  "app_path": "$W/apps",
  "storage": {"type": "embedded", "path": "$W/data"},
  "http_server_options": {
    "use_ssl": true,
    "read_timeout": 600,
    "certificates": [{"domain_name": "localhost", "cert_file": "$GW_SERVER_CERT", "key_file": "$GW_SERVER_KEY"}]
  }
}
JSON
export CERTGATE_LOG=${CERTGATE_LOG:-warn}
exec "$BIN" --conf "$W/tyk.conf"

#!/usr/bin/env bash
# GATEWAY_SETUP hook for ../shared/bench/run.sh: registers every client certificate of
# $GW_CLIENTS_INDEX in certgate's certificate store and creates a key bound to each,
# with access rights, a rate limit and a quota (generous enough never to refuse the
# load, but counted on every request), exactly as an operator would.
set -euo pipefail
[[ "${BENCH_API:-certauth}" == keyless ]] && exit 0
GW="https://127.0.0.1:$GW_PORT"
H="X-Tyk-Authorization: $(cat "${GW_WORKDIR:?GW_WORKDIR is set by the harness}/gateway-secret")"
tail -n +2 "$GW_CLIENTS_INDEX" | while IFS=$'\t' read -r name cn serial sha cert key; do
  [[ "$cert" == /* ]] || cert="$GW_CLIENTS_DIR/$(basename "$cert")"
  id=$(curl -sS -k -H "$H" --data-binary @"$cert" "$GW/tyk/certs?org_id=default" \
    | sed -E 's/.*"id":"([^"]+)".*/\1/')
  curl -sS -k --fail -H "$H" -o /dev/null "$GW/tyk/keys/create" -d @- <<JSON
{"org_id": "default", "certificate": "$id", "rate": 1000000000, "per": 1,
 "quota_max": 1000000000000, "quota_renewal_rate": 86400,
 "access_rights": {"bench": {"api_id": "bench", "api_name": "bench", "versions": ["Default"]}}}
JSON
done

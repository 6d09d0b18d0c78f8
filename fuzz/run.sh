#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and reports crashes.
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly --profile minimal && cargo install cargo-fuzz --locked
# Seeds: fuzz/corpus/<target> (written by this project) plus a certificate chain generated
# here at run time; new inputs go to fuzz/work/<target> (ignored by git). A crash leaves its
# input in fuzz/artifacts/<target>/ and makes this script exit 1.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
targets=${TARGETS:-"path_normalise pem_upload der_certificate api_definition session_json tyk_conf"}

# Run-time PKI for the certificate targets (never committed).
gen=$(mktemp -d); trap 'rm -rf "$gen"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=fuzz-ca -keyout "$gen/ca.key" -out "$gen/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=fuzz-client -keyout "$gen/c.key" -out "$gen/c.csr" 2>/dev/null
openssl x509 -req -in "$gen/c.csr" -CA "$gen/ca.pem" -CAkey "$gen/ca.key" -days 2 -out "$gen/c.pem" 2>/dev/null
mkdir -p work/pem_upload work/der_certificate
cat "$gen/c.pem" "$gen/c.key" > work/pem_upload/seed-cert-and-key.pem
cat "$gen/c.pem" "$gen/ca.pem" > work/pem_upload/seed-chain.pem
openssl x509 -in "$gen/c.pem" -outform DER > work/der_certificate/seed-leaf.der

failed=0
for t in $targets; do
  mkdir -p "work/$t"
  echo "== $t: ${secs}s"
  if cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 \
      > "work/$t.log" 2>&1; then
    echo "   ok: $(grep -E "^Done [0-9]+ runs" "work/$t.log" | tail -n 1)"
  else
    echo "   CRASH (see fuzz/work/$t.log, input in fuzz/artifacts/$t/)"
    grep -E 'panicked|ERROR|SUMMARY' "work/$t.log" | head -5
    failed=1
  fi
done
exit $failed

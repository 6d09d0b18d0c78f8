//! Micro-benchmark of the per-request auth path: Certificate Authentication of a cached
//! client, with access rights, a rate limit and a quota counted on the embedded store —
//! everything `server::handle` does between parsing a request and forwarding it.
//!
//! A real gateway is started in this process (embedded store, plain HTTP Gateway API), a
//! client certificate is uploaded and a key bound to it created through the Gateway API,
//! then `auth::authenticate` runs `ITERATIONS` times on the connection state the TLS
//! handshake would have produced. Run natively it prints ns per request; run under
//! callgrind (see `bench/auth-path.sh`) the instructions of `auth_loop` alone are counted,
//! which is repeatable on a noisy machine and so suits review.
//!
//! ```sh
//! cargo run --release --example auth_path -- 200000
//! bench/auth-path.sh        # instructions per request under callgrind
//! ```
#![allow(clippy::unwrap_used)] // a benchmark harness: a failed step ends the run

use std::hint::black_box;
use std::time::Instant;

use certgate::gateway::LoadedApi;
use certgate::pipeline::certificate::CertLookupCache;
use certgate::pipeline::{authenticate, RequestCtx};
use certgate::pki::Ca;
use certgate::tls::PeerCert;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};

const API: &str = "bench";

/// The gateway binary's allocator, so the counts are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // reqwest (the setup calls) needs a process-wide rustls provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let iterations: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("apps")).expect("apps dir");
    let api = json!({"api_id": API, "org_id": "default", "name": API, "use_keyless": false,
        "auth_configs": {"authToken": {"use_certificate": true}},
        "proxy": {"listen_path": "/", "strip_listen_path": false,
                  "target_url": "http://127.0.0.1:9"},
        "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}});
    std::fs::write(d.join("apps/bench.json"), api.to_string()).expect("write API");
    let conf = json!({"listen_address": "127.0.0.1", "listen_port": 0, "secret": uuid::Uuid::new_v4().simple().to_string(),
        "app_path": "apps", "storage": {"type": "embedded", "path": "data"}});
    std::fs::write(d.join("tyk.conf"), conf.to_string()).expect("write conf");
    let cfg = certgate::config::Config::load(
        &d.join("tyk.conf"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect("config");
    let running = certgate::app::start(cfg).await.expect("start gateway");

    // The operator's two calls: upload the certificate, create a key bound to it.
    let ca = Ca::new("bench CA").expect("CA");
    let client = ca.client("bench-client").expect("client cert");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let cert: Value = http
        .post(format!("{base}/tyk/certs?org_id=default"))
        .header("X-Tyk-Authorization", "s")
        .body(client.cert_pem.clone())
        .send()
        .await
        .expect("upload certificate")
        .json()
        .await
        .expect("certificate JSON");
    let key = json!({"org_id": "default", "certificate": cert["id"],
        "rate": 1_000_000_000, "per": 1, "quota_max": 1_000_000_000_000i64,
        "quota_renewal_rate": 86400,
        "access_rights": {API: {"api_id": API, "api_name": API, "versions": ["Default"]}}});
    let created = http
        .post(format!("{base}/tyk/keys/create"))
        .header("X-Tyk-Authorization", "s")
        .json(&key)
        .send()
        .await
        .expect("create key");
    assert!(created.status().is_success(), "key: {}", created.status());

    // What the TLS handshake leaves on the connection.
    let peer = PeerCert::from_chain(&[CertificateDer::from(client.der.clone())]).expect("peer");
    let lookup = CertLookupCache::default();
    let gw = &running.gw;
    let snapshot = gw.snapshot();
    let api = snapshot.api(API).expect("API loaded").clone();
    let ctx = RequestCtx {
        cfg: &gw.config,
        store: &gw.store,
        certs: &gw.certs,
        caches: &gw.caches,
        policies: &snapshot.policy_set,
        cert_lookup: Some(&lookup),
        tls: true,
        peer: Some(&peer),
    };
    let (parts, ()) = http::Request::get("/anything")
        .header("host", "localhost")
        .header("user-agent", "bench")
        .body(())
        .expect("request")
        .into_parts();

    // Warm up: the session and certificate caches fill, the counters load.
    auth_loop(&ctx, &api, &parts, 100).await;
    let start = Instant::now();
    auth_loop(&ctx, &api, &parts, iterations).await;
    let elapsed = start.elapsed();
    println!(
        "auth path: {iterations} requests, {:.0} ns/request",
        elapsed.as_nanos() as f64 / iterations as f64
    );
    running.shutdown().await;
}

/// The measured loop (callgrind counts only this function and what it calls).
#[inline(never)]
async fn auth_loop(ctx: &RequestCtx<'_>, api: &LoadedApi, parts: &http::request::Parts, n: u64) {
    for _ in 0..n {
        let authorized = authenticate(ctx, api, parts, "/anything")
            .await
            .expect("authorized");
        black_box(authorized);
    }
}

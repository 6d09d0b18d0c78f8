//! Benchmark: do rate limits and quotas hold for a cluster?
//!
//! Three gateway nodes (in this process, each with its own store connection, caches and
//! listener) share one real Redis. A key limited to `RATE` requests per second is driven
//! from all three nodes, faster than its limit, for `SECS` seconds; the allowed rate is
//! compared with the limit. Then a quota of 1,000 is hammered by many concurrent clients
//! on every node, and the store commands per request are counted (`INFO commandstats`).
//!
//! ```sh
//! cargo run --release --example cluster_limits
//! ```
#![allow(clippy::unwrap_used)] // a benchmark harness: a failed step ends the run

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certgate::pki::Ca;
use certgate_testkit::testredis::RedisServer;
use serde_json::json;

const RATE: u64 = 200;
const SECS: u64 = 10;

struct Node {
    running: certgate::app::Running,
    _dir: tempfile::TempDir,
}

async fn start(redis: &RedisServer, upstream: &str, ca: &Ca) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("apps")).unwrap();
    let server = ca.server(&["localhost"]).unwrap();
    std::fs::write(d.join("s.pem"), &server.cert_pem).unwrap();
    std::fs::write(d.join("s-key.pem"), &server.key_pem).unwrap();
    let api = json!({"api_id": "t", "org_id": "default", "name": "t", "use_keyless": false,
        "auth_configs": {"authToken": {"auth_header_name": "Authorization"}},
        "proxy": {"listen_path": "/t/", "strip_listen_path": true, "target_url": upstream},
        "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}});
    std::fs::write(d.join("apps/t.json"), api.to_string()).unwrap();
    let conf = json!({"listen_address": "127.0.0.1", "listen_port": 0, "secret": uuid::Uuid::new_v4().simple().to_string(),
        "node_secret": uuid::Uuid::new_v4().simple().to_string(), "app_path": "apps", "hash_key_function": "sha256",
        "storage": {"type": "redis", "host": "127.0.0.1", "port": redis.port()},
        "http_server_options": {"use_ssl": true, "certificates": [
            {"domain_name": "localhost", "cert_file": "s.pem", "key_file": "s-key.pem"}]}});
    std::fs::write(d.join("tyk.conf"), conf.to_string()).unwrap();
    let cfg = certgate::config::Config::load(
        &d.join("tyk.conf"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap();
    Node {
        running: certgate::app::start(cfg).await.unwrap(),
        _dir: dir,
    }
}

fn client(ca: &Ca, port: u16) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.cert.der.clone()))
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .use_preconfigured_tls(tls)
        .http1_only()
        .build()
        .unwrap()
}

async fn create_key(ca: &Ca, port: u16, body: serde_json::Value) -> String {
    let v: serde_json::Value = client(ca, port)
        .post(format!("https://localhost:{port}/tyk/keys/create"))
        .header("x-tyk-authorization", "s")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["key"].as_str().expect("key created").to_owned()
}

/// Drives `key` from `tasks` tasks per node until `until`; returns (allowed, refused).
async fn drive(ca: &Ca, ports: &[u16], key: &str, tasks: usize, until: Instant) -> (usize, usize) {
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for &port in ports {
        for _ in 0..tasks {
            let c = client(ca, port);
            let key = key.to_owned();
            let (ok, refused) = (ok.clone(), refused.clone());
            hs.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let st = c
                        .get(format!("https://localhost:{port}/t/x"))
                        .header("authorization", &key)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    if st == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for h in hs {
        h.await.unwrap();
    }
    (ok.load(Ordering::Relaxed), refused.load(Ordering::Relaxed))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let redis = RedisServer::start();
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_url = format!("http://{}", up.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = up.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0
                        || s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK")
                            .await
                            .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    let ca = Ca::new("bench").unwrap();
    let nodes = vec![
        start(&redis, &up_url, &ca).await,
        start(&redis, &up_url, &ca).await,
        start(&redis, &up_url, &ca).await,
    ];
    let ports: Vec<u16> = nodes.iter().map(|n| n.running.addr.port()).collect();

    // Rate limit accuracy.
    let key = create_key(
        &ca,
        ports[0],
        json!({"org_id": "default", "rate": RATE, "per": 1,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
    )
    .await;
    // Start on a second boundary so the windows are whole.
    let start = Instant::now()
        + Duration::from_millis(
            1000 - (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_millis() as u64),
        );
    tokio::time::sleep_until(start.into()).await;
    let (ok, refused) = drive(&ca, &ports, &key, 4, start + Duration::from_secs(SECS)).await;
    let allowed_rate = ok as f64 / SECS as f64;
    println!(
        "rate limit {RATE}/s on 3 nodes, {SECS} s, offered {:.0} req/s: allowed {allowed_rate:.1}/s = {:+.1} % of the limit ({ok} allowed, {refused} refused)",
        (ok + refused) as f64 / SECS as f64,
        (allowed_rate / RATE as f64 - 1.0) * 100.0
    );

    // Quota concurrency, and store commands per request.
    let key = create_key(
        &ca,
        ports[1],
        json!({"org_id": "default", "quota_max": 1000,
        "quota_renewal_rate": 3600, "rate": 100000, "per": 1,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
    )
    .await;
    redis.reset_stats();
    let (ok, refused) = drive(
        &ca,
        &ports,
        &key,
        8,
        Instant::now() + Duration::from_secs(4),
    )
    .await;
    let stats = redis.command_stats();
    let cmds: u64 = stats
        .iter()
        .filter(|(c, _)| !matches!(c.as_str(), "info" | "config" | "config|resetstat"))
        .map(|(_, n)| *n)
        .sum();
    println!(
        "quota 1000 on 3 nodes x 8 concurrent clients: {ok} allowed, {refused} refused (must be exactly 1000 allowed)"
    );
    println!(
        "store commands per request with rate limit + quota: {:.3} ({cmds} over {} requests; {stats:?})",
        cmds as f64 / (ok + refused).max(1) as f64,
        ok + refused
    );
    for n in nodes {
        n.running.shutdown().await;
    }
}

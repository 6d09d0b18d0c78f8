//! Benchmark: how fast does a revocation reach every node?
//!
//! Three `certgate` processes (the release binary) share one real Redis. For each of N
//! client certificates: upload it and create its key on node A, warm nodes B and C
//! (both answer 200 from their local caches), DELETE the key on A, and measure, from
//! the moment the DELETE returned, how long B and C keep answering before they refuse
//! (401). Then it counts the Redis commands a cached client costs per request
//! (`INFO commandstats`).
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example revocation_propagation -- 200
//! ```
#![allow(clippy::unwrap_used)] // a benchmark harness: a failed step ends the run

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certgate::pki::{Ca, Issued};
use certgate_testkit::testredis::{free_port, RedisServer};
use serde_json::{json, Value};

/// Random per run: certgate refuses short or published secrets.
static SECRET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string());

struct Node {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> PathBuf {
    std::env::var_os("CERTGATE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/certgate")
        })
}

fn start_node(redis: &RedisServer, server: &Issued, upstream: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("apps")).unwrap();
    std::fs::write(d.join("server.pem"), &server.cert_pem).unwrap();
    std::fs::write(d.join("server-key.pem"), &server.key_pem).unwrap();
    let api = json!({
        "api_id": "c", "org_id": "default", "name": "c", "use_keyless": false,
        "auth_configs": {"authToken": {"use_certificate": true}},
        "proxy": {"listen_path": "/c/", "strip_listen_path": true, "target_url": upstream},
        "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
    });
    std::fs::write(d.join("apps/c.json"), api.to_string()).unwrap();
    let port = free_port(false);
    let conf = json!({
        "listen_address": "127.0.0.1", "listen_port": port, "secret": SECRET.as_str(),
        "node_secret": SECRET.as_str(), "app_path": "apps",
        "hash_keys": true, "hash_key_function": "sha256",
        "local_session_cache": {"cached_session_timeout": 300},
        "storage": {"type": "redis", "host": "127.0.0.1", "port": redis.port()},
        "http_server_options": {"use_ssl": true, "certificates": [
            {"domain_name": "localhost", "cert_file": "server.pem", "key_file": "server-key.pem"}]}
    });
    std::fs::write(d.join("tyk.conf"), conf.to_string()).unwrap();
    let child = Command::new(bin())
        .args(["--conf", "tyk.conf"])
        .current_dir(d)
        .env("CERTGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run `cargo build --release` first (or set CERTGATE_BIN)");
    Node {
        port,
        child,
        _dir: dir,
    }
}

fn tls(ca: &Ca, identity: Option<&Issued>) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.cert.der.clone()))
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some(id) => b
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from(id.der.clone())],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    }
}

fn http(ca: &Ca, identity: Option<&Issued>, port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .use_preconfigured_tls(tls(ca, identity))
        .http1_only()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn status(c: &reqwest::Client, port: u16) -> u16 {
    c.get(format!("https://localhost:{port}/c/x"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Requests until the node refuses; returns when it did.
async fn until_refused(c: reqwest::Client, port: u16) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if status(&c, port).await == 401 || Instant::now() > deadline {
            return Instant::now();
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let redis = RedisServer::start();
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = upstream.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0
                        || s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nOK\n")
                            .await
                            .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    let ca = Ca::new("bench CA").unwrap();
    let server = ca.server(&["localhost", "127.0.0.1"]).unwrap();
    let nodes: Vec<Node> = (0..3)
        .map(|_| start_node(&redis, &server, &format!("http://{up_addr}")))
        .collect();
    let admin = |port| http(&ca, None, port);
    for node in &nodes {
        let c = admin(node.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        while c
            .get(format!("https://localhost:{}/hello", node.port))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "node did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (a, b, c) = (nodes[0].port, nodes[1].port, nodes[2].port);
    let mut latencies = Vec::with_capacity(n);
    let clients: Vec<Issued> = (0..n)
        .map(|i| ca.client(&format!("client-{i}")).unwrap())
        .collect();
    for cert in &clients {
        let up: Value = admin(a)
            .post(format!("https://localhost:{a}/tyk/certs?org_id=default"))
            .header("x-tyk-authorization", SECRET.as_str())
            .body(cert.cert_pem.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = up["id"].as_str().unwrap().to_owned();
        let created: Value = admin(a)
            .post(format!("https://localhost:{a}/tyk/keys/create"))
            .header("x-tyk-authorization", SECRET.as_str())
            .json(&json!({"org_id": "default", "certificate": id, "access_rights": {"c": {"api_id": "c", "versions": ["Default"]}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = created["key"].as_str().unwrap().to_owned();
        let cb = http(&ca, Some(cert), b);
        let cc = http(&ca, Some(cert), c);
        for (cl, port) in [(&cb, b), (&cc, c)] {
            for _ in 0..2 {
                assert_eq!(status(cl, port).await, 200, "warm-up failed");
            }
        }
        let del = admin(a)
            .delete(format!("https://localhost:{a}/tyk/keys/{key}"))
            .header("x-tyk-authorization", SECRET.as_str())
            .send()
            .await
            .unwrap();
        assert!(del.status().is_success());
        let returned = Instant::now();
        let (tb, tc) = tokio::join!(until_refused(cb, b), until_refused(cc, c));
        let worst = tb.max(tc).saturating_duration_since(returned);
        latencies.push(worst.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!(
        "revocation propagation over {n} revocations (3 nodes, one Redis; time from the DELETE on node A returning until nodes B and C both refuse):"
    );
    println!(
        "  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );

    // Redis commands per request for a cached client.
    let cert = ca.client("cached").unwrap();
    let up: Value = admin(a)
        .post(format!("https://localhost:{a}/tyk/certs?org_id=default"))
        .header("x-tyk-authorization", SECRET.as_str())
        .body(cert.cert_pem.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = up["id"].as_str().unwrap().to_owned();
    admin(a)
        .post(format!("https://localhost:{a}/tyk/keys/create"))
        .header("x-tyk-authorization", SECRET.as_str())
        .json(&json!({"org_id": "default", "certificate": id, "access_rights": {"c": {"api_id": "c", "versions": ["Default"]}}}))
        .send()
        .await
        .unwrap();
    let cl = http(&ca, Some(&cert), b);
    assert_eq!(status(&cl, b).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.reset_stats();
    let requests = 2000;
    for _ in 0..requests {
        assert_eq!(status(&cl, b).await, 200);
    }
    let stats = redis.command_stats();
    let total: u64 = stats
        .iter()
        .filter(|(cmd, _)| !matches!(cmd.as_str(), "info" | "config|resetstat" | "config"))
        .map(|(_, n)| *n)
        .sum();
    println!(
        "Redis commands per request for a cached client: {:.4} ({total} commands over {requests} requests; INFO commandstats)",
        total as f64 / requests as f64
    );
    drop(nodes);
}

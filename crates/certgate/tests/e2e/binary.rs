//! The `certgate` binary: exit codes, signals, persistence across `kill -9`, and the
//! README's demo command end to end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_certgate");

struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn start(args: &[&str], dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .env("CERTGATE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self { child, lines }
    }

    /// Waits for a line containing `needle` and returns it.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => continue,
                Err(e) => panic!("no line with {needle:?}: {e}"),
            }
        }
    }

    fn port(&self) -> u16 {
        let l = self.wait_line("listening on");
        l.rsplit(':').next().unwrap().trim().parse().unwrap()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn plain_conf(dir: &Path, extra: serde_json::Value) {
    let mut conf = json!({
        "listen_address": "127.0.0.1",
        "listen_port": 0,
        "secret": SECRET,
        "app_path": "apps",
        "storage": {"type": "embedded", "path": "data"},
    });
    for (k, v) in extra.as_object().unwrap() {
        conf[k] = v.clone();
    }
    std::fs::create_dir_all(dir.join("apps")).unwrap();
    write(&dir.join("tyk.conf"), &conf);
}

fn http(port: u16) -> reqwest::Client {
    let _ = port;
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .use_preconfigured_tls(tls_client_config(None, &[]))
        .build()
        .unwrap()
}

#[tokio::test]
async fn invalid_config_lists_every_problem_and_exits_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("tyk.conf"),
        &json!({"listen_port": "eighty", "http_server_options": {"use_ssl": "yes", "min_version": 1}, "storage": {"type": "mongo"}}),
    );
    let out = Command::new(BIN)
        .args(["--conf", "tyk.conf"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "listen_port",
        "http_server_options.min_version",
        "http_server_options.use_ssl",
        "storage.type",
    ] {
        assert!(err.contains(field), "{field} missing from: {err}");
    }
    assert!(!err.contains("listening"), "{err}");
    let out = Command::new(BIN)
        .args(["--conf", "/nonexistent/tyk.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tyk.conf"));
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    plain_conf(dir.path(), json!({}));
    write(
        &dir.path().join("apps/a.json"),
        &classic_api("a", "/a/", &up.url()),
    );
    let mut p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let port = p.port();
    let c = http(port);
    let r = c
        .get(format!("http://127.0.0.1:{port}/a/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A slow request is in flight when SIGTERM arrives; it still completes.
    let slow = tokio::spawn({
        let c = c.clone();
        async move {
            c.get(format!("http://127.0.0.1:{port}/a/slow"))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // Wait until the slow request has reached the upstream: it is in flight.
    let hits = up.hits.clone();
    let in_flight = eventually(Duration::from_secs(10), || {
        let hits = hits.clone();
        async move { hits.load(std::sync::atomic::Ordering::SeqCst) >= 2 }
    })
    .await;
    assert!(in_flight, "the slow request never reached the upstream");
    p.signal("-TERM");
    assert_eq!(slow.await.unwrap(), 200);
    let status = tokio::task::spawn_blocking(move || p.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sighup_reloads_apis() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    plain_conf(dir.path(), json!({}));
    let p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let port = p.port();
    let c = http(port);
    let url = format!("http://127.0.0.1:{port}/late/x");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 404);
    write(
        &dir.path().join("apps/late.json"),
        &classic_api("late", "/late/", &up.url()),
    );
    p.signal("-HUP");
    let live = eventually(Duration::from_secs(10), || {
        let c = c.clone();
        let url = url.clone();
        async move {
            c.get(&url)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        }
    })
    .await;
    assert!(live, "API not live after SIGHUP");
}

#[tokio::test]
async fn acknowledged_keys_survive_kill_9() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    plain_conf(dir.path(), json!({"hash_key_function": "murmur64"}));
    write(
        &dir.path().join("apps/tok.json"),
        &token_api("tok", "/tok/", &up.url()),
    );
    let mut p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let port = p.port();
    let c = http(port);
    let r = c
        .post(format!("http://127.0.0.1:{port}/tyk/keys/create"))
        .header("x-tyk-authorization", SECRET)
        .json(&json!({"org_id": "default", "access_rights": {"tok": {"api_id": "tok"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let key = json_of(r).await["key"].as_str().unwrap().to_owned();
    p.signal("-KILL");
    let _ = tokio::task::spawn_blocking(move || p.wait_exit())
        .await
        .unwrap();

    let p2 = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let port = p2.port();
    let r = http(port)
        .get(format!("http://127.0.0.1:{port}/tok/x"))
        .header("authorization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The README's first command (`certgate demo`) serves the demo, and the `curl` line
/// it prints works as printed.
#[tokio::test]
async fn readme_demo_command_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let p = Proc::start(
        &["demo", "--dir", demo_dir.to_str().unwrap(), "--port", "0"],
        dir.path(),
    );
    let curl_line = p.wait_line("curl --cacert");
    let cmd = curl_line
        .trim()
        .replacen("curl ", "curl -sS --fail --max-time 20 ", 1);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sh").args(["-c", &cmd]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "printed curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["message"], "Hello from the certgate demo upstream");
    assert!(demo_dir.join("certs/client.pem").is_file());
    // No private key material is ever printed.
    drop(p);
}

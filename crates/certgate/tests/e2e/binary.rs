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

    /// The lines printed up to (and including) the first containing `needle`.
    fn lines_until(&self, needle: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let done = l.contains(needle);
                    out.push(l);
                    if done {
                        return out;
                    }
                }
                Err(e) => panic!("no line with {needle:?} in {out:?}: {e}"),
            }
        }
    }

    /// Waits for the process to exit (it must, within the deadline) and returns its
    /// status code and everything it printed.
    fn exit_output(&mut self) -> (Option<i32>, String) {
        let status = self.wait_exit();
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => out.push(l),
                Err(_) => break,
            }
        }
        (status.code(), out.join("\n"))
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

/// Issue 11 #5: Tyk falls back to its published example secret when `secret` is missing.
/// certgate exits 2 before listening, naming the field, for a missing, short or published
/// `secret`, and for a weak `node_secret` when nodes share Redis.
#[tokio::test]
async fn weak_or_missing_secrets_exit_2_naming_the_field() {
    let redis = json!({"type": "redis", "host": "127.0.0.1", "port": 1});
    let cases = [
        (json!({"secret": null}), "secret: is missing or empty"),
        (
            json!({"secret": "0123456789"}),
            "secret: is only 10 characters",
        ),
        (
            json!({"secret": certgate::config::TYK_DEFAULT_SECRET}),
            "secret: is a value published",
        ),
        (
            json!({"storage": redis}),
            "node_secret: is missing or empty",
        ),
        (
            json!({"storage": redis, "node_secret": "352D20EE67BE67F6340B4C0605B044B7"}),
            "node_secret: is a value published",
        ),
    ];
    for (extra, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        plain_conf(dir.path(), extra.clone());
        let mut p = Proc::start(&["--conf", "tyk.conf"], dir.path());
        let (code, out) = tokio::task::spawn_blocking(move || p.exit_output())
            .await
            .unwrap();
        assert_eq!(code, Some(2), "{extra}: {out}");
        assert!(out.contains(want), "{extra}: {want:?} missing from: {out}");
        assert!(!out.contains("listening"), "{out}");
    }
    // TYK_GW_SECRET supplies it, as in Tyk.
    let dir = tempfile::tempdir().unwrap();
    plain_conf(dir.path(), json!({"secret": null}));
    let mut child = Command::new(BIN)
        .args(["--conf", "tyk.conf"])
        .current_dir(dir.path())
        .env("TYK_GW_SECRET", SECRET)
        .env("CERTGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("listening on"))
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.is_some(), "not listening with TYK_GW_SECRET");
}

/// Issue 11 #7: `hash_keys` with an empty `hash_key_function` stores 32-bit hashes. Such
/// keys must keep working (Tyk nodes share them), so certgate starts, with a warning.
#[tokio::test]
async fn thirty_two_bit_key_hashes_are_warned_about_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    plain_conf(dir.path(), json!({"hash_keys": true}));
    let p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let lines = p.lines_until("listening on");
    let warning = lines
        .iter()
        .find(|l| l.contains("32-bit"))
        .unwrap_or_else(|| panic!("no warning in {lines:?}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("hash_key_function") && warning.contains("sha256"),
        "{warning}"
    );
    drop(p);

    let dir = tempfile::tempdir().unwrap();
    plain_conf(
        dir.path(),
        json!({"hash_keys": true, "hash_key_function": "sha256"}),
    );
    let p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let lines = p.lines_until("listening on");
    assert!(!lines.iter().any(|l| l.contains("32-bit")), "{lines:?}");
}

/// Issue 11 #15: with `hash_keys` switched from true to false, the `key_hash` of a create
/// response would work as a bearer token. The store records the mode; a mismatch exits 2
/// naming both settings, and the original setting still starts.
#[tokio::test]
async fn switching_hash_keys_is_refused_naming_both_settings() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let hashed = json!({"hash_keys": true, "hash_key_function": "sha256"});
    plain_conf(dir.path(), hashed.clone());
    write(
        &dir.path().join("apps/tok.json"),
        &token_api("tok", "/tok/", &up.url()),
    );
    let mut p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let port = p.port();
    let r = http(port)
        .post(format!("http://127.0.0.1:{port}/tyk/keys/create"))
        .header("x-tyk-authorization", SECRET)
        .json(&json!({"org_id": "default", "access_rights": {"tok": {"api_id": "tok"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created = json_of(r).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let key_hash = created["key_hash"].as_str().unwrap().to_owned();
    p.signal("-TERM");
    let _ = tokio::task::spawn_blocking(move || p.wait_exit()).await;

    plain_conf(
        dir.path(),
        json!({"hash_keys": false, "hash_key_function": "sha256"}),
    );
    let mut p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let (code, out) = tokio::task::spawn_blocking(move || p.exit_output())
        .await
        .unwrap();
    assert_eq!(code, Some(2), "{out}");
    for needle in [
        "hash_keys is false in the configuration",
        "written with hash_keys true",
        "certgate-key-hashing",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from: {out}");
    }
    assert!(!out.contains("listening"), "{out}");

    // Back to the recorded setting: starts, the key works and its hash is no token.
    plain_conf(dir.path(), hashed);
    let p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let port = p.port();
    let get = |token: String| {
        let c = http(port);
        async move {
            c.get(format!("http://127.0.0.1:{port}/tok/x"))
                .header("authorization", token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(key).await, 200);
    assert_eq!(get(key_hash).await, 403);
}

/// Issue 11 #10: a keyless API marked for certificate authentication found in `app_path`
/// is logged as an error and not served; the other APIs are.
#[tokio::test]
async fn keyless_certificate_api_in_app_path_is_logged_and_not_served() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    plain_conf(dir.path(), json!({}));
    let mut open_cert = cert_api("kc", "/kc/", &up.url());
    open_cert["use_keyless"] = json!(true);
    write(&dir.path().join("apps/kc.json"), &open_cert);
    write(
        &dir.path().join("apps/fine.json"),
        &classic_api("fine", "/fine/", &up.url()),
    );
    let p = Proc::start(&["--conf", "tyk.conf"], dir.path());
    let lines = p.lines_until("listening on");
    let logged = lines
        .iter()
        .find(|l| l.contains("kc.json"))
        .unwrap_or_else(|| panic!("no error for kc.json in {lines:?}"));
    assert!(
        logged.contains("ERROR") && logged.contains("must not be keyless"),
        "{logged}"
    );
    let port: u16 = lines
        .last()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let c = http(port);
    let r = c
        .get(format!("http://127.0.0.1:{port}/kc/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("http://127.0.0.1:{port}/fine/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Issue 11 #5: the demo used a fixed secret (`demo-secret-change-me`), so every demo left
/// running had an open Gateway API. It now generates one on first run, keeps it in its
/// `tyk.conf` across runs, and prints it; the demo also hashes keys with SHA-256 (#7).
#[tokio::test]
async fn demo_secret_is_random_kept_and_printed() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let args = ["demo", "--dir", demo_dir.to_str().unwrap(), "--port", "0"];
    let secret_of = |line: &str| {
        let s = line.split("X-Tyk-Authorization: ").nth(1).unwrap();
        s.split('\'').next().unwrap().to_owned()
    };
    let mut p = Proc::start(&args, dir.path());
    let line = p.wait_line("X-Tyk-Authorization");
    let secret = secret_of(&line);
    assert_eq!(secret.len(), 32, "{line}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    assert!(!certgate::config::PUBLISHED_SECRETS.contains(&secret.as_str()));
    let conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo_dir.join("tyk.conf")).unwrap()).unwrap();
    assert_eq!(conf["secret"], secret.as_str());
    assert_eq!(conf["hash_key_function"], "sha256");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(demo_dir.join("tyk.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "tyk.conf with the secret is readable by others: {mode:o}"
    );
    // The printed Gateway API command works as printed.
    let cmd = line.trim().trim_start_matches("Gateway API: ").replacen(
        "curl ",
        "curl -sS --fail --max-time 20 -o /dev/null ",
        1,
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sh").args(["-c", &cmd]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.signal("-TERM");
    let _ = tokio::task::spawn_blocking(move || p.wait_exit()).await;

    let p = Proc::start(&args, dir.path());
    assert_eq!(secret_of(&p.wait_line("X-Tyk-Authorization")), secret);
    drop(p);

    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("demo");
    let p = Proc::start(
        &["demo", "--dir", other_dir.to_str().unwrap(), "--port", "0"],
        other.path(),
    );
    assert_ne!(secret_of(&p.wait_line("X-Tyk-Authorization")), secret);
}

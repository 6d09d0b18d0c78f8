//! The dashboard in a real browser: Debian's Chromium driven by `playwright-core`
//! (`browser/dashboard.mjs`) against a real certgate process over TLS, with a real mTLS
//! client call after the UI has set everything up. `.ci/run` installs Chromium and the
//! npm packages when missing; without them this test fails, it never skips.
//!
//! Screenshots of every page go to `target/dashboard-screenshots/`.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::{gateway, pki, upstream, SECRET};

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard/browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_flows_in_chromium() {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix {}` (.ci/run does)",
        dir.display()
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: `apt-get install chromium` (.ci/run does)"
    );
    let up = upstream().await;
    let gw = gateway().start().await;
    let files = tempfile::tempdir().unwrap();
    let p = pki();
    let write = |name: &str, body: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let client_cert = write("client.pem", &p.client.cert_pem);
    let client_key = write("client-key.pem", &p.client.key_pem);
    let ca = write("ca.pem", &p.ca.cert.cert_pem);
    // An expired certificate in the store: the page must flag it. The Gateway API refuses
    // to store an expired certificate (as Tyk does), so it is written as one that expired
    // after its upload would be.
    let now = time::OffsetDateTime::now_utc();
    let expired =
        p.ca.client_valid(
            "expired-client",
            now - time::Duration::days(400),
            now - time::Duration::days(35),
        )
        .unwrap();
    let (status, body) = support::upload_cert(&gw, &expired.cert_pem, "default").await;
    assert_eq!(status, 403, "{body}");
    gw.gateway()
        .store
        .set(
            &format!("cert-raw-default{}", expired.sha256_hex()),
            &expired.cert_pem,
            None,
        )
        .await
        .unwrap();
    let shots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = std::fs::remove_file(shots.join("failure.png"));

    let mut cmd = std::process::Command::new("node");
    cmd.arg(dir.join("dashboard.mjs"))
        .env("GW_URL", gw.base())
        .env("GW_SECRET", SECRET)
        .env("UPSTREAM_URL", up.url())
        .env("CLIENT_CERT", &client_cert)
        .env("CLIENT_KEY", &client_key)
        .env("CA_CERT", &ca)
        .env("SCREENSHOT_DIR", &shots);
    // The gateway runs on this runtime's workers; node runs on a blocking thread. The
    // script bounds each of its own waits (playwright's 30 s default).
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("browser test finished within 4 minutes")
    .expect("join")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "browser flows failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ALL FLOWS PASSED"), "{stdout}");

    // What the UI did is what the store holds: no key is left, the certificate is.
    let admin = support::admin(&gw);
    let keys = support::json_of(
        admin
            .get(gw.url("/tyk/keys"))
            .header("x-tyk-authorization", SECRET)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(keys.get("keys").is_some(), "{keys}");
    // The Dashboard API also takes the secret in `Authorization`, and nothing else.
    let certs = admin
        .get(gw.url("/api/certs"))
        .header("authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(certs.status(), 200);
    let certs = support::json_of(certs).await;
    let cns: Vec<&str> = certs["certs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["subject_cn"].as_str())
        .collect();
    assert_eq!(
        cns,
        vec!["client-1"],
        "the expired one was deleted in the UI: {certs}"
    );
    let anon = admin.get(gw.url("/api/certs")).send().await.unwrap();
    assert_eq!(anon.status(), 403);
    assert_eq!(keys["keys"].as_array().map_or(0, Vec::len), 0, "{keys}");
    for name in [
        "signin",
        "certificates",
        "designer",
        "apis",
        "keys-auth-tab",
        "keys",
        "bad-pem",
    ] {
        let f = shots.join(format!("{name}.png"));
        assert!(f.is_file(), "screenshot {} written", f.display());
    }
    gw.stop().await;
}

//! The seed's exact client: the real `curl` with `--cert/--key/--cacert` against a
//! certificate-auth API whose certificate and key were set up with `curl` too.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::*;

/// Runs `curl args…` in `dir` off the runtime; (exit code, stdout, stderr).
pub async fn run(dir: &Path, args: Vec<String>) -> (i32, String, String) {
    let dir: PathBuf = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("curl is installed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn curl_with_client_certificate_end_to_end() {
    let up = upstream().await;
    let gw = gateway()
        .api(cert_api("cert-api", "/cert-api/", &up.url()))
        .start()
        .await;
    let client = pki().ca.client("curl-client").unwrap();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("client.pem"), &client.cert_pem).unwrap();
    std::fs::write(d.join("client.key"), &client.key_pem).unwrap();
    std::fs::write(d.join("ca.pem"), &pki().ca.cert.cert_pem).unwrap();
    let base = format!("https://localhost:{}", gw.addr.port());
    let admin_hdr = format!("X-Tyk-Authorization: {SECRET}");

    // Upload the certificate with curl.
    let (code, out, err) = run(
        d,
        strings(&[
            "-sS",
            "--cacert",
            "ca.pem",
            "-H",
            &admin_hdr,
            "--data-binary",
            "@client.pem",
            &format!("{base}/tyk/certs?org_id=default"),
        ]),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let cert_id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(cert_id, default_id(&client));

    // Create the key with curl.
    let body = json!({
        "org_id": "default",
        "certificate": cert_id,
        "access_rights": {"cert-api": {"api_id": "cert-api", "api_name": "cert-api", "versions": ["Default"]}}
    });
    write(&d.join("key.json"), &body);
    let (code, out, err) = run(
        d,
        strings(&[
            "-sS",
            "--cacert",
            "ca.pem",
            "-H",
            &admin_hdr,
            "-d",
            "@key.json",
            &format!("{base}/tyk/keys/create"),
        ]),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["status"], "ok", "{out}");
    let key = v["key"].as_str().unwrap().to_owned();

    // The seed's exact command, plus -w to read the status.
    let call = || {
        run(
            d,
            strings(&[
                "-sS",
                "-w",
                "\n%{http_code}",
                "--cert",
                "client.pem",
                "--key",
                "client.key",
                "--cacert",
                "ca.pem",
                &format!("{base}/cert-api/"),
            ]),
        )
    };
    let (code, out, err) = call().await;
    assert_eq!(code, 0, "{err}");
    let (body, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{body}");
    let echoed: Value = serde_json::from_str(body).unwrap();
    assert_eq!(echoed["path"], "/");

    // Without the certificate: 401 Client certificate required.
    let (_, out, _) = run(
        d,
        strings(&[
            "-sS",
            "-w",
            "\n%{http_code}",
            "--cacert",
            "ca.pem",
            &format!("{base}/cert-api/"),
        ]),
    )
    .await;
    assert_eq!(
        out,
        format!("{}\n401", proxy_body("Client certificate required"))
    );

    // Delete the key with curl: the certificate is refused from then on.
    let (code, out, err) = run(
        d,
        strings(&[
            "-sS",
            "--cacert",
            "ca.pem",
            "-H",
            &admin_hdr,
            "-X",
            "DELETE",
            &format!("{base}/tyk/keys/{key}"),
        ]),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"status\":\"ok\""), "{out}");
    let (code, out, err) = call().await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "{}\n401",
            proxy_body("Access to this API has been disallowed")
        )
    );
    gw.stop().await;
}

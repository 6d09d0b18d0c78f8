//! Helpers of this binary that the shared harness lacks: raw TLS connections with a
//! chosen SNI (or none) and Host, a client that records the CertificateRequest's CA
//! hints, the Gateway API on a separate control port, and error assertions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use certgate::pki::{self_signed_client, Issued};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};

use crate::support::*;

/// Tyk's data-plane error body: `{` LF, four spaces, `"error": "<msg>"`, LF, `}`.
pub fn proxy_body(msg: &str) -> String {
    format!("{{\n    \"error\": \"{msg}\"\n}}")
}

/// A control-API error body: compact JSON plus one `\n`.
pub fn api_error(msg: &str) -> String {
    format!("{}\n", json!({"status": "error", "message": msg}))
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Two self-signed client certificates (Tyk's test certificates are self-signed).
pub fn self_signed() -> &'static (Issued, Issued) {
    static C: OnceLock<(Issued, Issued)> = OnceLock::new();
    C.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc();
        let (nb, na) = (
            now - time::Duration::days(1),
            now + time::Duration::days(30),
        );
        (
            self_signed_client("self-signed-1", nb, na).unwrap(),
            self_signed_client("self-signed-2", nb, na).unwrap(),
        )
    })
}

pub fn roots() -> rustls::RootCertStore {
    let mut r = rustls::RootCertStore::empty();
    r.add(CertificateDer::from(pki().ca.cert.der.clone()))
        .unwrap();
    r
}

fn key_of(c: &Issued) -> Arc<rustls::sign::CertifiedKey> {
    let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
    let signer = certgate::tls::provider()
        .key_provider
        .load_private_key(key)
        .unwrap();
    Arc::new(rustls::sign::CertifiedKey::new(
        vec![CertificateDer::from(c.der.clone())],
        signer,
    ))
}

/// Records the acceptable-CA names of a CertificateRequest (None: no certificate was
/// requested) and answers with an optional identity.
#[derive(Debug)]
pub struct Recorder {
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    pub hints: Mutex<Option<Vec<Vec<u8>>>>,
}

impl rustls::client::ResolvesClientCert for Recorder {
    fn resolve(
        &self,
        hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        *self.hints.lock().unwrap() = Some(hints.iter().map(|h| h.to_vec()).collect());
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// A client config presenting `identity` whose resolver records the CA hints.
pub fn recording_config(identity: Option<&Issued>) -> (rustls::ClientConfig, Arc<Recorder>) {
    recording_config_versions(identity, rustls::DEFAULT_VERSIONS)
}

/// [`recording_config`] restricted to `versions`.
pub fn recording_config_versions(
    identity: Option<&Issued>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (rustls::ClientConfig, Arc<Recorder>) {
    let rec = Arc::new(Recorder {
        key: identity.map(key_of),
        hints: Mutex::new(None),
    });
    let mut cfg = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots())
        .with_no_client_auth();
    cfg.client_auth_cert_resolver = rec.clone();
    (cfg, rec)
}

/// A client config presenting `identity` (or nothing).
pub fn cfg(identity: Option<&Issued>) -> rustls::ClientConfig {
    tls_client_config(identity, &[])
}

/// Connects to `addr` with SNI `sni` (None: dial the IP literal, so no SNI is sent)
/// and performs the handshake. Errors are rendered as text.
pub async fn connect(
    addr: SocketAddr,
    sni: Option<&str>,
    cfg: rustls::ClientConfig,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name: ServerName<'static> = match sni {
        Some(s) => ServerName::try_from(s.to_owned()).unwrap(),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// One HTTP/1.1 GET over a fresh TLS connection: Ok((status, body)) or Err(text of the
/// handshake or connection error, e.g. a TLS alert received after a TLS 1.3 handshake).
pub async fn get(
    addr: SocketAddr,
    sni: Option<&str>,
    host: &str,
    path: &str,
    cfg: rustls::ClientConfig,
) -> Result<(u16, String), String> {
    get_with(addr, sni, host, path, &[], cfg).await
}

/// [`get`] with extra request headers.
pub async fn get_with(
    addr: SocketAddr,
    sni: Option<&str>,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    cfg: rustls::ClientConfig,
) -> Result<(u16, String), String> {
    let tls = connect(addr, sni, cfg).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| chain(&e))?;
    let task = tokio::spawn(conn);
    let mut req = http::Request::get(path).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let r = send.send_request(req).await.map_err(|e| chain(&e));
    let out = match r {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| chain(&e))?;
            Ok((
                status,
                String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            ))
        }
        Err(e) => Err(e),
    };
    task.abort();
    out
}

/// The `Host` a client dialling `addr` without a name sends.
pub fn ip_host(addr: SocketAddr) -> String {
    addr.to_string()
}

/// Asserts a TLS-level refusal whose alert is one of `alerts` (rustls names).
#[track_caller]
pub fn assert_tls_refused(r: &Result<(u16, String), String>, alerts: &[&str], what: &str) {
    match r {
        Ok((s, b)) => panic!("{what}: expected a handshake error, got {s} {b}"),
        Err(e) => assert!(
            alerts
                .iter()
                .any(|a| e.contains(&format!("fatal alert: {a}"))),
            "{what}: expected a fatal alert of {alerts:?}, got: {e}"
        ),
    }
}

/// Alerts for "no client certificate" (Go: handshake failure; rustls: certificate_required).
pub const NO_CERT: &[&str] = &["CertificateRequired", "HandshakeFailure", "BadCertificate"];
/// Alerts for "certificate not trusted" (Go: unknown certificate authority / bad certificate).
pub const UNTRUSTED: &[&str] = &["UnknownCA", "BadCertificate"];

#[track_caller]
pub fn assert_status(r: &Result<(u16, String), String>, status: u16, what: &str) {
    match r {
        Ok((s, b)) => assert_eq!(*s, status, "{what}: body {b}"),
        Err(e) => panic!("{what}: expected {status}, got a connection error: {e}"),
    }
}

#[track_caller]
pub fn assert_proxy_error(r: &Result<(u16, String), String>, status: u16, msg: &str, what: &str) {
    match r {
        Ok((s, b)) => {
            assert_eq!(*s, status, "{what}: body {b}");
            assert_eq!(b, &proxy_body(msg), "{what}");
        }
        Err(e) => panic!("{what}: expected {status} {msg}, got a connection error: {e}"),
    }
}

/// The Gateway API base URL on the separate control port.
pub fn ctl(gw: &Gw) -> String {
    let a = gw.running.as_ref().unwrap().control_addr.unwrap();
    format!("https://localhost:{}", a.port())
}

/// `POST <base>/tyk/certs?org_id=<org>`; (status, body text).
pub async fn post_cert(gw: &Gw, base: &str, pem: &str, org: &str) -> (u16, String) {
    let r = admin(gw)
        .post(format!("{base}/tyk/certs?org_id={org}"))
        .header("x-tyk-authorization", SECRET)
        .body(pem.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Uploads through `base` and returns the ID.
pub async fn upload_at(gw: &Gw, base: &str, pem: &str, org: &str) -> String {
    let (s, b) = post_cert(gw, base, pem, org).await;
    assert_eq!(s, 200, "upload: {b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// An admin request (`method` on `<base><path>`); (status, body text).
pub async fn admin_req(gw: &Gw, method: &str, url: &str) -> (u16, String) {
    let r = admin(gw)
        .request(method.parse().unwrap(), url)
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Replaces every API definition file and reloads.
pub async fn set_apis(gw: &Gw, apis: &[Value]) {
    let dir = gw.app_path();
    for e in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for a in apis {
        let id = a["api_id"].as_str().unwrap();
        write(&dir.join(format!("{id}.json")), a);
    }
    let report = gw.gateway().reload().await;
    assert!(report.errors.is_empty(), "reload: {:?}", report.errors);
}

/// A keyless API with a static allow list.
pub fn static_api(id: &str, listen: &str, target: &str, domain: &str, list: &[String]) -> Value {
    let mut v = classic_api(id, listen, target);
    v["domain"] = json!(domain);
    v["use_mutual_tls_auth"] = json!(true);
    v["client_certificates"] = json!(list);
    v
}

/// A keyless API without client certificates.
pub fn plain_api(id: &str, listen: &str, target: &str, domain: &str) -> Value {
    let mut v = classic_api(id, listen, target);
    v["domain"] = json!(domain);
    v
}

/// `default` + the certificate's SHA-256: its ID once uploaded with org `default`.
pub fn default_id(c: &Issued) -> String {
    format!("default{}", c.sha256_hex())
}

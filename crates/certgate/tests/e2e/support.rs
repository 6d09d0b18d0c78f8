//! Test harness: run-time PKI, a real upstream, an in-process gateway on ephemeral
//! ports, and clients with or without client certificates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use certgate::app::Running;
use certgate::config::Config;
use certgate::pki::{Ca, Issued};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

/// At least 16 characters and not a published value: certgate refuses weaker secrets.
pub const SECRET: &str = "certgate-test-secret-5f1c";
/// Signs cluster notifications; required (and as strong as `SECRET`) with Redis storage.
pub const NODE_SECRET: &str = "certgate-test-node-secret-8e2a";

/// One PKI for the whole test binary.
#[allow(dead_code)] // client certificates are used by the certificate-auth suites
pub struct Pki {
    pub ca: Ca,
    pub server: Issued,
    pub client: Issued,
    pub other_client: Issued,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::new("test CA").unwrap();
        let server = ca
            .server(&["localhost", "127.0.0.1", "api.example", "*.wild.example"])
            .unwrap();
        let client = ca.client("client-1").unwrap();
        let other_client = ca.client("client-2").unwrap();
        Pki {
            ca,
            server,
            client,
            other_client,
        }
    })
}

/// A real HTTP/1.1 upstream that echoes what it received as JSON.
/// `/slow` waits 3 s; `/big?n=N` streams N bytes.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let h = h.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let h = h.clone();
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(echo(req).await)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Upstream { addr, hits, task }
}

async fn echo(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if parts.uri.path() == "/big" {
        let n: usize = parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return Response::new(Full::new(Bytes::from(vec![b'x'; n])));
    }
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let v = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body.len(),
    });
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// A gateway under test with its temporary folders.
pub struct Gw {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Gw {
    pub fn app_path(&self) -> PathBuf {
        self.dir.path().join("apps")
    }

    pub fn base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://localhost:{}", self.addr.port())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn gateway(&self) -> &Arc<certgate::gateway::Gateway> {
        &self.running.as_ref().unwrap().gw
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Builder for a gateway config.
pub struct GwBuilder {
    conf: Value,
    apis: Vec<(String, Value)>,
    tls: bool,
    extra_certs: Vec<(String, Issued)>,
}

pub fn gateway() -> GwBuilder {
    GwBuilder {
        conf: json!({
            "listen_address": "127.0.0.1",
            "listen_port": 0,
            "secret": SECRET,
            "node_secret": NODE_SECRET,
            "app_path": "apps",
            "storage": {"type": "embedded", "path": "data"},
            "hash_key_function": "murmur64",
        }),
        apis: Vec::new(),
        tls: true,
        extra_certs: Vec::new(),
    }
}

pub fn classic_api(id: &str, listen_path: &str, target: &str) -> Value {
    json!({
        "api_id": id,
        "org_id": "default",
        "name": id,
        "use_keyless": true,
        "proxy": {"listen_path": listen_path, "strip_listen_path": true, "target_url": target},
        "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
    })
}

pub fn token_api(id: &str, listen_path: &str, target: &str) -> Value {
    let mut v = classic_api(id, listen_path, target);
    v["use_keyless"] = json!(false);
    v["auth_configs"] = json!({"authToken": {"auth_header_name": "Authorization"}});
    v
}

impl GwBuilder {
    pub fn plain_http(mut self) -> Self {
        self.tls = false;
        self
    }

    pub fn set(mut self, path: &str, v: Value) -> Self {
        let mut cur = &mut self.conf;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            if cur.get(*p).is_none() {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
        cur[*parts.last().unwrap()] = v;
        self
    }

    /// Adds a server certificate registered under `domain`.
    pub fn server_cert(mut self, domain: &str, cert: Issued) -> Self {
        self.extra_certs.push((domain.to_owned(), cert));
        self
    }

    pub fn api(mut self, def: Value) -> Self {
        let id = def["api_id"].as_str().unwrap().to_owned();
        self.apis.push((format!("{id}.json"), def));
        self
    }

    #[allow(dead_code)]
    pub fn oas_api(mut self, id: &str, doc: Value) -> Self {
        self.apis.push((format!("{id}-oas.json"), doc));
        self
    }

    pub async fn start(self) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        self.start_in(dir).await
    }

    pub async fn start_in(mut self, dir: tempfile::TempDir) -> Gw {
        let d = dir.path();
        std::fs::create_dir_all(d.join("apps")).unwrap();
        for (name, def) in &self.apis {
            std::fs::write(
                d.join("apps").join(name),
                serde_json::to_vec_pretty(def).unwrap(),
            )
            .unwrap();
        }
        if self.tls {
            let p = pki();
            std::fs::write(d.join("server.pem"), &p.server.cert_pem).unwrap();
            std::fs::write(d.join("server-key.pem"), &p.server.key_pem).unwrap();
            let opts = self.conf["http_server_options"].take();
            let mut opts = if opts.is_object() { opts } else { json!({}) };
            opts["use_ssl"] = json!(true);
            let mut certs = vec![
                json!({"domain_name": "localhost", "cert_file": "server.pem", "key_file": "server-key.pem"}),
            ];
            for (i, (domain, c)) in self.extra_certs.iter().enumerate() {
                std::fs::write(d.join(format!("extra{i}.pem")), &c.cert_pem).unwrap();
                std::fs::write(d.join(format!("extra{i}-key.pem")), &c.key_pem).unwrap();
                certs.push(json!({"domain_name": domain, "cert_file": format!("extra{i}.pem"), "key_file": format!("extra{i}-key.pem")}));
            }
            if opts.get("certificates").is_none() {
                opts["certificates"] = json!(certs);
            }
            self.conf["http_server_options"] = opts;
        }
        let conf_path = d.join("tyk.conf");
        std::fs::write(&conf_path, serde_json::to_vec_pretty(&self.conf).unwrap()).unwrap();
        let cfg = Config::load(
            &conf_path,
            &std::collections::HashMap::<String, String>::new(),
        )
        .unwrap();
        let running = certgate::app::start(cfg).await.unwrap();
        let addr = running.addr;
        Gw {
            running: Some(running),
            dir,
            addr,
            tls: self.tls,
        }
    }
}

fn root_store() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::CertificateDer::from(pki().ca.cert.der.clone());
    roots.add(der).unwrap();
    roots
}

/// A rustls client config trusting the test CA, optionally presenting `identity`.
pub fn tls_client_config(identity: Option<&Issued>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let b = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(root_store());
    let mut cfg = match identity {
        Some(id) => {
            let chain = vec![rustls::pki_types::CertificateDer::from(id.der.clone())];
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    cfg
}

/// An HTTP client (reqwest) for the gateway, resolving the test host names to it.
pub fn client(gw: &Gw, identity: Option<&Issued>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .resolve("localhost", gw.addr)
        .resolve("api.example", gw.addr)
        .resolve("other.example", gw.addr)
        .resolve("a.wild.example", gw.addr)
        .timeout(Duration::from_secs(20))
        .http1_only();
    // Always a preconfigured rustls config: reqwest needs a provider even for http://.
    b = b.use_preconfigured_tls(tls_client_config(identity, &[b"http/1.1"]));
    b.build().unwrap()
}

pub fn admin(gw: &Gw) -> reqwest::Client {
    client(gw, None)
}

/// A Gateway API request with the secret.
pub fn admin_auth(r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    r.header("x-tyk-authorization", SECRET)
}

/// `GET /tyk/reload?block=true`, which must answer 200.
pub async fn admin_reload(gw: &Gw) {
    let r = admin_auth(admin(gw).get(gw.url("/tyk/reload?block=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Sends a Gateway API request with the secret: its status and JSON body.
pub async fn admin_send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = admin_auth(req).send().await.unwrap();
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

pub async fn json_of(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Polls `f` until it is true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn write(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

// === certificate-auth helpers ===

/// `POST /tyk/certs?org_id=<org>` with a PEM body; (status, JSON body).
#[allow(dead_code)]
pub async fn upload_cert(gw: &Gw, pem: &str, org: &str) -> (u16, Value) {
    let r = admin(gw)
        .post(gw.url(&format!("/tyk/certs?org_id={org}")))
        .header("x-tyk-authorization", SECRET)
        .body(pem.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

/// Uploads `cert` (PEM, no key) under `org` and returns its ID.
#[allow(dead_code)]
pub async fn upload(gw: &Gw, cert: &Issued, org: &str) -> String {
    let (status, v) = upload_cert(gw, &cert.cert_pem, org).await;
    assert_eq!(status, 200, "upload failed: {v}");
    v["id"].as_str().unwrap().to_owned()
}

/// `POST /tyk/keys/create`; (status, JSON body).
#[allow(dead_code)]
pub async fn create_key_raw(gw: &Gw, body: &Value) -> (u16, Value) {
    let r = admin(gw)
        .post(gw.url("/tyk/keys/create"))
        .header("x-tyk-authorization", SECRET)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

/// A session with access to `api` (org `default`), optionally bound to `certificate`.
#[allow(dead_code)]
pub fn session(api: &str, certificate: Option<&str>) -> Value {
    let mut s = json!({
        "org_id": "default",
        "access_rights": {api: {"api_id": api, "api_name": api, "versions": ["Default"]}}
    });
    if let Some(c) = certificate {
        s["certificate"] = json!(c);
    }
    s
}

/// A Classic API with Certificate Authentication.
#[allow(dead_code)]
pub fn cert_api(id: &str, listen_path: &str, target: &str) -> Value {
    let mut v = classic_api(id, listen_path, target);
    v["use_keyless"] = json!(false);
    v["base_identity_provided_by"] = json!("auth_token");
    v["auth_configs"] =
        json!({"authToken": {"use_certificate": true, "auth_header_name": "Authorization"}});
    v
}

/// A client config presenting `chain` (leaf first) with the leaf's key.
#[allow(dead_code)]
pub fn tls_client_config_chain(chain: &[&Issued], alpn: &[&[u8]]) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let certs = chain
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der.clone()))
        .collect();
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(chain[0].key_pem.as_bytes()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(root_store())
        .with_client_auth_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    cfg
}

/// A reqwest client using a preconfigured rustls config.
#[allow(dead_code)]
pub fn client_with(gw: &Gw, cfg: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .resolve("localhost", gw.addr)
        .resolve("api.example", gw.addr)
        .resolve("other.example", gw.addr)
        .timeout(Duration::from_secs(20))
        .http1_only()
        .use_preconfigured_tls(cfg)
        .build()
        .unwrap()
}

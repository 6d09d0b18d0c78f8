//! `certgate demo`: a working example on a fresh machine.
//!
//! On first run it generates, into the demo folder, a CA, a server certificate for
//! `localhost`/`127.0.0.1` and a client certificate (all ECDSA P-256, rcgen), a
//! `tyk.conf` using the embedded store, and one example API. A small built-in upstream
//! (an echo service on a loopback port) stands in for a real backend. Later runs reuse
//! the certificates and data and only point the API at the new upstream port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::task::JoinHandle;

use rustls::pki_types::pem::PemObject;

use crate::config::{Config, ConfigError};
use crate::gateway::Gateway;
use crate::pki::Ca;

/// Why the demo could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// File system problem in the demo folder.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating demo certificates: {0}")]
    Pki(#[from] rcgen::Error),
    /// The generated config did not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Registering the demo certificate or key failed.
    #[error("setting up the demo certificate and key: {0}")]
    Setup(String),
}

/// A prepared demo: its config, folder and the running built-in upstream.
#[derive(Debug)]
pub struct Demo {
    /// The gateway configuration to run.
    pub config: Config,
    /// The demo folder.
    pub dir: PathBuf,
    /// Address of the built-in upstream.
    pub upstream: SocketAddr,
    upstream_task: JoinHandle<()>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.upstream_task.abort();
    }
}

/// The demo API's id and listen path.
pub const DEMO_API_ID: &str = "certgate-demo";
/// Listen path of the demo API.
pub const DEMO_LISTEN_PATH: &str = "/demo/";
/// The demo's organisation.
pub const DEMO_ORG: &str = "default";

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_owned(),
        source,
    }
}

async fn write(path: &Path, contents: &[u8]) -> Result<(), DemoError> {
    tokio::fs::write(path, contents).await.map_err(io_err(path))
}

/// Generates whatever is missing in `dir`, starts the built-in upstream and returns
/// the configuration to run on `port`.
pub async fn prepare(dir: &Path, port: u16) -> Result<Demo, DemoError> {
    tokio::fs::create_dir_all(dir.join("apps"))
        .await
        .map_err(io_err(dir))?;
    let dir = tokio::fs::canonicalize(dir).await.map_err(io_err(dir))?;
    let certs = dir.join("certs");
    if !certs.join("client.pem").exists() {
        tokio::fs::create_dir_all(&certs)
            .await
            .map_err(io_err(&certs))?;
        let ca = Ca::new("certgate demo CA")?;
        let server = ca.server(&["localhost", "127.0.0.1"])?;
        let client = ca.client("demo-client")?;
        write(&certs.join("ca.pem"), ca.cert.cert_pem.as_bytes()).await?;
        write(&certs.join("server.pem"), server.cert_pem.as_bytes()).await?;
        write(&certs.join("server-key.pem"), server.key_pem.as_bytes()).await?;
        write(&certs.join("client-key.pem"), client.key_pem.as_bytes()).await?;
        // Written last: its presence means the set is complete.
        write(&certs.join("client.pem"), client.cert_pem.as_bytes()).await?;
    }

    let (upstream, upstream_task) = start_upstream().await.map_err(io_err(&dir))?;

    // A Tyk OAS API with Certificate Authentication: the client certificate is the
    // only credential.
    let api = json!({
        "openapi": "3.0.3",
        "info": {"title": "certgate demo API", "version": "1.0.0"},
        "paths": {},
        "x-tyk-api-gateway": {
            "info": {"id": DEMO_API_ID, "orgId": DEMO_ORG, "name": "certgate demo API", "state": {"active": true}},
            "upstream": {"url": format!("http://{upstream}")},
            "server": {
                "listenPath": {"value": DEMO_LISTEN_PATH, "strip": true},
                "authentication": {"enabled": true, "certificateAuth": {"enabled": true}}
            }
        }
    });
    let api_path = dir.join("apps").join(format!("{DEMO_API_ID}-oas.json"));
    write(
        &api_path,
        &serde_json::to_vec_pretty(&api).unwrap_or_default(),
    )
    .await?;
    let _ = tokio::fs::remove_file(dir.join("apps").join(format!("{DEMO_API_ID}.json"))).await;

    let conf_path = dir.join("tyk.conf");
    let secret = demo_secret(&conf_path).await;
    let conf = json!({
        "listen_address": "127.0.0.1",
        "listen_port": port,
        "secret": secret,
        "app_path": "apps",
        "http_server_options": {
            "use_ssl": true,
            "certificates": [{"domain_name": "localhost", "cert_file": "certs/server.pem", "key_file": "certs/server-key.pem"}]
        },
        "storage": {"type": "embedded", "path": "data"},
        "hash_keys": true,
        "hash_key_function": "sha256"
    });
    write(
        &conf_path,
        &serde_json::to_vec_pretty(&conf).unwrap_or_default(),
    )
    .await?;
    // It holds the Gateway API secret: readable by its owner only.
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&conf_path, std::fs::Permissions::from_mode(0o600))
            .await
            .map_err(io_err(&conf_path))?;
    }
    let config = Config::load(&conf_path, &crate::config::ProcessEnv)?;
    Ok(Demo {
        config,
        dir,
        upstream,
        upstream_task,
    })
}

/// The demo's Gateway API secret: the one in `tyk.conf` from an earlier run (or set there by
/// the user) when it is acceptable, so it stays valid across runs; else 32 random hex
/// characters. Never a fixed value: a published demo secret would open the Gateway API of
/// every demo left running.
async fn demo_secret(conf_path: &Path) -> String {
    let earlier = tokio::fs::read(conf_path)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("secret").and_then(|s| s.as_str()).map(str::to_owned));
    if let Some(s) = earlier.filter(|s| crate::config::secret_weakness(s).is_none()) {
        return s;
    }
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Practically unreachable; UUIDv4 still gives 122 random bits.
        return uuid::Uuid::new_v4().simple().to_string();
    }
    hex::encode(bytes)
}

impl Demo {
    /// Registers the demo client certificate in the certificate store and creates
    /// the key bound to it, unless an earlier run did: exactly what an operator does
    /// with `POST /tyk/certs` and `POST /tyk/keys/create`.
    pub async fn bootstrap(&self, gw: &Gateway) -> Result<(), DemoError> {
        let path = self.dir.join("certs").join("client.pem");
        let pem = tokio::fs::read(&path).await.map_err(io_err(&path))?;
        let der = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| DemoError::Setup(format!("{}: no certificate", path.display())))?;
        let cert_id = format!("{DEMO_ORG}{}", crate::tokens::sha256_hex(der.as_ref()));
        let setup = |e: &dyn std::fmt::Display| DemoError::Setup(e.to_string());
        if !gw.certs.exists(&cert_id).await.map_err(|e| setup(&e))? {
            gw.certs.add(&pem, DEMO_ORG).await.map_err(|e| setup(&e))?;
        }
        let cfg = &gw.config;
        let key = crate::tokens::generate_token(DEMO_ORG, &cert_id, &cfg.hash_key_function);
        let store_key = crate::pipeline::session_store_key(cfg, &key);
        if !gw.store.exists(&store_key).await.map_err(|e| setup(&e))? {
            let session = json!({
                "org_id": DEMO_ORG,
                "certificate": cert_id,
                "access_rights": {DEMO_API_ID: {"api_id": DEMO_API_ID, "api_name": "certgate demo API", "versions": ["Default"]}},
                "last_updated": crate::pipeline::now_unix().to_string(),
            });
            gw.store
                .set(&store_key, &session.to_string(), None)
                .await
                .map_err(|e| setup(&e))?;
        }
        gw.reload().await;
        Ok(())
    }

    /// What to tell the user once the gateway listens on `port`.
    pub fn instructions(&self, port: u16) -> String {
        let c = self.dir.join("certs");
        format!(
            "certgate demo is running. Call the example API with the demo client certificate:\n\n  curl --cacert {ca} --cert {cert} --key {key} https://localhost:{port}{path}hello\n\nGateway API: curl --cacert {ca} -H 'X-Tyk-Authorization: {secret}' https://localhost:{port}/tyk/apis\nFiles (certificates, tyk.conf, apps/, data/) are in {dir}",
            ca = c.join("ca.pem").display(),
            cert = c.join("client.pem").display(),
            key = c.join("client-key.pem").display(),
            path = DEMO_LISTEN_PATH,
            secret = self.config.secret,
            dir = self.dir.display(),
        )
    }
}

/// The built-in upstream: answers every request with a small JSON echo.
async fn start_upstream() -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let body = json!({
                        "message": "Hello from the certgate demo upstream",
                        "method": req.method().as_str(),
                        "path": req.uri().path(),
                        "x_forwarded_for": req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()),
                    });
                    let mut resp = Response::new(Full::new(Bytes::from(
                        serde_json::to_vec(&body).unwrap_or_default(),
                    )));
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

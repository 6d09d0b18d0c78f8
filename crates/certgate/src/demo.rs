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

use crate::config::{Config, ConfigError};
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

    let api = json!({
        "api_id": DEMO_API_ID,
        "org_id": "default",
        "name": "certgate demo API",
        "use_keyless": true,
        "proxy": {
            "listen_path": DEMO_LISTEN_PATH,
            "strip_listen_path": true,
            "target_url": format!("http://{upstream}")
        },
        "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
    });
    let api_path = dir.join("apps").join(format!("{DEMO_API_ID}.json"));
    write(
        &api_path,
        &serde_json::to_vec_pretty(&api).unwrap_or_default(),
    )
    .await?;

    let conf = json!({
        "listen_address": "127.0.0.1",
        "listen_port": port,
        "secret": "demo-secret-change-me",
        "app_path": "apps",
        "http_server_options": {
            "use_ssl": true,
            "certificates": [{"domain_name": "localhost", "cert_file": "certs/server.pem", "key_file": "certs/server-key.pem"}]
        },
        "storage": {"type": "embedded", "path": "data"},
        "hash_keys": true,
        "hash_key_function": "murmur64"
    });
    let conf_path = dir.join("tyk.conf");
    write(
        &conf_path,
        &serde_json::to_vec_pretty(&conf).unwrap_or_default(),
    )
    .await?;
    let config = Config::load(&conf_path, &crate::config::ProcessEnv)?;
    Ok(Demo {
        config,
        dir,
        upstream,
        upstream_task,
    })
}

impl Demo {
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

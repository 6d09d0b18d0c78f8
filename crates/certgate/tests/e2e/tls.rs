//! TLS listener behaviour: SNI certificate selection, no certificate at all, and the
//! per-SNI client-certificate request (§1.2, §1.3).

use std::sync::Arc;

use serde_json::json;

use crate::support::*;

async fn handshake(
    gw: &Gw,
    sni: &str,
    cfg: rustls::ClientConfig,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(sni.to_owned().try_into().unwrap(), tcp)
        .await
}

#[tokio::test]
async fn server_certificate_is_chosen_by_sni() {
    let other = pki().ca.server(&["other.example"]).unwrap();
    let gw = gateway()
        .server_cert("other.example", other.clone())
        .start()
        .await;
    let s = handshake(&gw, "other.example", tls_client_config(None, &[]))
        .await
        .unwrap();
    let served = s.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    assert_eq!(served, other.der);
    let s = handshake(&gw, "localhost", tls_client_config(None, &[]))
        .await
        .unwrap();
    let served = s.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    assert_eq!(served, pki().server.der);
    gw.stop().await;
}

#[tokio::test]
async fn no_server_certificate_at_all_is_unrecognized_name() {
    let gw = gateway()
        .set("http_server_options.certificates", json!([]))
        .set(
            "http_server_options.ssl_certificates",
            json!(["no-such-certificate-id"]),
        )
        .start()
        .await;
    let Err(err) = handshake(&gw, "localhost", tls_client_config(None, &[])).await else {
        panic!("handshake must fail");
    };
    assert!(err.to_string().contains("UnrecognisedName"), "{err}");
    gw.stop().await;
}

/// A client certificate is requested only where an API on that host uses
/// certificate authentication; the client's possession of the key is proven then.
#[tokio::test]
async fn client_certificate_is_requested_only_for_certificate_auth_hosts() {
    let up = upstream().await;
    let mut cert_api = classic_api("cert", "/cert/", &up.url());
    cert_api["use_keyless"] = json!(false);
    cert_api["domain"] = json!("api.example");
    cert_api["auth_configs"] = json!({"authToken": {"use_certificate": true}});
    let gw = gateway()
        .api(classic_api("open", "/open/", &up.url()))
        .api(cert_api)
        .start()
        .await;
    let snap = gw.gateway().snapshot();
    use certgate::tls::HandshakeAuth;
    let t = &snap.client_auth;
    assert!(matches!(
        t.decide(Some("api.example")).auth,
        HandshakeAuth::Request(_)
    ));
    assert!(matches!(
        t.decide(Some("localhost")).auth,
        HandshakeAuth::None
    ));
    assert!(matches!(t.decide(None).auth, HandshakeAuth::None));
    // A real handshake with a client certificate succeeds on both hosts.
    for sni in ["api.example", "localhost"] {
        let cfg = tls_client_config(Some(&pki().client), &[]);
        handshake(&gw, sni, cfg).await.unwrap();
    }
    gw.stop().await;
}

/// Presents a certificate but signs the handshake with another key.
#[derive(Debug)]
struct WrongKey(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for WrongKey {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn client_certificate_without_its_private_key_is_refused() {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = upstream().await;
    let mut cert_api = classic_api("cert", "/cert/", &up.url());
    cert_api["use_keyless"] = json!(false);
    cert_api["auth_configs"] = json!({"authToken": {"use_certificate": true}});
    let gw = gateway().api(cert_api).start().await;
    let other_key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(pki().other_client.key_pem.as_bytes())
            .unwrap();
    let signer = certgate::tls::provider()
        .key_provider
        .load_private_key(other_key)
        .unwrap();
    let ck = rustls::sign::CertifiedKey::new(
        vec![rustls::pki_types::CertificateDer::from(
            pki().client.der.clone(),
        )],
        signer,
    );
    let mut cfg = tls_client_config(None, &[]);
    cfg.client_auth_cert_resolver = Arc::new(WrongKey(Arc::new(ck)));
    let outcome = match handshake(&gw, "localhost", cfg).await {
        Err(e) => Err(e.to_string()),
        Ok(mut s) => {
            let _ = s
                .write_all(b"GET /cert/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            match s.read_to_end(&mut buf).await {
                Err(e) => Err(e.to_string()),
                Ok(_) if buf.is_empty() => Err("closed".into()),
                Ok(_) => Ok(String::from_utf8_lossy(&buf).into_owned()),
            }
        }
    };
    assert!(
        outcome.is_err(),
        "a forged CertificateVerify must not get an answer: {outcome:?}"
    );
    gw.stop().await;
}

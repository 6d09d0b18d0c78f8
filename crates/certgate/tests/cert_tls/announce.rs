//! Issue 12 #5: the CertificateRequest names the Subjects of the static allow lists
//! that apply to the server name (Tyk's `ClientCAs`, which Go announces whenever it
//! asks for a certificate), on the default single port (allow lists enforced per
//! request) as on a handshake-enforcing port, over TLS 1.2 and 1.3; nothing with
//! `skip_client_ca_announcement`; and the names follow reloads and the store.

use rustls::SupportedProtocolVersion;
use serde_json::json;

use crate::helpers::*;
use crate::support::*;

const VERSIONS: [(&str, &SupportedProtocolVersion); 2] = [
    ("TLS 1.2", &rustls::version::TLS12),
    ("TLS 1.3", &rustls::version::TLS13),
];

fn subject(c: &certgate::pki::Issued) -> Vec<u8> {
    let (_, x) = x509_parser::parse_x509_certificate(&c.der).unwrap();
    x.subject().as_raw().to_vec()
}

/// One GET presenting `identity` over `version`: the answer and the CA names of the
/// CertificateRequest (None: no certificate was asked for).
async fn get_recording(
    gw: &Gw,
    path: &str,
    identity: &certgate::pki::Issued,
    version: &'static SupportedProtocolVersion,
) -> (Result<(u16, String), String>, Option<Vec<Vec<u8>>>) {
    let (c, rec) = recording_config_versions(Some(identity), &[version]);
    let r = get(gw.addr, Some("localhost"), "localhost", path, c).await;
    let hints = rec.hints.lock().unwrap().clone();
    (r, hints)
}

#[tokio::test]
async fn static_allow_list_announces_its_certificates_subjects() {
    let up = upstream().await;
    let (c1, _) = self_signed();
    let ca = &pki().ca.cert;
    // Per request (the default single port, where the Gateway API shares the
    // connection) and in the handshake (a separate Gateway API port).
    for separate_control in [false, true] {
        for skip in [false, true] {
            let mut b = gateway().set(
                "http_server_options.skip_client_ca_announcement",
                json!(skip),
            );
            if separate_control {
                b = b.set("control_api_port", json!(free_port()));
            }
            let gw = b.start().await;
            let base = if separate_control {
                ctl(&gw)
            } else {
                gw.base()
            };
            let ca_id = upload_at(&gw, &base, &ca.cert_pem, "default").await;
            let c1_id = upload_at(&gw, &base, &c1.cert_pem, "default").await;
            // A CA entry and a leaf entry; the CA listed twice is named once.
            let list = [ca_id.clone(), c1_id, ca_id];
            set_apis(&gw, &[static_api("m", "/m/", &up.url(), "", &list)]).await;
            for (name, version) in VERSIONS {
                let tag = format!("separate_control={separate_control} skip={skip} {name}");
                let (r, hints) = get_recording(&gw, "/m/", &pki().client, version).await;
                assert_status(&r, 200, &format!("{tag}: CA-issued leaf"));
                let hints = hints.unwrap_or_else(|| panic!("{tag}: no certificate requested"));
                if skip {
                    assert!(hints.is_empty(), "{tag}: {} CA names", hints.len());
                } else {
                    assert_eq!(hints, vec![subject(ca), subject(c1)], "{tag}");
                }
            }
            gw.stop().await;
        }
    }
}

/// Tyk announces the SNI's pool on certificate-authentication connections too (it is
/// `ClientCAs`, set whatever the mode); none where no static API applies.
#[tokio::test]
async fn certificate_auth_connection_announces_the_domains_allow_lists() {
    let up = upstream().await;
    let gw = gateway().start().await;
    let ca_id = upload(&gw, &pki().ca.cert, "default").await;
    let client = pki().ca.client("announce-cert-auth").unwrap();
    let client_id = upload(&gw, &client, "default").await;
    let (s, v) = create_key_raw(&gw, &session("cert", Some(&client_id))).await;
    assert_eq!(s, 200, "{v}");
    let cert = cert_api("cert", "/cert/", &up.url());
    let stat = static_api("m", "/m/", &up.url(), "", &[ca_id]);
    set_apis(&gw, &[cert.clone(), stat]).await;
    for (name, version) in VERSIONS {
        let (r, hints) = get_recording(&gw, "/cert/", &client, version).await;
        assert_status(&r, 200, &format!("{name}: certificate auth"));
        assert_eq!(hints, Some(vec![subject(&pki().ca.cert)]), "{name}");
    }
    // Rebuilt on reload: without the static API nothing is named.
    set_apis(&gw, &[cert]).await;
    for (name, version) in VERSIONS {
        let (r, hints) = get_recording(&gw, "/cert/", &client, version).await;
        assert_status(&r, 200, &format!("{name}: certificate auth alone"));
        assert_eq!(hints, Some(Vec::new()), "{name}: no static API");
    }
    gw.stop().await;
}

/// A CA removed from the store is no longer named (the allow list is rebuilt).
#[tokio::test]
async fn removed_ca_is_no_longer_announced() {
    let up = upstream().await;
    let gw = gateway().start().await;
    let ca_id = upload(&gw, &pki().ca.cert, "default").await;
    let list = std::slice::from_ref(&ca_id);
    set_apis(&gw, &[static_api("m", "/m/", &up.url(), "", list)]).await;
    let (r, hints) = get_recording(&gw, "/m/", &pki().client, VERSIONS[1].1).await;
    assert_status(&r, 200, "CA-issued leaf");
    assert_eq!(hints, Some(vec![subject(&pki().ca.cert)]));
    let url = gw.url(&format!("/tyk/certs/{ca_id}?org_id=default"));
    let (s, b) = admin_req(&gw, "DELETE", &url).await;
    assert_eq!(s, 200, "{b}");
    let (r, hints) = get_recording(&gw, "/m/", &pki().client, VERSIONS[1].1).await;
    let msg = format!(
        "Certificate with SHA256 {} not allowed",
        pki().client.sha256_hex()
    );
    assert_proxy_error(&r, 403, &msg, "after the CA's removal");
    assert_eq!(hints, Some(Vec::new()), "after the CA's removal");
    gw.stop().await;
}

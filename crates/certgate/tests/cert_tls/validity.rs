//! Issue 12 #7: a client certificate whose notBefore is ahead is refused (403
//! `Certificate is not yet valid`, or the handshake fails where the handshake verifies)
//! wherever a certificate's validity is checked, beyond the
//! `security.certgate_client_cert_not_before_skew` allowance (default 60 s). Tyk checks
//! notAfter only.

use certgate::pki::Issued;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::helpers::*;
use crate::support::*;

const NOT_YET_VALID: &str = "Certificate is not yet valid";
/// rustls reports "not valid yet" with the certificate_expired alert (RFC 8446: "has
/// expired or is not currently valid").
const EXPIRED_ALERT: &[&str] = &["CertificateExpired"];
const SKEW: &str = "security.certgate_client_cert_not_before_skew";

/// A certificate of the test CA whose notBefore is `ahead` from now.
fn starting_in(cn: &str, ahead: Duration) -> Issued {
    let now = OffsetDateTime::now_utc();
    pki()
        .ca
        .client_valid(cn, now + ahead, now + Duration::days(30))
        .unwrap()
}

/// Uploads `c` and creates a key for it on API `api`.
async fn key_for(gw: &Gw, api: &str, c: &Issued) {
    let id = upload(gw, c, "default").await;
    let (s, v) = create_key_raw(gw, &session(api, Some(&id))).await;
    assert_eq!(s, 200, "{v}");
}

async fn call(gw: &Gw, path: &str, c: &Issued) -> Result<(u16, String), String> {
    get(gw.addr, Some("localhost"), "localhost", path, cfg(Some(c))).await
}

#[tokio::test]
async fn certificate_auth_refuses_a_certificate_not_valid_yet() {
    let up = upstream().await;
    let gw = gateway()
        .api(cert_api("cert", "/cert/", &up.url()))
        .start()
        .await;
    let later = starting_in("valid-in-an-hour", Duration::hours(1));
    let soon = starting_in("valid-in-30s", Duration::seconds(30));
    key_for(&gw, "cert", &later).await;
    key_for(&gw, "cert", &soon).await;
    let r = call(&gw, "/cert/", &later).await;
    assert_proxy_error(&r, 403, NOT_YET_VALID, "notBefore in an hour");
    let r = call(&gw, "/cert/", &soon).await;
    assert_status(&r, 200, "notBefore in 30 s, within the default allowance");
    gw.stop().await;

    let gw = gateway()
        .set(SKEW, json!(0))
        .api(cert_api("cert", "/cert/", &up.url()))
        .start()
        .await;
    let soon = starting_in("valid-in-30s-strict", Duration::seconds(30));
    key_for(&gw, "cert", &soon).await;
    let r = call(&gw, "/cert/", &soon).await;
    assert_proxy_error(&r, 403, NOT_YET_VALID, "notBefore in 30 s, no allowance");
    gw.stop().await;
}

/// Static allow lists: a listed certificate and one issued by a listed CA, checked per
/// request (default single port) and in the handshake (separate Gateway API port).
#[tokio::test]
async fn static_allow_list_refuses_a_certificate_not_valid_yet() {
    let up = upstream().await;
    for skew in [None, Some(0)] {
        for separate_control in [false, true] {
            let tag = format!("skew={skew:?} separate_control={separate_control}");
            let mut b = gateway().set("enable_custom_domains", json!(true));
            if let Some(s) = skew {
                b = b.set(SKEW, json!(s));
            }
            if separate_control {
                b = b.set("control_api_port", json!(free_port()));
            }
            let gw = b.start().await;
            let base = if separate_control {
                ctl(&gw)
            } else {
                gw.base()
            };
            let later = starting_in("listed-in-an-hour", Duration::hours(1));
            let soon = starting_in("listed-in-30s", Duration::seconds(30));
            let mut list = Vec::new();
            for c in [&later, &soon, &pki().ca.cert] {
                list.push(upload_at(&gw, &base, &c.cert_pem, "default").await);
            }
            let leafs = static_api("leafs", "/leafs/", &up.url(), "", &list[..2]);
            let by_ca = static_api("by-ca", "/by-ca/", &up.url(), "api.example", &list[2..]);
            set_apis(&gw, &[leafs, by_ca]).await;
            let issued_later = starting_in("issued-in-an-hour", Duration::hours(1));
            let issued_soon = starting_in("issued-in-30s", Duration::seconds(30));
            let cases = [
                ("/leafs/", "localhost", &later, "listed, in an hour", false),
                (
                    "/leafs/",
                    "localhost",
                    &soon,
                    "listed, in 30 s",
                    skew.is_none(),
                ),
                (
                    "/by-ca/",
                    "api.example",
                    &issued_later,
                    "CA, in an hour",
                    false,
                ),
                (
                    "/by-ca/",
                    "api.example",
                    &issued_soon,
                    "CA, in 30 s",
                    skew.is_none(),
                ),
            ];
            for (path, host, c, label, allowed) in cases {
                let what = format!("{tag}: {path} {label}");
                let r = get(gw.addr, Some(host), host, path, cfg(Some(c))).await;
                match (allowed, separate_control) {
                    (true, _) => assert_status(&r, 200, &what),
                    // Verified in the handshake: refused there.
                    (false, true) => assert_tls_refused(&r, EXPIRED_ALERT, &what),
                    (false, false) => assert_proxy_error(&r, 403, NOT_YET_VALID, &what),
                }
            }
            gw.stop().await;
        }
    }
}

/// Certificate–token binding on a token API (a certificate-auth API beside it makes
/// the handshake ask for a certificate): the bound certificate not valid yet.
#[tokio::test]
async fn bound_certificate_not_valid_yet_is_refused() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("tok", "/tok/", &up.url()))
        .api(cert_api("cert", "/cert/", &up.url()))
        .start()
        .await;
    let later = starting_in("bound-in-an-hour", Duration::hours(1));
    let id = upload(&gw, &later, "default").await;
    let mut s = session("tok", None);
    s["mtls_static_certificate_bindings"] = json!([id]);
    let (st, v) = create_key_raw(&gw, &s).await;
    assert_eq!(st, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    let auth = [("authorization", key.as_str())];
    let r = get_with(
        gw.addr,
        Some("localhost"),
        "localhost",
        "/tok/",
        &auth,
        cfg(Some(&later)),
    )
    .await;
    assert_proxy_error(&r, 403, NOT_YET_VALID, "bound certificate in an hour");
    gw.stop().await;
}

/// The Gateway API's mutual TLS (verified in the handshake) honours the same allowance.
#[tokio::test]
async fn gateway_api_mtls_refuses_a_certificate_not_valid_yet() {
    let later = starting_in("control-in-an-hour", Duration::hours(1));
    let soon = starting_in("control-in-30s", Duration::seconds(30));
    let gw = gateway()
        .set("control_api_port", json!(free_port()))
        .set("security.control_api_use_mutual_tls", json!(true))
        .set(
            "security.certificates.control_api",
            json!([later.sha256_hex(), soon.sha256_hex()]),
        )
        .start()
        .await;
    for c in [&later, &soon] {
        gw.gateway()
            .certs
            .add(c.cert_pem.as_bytes(), "")
            .await
            .unwrap();
    }
    gw.gateway().reload().await;
    let admin = [("x-tyk-authorization", SECRET)];
    let ctl_addr = gw.running.as_ref().unwrap().control_addr.unwrap();
    let list = |c: &Issued| {
        get_with(
            ctl_addr,
            Some("localhost"),
            "localhost",
            "/tyk/certs",
            &admin,
            cfg(Some(c)),
        )
    };
    let r = list(&later).await;
    assert_tls_refused(&r, EXPIRED_ALERT, "control cert valid in an hour");
    let r = list(&soon).await;
    assert_status(&r, 200, "control cert valid in 30 s");
    gw.stop().await;
}

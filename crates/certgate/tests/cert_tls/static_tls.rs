//! §9.4 S45–S53: static mTLS enforced in the handshake (Env E: a separate
//! `control_api_port`, so gateway-port connections are not Gateway API connections;
//! TLS ≤ 1.2; custom domains on), each run with and without
//! `skip_client_ca_announcement` where the table distinguishes.
//! S54 (TCP proxy on an extra port) is not implemented by certgate.

use serde_json::json;

use crate::helpers::*;
use crate::support::*;

fn env_e(skip: bool) -> GwBuilder {
    gateway()
        .set("control_api_port", json!(free_port()))
        .set("enable_custom_domains", json!(true))
        .set("http_server_options.max_version", json!(771))
        .set(
            "http_server_options.skip_client_ca_announcement",
            json!(skip),
        )
}

fn subject_der(c: &certgate::pki::Issued) -> Vec<u8> {
    let (_, x) = x509_parser::parse_x509_certificate(&c.der).unwrap();
    x.subject().as_raw().to_vec()
}

/// (SNI, Host) for a request "with domain D" (D empty: dial the IP, no SNI).
fn target(gw: &Gw, d: &str) -> (Option<String>, String) {
    if d.is_empty() {
        (None, ip_host(gw.addr))
    } else {
        (Some(d.to_owned()), d.to_owned())
    }
}

#[tokio::test]
async fn s45_acceptable_ca_list_names_only_the_sni_domain_allow_list() {
    let (c1, c2) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip).start().await;
        let base = ctl(&gw);
        let id1 = upload_at(&gw, &base, &c1.cert_pem, "default").await;
        let id2 = upload_at(&gw, &base, &c2.cert_pem, "default").await;
        set_apis(
            &gw,
            &[
                static_api("a", "/a/", &up.url(), "localhost", &[id1]),
                static_api("b", "/b/", &up.url(), "", &[id2]),
            ],
        )
        .await;
        let (cfg, rec) = recording_config(Some(c1));
        let r = get(gw.addr, Some("localhost"), "localhost", "/a/", cfg).await;
        assert_status(&r, 200, &format!("skip={skip}: c1 to API A"));
        let hints = rec.hints.lock().unwrap().clone();
        let hints = hints.expect("a client certificate must be requested");
        if skip {
            assert!(hints.is_empty(), "skip-announce: {} CA names", hints.len());
        } else {
            assert_eq!(hints.len(), 1, "exactly API A's allow list is announced");
            assert_eq!(hints[0], subject_der(c1));
        }
        gw.stop().await;
    }
}

/// With `skip_client_ca_announcement` every handshake asks for a certificate (with an
/// empty CA list), also on a domain without any mTLS API (§1.3 step 8).
#[tokio::test]
async fn s46_domain_without_mtls_accepts_any_client() {
    let (c1, _) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip)
            .api(plain_api("plain", "/", &up.url(), "localhost"))
            .start()
            .await;
        let (c, rec) = recording_config(Some(c1));
        let r = get(gw.addr, Some("localhost"), "localhost", "/", c).await;
        assert_status(&r, 200, &format!("skip={skip}: c1 to a plain API"));
        let hints = rec.hints.lock().unwrap().clone();
        let want = if skip { Some(Vec::new()) } else { None };
        assert_eq!(hints, want, "skip={skip}: certificate request");
        let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
        assert_status(&r, 200, &format!("skip={skip}: no cert"));
        gw.stop().await;
    }
}

#[tokio::test]
async fn s47_empty_allow_list_fails_handshake_without_certificate() {
    let (c1, _) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip)
            .api(static_api("m", "/", &up.url(), "localhost", &[]))
            .start()
            .await;
        let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
        assert_tls_refused(&r, NO_CERT, &format!("skip={skip}: no certificate"));
        let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(Some(c1))).await;
        assert_tls_refused(&r, UNTRUSTED, &format!("skip={skip}: c1, empty list"));
        gw.stop().await;
    }
}

#[tokio::test]
async fn s48_deleted_allow_listed_cert_fails_handshake() {
    let (c1, _) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip).start().await;
        let base = ctl(&gw);
        let id1 = upload_at(&gw, &base, &c1.cert_pem, "default").await;
        set_apis(
            &gw,
            &[static_api(
                "m",
                "/",
                &up.url(),
                "localhost",
                std::slice::from_ref(&id1),
            )],
        )
        .await;
        let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(Some(c1))).await;
        assert_status(&r, 200, &format!("skip={skip}: allow-listed c1"));
        let (s, b) = admin_req(
            &gw,
            "DELETE",
            &format!("{base}/tyk/certs/{id1}?org_id=default"),
        )
        .await;
        assert_eq!(
            (s, b.as_str()),
            (200, "{\"status\":\"ok\",\"message\":\"removed\"}\n")
        );
        gw.gateway().reload().await;
        let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(Some(c1))).await;
        assert_tls_refused(&r, UNTRUSTED, &format!("skip={skip}: c1 after deletion"));
        gw.stop().await;
    }
}

/// S48 with the harness PKI: the allow-listed certificate is a leaf issued by a CA that
/// is not itself allow-listed. Go's verifier accepts a leaf that is in the root pool
/// (`x509.Verify`: `opts.Roots.contains(c)`), so Tyk lets exactly that leaf through.
#[tokio::test]
async fn s48_ca_issued_allow_listed_leaf_passes_handshake() {
    let c1 = &pki().client;
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip).start().await;
        let base = ctl(&gw);
        let id1 = upload_at(&gw, &base, &c1.cert_pem, "default").await;
        set_apis(&gw, &[static_api("m", "/", &up.url(), "localhost", &[id1])]).await;
        let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(Some(c1))).await;
        assert_status(
            &r,
            200,
            &format!("skip={skip}: allow-listed CA-issued leaf"),
        );
        let other = &pki().other_client;
        let r = get(
            gw.addr,
            Some("localhost"),
            "localhost",
            "/",
            cfg(Some(other)),
        )
        .await;
        assert_tls_refused(&r, UNTRUSTED, "a sibling leaf of the same CA");
        gw.stop().await;
    }
}

#[tokio::test]
async fn s49_certificate_not_in_allow_list_fails_handshake() {
    let (c1, c2) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip).start().await;
        let id2 = upload_at(&gw, &ctl(&gw), &c2.cert_pem, "default").await;
        set_apis(&gw, &[static_api("m", "/", &up.url(), "localhost", &[id2])]).await;
        let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(Some(c1))).await;
        assert_tls_refused(&r, UNTRUSTED, &format!("skip={skip}: c1 not listed"));
        gw.stop().await;
    }
}

/// (a)–(d) of S50: `/with_mutual/` (static, on `static_d`) and `/without_mutual/`
/// (plain, on `plain_d`) share a mode-1 domain, so the allow list is enforced per request.
async fn http_level_matrix(gw: &Gw, up: &Upstream, d: &str, static_d: &str, plain_d: &str) {
    let (c1, _) = self_signed();
    let (sni, host) = target(gw, d);
    let sni = sni.as_deref();
    let id1 = default_id(c1);
    let apis = |list: &[String]| {
        vec![
            static_api("with_mutual", "/with_mutual/", &up.url(), static_d, list),
            plain_api("without_mutual", "/without_mutual/", &up.url(), plain_d),
        ]
    };
    set_apis(gw, &apis(&[])).await;
    let r = get(gw.addr, sni, &host, "/with_mutual/", cfg(None)).await;
    let what = format!("D={d:?} (a) no cert to /with_mutual");
    assert_proxy_error(&r, 403, "Client TLS certificate is required", &what);
    let r = get(gw.addr, sni, &host, "/without_mutual/", cfg(None)).await;
    assert_status(&r, 200, &format!("D={d:?} (b) no cert to /without_mutual"));
    let r = get(gw.addr, sni, &host, "/with_mutual/", cfg(Some(c1))).await;
    let not_allowed = format!("Certificate with SHA256 {} not allowed", c1.sha256_hex());
    let what = format!("D={d:?} (c) empty list, c1");
    assert_proxy_error(&r, 403, &not_allowed, &what);
    set_apis(gw, &apis(&[id1])).await;
    let r = get(gw.addr, sni, &host, "/with_mutual/", cfg(Some(c1))).await;
    assert_status(&r, 200, &format!("D={d:?} (d) c1 allow-listed"));
}

#[tokio::test]
async fn s50_static_and_plain_api_on_one_domain_enforce_at_http_level() {
    let (c1, _) = self_signed();
    let up = upstream().await;
    let gw = env_e(false).start().await;
    upload_at(&gw, &ctl(&gw), &c1.cert_pem, "default").await;
    for d in ["", "localhost"] {
        http_level_matrix(&gw, &up, d, d, d).await;
    }
    // The exact bytes of Tyk's error template, once.
    set_apis(
        &gw,
        &[
            static_api("with_mutual", "/with_mutual/", &up.url(), "", &[]),
            plain_api("without_mutual", "/without_mutual/", &up.url(), ""),
        ],
    )
    .await;
    let r = admin(&gw)
        .get(gw.url("/with_mutual/"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(r.headers()["x-generator"].to_str().unwrap(), "tyk.io");
    let body = r.bytes().await.unwrap();
    assert_eq!(
        &body[..],
        b"{\n    \"error\": \"Client TLS certificate is required\"\n}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn s51_two_static_apis_on_one_domain_require_in_handshake() {
    let (c1, c2) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip).start().await;
        let base = ctl(&gw);
        let id1 = upload_at(&gw, &base, &c1.cert_pem, "default").await;
        let id2 = upload_at(&gw, &base, &c2.cert_pem, "default").await;
        for d in ["", "localhost"] {
            let (sni, host) = target(&gw, d);
            let sni = sni.as_deref();
            let tag = format!("skip={skip} D={d:?}");
            let apis = |l1: &[String], l2: &[String]| {
                vec![
                    static_api("with_mutual", "/with_mutual/", &up.url(), d, l1),
                    static_api("with_mutual_2", "/with_mutual_2/", &up.url(), d, l2),
                ]
            };
            set_apis(&gw, &apis(&[], &[])).await;
            for p in ["/with_mutual/", "/with_mutual_2/"] {
                let r = get(gw.addr, sni, &host, p, cfg(None)).await;
                assert_tls_refused(&r, NO_CERT, &format!("{tag}: no cert, empty lists, {p}"));
            }
            let r = get(gw.addr, sni, &host, "/with_mutual/", cfg(Some(c1))).await;
            assert_tls_refused(&r, UNTRUSTED, &format!("{tag}: c1, empty lists"));

            set_apis(
                &gw,
                &apis(std::slice::from_ref(&id1), std::slice::from_ref(&id2)),
            )
            .await;
            for p in ["/with_mutual/", "/with_mutual_2/"] {
                let r = get(gw.addr, sni, &host, p, cfg(None)).await;
                assert_tls_refused(&r, NO_CERT, &format!("{tag}: no cert, {p}"));
            }
            let na = |c: &certgate::pki::Issued| {
                format!("Certificate with SHA256 {} not allowed", c.sha256_hex())
            };
            let r = get(gw.addr, sni, &host, "/with_mutual/", cfg(Some(c1))).await;
            assert_status(&r, 200, &format!("{tag}: c1 -> 1"));
            let r = get(gw.addr, sni, &host, "/with_mutual_2/", cfg(Some(c1))).await;
            assert_proxy_error(&r, 403, &na(c1), &format!("{tag}: c1 -> 2"));
            let r = get(gw.addr, sni, &host, "/with_mutual_2/", cfg(Some(c2))).await;
            assert_status(&r, 200, &format!("{tag}: c2 -> 2"));
            let r = get(gw.addr, sni, &host, "/with_mutual/", cfg(Some(c2))).await;
            assert_proxy_error(&r, 403, &na(c2), &format!("{tag}: c2 -> 1"));
        }
        gw.stop().await;
    }
}

#[tokio::test]
async fn s52_static_api_on_domain_plus_plain_api_without_domain() {
    let (c1, c2) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip).start().await;
        let id1 = upload_at(&gw, &ctl(&gw), &c1.cert_pem, "default").await;
        if !skip {
            // D = "": both APIs without a domain, HTTP-level 403s as in S50.
            http_level_matrix(&gw, &up, "", "", "").await;
        }
        set_apis(
            &gw,
            &[
                static_api(
                    "with_mutual",
                    "/with_mutual/",
                    &up.url(),
                    "localhost",
                    &[id1],
                ),
                plain_api("without_mutual", "/without_mutual/", &up.url(), ""),
            ],
        )
        .await;
        let tag = format!("skip={skip} D=localhost");
        let lh = Some("localhost");
        let r = get(gw.addr, lh, "localhost", "/with_mutual/", cfg(None)).await;
        assert_tls_refused(&r, NO_CERT, &format!("{tag}: no cert"));
        let r = get(gw.addr, lh, "localhost", "/with_mutual/", cfg(Some(c2))).await;
        assert_tls_refused(&r, UNTRUSTED, &format!("{tag}: wrong cert"));
        let host = ip_host(gw.addr);
        let r = get(gw.addr, None, &host, "/without_mutual/", cfg(None)).await;
        assert_status(&r, 200, &format!("{tag}: /without_mutual without SNI"));
        let r = get(gw.addr, lh, "localhost", "/with_mutual/", cfg(Some(c1))).await;
        assert_status(&r, 200, &format!("{tag}: matching cert"));
        gw.stop().await;
    }
}

#[tokio::test]
async fn s53_static_api_without_domain_plus_plain_api_on_domain() {
    let (c1, c2) = self_signed();
    let up = upstream().await;
    for skip in [false, true] {
        let gw = env_e(skip).start().await;
        let id1 = upload_at(&gw, &ctl(&gw), &c1.cert_pem, "default").await;
        if !skip {
            http_level_matrix(&gw, &up, "", "", "").await;
        }
        set_apis(
            &gw,
            &[
                static_api("with_mutual", "/with_mutual/", &up.url(), "", &[id1]),
                plain_api("without_mutual", "/without_mutual/", &up.url(), "localhost"),
            ],
        )
        .await;
        let tag = format!("skip={skip} D=localhost");
        let host = ip_host(gw.addr);
        let r = get(gw.addr, None, &host, "/with_mutual/", cfg(None)).await;
        assert_tls_refused(&r, NO_CERT, &format!("{tag}: no SNI, no cert"));
        let r = get(gw.addr, None, &host, "/with_mutual/", cfg(Some(c2))).await;
        assert_tls_refused(&r, UNTRUSTED, &format!("{tag}: no SNI, wrong cert"));
        let lh = Some("localhost");
        let r = get(gw.addr, lh, "localhost", "/without_mutual/", cfg(None)).await;
        assert_status(&r, 200, &format!("{tag}: /without_mutual, SNI localhost"));
        let r = get(gw.addr, None, &host, "/with_mutual/", cfg(Some(c1))).await;
        assert_status(&r, 200, &format!("{tag}: matching cert"));
        gw.stop().await;
    }
}

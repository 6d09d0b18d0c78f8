//! The `allow_unsafe_dynamic_mtls_token` matrix of §1.10, rows 1–16, for both flag
//! values: a certificate-auth API without static mTLS or bindings.
//!
//! C = certificate with key K_C; K_other = a valid key without certificate; U = a
//! stored certificate without session; E = an expired certificate. Extra rows (3b, 3c)
//! show whose session row 3 uses, and certgate's deliberate refusal to re-bind a
//! session bound to another certificate (docs/compatibility.md row 11).

use certgate::pki::Issued;
use serde_json::json;

use crate::common::*;
use crate::support::*;

const API: &str = "matrix";
const PATH: &str = "/m/x";

#[derive(Clone, Copy, Debug)]
enum Cert {
    None,
    C,
    U,
    E,
}

#[derive(Clone, Copy, Debug)]
enum Tok {
    None,
    KC,
    KOther,
    /// A key without certificate whose `expires` is in the past.
    KExpired,
    /// A key bound to another stored certificate V.
    KV,
    /// C's certificate ID (`default<sha256>`).
    CertId,
    Invalid,
}

#[derive(Clone, Copy, Debug)]
enum Exp {
    Ok,
    No(u16, &'static str),
}

/// (row, certificate, token, allow_unsafe = false, allow_unsafe = true)
type Row = (&'static str, Cert, Tok, Exp, Exp);

#[rustfmt::skip]
const TLS_ROWS: &[Row] = &[
    ("1", Cert::C, Tok::None, Exp::Ok, Exp::Ok),
    ("2", Cert::C, Tok::KC, Exp::Ok, Exp::Ok),
    ("3", Cert::C, Tok::KOther, Exp::Ok, Exp::Ok),
    // 3b: flag on, the token's session is used (its expiry applies).
    ("3b", Cert::C, Tok::KExpired, Exp::Ok, Exp::No(401, KEY_EXPIRED)),
    // 3c: flag on, Tyk re-binds K_V's session to C (200); certgate refuses a token
    // bound to another certificate (docs/compatibility.md row 11).
    ("3c", Cert::C, Tok::KV, Exp::Ok, Exp::No(401, DISALLOWED)),
    ("4", Cert::C, Tok::Invalid, Exp::Ok, Exp::No(403, DISALLOWED)),
    ("5", Cert::None, Tok::None, Exp::No(401, CERT_REQUIRED), Exp::No(403, KEY_INACTIVE)),
    ("6", Cert::None, Tok::KC, Exp::No(401, CERT_REQUIRED), Exp::Ok),
    ("7", Cert::None, Tok::KOther, Exp::No(401, CERT_REQUIRED), Exp::Ok),
    ("8", Cert::None, Tok::CertId, Exp::No(401, CERT_REQUIRED), Exp::Ok),
    ("9", Cert::None, Tok::Invalid, Exp::No(401, CERT_REQUIRED), Exp::No(403, DISALLOWED)),
    ("10", Cert::U, Tok::None, Exp::No(401, DISALLOWED), Exp::No(401, DISALLOWED)),
    ("10", Cert::U, Tok::KC, Exp::No(401, DISALLOWED), Exp::No(401, DISALLOWED)),
    ("10", Cert::U, Tok::KOther, Exp::No(401, DISALLOWED), Exp::No(401, DISALLOWED)),
    ("10", Cert::U, Tok::Invalid, Exp::No(401, DISALLOWED), Exp::No(401, DISALLOWED)),
    ("11", Cert::E, Tok::None, Exp::No(403, CERT_EXPIRED), Exp::No(403, CERT_EXPIRED)),
    ("11", Cert::E, Tok::KC, Exp::No(403, CERT_EXPIRED), Exp::No(403, CERT_EXPIRED)),
    ("11", Cert::E, Tok::Invalid, Exp::No(403, CERT_EXPIRED), Exp::No(403, CERT_EXPIRED)),
];

/// Row 12: C deleted from the store.
#[rustfmt::skip]
const CERT_DELETED_ROWS: &[Row] = &[
    ("12", Cert::C, Tok::None, Exp::No(403, DISALLOWED), Exp::No(403, DISALLOWED)),
    ("12", Cert::C, Tok::KC, Exp::No(403, DISALLOWED), Exp::No(403, DISALLOWED)),
    ("12", Cert::C, Tok::KOther, Exp::No(403, DISALLOWED), Exp::No(403, DISALLOWED)),
    ("12", Cert::C, Tok::Invalid, Exp::No(403, DISALLOWED), Exp::No(403, DISALLOWED)),
    // "also token K_C without certificate ⇒ 403" (flag on).
    ("12", Cert::None, Tok::KC, Exp::No(401, CERT_REQUIRED), Exp::No(403, DISALLOWED)),
];

/// Row 13: C back in the store, key K_C deleted.
#[rustfmt::skip]
const KEY_DELETED_ROWS: &[Row] = &[
    ("13", Cert::C, Tok::None, Exp::No(401, DISALLOWED), Exp::No(401, DISALLOWED)),
];

/// Rows 14–16 on a plain-HTTP listener. With the flag off, Tyk accepts a valid token
/// alone there and answers 403 otherwise; certgate refuses every request with 401
/// `Client certificate required` (docs/compatibility.md row 9). With the flag on both
/// follow Tyk's step D: a valid token works, anything else is 403 disallowed.
#[rustfmt::skip]
const PLAIN_ROWS: &[Row] = &[
    ("14", Cert::None, Tok::None, Exp::No(401, CERT_REQUIRED), Exp::No(403, DISALLOWED)),
    ("15", Cert::None, Tok::KC, Exp::No(401, CERT_REQUIRED), Exp::Ok),
    ("15", Cert::None, Tok::KOther, Exp::No(401, CERT_REQUIRED), Exp::Ok),
    ("16", Cert::None, Tok::Invalid, Exp::No(401, CERT_REQUIRED), Exp::No(403, DISALLOWED)),
];

struct Ctx {
    _up: Upstream,
    gw: Gw,
    c_id: String,
    k_c: String,
    k_other: String,
    k_expired: String,
    k_v: String,
    v_id: String,
    u: Issued,
    e: Issued,
}

async fn setup(allow_unsafe: bool, plain: bool) -> Ctx {
    let up = upstream().await;
    let mut b = gateway()
        .set(
            "security.allow_unsafe_dynamic_mtls_token",
            json!(allow_unsafe),
        )
        .api(cert_api(API, "/m/", &up.url()));
    if plain {
        b = b.plain_http();
    }
    let gw = b.start().await;
    let c_id = upload(&gw, &pki().client, "default").await;
    let k_c = create_key(&gw, &session(API, Some(&c_id))).await;
    let k_other = create_key(&gw, &session(API, None)).await;
    let mut s = session(API, None);
    s["expires"] = json!(certgate::pipeline::now_unix() - 3600);
    let k_expired = create_key(&gw, &s).await;
    let v = pki().ca.client("matrix-v").unwrap();
    let v_id = upload(&gw, &v, "default").await;
    let k_v = create_key(&gw, &session(API, Some(&v_id))).await;
    let u = pki().other_client.clone();
    upload(&gw, &u, "default").await;
    Ctx {
        _up: up,
        gw,
        c_id,
        k_c,
        k_other,
        k_expired,
        k_v,
        v_id,
        u,
        e: expired_cert(),
    }
}

impl Ctx {
    fn token(&self, t: Tok) -> Option<&str> {
        match t {
            Tok::None => None,
            Tok::KC => Some(&self.k_c),
            Tok::KOther => Some(&self.k_other),
            Tok::KExpired => Some(&self.k_expired),
            Tok::KV => Some(&self.k_v),
            Tok::CertId => Some(&self.c_id),
            Tok::Invalid => Some("invalid-token-value"),
        }
    }

    fn cert(&self, c: Cert) -> Option<&Issued> {
        match c {
            Cert::None => None,
            Cert::C => Some(&pki().client),
            Cert::U => Some(&self.u),
            Cert::E => Some(&self.e),
        }
    }

    /// Runs every row and reports all mismatches at once.
    async fn run(&self, rows: &[Row], allow_unsafe: bool) {
        let mut failures = Vec::new();
        for &(row, cert, tok, off, on) in rows {
            let exp = if allow_unsafe { on } else { off };
            let c = client(&self.gw, self.cert(cert));
            let r = get(&c, &self.gw.url(PATH), self.token(tok)).await;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            let ok = match exp {
                Exp::Ok => status == 200,
                Exp::No(s, m) => status == s && body == tyk_body(m),
            };
            if !ok {
                failures.push(format!(
                    "row {row} ({cert:?}, {tok:?}) allow_unsafe={allow_unsafe}: expected {exp:?}, got {status} {body:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

async fn matrix(allow_unsafe: bool) {
    // TLS rows 1–13.
    let ctx = setup(allow_unsafe, false).await;
    ctx.run(TLS_ROWS, allow_unsafe).await;
    // Row 3 never rewrites K_other's session (certgate never re-binds another session,
    // compatibility.md row 11; Tyk would store C's ID in it with the flag on), and the
    // refused 3c left K_V bound to V.
    let s = stored_session(&ctx.gw, &ctx.k_other).await.unwrap();
    assert_eq!(s.get("certificate"), None, "{s}");
    let s = stored_session(&ctx.gw, &ctx.k_v).await.unwrap();
    assert_eq!(s["certificate"], json!(ctx.v_id));
    delete_cert(&ctx.gw, &ctx.c_id, "default").await;
    ctx.run(CERT_DELETED_ROWS, allow_unsafe).await;
    assert_eq!(upload(&ctx.gw, &pki().client, "default").await, ctx.c_id);
    ctx.run(&TLS_ROWS[..1], allow_unsafe).await;
    delete_key(&ctx.gw, &ctx.k_c).await;
    ctx.run(KEY_DELETED_ROWS, allow_unsafe).await;
    ctx.gw.stop().await;

    // Plain-HTTP rows 14–16.
    let ctx = setup(allow_unsafe, true).await;
    ctx.run(PLAIN_ROWS, allow_unsafe).await;
    ctx.gw.stop().await;
}

#[tokio::test]
async fn matrix_1_10_rows_1_to_16_allow_unsafe_false() {
    matrix(false).await;
}

#[tokio::test]
async fn matrix_1_10_rows_1_to_16_allow_unsafe_true() {
    matrix(true).await;
}

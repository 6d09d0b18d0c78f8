//! Several gateways, one store: Tyk's cluster notifications and the node-local caches
//! they keep correct.
//!
//! Every node keeps a short-lived local cache of sessions (by store key) and of
//! certificate-store answers (by certificate ID), so a known client costs no store
//! round trip. Every change a node makes evicts its own entry *before* the Gateway
//! API answers (revocation is immediate on that node) and is then published on
//! `tyk.cluster.notifications` in Tyk's format (§7.1), signed with `node_secret`;
//! every node evicts on receipt. Fills that raced with an eviction are dropped
//! ([`cache`]). A node whose subscription is interrupted drops all its caches and
//! caches nothing until it is subscribed again, because it may miss evictions. The
//! cache timeout (`local_session_cache.cached_session_timeout`, Tyk's 10 s) bounds how
//! long an entry can outlive a change nobody announced (e.g. a Tyk node deleting a
//! certificate, which Tyk does not publish) — see `docs/operations.md`.
//!
//! # Replays
//!
//! Tyk signs `command + payload + node_secret` and nothing else, so a captured message
//! stays valid forever. certgate therefore puts a *stamp* — issue time and a random
//! nonce — **inside the payload** of the messages it sends that may cause work
//! (reloads and its own certificate commands), where Tyk's signature covers it:
//! `<payload>;certgate-stamp:<unix ms>:<32 hex nonce>`. A Tyk node verifies the
//! signature as usual and ignores the payload of reload commands (it never reads it),
//! so it still accepts them; it ignores certgate's certificate commands altogether.
//! Stripping the stamp breaks the signature. A certgate node refuses a stamped message
//! issued more than [`REPLAY_WINDOW`] away from its clock or whose nonce it has seen.
//! `KeySpaceUpdateNotification` stays exactly Tyk's (Tyk parses its payload as key
//! names; an eviction replayed evicts again, which costs a store read and nothing
//! else). Unstamped reload commands (Tyk nodes and dashboards send them) are accepted;
//! every notification-driven reload goes through [`reload::Coalescer`], so a flood of
//! them costs at most one reload per second, as on a Tyk node.

pub mod cache;
pub mod reload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Config;

pub use cache::{Caches, Ticket, TtlCache};
pub use reload::Coalescer;

/// Tyk's cluster channel.
pub const CHANNEL: &str = "tyk.cluster.notifications";

/// A session changed or was removed; payload: comma-separated store-key suffixes
/// (`HashKey(token)`).
pub const KEY_SPACE_UPDATE: &str = "KeySpaceUpdateNotification";
/// Reload APIs and policies on every node.
pub const GROUP_RELOAD: &str = "GroupReload";
/// **certgate**: a certificate was removed from the store; payload: its ID. Tyk nodes
/// ignore commands they do not know.
pub const CERTIFICATE_REMOVED: &str = "CertificateRemoved";
/// **certgate**: a certificate was added; payload: its ID.
pub const CERTIFICATE_ADDED: &str = "CertificateAdded";

/// The store's own notice that its subscription came back after an interruption.
pub const STORE_RECONNECTED: &str = crate::store::RECONNECTED_CHANNEL;
/// The store's own notice that its subscription was lost (notifications may be missed
/// until [`STORE_RECONNECTED`]).
pub const STORE_SUBSCRIPTION_LOST: &str = crate::store::SUBSCRIPTION_LOST_CHANNEL;

/// How far a stamped message's issue time may be from this node's clock.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// Go's `crypto.SHA256` enum value, Tyk's signature algorithm marker.
const ALGORITHM_SHA256: i64 = 5;
/// Separates the payload from certgate's stamp.
const STAMP_MARK: &str = ";certgate-stamp:";
/// Nonces remembered at most (beyond this, stamped messages are refused until old
/// ones expire: only holders of `node_secret` can mint them).
const MAX_NONCES: usize = 65_536;
/// One warning per this period for refused messages; the rest are counted.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The wire message (`{"command","payload","signature","algorithm"}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    /// What happened.
    pub command: String,
    /// Its argument.
    #[serde(default)]
    pub payload: String,
    /// hex(SHA-256(command + payload + node_secret)).
    #[serde(default)]
    pub signature: String,
    /// 5 = SHA-256.
    #[serde(default)]
    pub algorithm: i64,
}

fn signature(command: &str, payload: &str, secret: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(command.as_bytes());
    ctx.update(payload.as_bytes());
    ctx.update(secret.as_bytes());
    hex::encode(ctx.finish())
}

/// Encodes a signed message exactly as Tyk does (no stamp).
pub fn encode(cfg: &Config, command: &str, payload: &str) -> String {
    let m = Message {
        command: command.to_owned(),
        payload: payload.to_owned(),
        signature: signature(command, payload, &cfg.node_secret),
        algorithm: ALGORITHM_SHA256,
    };
    serde_json::to_string(&m).unwrap_or_default()
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a JSON notification.
    #[error("malformed")]
    Malformed,
    /// The signature does not match `node_secret`.
    #[error("bad signature")]
    BadSignature,
    /// A stamp that does not parse.
    #[error("malformed stamp")]
    BadStamp,
    /// Issued outside the replay window (a replay, or clocks too far apart).
    #[error(
        "issued outside the replay window (replayed, or node clocks differ by more than 30 s)"
    )]
    Stale,
    /// A nonce already seen.
    #[error("replayed")]
    Replayed,
    /// A certgate command without a stamp.
    #[error("certgate command without a stamp")]
    Unstamped,
    /// Too many nonces in the window.
    #[error("too many notifications in the replay window")]
    Full,
    /// This node's own message coming back (already applied when sent).
    #[error("own message")]
    OwnEcho,
}

/// Verifies Tyk's signature (unless `allow_insecure_configs`, as Tyk).
pub fn verify(cfg: &Config, raw: &str) -> Result<Message, Rejection> {
    let m: Message = serde_json::from_str(raw).map_err(|_| Rejection::Malformed)?;
    if cfg.allow_insecure_configs {
        return Ok(m);
    }
    let want = signature(&m.command, &m.payload, &cfg.node_secret);
    let ok = m.algorithm == ALGORITHM_SHA256
        && subtle::ConstantTimeEq::ct_eq(want.as_bytes(), m.signature.as_bytes()).into();
    if ok {
        Ok(m)
    } else {
        Err(Rejection::BadSignature)
    }
}

/// Whether certgate stamps `command` when it sends it: everything that causes work
/// except Tyk's key evictions, whose payload Tyk parses.
fn stamped_when_sent(command: &str) -> bool {
    command != KEY_SPACE_UPDATE
}

/// Whether a received `command` must carry a stamp (certgate's own commands: no Tyk
/// node sends them).
fn stamp_required(command: &str) -> bool {
    matches!(command, CERTIFICATE_ADDED | CERTIFICATE_REMOVED)
}

fn parse_stamp(stamp: &str) -> Option<(i64, [u8; 16])> {
    let (ms, nonce) = stamp.split_once(':')?;
    if ms.is_empty() || ms.len() > 16 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms = ms.parse().ok()?;
    let mut out = [0u8; 16];
    if nonce.len() != 32 {
        return None;
    }
    hex::decode_to_slice(nonce, &mut out).ok()?;
    Some((ms, out))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message, its payload without the stamp.
    pub message: Message,
    /// Whether it carried a fresh stamp (certgate) or none (Tyk's format).
    pub stamped: bool,
}

#[derive(Debug)]
struct Seen {
    /// Forgotten after this (unix ms): the stamp is out of the window by then.
    until_ms: i64,
    /// Minted here; `echoed` once it came back.
    own: bool,
    echoed: bool,
}

/// Logs at most one warning per [`WARN_EVERY`], with the number suppressed since.
#[derive(Debug, Default)]
pub struct WarnLimiter(Mutex<(Option<Instant>, u64)>);

impl WarnLimiter {
    /// `Some(suppressed since the last one)` if a warning may be logged now.
    pub fn check(&self) -> Option<u64> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match g.0 {
            Some(at) if at.elapsed() < WARN_EVERY => {
                g.1 += 1;
                None
            }
            _ => {
                g.0 = Some(Instant::now());
                Some(std::mem::take(&mut g.1))
            }
        }
    }
}

/// The receiving (and stamping) side of the cluster channel: signatures, stamps, seen
/// nonces, and rate-limited warnings.
#[derive(Debug, Default)]
pub struct Inbox {
    seen: Mutex<HashMap<[u8; 16], Seen>>,
    warn: WarnLimiter,
    rejected: AtomicU64,
}

impl Inbox {
    /// Encodes an outgoing message, stamped if it causes work on other nodes; the nonce
    /// is remembered so that the message coming back is not applied twice.
    pub fn outgoing(&self, cfg: &Config, command: &str, payload: &str) -> String {
        if !stamped_when_sent(command) {
            return encode(cfg, command, payload);
        }
        let mut nonce = [0u8; 16];
        if aws_lc_rs::rand::fill(&mut nonce).is_err() {
            // No randomness: an unstamped message is still accepted by Tyk nodes (and
            // refused by certgate nodes for certificate commands: their caches expire).
            tracing::error!("no randomness for a notification nonce; sent unstamped");
            return encode(cfg, command, payload);
        }
        let at = now_ms();
        // Own nonces are always remembered (never refused).
        let _ = self.remember(nonce, at, true);
        let stamped = format!("{payload}{STAMP_MARK}{at}:{}", hex::encode(nonce));
        encode(cfg, command, &stamped)
    }

    fn remember(&self, nonce: [u8; 16], at_ms: i64, own: bool) -> Result<(), Rejection> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        Self::remember_in(&mut seen, nonce, at_ms, own)
    }

    fn remember_in(
        seen: &mut HashMap<[u8; 16], Seen>,
        nonce: [u8; 16],
        at_ms: i64,
        own: bool,
    ) -> Result<(), Rejection> {
        let window = REPLAY_WINDOW.as_millis() as i64;
        if seen.len() >= MAX_NONCES / 2 {
            let now = now_ms();
            seen.retain(|_, s| s.until_ms > now);
        }
        if seen.len() >= MAX_NONCES && !own {
            return Err(Rejection::Full);
        }
        seen.insert(
            nonce,
            Seen {
                until_ms: at_ms.saturating_add(window + 1000),
                own,
                echoed: false,
            },
        );
        Ok(())
    }

    /// Verifies a received message at `now` (unix ms).
    pub fn check_at(&self, cfg: &Config, raw: &str, now: i64) -> Result<Received, Rejection> {
        let mut m = verify(cfg, raw)?;
        let Some((body, stamp)) = m.payload.rsplit_once(STAMP_MARK) else {
            if stamp_required(&m.command) {
                return Err(Rejection::Unstamped);
            }
            return Ok(Received {
                message: m,
                stamped: false,
            });
        };
        let (at, nonce) = parse_stamp(stamp).ok_or(Rejection::BadStamp)?;
        if now.abs_diff(at) > REPLAY_WINDOW.as_millis() as u64 {
            return Err(Rejection::Stale);
        }
        {
            // Checked and recorded under one lock: two copies cannot both pass.
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = seen.get_mut(&nonce) {
                if s.own && !s.echoed {
                    s.echoed = true;
                    return Err(Rejection::OwnEcho);
                }
                return Err(Rejection::Replayed);
            }
            Self::remember_in(&mut seen, nonce, at, false)?;
        }
        m.payload = body.to_owned();
        Ok(Received {
            message: m,
            stamped: true,
        })
    }

    /// [`Self::check_at`] now; refusals are counted and logged (rate-limited).
    pub fn accept(&self, cfg: &Config, raw: &str) -> Option<Received> {
        match self.check_at(cfg, raw, now_ms()) {
            Ok(r) => Some(r),
            Err(Rejection::OwnEcho) => None,
            Err(why) => {
                let total = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(suppressed) = self.warn.check() {
                    tracing::warn!(
                        reason = %why,
                        suppressed,
                        total,
                        "cluster notification dropped"
                    );
                }
                None
            }
        }
    }

    /// Messages refused so far (own echoes excluded).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(secret: &str, insecure: bool) -> Config {
        let mut v = json!({"node_secret": secret});
        if insecure {
            v["allow_insecure_configs"] = json!(true);
        }
        Config::from_json(&v, std::path::Path::new("/")).unwrap()
    }

    #[test]
    fn messages_are_signed_as_tyk_signs_them() {
        let c = cfg("s3cret", false);
        let raw = encode(&c, KEY_SPACE_UPDATE, "abc");
        let m: Message = serde_json::from_str(&raw).unwrap();
        assert_eq!(m.algorithm, 5);
        // hex(SHA-256("KeySpaceUpdateNotification" + "abc" + "s3cret"))
        let want = crate::tokens::sha256_hex(b"KeySpaceUpdateNotificationabcs3cret");
        assert_eq!(m.signature, want);
        assert_eq!(verify(&c, &raw).unwrap(), m);
        assert_eq!(
            verify(&cfg("other", false), &raw),
            Err(Rejection::BadSignature)
        );
        assert!(verify(&cfg("other", true), &raw).is_ok());
        assert_eq!(verify(&c, "not json"), Err(Rejection::Malformed));
        let unsigned = json!({"command": GROUP_RELOAD, "payload": ""}).to_string();
        assert_eq!(verify(&c, &unsigned), Err(Rejection::BadSignature));
    }

    /// What a Tyk node does with our messages (`isPayloadSignatureValid` then the
    /// command switch): the signature over command + payload still verifies with the
    /// stamp inside the payload, and key evictions are not stamped at all.
    #[test]
    fn tyk_nodes_accept_stamped_messages() {
        let c = cfg("s3cret", false);
        let sender = Inbox::default();
        let raw = sender.outgoing(&c, GROUP_RELOAD, "");
        let m: Message = serde_json::from_str(&raw).unwrap();
        assert!(m.payload.starts_with(";certgate-stamp:"), "{}", m.payload);
        let tyk = crate::tokens::sha256_hex(format!("{}{}s3cret", m.command, m.payload).as_bytes());
        assert_eq!(m.signature, tyk);
        assert_eq!(m.algorithm, 5);
        // Only Tyk's four fields.
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 4);
        let evict = sender.outgoing(&c, KEY_SPACE_UPDATE, "abc");
        assert_eq!(evict, encode(&c, KEY_SPACE_UPDATE, "abc"));
    }

    #[test]
    fn stamped_messages_are_accepted_once_and_only_within_the_window() {
        let c = cfg("s3cret", false);
        let a = Inbox::default();
        let b = Inbox::default();
        let raw = a.outgoing(&c, CERTIFICATE_REMOVED, "default1234");
        // The sender ignores its own echo (applied when sent), silently.
        assert_eq!(a.check_at(&c, &raw, now_ms()), Err(Rejection::OwnEcho));
        // Another node accepts it once, without the stamp in the payload.
        let got = b.check_at(&c, &raw, now_ms()).unwrap();
        assert!(got.stamped);
        assert_eq!(got.message.payload, "default1234");
        assert_eq!(got.message.command, CERTIFICATE_REMOVED);
        // Every replay is refused, on both nodes.
        for _ in 0..100 {
            assert_eq!(b.check_at(&c, &raw, now_ms()), Err(Rejection::Replayed));
            assert_eq!(a.check_at(&c, &raw, now_ms()), Err(Rejection::Replayed));
        }
        // A fresh inbox (a node started later) refuses it once it is out of the window.
        let late = Inbox::default();
        let later = now_ms() + REPLAY_WINDOW.as_millis() as i64 + 1;
        assert_eq!(late.check_at(&c, &raw, later), Err(Rejection::Stale));
        let earlier = now_ms() - REPLAY_WINDOW.as_millis() as i64 - 1000;
        assert_eq!(late.check_at(&c, &raw, earlier), Err(Rejection::Stale));
    }

    #[test]
    fn stamps_cannot_be_removed_or_forged() {
        let c = cfg("s3cret", false);
        let a = Inbox::default();
        let b = Inbox::default();
        let raw = a.outgoing(&c, CERTIFICATE_ADDED, "id");
        let mut m: Message = serde_json::from_str(&raw).unwrap();
        // Stripping the stamp breaks Tyk's signature.
        m.payload = "id".into();
        let stripped = serde_json::to_string(&m).unwrap();
        assert_eq!(
            b.check_at(&c, &stripped, now_ms()),
            Err(Rejection::BadSignature)
        );
        // A certificate command signed without a stamp is refused.
        let unstamped = encode(&c, CERTIFICATE_REMOVED, "id");
        assert_eq!(
            b.check_at(&c, &unstamped, now_ms()),
            Err(Rejection::Unstamped)
        );
        // A malformed stamp is refused.
        for bad in [
            "id;certgate-stamp:",
            "id;certgate-stamp:1:zz",
            "id;certgate-stamp:x:00",
        ] {
            let raw = encode(&c, GROUP_RELOAD, bad);
            assert_eq!(
                b.check_at(&c, &raw, now_ms()),
                Err(Rejection::BadStamp),
                "{bad}"
            );
        }
        // Tyk's own (unstamped) reload and eviction messages are accepted.
        for cmd in [GROUP_RELOAD, "ApiUpdated", KEY_SPACE_UPDATE] {
            let got = b.check_at(&c, &encode(&c, cmd, "x"), now_ms()).unwrap();
            assert!(!got.stamped);
            assert_eq!(got.message.payload, "x");
        }
    }

    #[test]
    fn warnings_are_rate_limited() {
        let w = WarnLimiter::default();
        assert_eq!(w.check(), Some(0));
        for _ in 0..1999 {
            assert_eq!(w.check(), None);
        }
        // The next allowed warning reports what was suppressed.
        w.0.lock().unwrap().0 = Instant::now().checked_sub(WARN_EVERY);
        assert_eq!(w.check(), Some(1999));
        let c = cfg("s3cret", false);
        let inbox = Inbox::default();
        for _ in 0..2000 {
            assert!(inbox.accept(&c, "{\"command\":\"GroupReload\"}").is_none());
        }
        assert_eq!(inbox.rejected(), 2000);
    }
}

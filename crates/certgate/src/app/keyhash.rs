//! The store remembers the `hash_keys` setting its keys were written with.
//!
//! With `hash_keys` on, a session is stored under the hash of its token, and the Gateway API
//! shows that hash (`key_hash` in create responses, key listings). Switched off, the gateway
//! looks tokens up verbatim, so every stored hash would work as a bearer token; switched on
//! over raw keys, every existing key would stop working. The keys and the setting must agree.
//!
//! The first start records the setting under [`KEY_HASHING_RECORD`], a name Tyk never reads
//! (Tyk nodes sharing the Redis ignore it); every later start compares and refuses on a
//! mismatch. Only `hash_keys` is recorded, not `hash_key_function`: a key's hash algorithm is
//! taken from the token itself (its `h` field, or 32-bit murmur for legacy tokens), so changing
//! the function never changes how an existing key is looked up nor turns a hash into a token;
//! Tyk's documented migration (`hash_key_function` plus `hash_key_function_fallback`) keeps
//! working.

use std::time::Duration;

use crate::store::{Store, StoreError};

/// The store key holding `{"hash_keys": <bool>}`.
pub const KEY_HASHING_RECORD: &str = "certgate-key-hashing";

/// The configuration's `hash_keys` disagrees with the one the store's keys were written with.
#[derive(Debug, thiserror::Error)]
pub struct KeyHashingMismatch {
    /// `hash_keys` in the configuration.
    pub configured: bool,
    /// `hash_keys` recorded in the store; `None` if the record is unreadable.
    pub stored: Option<bool>,
}

impl std::fmt::Display for KeyHashingMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let configured = self.configured;
        let Some(stored) = self.stored else {
            return write!(
                f,
                "the store's {KEY_HASHING_RECORD} record is not {{\"hash_keys\": true|false}}, so \
                 the hash_keys setting its keys were written with is unknown (configured: \
                 hash_keys {configured}); fix or delete the record"
            );
        };
        let risk = if stored {
            "every stored key hash (the key_hash the Gateway API returns) would be accepted as a token"
        } else {
            "every existing key would stop working"
        };
        write!(
            f,
            "hash_keys is {configured} in the configuration, but the keys in this store were \
             written with hash_keys {stored} (recorded under {KEY_HASHING_RECORD}): with \
             hash_keys {configured}, {risk}. Set hash_keys back to {stored}; to really switch, \
             delete the keys and then the {KEY_HASHING_RECORD} record"
        )
    }
}

fn record(hash_keys: bool) -> String {
    serde_json::json!({ "hash_keys": hash_keys }).to_string()
}

/// Records `hash_keys` on the store's first start, else compares it with the record.
async fn compare(
    store: &Store,
    hash_keys: bool,
) -> Result<Result<(), KeyHashingMismatch>, StoreError> {
    if store
        .set_nx(KEY_HASHING_RECORD, &record(hash_keys), None)
        .await?
    {
        tracing::info!(hash_keys, "recorded the key hashing mode in the store");
        return Ok(Ok(()));
    }
    let stored = store
        .get(KEY_HASHING_RECORD)
        .await?
        .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
        .and_then(|v| v.get("hash_keys").and_then(serde_json::Value::as_bool));
    Ok(match stored {
        Some(s) if s == hash_keys => Ok(()),
        stored => Err(KeyHashingMismatch {
            configured: hash_keys,
            stored,
        }),
    })
}

/// Refuses a `hash_keys` setting that disagrees with the store's keys.
///
/// Redis unreachable at start (the gateway starts anyway and reconnects): the comparison is
/// retried in the background, and a mismatch found then stops the process with status 2,
/// before any key could be looked up under the wrong mode for long.
pub async fn check(store: &Store, hash_keys: bool) -> Result<(), super::AppError> {
    match compare(store, hash_keys).await {
        Ok(result) => Ok(result?),
        Err(e) if matches!(store, Store::Redis(_)) => {
            tracing::warn!(
                error = %e,
                "cannot compare hash_keys with the store's {KEY_HASHING_RECORD} record yet; retrying in the background"
            );
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match compare(&store, hash_keys).await {
                        Ok(Ok(())) => return,
                        Ok(Err(mismatch)) => {
                            tracing::error!("{mismatch}");
                            eprintln!("certgate: {mismatch}");
                            std::process::exit(2);
                        }
                        Err(_) => continue,
                    }
                }
            });
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

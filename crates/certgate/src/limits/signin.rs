//! Dashboard sign-in attempts counted per client address (an IPv6 client: per /64), so
//! guessing the secret through the dashboard's sign-in is slow. Kept in the gateway's
//! state; the dashboard consults it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sign-in attempts allowed per client address (an IPv6 client: per /64) in
/// [`SIGN_IN_WINDOW`]; more are answered 429 before their body is read.
pub const SIGN_IN_ATTEMPTS: u32 = 10;
/// The window of [`SIGN_IN_ATTEMPTS`].
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past that (and after forgetting finished windows) new
/// addresses are refused until windows end (fail closed).
const SIGN_IN_TRACKED: usize = 65_536;

/// Counts dashboard sign-in attempts per client address.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl SignInLimiter {
    /// Counts an attempt from `ip`; `Err(seconds)` when it is over the limit.
    pub(crate) fn attempt(&self, ip: IpAddr) -> Result<(), u64> {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !0u128 << 64).into()),
            },
            v4 => v4,
        };
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SIGN_IN_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, (start, _)| now.duration_since(*start) < SIGN_IN_WINDOW);
            if map.len() >= SIGN_IN_TRACKED {
                return Err(SIGN_IN_WINDOW.as_secs());
            }
        }
        let (start, count) = map.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= SIGN_IN_WINDOW {
            (*start, *count) = (now, 0);
        }
        if *count >= SIGN_IN_ATTEMPTS {
            let left = SIGN_IN_WINDOW.saturating_sub(now.duration_since(*start));
            return Err(left.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }
}

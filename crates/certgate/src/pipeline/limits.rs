//! The limit phases: RateCheckMW (the API-global rate limit, before authentication) and
//! RateLimitAndQuotaCheck (the key's rate and quota, last). Both count on store counters
//! ([`crate::limits`]) and refuse with its [`Verdict`](crate::limits::Verdict).

use super::{store_failure, RequestCtx};
use crate::apidef::ApiSpec;
use crate::errors::{ProxyError, Refusal};
use crate::limits::{self, RateHeaders};
use crate::session::SessionState;
use crate::tokens;

/// RateCheckMW: the API's `global_rate_limit`, shared by every key.
pub(super) async fn global(ctx: &RequestCtx<'_>, spec: &ApiSpec) -> Result<(), ProxyError> {
    let g = &spec.global_rate_limit;
    if !g.disabled && g.rate > 0.0 && g.per > 0.0 {
        let refused = limits::check_global(
            ctx.store,
            &spec.api_id,
            g.rate,
            g.per,
            std::time::SystemTime::now(),
        )
        .await
        .map_err(store_failure)?;
        if let Some(verdict) = refused {
            return Err(Refusal::from(verdict).into());
        }
    }
    Ok(())
}

/// RateLimitAndQuotaCheck (§5.4): one store round trip for both counters.
pub(super) async fn rate_and_quota(
    ctx: &RequestCtx<'_>,
    spec: &ApiSpec,
    token: &str,
    s: &SessionState,
) -> Result<Option<RateHeaders>, ProxyError> {
    if spec.disable_rate_limit && spec.disable_quota {
        return Ok(None);
    }
    let limit = s.effective_limit(&spec.api_id);
    let limited = (limit.rate > 0.0 && limit.per > 0.0 && !spec.disable_rate_limit)
        || (limit.quota_max > 0 && !spec.disable_quota);
    if !limited {
        return Ok(None);
    }
    let scope = s
        .access_rights
        .get(&spec.api_id)
        .map_or("", |a| a.allowance_scope.as_str());
    let key = tokens::hash_key(token, ctx.cfg.hash_keys);
    let d = limits::check(
        ctx.store,
        &key,
        &spec.api_id,
        &limit,
        scope,
        spec.disable_rate_limit,
        spec.disable_quota,
        std::time::SystemTime::now(),
    )
    .await
    .map_err(store_failure)?;
    if let Some(verdict) = d.error {
        let mut e = ProxyError::from(Refusal::from(verdict));
        e.rate_headers = Some(if verdict == limits::Verdict::RateLimited {
            d.rate_headers.unwrap_or(d.headers)
        } else {
            d.headers
        });
        return Err(e);
    }
    Ok(Some(d.headers))
}

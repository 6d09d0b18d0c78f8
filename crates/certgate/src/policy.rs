//! Security policies and the *effective session*: a stored session with its policies applied.
//!
//! A session may name policies in `apply_policies` (or the legacy single `apply_policy_id`).
//! Tyk never stores the outcome as the truth: at request time, on `GET /tyk/keys/{key}` and on
//! key creation it recomputes the session with its policies applied, so a changed policy reaches
//! every key at once. [`apply`] / [`apply_for_api`] compute that effective session; the stored
//! session is never modified.
//!
//! # Rules (Tyk `internal/policy/apply.go`, as of the 5.12–5.15 line)
//!
//! Checked against `Service.Apply`, `ClearSession`, `applyPartitions`, `applyPerAPI`,
//! `ApplyRateLimits`, `applyAPILevelLimits`, `ApplyEndpointLevelLimits`,
//! `updateSessionRootVars` and the helpers in `internal/policy/util.go` (`MergeAllowedURLs`,
//! `appendIfMissing`, `greaterThanInt64`), `internal/model/policies.go` (org-scoped lookup) and
//! `user/policy.go`, `user/session.go` (`PolicyIDs`, `APILimit`, `Duration`, `IsEmpty`):
//!
//! 1. **Which policies.** `apply_policies`, else `apply_policy_id`. A list of policy objects in
//!    `meta_data.policies` (Tyk's "custom policies", set by plugins) replaces the stored ones.
//!    Stored policies are looked up by id *within an organisation*: the session's `org_id`, or
//!    the API's when the session has none — a policy of another organisation is "not found".
//!    When an API's organisation is known ([`apply_for_api`]), every applied policy must belong
//!    to it, else [`PolicyError::DifferentOrg`]. Duplicate ids are applied once.
//! 2. **Missing policies.** A single missing policy is [`PolicyError::NotFound`]; one of several
//!    missing is skipped (Tyk logs it); if nothing grants access the result is
//!    [`PolicyError::NoValidPolicies`].
//! 3. **Clearing.** Before merging, the session's own quota (`quota_max`, `quota_remaining`),
//!    rate (`rate`, `per`, `smoothing`, throttling) and complexity (`max_query_depth`) are reset
//!    for every partition a policy will set, so the policies — not stale stored values — decide.
//!    Like Tyk, clearing stops at the first policy that is not found.
//! 4. **Partitions.** A policy with any of `quota`, `rate_limit`, `acl`, `complexity` set
//!    contributes only those parts; a policy with none set contributes everything. `per_api`
//!    together with any partition is an error, and so is mixing `per_api` policies with
//!    partitioned ones.
//! 5. **ACL merge** (ACL part): union of APIs; for one API `versions` are united, `allowed_urls`
//!    merged per URL (methods united), GraphQL type/field rules united, introspection stays
//!    disabled once disabled. An API only a non-ACL part mentions is dropped again at the end.
//!    If any policy granted ACL, its result replaces the session's own `access_rights`.
//! 6. **Limits — most permissive wins** (per API and at the session root): the rate with the
//!    shorter interval between requests (`per / rate`) wins and an unset rate always loses;
//!    `quota_max` `-1` (unlimited) beats any finite quota, otherwise the larger one wins;
//!    `quota_renewal_rate`, `throttle_*` take the larger value; `max_query_depth` like quota.
//!    Per-endpoint rate limits are merged per `METHOD:path`, the faster rate winning. A policy
//!    without `access_rights` (a "master" policy) sets the session-root values directly.
//! 7. **Per-API policies** (`partitions.per_api`): each API takes the policy's access definition
//!    as is; an API without its own `limit` gets the policy's limits and
//!    `allowance_scope = <policy id>`, one with its own limit `allowance_scope = <api id>`.
//!    Several per-API policies on one API merge as in rule 6 (scope of the winning one).
//! 8. **Inheritance.** For an API whose rate/quota/complexity no policy set, the per-API limit
//!    is filled from the session root. When the ACL came from more than one policy, each API
//!    without a scope gets `allowance_scope = <id of the policy that granted it>`. When exactly
//!    one API received rate, quota and complexity, the session root copies that API's limit.
//! 9. **Everything else.** `is_inactive` is true iff an applied policy is inactive (with
//!    policies, the stored flag is ignored; without, it is kept); tags are united; policy
//!    `meta_data` entries are added (policy wins); `last_updated` becomes the newest;
//!    `hmac_enabled` / `enable_http_signature_validation` are switched on by any policy;
//!    `post_expiry_action` / `post_expiry_grace_period` are taken from policies that set them.
//! 10. **No policies.** The session is returned as stored, except that every API entry with its
//!     own non-empty `limit` gets `allowance_scope = <api id>` and duplicate tags are dropped.
//!
//! # Counters: what the request path must know
//!
//! Use [`SessionState::effective_limit`] on the effective session: the API's `limit` when
//! non-empty, else the root limits. Quota and rate counters are scoped by the API entry's
//! `allowance_scope`: `quota-<scope>-<key>` / `rate-limit-<scope>-<key hash>` when it is set,
//! `quota-<key>` / `rate-limit-<key hash>` when empty — so two APIs granted by different
//! policies count separately (scope = policy id), APIs with their own limits count per API
//! (scope = API id), and APIs sharing one policy share one counter.
//!
//! # Differences from Tyk
//!
//! Go iterates maps in random order; certgate is deterministic (sorted API ids, tags in
//! session-then-policy order, and for rule 8's single-API case the rate-limited API's entry).
//! A policy file with a field of the wrong JSON type is rejected with a precise message, where
//! Go would load it with that field zeroed (e.g. `"quota_max": "10"` becoming unlimited).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::gocompat::go_quote;
use crate::session::{AccessDefinition, ApiLimit, RateLimitSmoothing, SessionState};

mod apply;
#[cfg(test)]
mod apply_tests;
mod parse;
#[cfg(test)]
mod tests;

pub use apply::{apply, apply_for_api};
pub use parse::parse_policy;

/// A security policy (Tyk `user.Policy`), as written by the Dashboard or the Gateway API.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// Policy id (`id`; when empty, the hex of the legacy `_id`).
    pub id: String,
    /// Legacy MongoDB object id (`_id`), lowercase hex; may be empty.
    pub mid: String,
    /// Human-readable name.
    pub name: String,
    /// Owning organisation; the policy only applies to keys of this organisation.
    pub org_id: String,
    /// Requests allowed per `per` seconds.
    pub rate: f64,
    /// Rate-limit interval in seconds.
    pub per: f64,
    /// Requests per quota window; `-1` = unlimited.
    pub quota_max: i64,
    /// Quota window length in seconds.
    pub quota_renewal_rate: i64,
    /// Seconds between throttled retries.
    pub throttle_interval: f64,
    /// Number of throttled retries.
    pub throttle_retry_limit: i64,
    /// GraphQL query depth limit (`-1` = unlimited).
    pub max_query_depth: i64,
    /// APIs granted, keyed by API id.
    pub access_rights: BTreeMap<String, AccessDefinition>,
    /// Keys under this policy must sign requests with HMAC.
    pub hmac_enabled: bool,
    /// Keys under this policy must carry HTTP signatures.
    pub enable_http_signature_validation: bool,
    /// Dashboard flag; not used when applying.
    pub active: bool,
    /// Keys under this policy are denied (`Key is inactive, please renew`).
    pub is_inactive: bool,
    /// Tags added to the keys.
    pub tags: Vec<String>,
    /// Seconds until a *new* key under this policy expires (`0` = never); see [`key_expires_in`].
    pub key_expires_in: i64,
    /// What happens to an expired key (`retain` / `delete`); empty = keep the key's own.
    pub post_expiry_action: String,
    /// Grace period for `retain`; `0` = keep the key's own.
    pub post_expiry_grace_period: i64,
    /// Which parts of the policy apply.
    pub partitions: Partitions,
    /// Unix seconds of the last change, as a string.
    pub last_updated: String,
    /// Metadata added to the keys.
    pub meta_data: Map<String, Value>,
    /// Rate-limit smoothing, taken together with `rate`/`per`.
    pub smoothing: Option<RateLimitSmoothing>,
    /// Fields certgate does not use (e.g. the Dashboard's `state`), kept as read.
    pub extra: Map<String, Value>,
}

/// Which parts of a policy apply (Tyk `user.PolicyPartitions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Partitions {
    /// Only the quota.
    pub quota: bool,
    /// Only the rate limit (and throttling, endpoint limits).
    pub rate_limit: bool,
    /// Only the GraphQL complexity (`max_query_depth`).
    pub complexity: bool,
    /// Only the access rights.
    pub acl: bool,
    /// Per-API limits: each API keeps its own limit and counter scope.
    pub per_api: bool,
}

impl Partitions {
    /// Tyk's `Enabled`: the policy is partitioned (any of quota/rate/acl/complexity set).
    pub fn enabled(&self) -> bool {
        self.quota || self.rate_limit || self.acl || self.complexity
    }
}

impl Policy {
    /// The policy's limits as a per-API limit (Tyk `Policy.APILimit`).
    pub fn api_limit(&self) -> ApiLimit {
        ApiLimit {
            rate: self.rate,
            per: self.per,
            smoothing: self.smoothing.clone(),
            throttle_interval: self.throttle_interval,
            throttle_retry_limit: self.throttle_retry_limit,
            max_query_depth: self.max_query_depth,
            quota_max: self.quota_max,
            quota_renewal_rate: self.quota_renewal_rate,
            ..ApiLimit::default()
        }
    }
}

/// Why policies could not be applied, or a policy could not be read.
///
/// The messages of the apply errors are Tyk's, as they appear in
/// `Failed to create key - <error>`; the caller treats any of them as "key not found" at
/// request time.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The only policy named by the key does not exist (in the key's organisation).
    #[error("policy not found: {}", go_quote(.0))]
    NotFound(String),
    /// A policy belongs to another organisation than the API.
    #[error("attempting to apply policy from different organisation to key, skipping")]
    DifferentOrg {
        /// The policy.
        policy_id: String,
        /// Its organisation.
        policy_org: String,
        /// The API's organisation.
        api_org: String,
    },
    /// A policy sets `per_api` together with another partition.
    #[error("cannot apply policy {0} which has per_api and any of partitions set")]
    PerApiWithPartitions(String),
    /// Per-API and partitioned policies on one key.
    #[error("cannot apply multiple policies when some have per_api set and some are partitioned")]
    MixedPerApiAndPartitions,
    /// The key's policies grant access to no API.
    #[error("key has no valid policies to be applied")]
    NoValidPolicies,
    /// A policy document is malformed.
    #[error("invalid policy {}: {reason}", go_quote(id))]
    Invalid {
        /// The policy id, if it could be read.
        id: String,
        /// What is wrong, naming the field.
        reason: String,
    },
}

/// The loaded policies of one configuration snapshot, looked up by organisation and id.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    /// The last policy loaded with each id, whatever its organisation.
    by_id: HashMap<String, Arc<Policy>>,
    /// Every policy by `(org_id, id)`.
    by_org_id: HashMap<(String, String), Arc<Policy>>,
}

impl PolicySet {
    /// Builds the set from policy documents, each labelled by its source (e.g. the file path)
    /// for the messages. Invalid documents are left out and reported; a later policy with the
    /// same organisation and id replaces an earlier one (reported too).
    pub fn new(values: impl IntoIterator<Item = (String, Value)>) -> (Self, Vec<String>) {
        let mut errors = Vec::new();
        let parsed = values
            .into_iter()
            .filter_map(|(source, value)| match parse_policy(&value) {
                Ok(policy) => Some((source, policy)),
                Err(err) => {
                    errors.push(format!("{source}: {err}"));
                    None
                }
            })
            .collect::<Vec<_>>();
        let mut set = Self::default();
        for (source, policy) in parsed {
            if let Some(message) = set.insert(policy) {
                errors.push(format!("{source}: {message}"));
            }
        }
        (set, errors)
    }

    /// Builds the set from Tyk's single-file form (`policies.policy_record_name`): one JSON
    /// object mapping ids to policies, where a non-empty map key overrides the policy's `id`.
    pub fn from_record_map(value: &Value) -> (Self, Vec<String>) {
        let Value::Object(map) = value else {
            return (
                Self::default(),
                vec![format!(
                    "policy record must be a JSON object of policies, found {}",
                    parse::describe(value)
                )],
            );
        };
        let values = map.iter().map(|(key, policy)| {
            let mut policy = policy.clone();
            if let (false, Value::Object(fields)) = (key.is_empty(), &mut policy) {
                fields.insert("id".to_owned(), Value::String(key.clone()));
            }
            (key.clone(), policy)
        });
        Self::new(values.collect::<Vec<_>>())
    }

    /// Adds a policy; returns a message when it replaces one with the same organisation and id.
    fn insert(&mut self, policy: Policy) -> Option<String> {
        let policy = Arc::new(policy);
        let key = (policy.org_id.clone(), policy.id.clone());
        self.by_id.insert(policy.id.clone(), Arc::clone(&policy));
        self.by_org_id.insert(key, Arc::clone(&policy)).map(|_| {
            format!(
                "policy {} of organisation {} is defined more than once; the last definition is used",
                go_quote(&policy.id),
                go_quote(&policy.org_id)
            )
        })
    }

    /// The policy with this id, whatever its organisation (the last one loaded if several
    /// organisations use the id) — for the Gateway API's `GET /tyk/policies/{id}`.
    pub fn get(&self, id: &str) -> Option<&Arc<Policy>> {
        self.by_id.get(id)
    }

    /// The policy with this id in this organisation — the lookup used when applying.
    pub fn get_in_org(&self, org_id: &str, id: &str) -> Option<&Arc<Policy>> {
        self.by_org_id.get(&(org_id.to_owned(), id.to_owned()))
    }

    /// Every policy, sorted by id and organisation.
    pub fn policies(&self) -> Vec<&Arc<Policy>> {
        let mut all = self.by_org_id.values().collect::<Vec<_>>();
        all.sort_by(|a, b| (&a.id, &a.org_id).cmp(&(&b.id, &b.org_id)));
        all
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.by_org_id.len()
    }

    /// No policies loaded.
    pub fn is_empty(&self) -> bool {
        self.by_org_id.is_empty()
    }
}

/// The expiry a *new* key gets from its policies, in seconds from now (`expires = now + n`),
/// or `None` when no policy forces one (Tyk `checkAndApplyTrialPeriod`, used on key creation
/// only — existing keys keep their `expires`).
///
/// Policies are taken in the key's order and looked up as in [`apply`]; each found policy with
/// `key_expires_in > 0` overrides the previous one, so the *last* such policy wins (not the
/// largest value). Missing policies are skipped.
pub fn key_expires_in(session: &SessionState, policies: &PolicySet) -> Option<i64> {
    apply::policy_ids(session)
        .iter()
        .rev()
        .filter_map(|id| policies.get_in_org(&session.org_id, id))
        .map(|policy| policy.key_expires_in)
        .find(|seconds| *seconds > 0)
}

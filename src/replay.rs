//! Replay protection: a route with `replay:` remembers the deliveries it forwarded, and answers a
//! delivery it has seen within the window with 409 instead of forwarding it again.
//!
//! For a request that verified, [`Replay::reserve`] derives the delivery's [`Key`] and records
//! it atomically (insert if absent); a key already there is [`Refusal::Replayed`]. Then the
//! request is forwarded and the [`Reservation`] settled: a 2xx answer keeps the key; anything
//! else (an upstream error or timeout, a non-2xx answer, the sender going away) releases it,
//! because senders retry a failed delivery with the same id and that retry must get through.
//! Only verified requests are recorded, so a forgery cannot burn a legitimate id.
//!
//! An entry lives for the route's `window`, and never less than until its signed timestamp
//! falls out of the scheme's tolerance: past that, the clock check refuses a replay. The
//! store is per process (`memory`, bounded) or shared by replicas (`redis://`, `SET NX PX`);
//! when Redis fails, `on_store_error` chooses between 503 (fail closed, the default) and
//! forwarding unchecked. Stores survive config reloads ([`adopt`]).

mod key;
mod memory;
mod redis;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use serde::Deserialize;

pub use self::key::Key;
use self::memory::{Insert, Seen};
use self::redis::{RedisStore, StoreError};
use crate::config::Route;
use crate::metrics::Metrics;
use crate::verify::{Recipe, Rule, Scheme, SignedRequest, UnixTime, Verified};

/// Entries a memory store holds at most, by default (about 160 bytes each: 16 MB).
pub const DEFAULT_CAPACITY: usize = 100_000;
/// The window for schemes without a signed timestamp, whose signature never expires.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// How long one Redis operation may take, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// No entry is kept longer (a timestamp far in the future on a `past_only` scheme).
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Tells one reservation from another, so a late release cannot remove someone else's entry.
pub type Token = u128;

/// The `replay:` block of a route, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplay {
    /// `memory` (the default) or `redis://[user:password@]host[:port][/db]`; `${VAR}` allowed.
    pub store: Option<String>,
    pub window: Option<String>,
    pub capacity: Option<usize>,
    pub on_store_error: Option<OnStoreError>,
    pub timeout: Option<String>,
}

/// What a request gets when the store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Fail closed: 503 `replay_store_error`; the sender retries later.
    Reject,
    /// Fail open: forward without the replay check, and count it.
    Allow,
}

/// Where a route's keys are kept. Two configs with the same spec share a store across a reload.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Memory {
        capacity: NonZeroUsize,
    },
    /// `url` may hold a password: it is never printed.
    Redis {
        url: String,
        timeout: Duration,
    },
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Memory { capacity } => write!(f, "memory (capacity {capacity})"),
            StoreSpec::Redis { url, timeout } => write!(f, "{} (timeout {timeout:?})", redacted(url)),
        }
    }
}

/// A route's validated `replay:` block and the store it uses.
#[derive(Clone)]
pub struct Replay {
    /// How long a key is remembered (at least until its signed timestamp is stale).
    pub window: Duration,
    pub on_store_error: OnStoreError,
    pub spec: StoreSpec,
    /// The scheme's timestamp tolerance, if it has one.
    tolerance: Option<Duration>,
    store: Arc<Store>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("window", &self.window)
            .field("on_store_error", &self.on_store_error)
            .field("store", &self.spec)
            .finish()
    }
}

/// Why a verified request is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its key is in the store: 409.
    Replayed,
    /// The store did not answer and the route fails closed: 503.
    StoreUnavailable,
}

impl Refusal {
    /// The `outcome` label.
    pub fn outcome(self) -> &'static str {
        match self {
            Refusal::Replayed => "replayed",
            Refusal::StoreUnavailable => "replay_store_error",
        }
    }
}

impl Replay {
    /// Validates `raw` for route `route`; `store` is its `store` text with `${VAR}` resolved.
    /// The default window is the scheme's timestamp tolerance, or [`DEFAULT_WINDOW`]. Problems
    /// come back as (field, message). Nothing connects here.
    pub fn build(
        route: &str,
        raw: &RawReplay,
        store: &str,
        scheme: Option<&Scheme>,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let tolerance = scheme.and_then(tolerance);
        let window = match raw.window.as_deref().map(crate::config::duration) {
            None => tolerance.unwrap_or(DEFAULT_WINDOW),
            Some(Ok(window)) if window <= MAX_TTL => window,
            Some(Ok(_)) => {
                problems.push(("window", "must be at most 30 days".to_owned()));
                DEFAULT_WINDOW
            }
            Some(Err(message)) => {
                problems.push(("window", message));
                DEFAULT_WINDOW
            }
        };
        let mut redis_only = |field: &'static str, set: bool| {
            if set {
                problems.push((field, "applies only to a redis:// store".to_owned()));
            }
        };
        let built = if store == "memory" {
            redis_only("timeout", raw.timeout.is_some());
            redis_only("on_store_error", raw.on_store_error.is_some());
            match NonZeroUsize::new(raw.capacity.unwrap_or(DEFAULT_CAPACITY)) {
                Some(capacity) => Some((StoreSpec::Memory { capacity }, Backend::Memory(Seen::new(capacity)))),
                None => {
                    problems.push(("capacity", "must be at least 1".to_owned()));
                    None
                }
            }
        } else if store.starts_with("redis://") {
            if raw.capacity.is_some() {
                problems.push(("capacity", "applies only to store: memory (bound Redis with maxmemory)".to_owned()));
            }
            let timeout = match raw.timeout.as_deref().map(crate::config::duration) {
                None => Some(DEFAULT_TIMEOUT),
                Some(Ok(timeout)) => Some(timeout),
                Some(Err(message)) => {
                    problems.push(("timeout", message));
                    None
                }
            };
            // The URL may hold a password, so the message does not repeat it.
            let client = ::redis::Client::open(store)
                .map_err(|_| problems.push(("store", "is not a valid redis://host[:port][/db] URL".to_owned())))
                .ok();
            match (client, timeout) {
                (Some(client), Some(timeout)) => Some((
                    StoreSpec::Redis { url: store.to_owned(), timeout },
                    Backend::Redis(RedisStore::new(client, timeout)),
                )),
                _ => None,
            }
        } else {
            problems.push(("store", "must be memory or a redis://host[:port][/db] URL".to_owned()));
            None
        };
        match built {
            Some((spec, backend)) if problems.is_empty() => Ok(Self {
                window,
                on_store_error: raw.on_store_error.unwrap_or(OnStoreError::Reject),
                spec,
                tolerance,
                store: Arc::new(Store { route: route.to_owned(), backend, alarm: Alarm::default() }),
            }),
            _ => Err(problems),
        }
    }

    /// Records the delivery `verified` stands for, unless it was seen within the window. Store
    /// failures are counted in `metrics` and decided by `on_store_error`.
    pub async fn reserve(
        &self,
        scheme: &Scheme,
        verified: &Verified,
        request: SignedRequest<'_>,
        metrics: &Metrics,
    ) -> Result<Reservation, Refusal> {
        let store = &self.store;
        let key = key::derive(&store.route, scheme, verified, request);
        let ttl = self.ttl(verified.timestamp, UnixTime::now());
        let token = token();
        let errors = metrics.replay_store_errors(&store.route);
        match &store.backend {
            Backend::Memory(seen) => match seen.insert(key, token, ttl, Instant::now()) {
                Insert::Present => return Err(Refusal::Replayed),
                Insert::Inserted { evicted } if evicted > 0 => metrics.replay_evictions(&store.route).inc_by(evicted),
                Insert::Inserted { .. } => {}
            },
            Backend::Redis(redis) => match redis.insert(&key, token, ttl).await {
                Ok(inserted) => {
                    store.alarm.recovered(&store.route);
                    if !inserted {
                        return Err(Refusal::Replayed);
                    }
                }
                Err(error) => {
                    errors.inc();
                    store.alarm.failed(&store.route, &error);
                    if self.on_store_error == OnStoreError::Reject {
                        return Err(Refusal::StoreUnavailable);
                    }
                    // Forwarded unchecked. The SET may still have landed (a timeout), so a
                    // failed forward releases as usual.
                }
            },
        }
        Ok(Reservation { store: store.clone(), key, token, errors, settled: false })
    }

    /// How long to keep a key: the window, and at least until the signed timestamp is stale.
    fn ttl(&self, signed_at: Option<UnixTime>, now: UnixTime) -> Duration {
        let fresh_for = match (signed_at, self.tolerance) {
            (Some(at), Some(tolerance)) => {
                at.as_nanos().saturating_add(tolerance.as_nanos() as i128).saturating_sub(now.as_nanos())
            }
            _ => 0,
        };
        let fresh_for = Duration::from_nanos(u64::try_from(fresh_for.max(0)).unwrap_or(u64::MAX));
        self.window.max(fresh_for).min(MAX_TTL)
    }
}

/// A recorded delivery whose fate depends on the upstream's answer. Dropped unsettled (the
/// sender went away, the route was overloaded), it is released.
pub struct Reservation {
    store: Arc<Store>,
    key: Key,
    token: Token,
    errors: IntCounter,
    settled: bool,
}

impl Reservation {
    /// Keeps the key when the upstream took the delivery (`delivered`: it answered 2xx);
    /// otherwise removes it, so the sender's retry is forwarded.
    pub async fn settle(mut self, delivered: bool) {
        self.settled = true;
        if !delivered {
            self.store.remove(&self.key, self.token, &self.errors).await;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        match &self.store.backend {
            Backend::Memory(seen) => seen.remove(&self.key, self.token),
            Backend::Redis(_) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let (store, key, token, errors) = (self.store.clone(), self.key, self.token, self.errors.clone());
                    runtime.spawn(async move { store.remove(&key, token, &errors).await });
                }
            }
        }
    }
}

/// Gives every route of `reloaded` that keeps its name and [`StoreSpec`] the store it has in
/// `current`, so a reload forgets no key. A changed window or `on_store_error` keeps the store;
/// another kind, capacity, address or timeout starts a new one.
pub fn adopt(current: &[Route], reloaded: &mut [Route]) {
    for route in reloaded {
        let Some(replay) = &mut route.replay else { continue };
        let before = current.iter().find(|r| r.name == route.name).and_then(|r| r.replay.as_ref());
        if let Some(before) = before.filter(|before| before.spec == replay.spec) {
            replay.store = before.store.clone();
        }
    }
}

/// One route's keys and where they are kept.
struct Store {
    route: String,
    backend: Backend,
    alarm: Alarm,
}

enum Backend {
    Memory(Seen),
    Redis(RedisStore),
}

impl Store {
    async fn remove(&self, key: &Key, token: Token, errors: &IntCounter) {
        match &self.backend {
            Backend::Memory(seen) => seen.remove(key, token),
            Backend::Redis(redis) => match redis.remove(key, token).await {
                Ok(()) => self.alarm.recovered(&self.route),
                Err(error) => {
                    errors.inc();
                    self.alarm.failed(&self.route, &error);
                }
            },
        }
    }
}

/// Logs a store outage once when it starts, then at most once a minute, and once when it ends;
/// never once per request.
#[derive(Default)]
struct Alarm {
    failing: AtomicBool,
    state: Mutex<AlarmState>,
}

#[derive(Default)]
struct AlarmState {
    last_warned: Option<Instant>,
    since_warned: u64,
    total: u64,
}

const REPEAT_WARNING: Duration = Duration::from_secs(60);

impl Alarm {
    fn failed(&self, route: &str, error: &StoreError) {
        let mut state = crate::lock(&self.state);
        state.total += 1;
        let now = Instant::now();
        let started = !self.failing.swap(true, Ordering::AcqRel);
        if started || state.last_warned.is_none_or(|at| now.duration_since(at) >= REPEAT_WARNING) {
            tracing::warn!(route, %error, failures_since_last_warning = state.since_warned,
                "replay store unavailable; on_store_error decides each request until it answers again");
            state.last_warned = Some(now);
            state.since_warned = 0;
        } else {
            state.since_warned += 1;
        }
    }

    fn recovered(&self, route: &str) {
        if self.failing.load(Ordering::Acquire) && self.failing.swap(false, Ordering::AcqRel) {
            let mut state = crate::lock(&self.state);
            tracing::info!(route, failed_operations = state.total, "replay store answering again");
            *state = AlarmState::default();
        }
    }
}

/// The scheme's timestamp tolerance, if it has one.
fn tolerance(scheme: &Scheme) -> Option<Duration> {
    match &scheme.rule {
        Rule::Recipe(recipe) => recipe_tolerance(recipe),
        Rule::Mailgun(mailgun) => mailgun.tolerance,
        Rule::Twilio(_) | Rule::Credentials(_) => None,
    }
}

/// A recipe's tolerance, or its fallback's (Square's legacy header).
fn recipe_tolerance(recipe: &Recipe) -> Option<Duration> {
    let own = recipe.timestamp.as_ref().and_then(|rule| rule.tolerance);
    own.max(recipe.fallback.as_deref().and_then(recipe_tolerance))
}

/// A token no other reservation, in this process or another replica, will hold.
fn token() -> Token {
    // Each RandomState has fresh keys (seeded from the OS per thread, then stepped).
    let half = || {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_i128(UnixTime::now().as_nanos());
        hasher.finish()
    };
    (u128::from(half()) << 64) | u128::from(half())
}

/// `redis://user:password@host` as `redis://***@host`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "redis://***".into() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;

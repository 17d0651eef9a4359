//! Signature verification: a pure function from (scheme, secrets, request, now) to a typed verdict.
//!
//! Nothing here does I/O, logs, or reads the clock: the handler passes `now` in, so every verdict
//! is reproducible in a test. Every scheme is data for the one HMAC engine in [`hmac`]; the named
//! presets live in [`presets`].

pub mod form_json;
pub mod hmac;
pub mod presets;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::HeaderName;

pub use self::hmac::{Algorithm, Encoding, HmacScheme, Template, TimestampFormat, TimestampRule, Window};
use crate::config::secret::Secret;

/// A point in time as nanoseconds since the Unix epoch (signed, so skew arithmetic cannot wrap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(i128);

impl UnixTime {
    /// The current wall-clock time; only the handler and the CLI call this.
    pub fn now() -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self(since.as_nanos() as i128)
    }
    pub fn from_secs(secs: i64) -> Self {
        Self(i128::from(secs) * 1_000_000_000)
    }
    pub fn from_nanos(nanos: i128) -> Self {
        Self(nanos)
    }
    pub fn as_nanos(self) -> i128 {
        self.0
    }
    /// Whole seconds since the epoch, rounded down.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000) as i64
    }
}

/// What a route verifies with: its scheme's name (for logs and the `X-Hookgate-*` headers) and
/// the rule itself.
#[derive(Debug, Clone)]
pub struct Scheme {
    pub name: String,
    pub rule: HmacScheme,
}

/// The parts of a request that a signature can cover. `body` is the exact bytes received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index into the route's secrets of the one that matched (which key a sender still uses).
    pub secret_index: usize,
    /// The signed timestamp, for schemes that carry one.
    pub timestamp: Option<UnixTime>,
}

/// Why a request was refused. The variants are sorted by what the sender got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A required signature or timestamp header is absent or empty.
    #[error("required header {0} is missing")]
    MissingHeader(HeaderName),
    /// A required header is present but cannot be parsed (prefix, length, alphabet, number form,
    /// or sent more than once).
    #[error("header {0} is malformed")]
    MalformedHeader(HeaderName),
    /// The scheme signs parsed content and the body cannot be parsed as it requires.
    #[error("body cannot be parsed as the scheme requires: {0}")]
    MalformedBody(&'static str),
    /// The signature is well-formed but matches under none of the route's secrets.
    #[error("signature does not match")]
    SignatureMismatch,
    /// The signature matches but its timestamp lies outside the route's tolerance.
    #[error("timestamp outside tolerance")]
    TimestampOutsideTolerance,
}

impl Rejection {
    /// The one place that picks the status: the sender's material is absent or unreadable (400),
    /// or it is readable and wrong or stale (403).
    pub fn status(&self) -> http::StatusCode {
        match self {
            Rejection::MissingHeader(_) | Rejection::MalformedHeader(_) | Rejection::MalformedBody(_) => {
                http::StatusCode::BAD_REQUEST
            }
            Rejection::SignatureMismatch | Rejection::TimestampOutsideTolerance => http::StatusCode::FORBIDDEN,
        }
    }

    /// The `outcome` label and the `error` field of the response body.
    pub fn outcome(&self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_signature",
            Rejection::MalformedHeader(_) | Rejection::MalformedBody(_) => "malformed_signature",
            Rejection::SignatureMismatch => "invalid_signature",
            Rejection::TimestampOutsideTolerance => "expired",
        }
    }
}

/// Verifies `request` against `scheme` under any of `secrets` at time `now`.
///
/// Checks run in the order presence, parse, signature, freshness, so a forged request learns
/// nothing about the clock. Signatures are compared in constant time.
pub fn verify(
    scheme: &Scheme,
    secrets: &[Secret],
    request: SignedRequest<'_>,
    now: UnixTime,
) -> Result<Verified, Rejection> {
    scheme.rule.verify(secrets, request, now)
}

#[cfg(test)]
mod tests;

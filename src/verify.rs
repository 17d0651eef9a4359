//! Signature verification: a pure function from (scheme, keys, request, now) to a typed verdict.
//!
//! Nothing here does I/O, logs, or reads the clock: the handler passes `now` in, so every verdict
//! is reproducible in a test. Most schemes are a [`Recipe`] (data for one engine: where the
//! signature is, how it is written, which MAC or signature algorithm, over which message, with
//! which timestamp); the named presets live in [`presets`]. Only providers whose material does
//! not fit a recipe have code of their own: [`twilio`], [`mailgun`] and [`credentials`].

pub mod credentials;
pub mod crypto;
pub mod form_json;
pub mod layout;
pub mod mailgun;
pub mod message;
pub mod presets;
pub mod recipe;
pub mod timestamp;
pub mod twilio;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};

pub use self::recipe::Recipe;
use crate::body::Body;
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
    /// Whole seconds since the epoch, rounded down (saturating: a 20-digit timestamp a sender
    /// signed must not wrap into another time).
    pub fn as_secs(self) -> i64 {
        let secs = self.0.div_euclid(1_000_000_000);
        i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
    }
}

/// Key material a route verifies with. Shared secrets are already in the form the MAC uses
/// (a `whsec_` secret is base64-decoded at load time).
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    Shared(Secret),
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// One configured key, with the time after which it stops matching (rotation grace period).
#[derive(Debug, Clone)]
pub struct Key {
    pub material: KeyMaterial,
    pub not_after: Option<UnixTime>,
}

impl Key {
    /// A shared secret that never expires.
    pub fn shared(secret: impl Into<Vec<u8>>) -> Self {
        Self { material: KeyMaterial::Shared(Secret::new(secret)), not_after: None }
    }

    pub fn is_active(&self, now: UnixTime) -> bool {
        self.not_after.is_none_or(|end| now <= end)
    }
}

/// What a sender signs with, for `hookgate sign` and the tests.
#[derive(Debug, Clone)]
pub enum SigningKey {
    Shared(Secret),
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// The parts of a request that a signature can cover. `body` is the exact bytes received;
/// `url` is the public URL the sender called, for the schemes that sign it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a Method,
    pub url: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a Body,
}

/// A request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index into the route's keys of the one that matched (which key a sender still uses).
    pub key_index: usize,
    /// The signed timestamp, for schemes that carry one.
    pub timestamp: Option<UnixTime>,
    /// The provider's delivery id, for schemes that send one.
    pub delivery_id: Option<String>,
}

/// What `sign` produces: headers to attach and, for schemes that sign inside the body
/// (Mailgun), the body to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

/// Why a request was refused. The variants are sorted by what the sender got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A required signature, timestamp or id header (or body field) is absent or empty.
    #[error("required {0} is missing")]
    Missing(String),
    /// Present but cannot be parsed (prefix, length, alphabet, number form, sent twice).
    #[error("{0} is malformed")]
    Malformed(String),
    /// The scheme signs parsed content and the body cannot be parsed as it requires.
    #[error("body cannot be parsed as the scheme requires: {0}")]
    MalformedBody(&'static str),
    /// The signature is well-formed but matches under none of the route's active keys.
    #[error("signature does not match")]
    SignatureMismatch,
    /// The signature matches but its timestamp lies outside the route's tolerance.
    #[error("timestamp outside tolerance")]
    TimestampOutsideTolerance,
}

impl Rejection {
    pub(crate) fn missing(name: &HeaderName) -> Self {
        Self::Missing(format!("header {name}"))
    }
    pub(crate) fn malformed(name: &HeaderName) -> Self {
        Self::Malformed(format!("header {name}"))
    }

    /// The one place that picks the status: the sender's material is absent or unreadable (400),
    /// or it is readable and wrong or stale (403).
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Missing(_) | Rejection::Malformed(_) | Rejection::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Rejection::SignatureMismatch | Rejection::TimestampOutsideTolerance => StatusCode::FORBIDDEN,
        }
    }

    /// The `outcome` label and the `error` field of the response body.
    pub fn outcome(&self) -> &'static str {
        match self {
            Rejection::Missing(_) => "missing_signature",
            Rejection::Malformed(_) | Rejection::MalformedBody(_) => "malformed_signature",
            Rejection::SignatureMismatch => "invalid_signature",
            Rejection::TimestampOutsideTolerance => "expired",
        }
    }
}

/// How a scheme checks a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Recipe(Recipe),
    Twilio(twilio::Twilio),
    Mailgun(mailgun::Mailgun),
    Credentials(credentials::Credentials),
}

/// Which kind of key a scheme verifies with, so the config loader knows what to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A shared secret (HMAC key, token, `user:password`).
    Shared,
    /// A shared secret written `whsec_<base64>`, used base64-decoded (Standard Webhooks).
    SharedBase64,
    Ed25519Public,
    P256Public,
}

/// A named scheme: its rule and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    pub name: String,
    pub rule: Rule,
}

impl Scheme {
    /// Verifies `request` under any of the active `keys` at time `now`.
    ///
    /// Checks run in the order presence, parse, signature, freshness, so a forged request learns
    /// nothing about the clock. Signatures are compared in constant time.
    pub fn verify(&self, keys: &[Key], request: SignedRequest<'_>, now: UnixTime) -> Result<Verified, Rejection> {
        match &self.rule {
            Rule::Recipe(recipe) => recipe.verify(keys, request, now),
            Rule::Twilio(twilio) => twilio.verify(keys, request, now),
            Rule::Mailgun(mailgun) => mailgun.verify(keys, request, now),
            Rule::Credentials(credentials) => credentials.verify(keys, request, now),
        }
    }

    /// What a sender attaches to `request` at `now`; `timestamp` replaces the timestamp text.
    pub fn sign(
        &self,
        key: &SigningKey,
        request: SignedRequest<'_>,
        now: UnixTime,
        timestamp: Option<&str>,
    ) -> Result<Signature, Rejection> {
        match &self.rule {
            Rule::Recipe(recipe) => recipe.sign(key, request, now, timestamp),
            Rule::Twilio(twilio) => twilio.sign(key, request),
            Rule::Mailgun(mailgun) => mailgun.sign(key, request, now, timestamp),
            Rule::Credentials(credentials) => credentials.sign(key),
        }
    }

    /// The key kind routes of this scheme configure.
    pub fn key_kind(&self) -> KeyKind {
        match &self.rule {
            Rule::Recipe(recipe) => recipe.key_kind(),
            Rule::Twilio(_) | Rule::Mailgun(_) | Rule::Credentials(_) => KeyKind::Shared,
        }
    }

    /// Whether verification needs the public URL (the route must say how to rebuild it).
    pub fn signs_url(&self) -> bool {
        match &self.rule {
            Rule::Recipe(recipe) => recipe.signs_url(),
            Rule::Twilio(_) => true,
            Rule::Mailgun(_) | Rule::Credentials(_) => false,
        }
    }

    /// Headers that carry signature material, for `forward_headers.strip_signature`.
    pub fn signature_headers(&self) -> Vec<HeaderName> {
        match &self.rule {
            Rule::Recipe(recipe) => recipe.signature_headers(),
            Rule::Twilio(_) => vec![HeaderName::from_static("x-twilio-signature")],
            Rule::Mailgun(_) => Vec::new(),
            Rule::Credentials(credentials) => vec![credentials.header().clone()],
        }
    }

    /// The status for a mismatched signature: 403, except where a provider expects another
    /// (Discord probes endpoints with bad signatures and requires 401).
    pub fn status(&self, rejection: &Rejection) -> StatusCode {
        match (&self.rule, rejection) {
            (Rule::Recipe(recipe), Rejection::SignatureMismatch) if recipe.mismatch_is_unauthorized => {
                StatusCode::UNAUTHORIZED
            }
            _ => rejection.status(),
        }
    }
}

/// The trimmed text of a header that must occur at most once. `Ok(None)` when absent or empty;
/// a repeated header or one that is not visible ASCII is malformed (which copy would be signed?).
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Rejection::malformed(name));
    }
    // Valid header text has no ASCII whitespace but spaces and tabs: this trims exactly those.
    let text = value.to_str().map_err(|_| Rejection::malformed(name))?.trim_ascii();
    Ok((!text.is_empty()).then_some(text))
}

/// The first of `names` that is present (and its text); the error names the first.
pub(crate) fn first_header<'a>(
    headers: &'a HeaderMap,
    names: &'a [HeaderName],
) -> Result<(&'a HeaderName, &'a str), Rejection> {
    for name in names {
        if let Some(text) = header_text(headers, name)? {
            return Ok((name, text));
        }
    }
    Err(names.first().map_or_else(|| Rejection::Missing("signature header".into()), Rejection::missing))
}

/// The shared secrets among `keys` active at `now`, with their indexes.
pub(crate) fn active_secrets(keys: &[Key], now: UnixTime) -> impl Iterator<Item = (usize, &Secret)> {
    keys.iter().enumerate().filter(move |(_, key)| key.is_active(now)).filter_map(|(i, key)| match &key.material {
        KeyMaterial::Shared(secret) => Some((i, secret)),
        KeyMaterial::Ed25519(_) | KeyMaterial::P256(_) => None,
    })
}

/// The shared secret of a signing key, for schemes that only take one.
pub(crate) fn shared_secret(key: &SigningKey) -> Result<&Secret, Rejection> {
    match key {
        SigningKey::Shared(secret) => Ok(secret),
        SigningKey::Ed25519(_) | SigningKey::P256(_) => {
            Err(Rejection::Malformed("signing key: this scheme takes a shared secret".into()))
        }
    }
}

#[cfg(test)]
mod tests;

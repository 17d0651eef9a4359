//! The one HMAC engine. A scheme is data: which header holds the signature, its prefix and
//! encoding, the hash, an optional signed timestamp, and a template for the signed message.
//! `sign` and `verify` build the message through the same code, so they cannot disagree.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use subtle::ConstantTimeEq;

use super::form_json::{FormError, form_to_python_json};
use super::{Rejection, SignedRequest, UnixTime, Verified};
use crate::config::secret::Secret;

/// The hash inside the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const NAMES: &'static str = "md5, sha1, sha256, sha512";

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "md5" => Some(Self::Md5),
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Length of the MAC in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// HMAC of the concatenation of `parts`, fed piece by piece so the body is never copied.
    pub fn mac<'a>(self, key: &[u8], parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
        fn run<'a, M: Mac + KeyInit>(key: &[u8], parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
            parts.for_each(|part| mac.update(part));
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Md5 => run::<Hmac<md5::Md5>>(key, parts),
            Self::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
            Self::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
            Self::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
        }
    }
}

/// How the MAC is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower-case hex; upper-case is well-formed but never matches, as with the providers' own
    /// string comparisons.
    Hex,
    /// Standard alphabet with `=` padding.
    Base64,
}

impl Encoding {
    pub const NAMES: &'static str = "hex, base64";

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "hex" => Some(Self::Hex),
            "base64" => Some(Self::Base64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Hex => "hex",
            Self::Base64 => "base64",
        }
    }

    pub fn encode(self, mac: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(mac),
            Self::Base64 => BASE64.encode(mac),
        }
    }

    /// Whether `text` could be an encoding of a `len`-byte MAC.
    fn is_well_formed(self, text: &str, len: usize) -> bool {
        match self {
            Self::Hex => text.len() == 2 * len && text.bytes().all(|b| b.is_ascii_hexdigit()),
            Self::Base64 => BASE64.decode(text).is_ok_and(|bytes| bytes.len() == len),
        }
    }
}

/// How a timestamp header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Whole seconds since the epoch: `1718000000`.
    UnixSeconds,
    /// Whole milliseconds since the epoch: `1718000000000`.
    UnixMillis,
    /// Seconds with an optional decimal fraction, as Python's `str(time.time())`: `1718000000.123456`.
    UnixFloat,
}

impl TimestampFormat {
    pub const NAMES: &'static str = "unix, unix_ms, unix_float";

    pub fn parse_name(name: &str) -> Option<Self> {
        match name {
            "unix" => Some(Self::UnixSeconds),
            "unix_ms" => Some(Self::UnixMillis),
            "unix_float" => Some(Self::UnixFloat),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::UnixSeconds => "unix",
            Self::UnixMillis => "unix_ms",
            Self::UnixFloat => "unix_float",
        }
    }

    /// Reads a header value; `None` when it is not of this form.
    pub fn parse(self, text: &str) -> Option<UnixTime> {
        const NANOS_PER_SEC: i128 = 1_000_000_000;
        match self {
            Self::UnixSeconds => digits(text).map(|s| UnixTime::from_nanos(s * NANOS_PER_SEC)),
            Self::UnixMillis => digits(text).map(|ms| UnixTime::from_nanos(ms * 1_000_000)),
            Self::UnixFloat => {
                let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
                let secs = digits(whole)?;
                if text.contains('.') && (fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit())) {
                    return None;
                }
                // Exact decimal arithmetic: the header is signed verbatim, only the freshness
                // check reads its value, to the nanosecond.
                let nanos = fraction
                    .bytes()
                    .chain(std::iter::repeat(b'0'))
                    .take(9)
                    .fold(0i128, |acc, b| acc * 10 + i128::from(b - b'0'));
                Some(UnixTime::from_nanos(secs * NANOS_PER_SEC + nanos))
            }
        }
    }

    /// Writes `time` the way a sender of this format does.
    pub fn format(self, time: UnixTime) -> String {
        let nanos = time.as_nanos();
        match self {
            Self::UnixSeconds => time.as_secs().to_string(),
            Self::UnixMillis => nanos.div_euclid(1_000_000).to_string(),
            Self::UnixFloat => format!("{}.{:06}", time.as_secs(), nanos.rem_euclid(1_000_000_000) / 1_000),
        }
    }
}

/// A non-empty run of ASCII digits, short enough that no later arithmetic can overflow.
fn digits(text: &str) -> Option<i128> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Which side of `now` a timestamp may drift to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `|now - ts| <= tolerance`.
    Symmetric,
    /// `now - ts <= tolerance`; timestamps in the future are accepted.
    PastOnly,
}

/// A signed timestamp and how fresh it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampRule {
    pub header: HeaderName,
    pub format: TimestampFormat,
    /// `None`: the timestamp is signed but its age is not checked.
    pub tolerance: Option<Duration>,
    pub window: Window,
}

impl TimestampRule {
    fn is_fresh(&self, timestamp: UnixTime, now: UnixTime) -> bool {
        let Some(tolerance) = self.tolerance else { return true };
        let tolerance = tolerance.as_nanos() as i128;
        let age = now.as_nanos() - timestamp.as_nanos();
        match self.window {
            Window::Symmetric => age.abs() <= tolerance,
            Window::PastOnly => age <= tolerance,
        }
    }
}

/// One piece of the signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// The raw body bytes.
    Body,
    /// The timestamp header's value, verbatim.
    Timestamp,
    /// The urlencoded body re-serialised as Python `json.dumps` (FreshBooks).
    FormJson,
}

/// The signed message, parsed from text such as `{timestamp};{body}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl Template {
    pub const PLACEHOLDERS: &'static str = "{body}, {timestamp}, {form_json}";

    /// Parses a template; the error names the offending placeholder.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| format!("unclosed '{{' in message template {text:?}"))?;
            parts.push(match &after[..close] {
                "body" => Part::Body,
                "timestamp" => Part::Timestamp,
                "form_json" => Part::FormJson,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} in message template (known: {})",
                        Self::PLACEHOLDERS
                    ));
                }
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    pub fn uses(&self, part: &Part) -> bool {
        self.0.contains(part)
    }

    fn pieces<'a>(&'a self, body: &'a [u8], timestamp: &'a str, form_json: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.0.iter().map(move |part| match part {
            Part::Literal(text) => text.as_bytes(),
            Part::Body => body,
            Part::Timestamp => timestamp.as_bytes(),
            Part::FormJson => form_json.as_bytes(),
        })
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.0 {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Body => f.write_str("{body}")?,
                Part::Timestamp => f.write_str("{timestamp}")?,
                Part::FormJson => f.write_str("{form_json}")?,
            }
        }
        Ok(())
    }
}

/// A complete HMAC signing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacScheme {
    /// Headers that may carry the signature, in order of preference; the first present is read.
    pub signature_headers: Vec<HeaderName>,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// Text that precedes the encoded MAC in the header value, e.g. `sha-256=`.
    pub prefix: String,
    pub timestamp: Option<TimestampRule>,
    pub message: Template,
}

impl HmacScheme {
    pub(super) fn verify(
        &self,
        secrets: &[Secret],
        request: SignedRequest<'_>,
        now: UnixTime,
    ) -> Result<Verified, Rejection> {
        let headers = request.headers;
        // Presence first, for every header the scheme needs.
        let (signature_header, signature) = self
            .signature_headers
            .iter()
            .find_map(|name| header_text(headers, name).transpose().map(|value| (name, value)))
            .ok_or_else(|| Rejection::MissingHeader(self.signature_headers[0].clone()))?;
        let signature = signature?;
        let timestamp = match &self.timestamp {
            Some(rule) => {
                let text =
                    header_text(headers, &rule.header)?.ok_or_else(|| Rejection::MissingHeader(rule.header.clone()))?;
                Some((rule, text))
            }
            None => None,
        };

        // Then parsing.
        let presented = signature
            .strip_prefix(self.prefix.as_str())
            .filter(|mac| self.encoding.is_well_formed(mac, self.algorithm.output_len()))
            .ok_or_else(|| Rejection::MalformedHeader(signature_header.clone()))?;
        let (timestamp_text, signed_at) = match timestamp {
            Some((rule, text)) => {
                let at = rule.format.parse(text).ok_or_else(|| Rejection::MalformedHeader(rule.header.clone()))?;
                (text, Some((rule, at)))
            }
            None => ("", None),
        };
        let form_json = self.form_json(request.body)?;

        // Then the signature under each active secret, in constant time.
        let secret_index = secrets
            .iter()
            .position(|secret| {
                let expected = self.encoding.encode(&self.mac(secret, request.body, timestamp_text, &form_json));
                bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
            })
            .ok_or(Rejection::SignatureMismatch)?;

        // Freshness last: only a correctly signed request learns that its clock is off.
        if let Some((rule, at)) = signed_at
            && !rule.is_fresh(at, now)
        {
            return Err(Rejection::TimestampOutsideTolerance);
        }
        Ok(Verified { secret_index, timestamp: signed_at.map(|(_, at)| at) })
    }

    /// The headers a sender attaches to `body` at `now` (or with the timestamp text given).
    pub fn sign(
        &self,
        secret: &Secret,
        body: &[u8],
        now: UnixTime,
        timestamp: Option<&str>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, Rejection> {
        let mut headers = Vec::new();
        let timestamp_text = match &self.timestamp {
            Some(rule) => {
                let text = timestamp.map_or_else(|| rule.format.format(now), str::to_owned);
                let value =
                    HeaderValue::from_str(&text).map_err(|_| Rejection::MalformedHeader(rule.header.clone()))?;
                headers.push((rule.header.clone(), value));
                text
            }
            None => String::new(),
        };
        let form_json = self.form_json(body)?;
        let mac = self.mac(secret, body, &timestamp_text, &form_json);
        let value = format!("{}{}", self.prefix, self.encoding.encode(&mac));
        let value =
            HeaderValue::from_str(&value).map_err(|_| Rejection::MalformedHeader(self.signature_headers[0].clone()))?;
        headers.insert(0, (self.signature_headers[0].clone(), value));
        Ok(headers)
    }

    fn form_json(&self, body: &[u8]) -> Result<String, Rejection> {
        if self.message.uses(&Part::FormJson) {
            form_to_python_json(body).map_err(|error| {
                Rejection::MalformedBody(match error {
                    FormError::NotUtf8 => "form body is not UTF-8",
                    FormError::DuplicateName => "form field name repeated",
                })
            })
        } else {
            Ok(String::new())
        }
    }

    fn mac(&self, secret: &Secret, body: &[u8], timestamp: &str, form_json: &str) -> Vec<u8> {
        self.algorithm.mac(secret.expose(), self.message.pieces(body, timestamp, form_json))
    }
}

/// The trimmed text of a header that must occur at most once. `Ok(None)` when absent or empty;
/// a repeated header or one that is not visible ASCII is malformed (which copy would be signed?).
fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Rejection::MalformedHeader(name.clone()));
    }
    let text = value.to_str().map_err(|_| Rejection::MalformedHeader(name.clone()))?;
    let text = text.trim_matches([' ', '\t']);
    Ok((!text.is_empty()).then_some(text))
}

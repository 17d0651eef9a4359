//! Signed timestamps: where they are, how they are written, and how fresh they must be.

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderName;

use super::UnixTime;

/// How a timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Whole seconds since the epoch: `1718000000`.
    UnixSeconds,
    /// Whole milliseconds since the epoch: `1718000000000`.
    UnixMillis,
    /// Seconds with an optional decimal fraction, as Python's `str(time.time())`: `1718000000.123456`.
    UnixFloat,
    /// RFC 3339 in UTC with an optional fraction: `2024-06-10T06:13:20.123456789Z`.
    Rfc3339,
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

impl TimestampFormat {
    pub const NAMES: &'static str = "unix, unix_ms, unix_float, rfc3339";

    pub fn parse_name(name: &str) -> Option<Self> {
        match name {
            "unix" => Some(Self::UnixSeconds),
            "unix_ms" => Some(Self::UnixMillis),
            "unix_float" => Some(Self::UnixFloat),
            "rfc3339" => Some(Self::Rfc3339),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::UnixSeconds => "unix",
            Self::UnixMillis => "unix_ms",
            Self::UnixFloat => "unix_float",
            Self::Rfc3339 => "rfc3339",
        }
    }

    /// Reads a timestamp; `None` when it is not of this form.
    pub fn parse(self, text: &str) -> Option<UnixTime> {
        match self {
            Self::UnixSeconds => digits(text).map(|s| UnixTime::from_nanos(s * NANOS_PER_SEC)),
            Self::UnixMillis => digits(text).map(|ms| UnixTime::from_nanos(ms * 1_000_000)),
            Self::UnixFloat => {
                let (whole, fraction) = match text.split_once('.') {
                    Some((whole, fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) => {
                        (whole, fraction)
                    }
                    Some(_) => return None,
                    None => (text, ""),
                };
                // Exact decimal arithmetic, to the nanosecond: no float rounding at the edges.
                let nanos = fraction
                    .bytes()
                    .chain(std::iter::repeat(b'0'))
                    .take(9)
                    .fold(0i128, |acc, b| acc * 10 + i128::from(b - b'0'));
                Some(UnixTime::from_nanos(digits(whole)? * NANOS_PER_SEC + nanos))
            }
            Self::Rfc3339 => {
                // humantime reads UTC (`Z`) only; an offset `±HH:MM` is applied by hand.
                let (utc, offset_secs) = match text.len().checked_sub(6).and_then(|at| text.split_at_checked(at)) {
                    Some((time, offset)) if offset.as_bytes()[0] == b'+' || offset.as_bytes()[0] == b'-' => {
                        let (hours, minutes) = offset[1..].split_once(':')?;
                        let (hours, minutes): (i128, i128) = (digits(hours)?, digits(minutes)?);
                        if hours > 23 || minutes > 59 {
                            return None;
                        }
                        let sign = if offset.starts_with('-') { -1 } else { 1 };
                        (format!("{time}Z"), sign * (hours * 3600 + minutes * 60))
                    }
                    _ => (text.to_owned(), 0),
                };
                let at = humantime::parse_rfc3339(&utc).ok()?;
                let since = at.duration_since(UNIX_EPOCH).ok()?;
                Some(UnixTime::from_nanos(since.as_nanos() as i128 - offset_secs * NANOS_PER_SEC))
            }
        }
    }

    /// Writes `time` the way a sender of this format does.
    pub fn format(self, time: UnixTime) -> String {
        let nanos = time.as_nanos();
        match self {
            Self::UnixSeconds => time.as_secs().to_string(),
            Self::UnixMillis => nanos.div_euclid(1_000_000).to_string(),
            Self::UnixFloat => format!("{}.{:06}", time.as_secs(), nanos.rem_euclid(NANOS_PER_SEC) / 1_000),
            Self::Rfc3339 => {
                let at = UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
                humantime::format_rfc3339_seconds(at).to_string()
            }
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

impl Window {
    pub fn name(self) -> &'static str {
        match self {
            Window::Symmetric => "symmetric",
            Window::PastOnly => "past_only",
        }
    }
}

/// Where the signed timestamp is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampSource {
    /// A header of its own (the first of these names that is present).
    Header(Vec<HeaderName>),
    /// An element of the signature header (`t=` in Stripe's, `ts=` in Paddle's).
    SignatureHeader,
    /// A numeric member of the JSON body, covered by the signature (Linear's `webhookTimestamp`).
    BodyField(String),
}

/// A signed timestamp and how fresh it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampRule {
    pub source: TimestampSource,
    pub format: TimestampFormat,
    /// `None`: the timestamp is signed but its age is not checked.
    pub tolerance: Option<Duration>,
    pub window: Window,
}

impl TimestampRule {
    pub fn is_fresh(&self, timestamp: UnixTime, now: UnixTime) -> bool {
        let Some(tolerance) = self.tolerance else { return true };
        let tolerance = tolerance.as_nanos() as i128;
        let age = now.as_nanos() - timestamp.as_nanos();
        match self.window {
            Window::Symmetric => age.abs() <= tolerance,
            Window::PastOnly => age <= tolerance,
        }
    }
}

//! The `verify:` block to a [`Scheme`]: a preset by name, or a generic `hmac` recipe from its
//! parts.

use std::borrow::Cow;
use std::time::Duration;

use super::{RawVerify, duration};
use crate::verify::crypto::{Algorithm, Crypto, Encoding};
use crate::verify::layout::Layout;
use crate::verify::message::Template;
use crate::verify::timestamp::{TimestampFormat, TimestampRule, TimestampSource, Window};
use crate::verify::{Recipe, Rule, Scheme, presets};

const HMAC_ONLY_FIELDS: &str =
    "algorithm, encoding, prefix, timestamp_header, timestamp_format, timestamp_window, message";

/// Builds the scheme a `verify:` block names.
pub fn scheme(raw: &RawVerify) -> Result<Scheme, String> {
    let tolerance = raw.tolerance.as_deref().map(duration).transpose().map_err(|e| format!("tolerance: {e}"))?;
    let rule = if raw.scheme == "hmac" {
        Rule::Recipe(hmac_recipe(raw, tolerance)?)
    } else {
        let preset = presets::find(&raw.scheme).ok_or_else(|| {
            let known: Vec<_> = presets::PRESETS.iter().map(|p| p.name).chain(["hmac"]).collect();
            format!("unknown scheme {:?} (known: {})", raw.scheme, known.join(", "))
        })?;
        let hmac_fields = [&raw.algorithm, &raw.encoding, &raw.prefix, &raw.timestamp_header].into_iter().chain([
            &raw.timestamp_format,
            &raw.timestamp_window,
            &raw.message,
        ]);
        if hmac_fields.into_iter().any(Option::is_some) {
            return Err(format!("{HMAC_ONLY_FIELDS} apply only to scheme hmac, not to {}", raw.scheme));
        }
        let token_header = match (&preset.rule, &raw.header) {
            (presets::PresetRule::Token { header: None }, Some(name)) => {
                Some(header_name(name).map_err(|e| format!("header: {e}"))?)
            }
            (presets::PresetRule::Token { header: None }, None) => {
                return Err("scheme token needs header: (the header carrying the token)".into());
            }
            (_, Some(_)) => {
                return Err(format!("header applies only to schemes hmac and token, not to {}", raw.scheme));
            }
            (_, None) => None,
        };
        if tolerance.is_some() && !preset.has_tolerance() {
            return Err(format!("tolerance: scheme {} signs no timestamp", raw.scheme));
        }
        let public_key = raw.public_key.is_some() || raw.public_keys.is_some() || raw.public_key_file.is_some();
        preset.build(tolerance, token_header, public_key)
    };
    Ok(Scheme { name: raw.scheme.clone(), rule })
}

fn hmac_recipe(raw: &RawVerify, tolerance: Option<Duration>) -> Result<Recipe, String> {
    let header = raw.header.as_deref().ok_or("scheme hmac needs header")?;
    let header = header_name(header).map_err(|e| format!("header: {e}"))?;
    let algorithm = match raw.algorithm.as_deref() {
        None => Algorithm::Sha256,
        Some(name) => {
            Algorithm::parse(name).ok_or_else(|| format!("algorithm: {name:?} is not one of {}", Algorithm::NAMES))?
        }
    };
    let encoding = match raw.encoding.as_deref() {
        None => Encoding::Hex,
        Some(name) => {
            Encoding::parse(name).ok_or_else(|| format!("encoding: {name:?} is not one of {}", Encoding::NAMES))?
        }
    };
    let message = Template::parse(raw.message.as_deref().unwrap_or("{body}")).map_err(|e| format!("message: {e}"))?;
    let timestamp = match raw.timestamp_header.as_deref() {
        None => {
            if raw.timestamp_format.is_some() || raw.timestamp_window.is_some() || tolerance.is_some() {
                return Err("timestamp_format, timestamp_window and tolerance need timestamp_header".into());
            }
            if message.signs_timestamp() {
                return Err("message uses {timestamp} but no timestamp_header is set".into());
            }
            None
        }
        Some(name) => {
            let format = match raw.timestamp_format.as_deref() {
                None => TimestampFormat::UnixSeconds,
                Some(f) => TimestampFormat::parse_name(f)
                    .ok_or_else(|| format!("timestamp_format: {f:?} is not one of {}", TimestampFormat::NAMES))?,
            };
            let window = match raw.timestamp_window.as_deref() {
                None | Some("symmetric") => Window::Symmetric,
                Some("past_only") => Window::PastOnly,
                Some(w) => return Err(format!("timestamp_window: {w:?} is not one of symmetric, past_only")),
            };
            if !message.signs_timestamp() {
                // An unsigned timestamp proves nothing: anyone could freshen a captured request.
                return Err("timestamp_header is set but message does not sign {timestamp}".into());
            }
            let header = header_name(name).map_err(|e| format!("timestamp_header: {e}"))?;
            Some(TimestampRule {
                source: TimestampSource::Header(vec![header]),
                format,
                tolerance: Some(tolerance.unwrap_or(Duration::from_secs(300))),
                window,
            })
        }
    };
    Ok(Recipe {
        signature_headers: vec![header],
        layout: Layout::Plain { prefix: Cow::Owned(raw.prefix.clone().unwrap_or_default()) },
        encoding,
        crypto: Crypto::Hmac(algorithm),
        timestamp,
        message,
        id_headers: Vec::new(),
        whsec_secret: false,
        require_body: false,
        mismatch_is_unauthorized: false,
        fallback: None,
    })
}

fn header_name(text: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(text.as_bytes()).map_err(|_| format!("{text:?} is not a valid header name"))
}

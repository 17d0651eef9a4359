//! Mailgun: the signature travels inside the body, as lowercase-hex HMAC-SHA256 of
//! `timestamp + token`.
//!
//! Current webhooks post JSON with a `signature` object `{timestamp, token, signature}`; legacy
//! webhooks post the three as form fields. The MAC covers neither `event-data` nor any other field,
//! so a seen delivery can be altered and replayed: the freshness window and the token (returned as
//! the delivery id, for the caller to de-duplicate) are the only defence.

use std::time::Duration;

use constant_time_eq::constant_time_eq;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::form_json::parse_form;
use super::{
    Key, Rejection, Signature, SignedRequest, SigningKey, UnixTime, Verified, active_secrets, header_text,
    shared_secret,
};

/// The signed fields, in signing order; the MAC is the third.
const FIELDS: [&str; 3] = ["timestamp", "token", "signature"];
/// Mailgun's tokens are 50 hex characters.
const TOKEN_LEN: usize = 50;

/// Mailgun: HMAC-SHA256 of timestamp + token, both inside the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailgun {
    /// Maximum distance (either way) between the signed timestamp and `now`; `None` accepts any.
    pub tolerance: Option<Duration>,
}

impl Mailgun {
    /// Verifies the body's signature fields under any active key, then the timestamp.
    ///
    /// A form body (by Content-Type) is read as fields, anything else as JSON. Absent or empty
    /// fields are missing; a body that cannot be parsed, a field that is not a string or is sent
    /// twice, a timestamp that is not decimal seconds or a MAC that is not 64 hex digits are
    /// malformed. The MAC is compared as a lowercase-hex string, so upper-case hex mismatches.
    pub fn verify(&self, keys: &[Key], request: SignedRequest<'_>, now: UnixTime) -> Result<Verified, Rejection> {
        let (place, [timestamp, token, presented]) = signed_fields(&request)?;
        let signed_at = parse_timestamp(&timestamp).ok_or_else(|| Rejection::Malformed(format!("{place}timestamp")))?;
        if presented.len() != 64 || !presented.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Rejection::Malformed(format!("{place}signature")));
        }

        let mut matched = None;
        for (index, secret) in active_secrets(keys, now) {
            let expected = mac_hex(secret.expose(), &timestamp, &token);
            if constant_time_eq(expected.as_bytes(), presented.as_bytes()) && matched.is_none() {
                matched = Some(index);
            }
        }
        let key_index = matched.ok_or(Rejection::SignatureMismatch)?;

        if let Some(tolerance) = self.tolerance {
            let skew = now.as_nanos().abs_diff(signed_at.as_nanos());
            if skew > tolerance.as_nanos() {
                return Err(Rejection::TimestampOutsideTolerance);
            }
        }
        Ok(Verified { key_index, timestamp: Some(signed_at), delivery_id: Some(token) })
    }

    /// Returns the body with a fresh signature: for a form, the three fields appended (replacing
    /// any already there); for a JSON object, its `signature` member set. `timestamp` overrides
    /// `now`; the token is derived from the timestamp and body, so signing is deterministic.
    pub fn sign(
        &self,
        key: &SigningKey,
        request: SignedRequest<'_>,
        now: UnixTime,
        timestamp: Option<&str>,
    ) -> Result<Signature, Rejection> {
        let secret = shared_secret(key)?;
        let timestamp = timestamp.map_or_else(|| now.as_secs().to_string(), str::to_owned);
        parse_timestamp(&timestamp).ok_or_else(|| Rejection::Malformed("timestamp (Unix seconds)".into()))?;
        let mut seed = Sha256::new();
        seed.update(timestamp.as_bytes());
        request.body.pieces().for_each(|piece| seed.update(piece));
        let mut token = hex::encode(seed.finalize());
        token.truncate(TOKEN_LEN);
        let signature = mac_hex(secret.expose(), &timestamp, &token);
        let values = [timestamp, token, signature];

        let received = request.body.contiguous();
        let body = if is_form(request.headers)? {
            let text =
                std::str::from_utf8(&received).map_err(|_| Rejection::MalformedBody("form body is not UTF-8"))?;
            // Keep every other segment byte for byte; drop old signature fields so none is sent twice.
            let mut segments: Vec<String> = text
                .split('&')
                .filter(|segment| !parse_form(segment).iter().any(|(name, _)| FIELDS.contains(&name.as_str())))
                .map(str::to_owned)
                .collect();
            // Hex and digits need no percent-encoding.
            segments.extend(FIELDS.iter().zip(&values).map(|(name, value)| format!("{name}={value}")));
            segments.retain(|segment| !segment.is_empty());
            segments.join("&").into_bytes()
        } else {
            let mut body: Value =
                serde_json::from_slice(&received).map_err(|_| Rejection::MalformedBody("body is not JSON"))?;
            let object = body.as_object_mut().ok_or(Rejection::MalformedBody("JSON body is not an object"))?;
            let fields = FIELDS.iter().zip(values).map(|(name, value)| ((*name).to_owned(), Value::String(value)));
            object.insert("signature".to_owned(), Value::Object(fields.collect()));
            serde_json::to_vec(&body).map_err(|_| Rejection::MalformedBody("body cannot be re-serialised"))?
        };
        Ok(Signature { headers: Vec::new(), body: Some(body) })
    }
}

/// Whether the body is a urlencoded form (legacy webhooks) rather than JSON.
fn is_form(headers: &HeaderMap) -> Result<bool, Rejection> {
    let Some(content_type) = header_text(headers, &CONTENT_TYPE)? else { return Ok(false) };
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    Ok(media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// One signed field as found in the body, before its form is checked.
enum Field {
    Absent,
    Text(String),
    /// Not a JSON string, or a form field sent more than once.
    Unreadable,
}

impl Field {
    fn from_text(text: &str) -> Self {
        // An empty field proves nothing, like an empty header.
        if text.is_empty() { Self::Absent } else { Self::Text(text.to_owned()) }
    }
}

/// Where the fields are (for messages) and the texts of timestamp, token and signature.
/// Presence is checked for all three before the form of any, so field order cannot change the outcome.
fn signed_fields(request: &SignedRequest<'_>) -> Result<(&'static str, [String; 3]), Rejection> {
    let received = request.body.contiguous();
    let (place, fields) = if is_form(request.headers)? {
        let text = std::str::from_utf8(&received).map_err(|_| Rejection::MalformedBody("form body is not UTF-8"))?;
        let form = parse_form(text);
        let fields = FIELDS.map(|name| {
            let mut values = form.iter().filter(|(field, _)| field == name);
            match (values.next(), values.next()) {
                (None, _) => Field::Absent,
                (Some((_, value)), None) => Field::from_text(value),
                (Some(_), Some(_)) => Field::Unreadable,
            }
        });
        ("form field ", fields)
    } else {
        let body: Value =
            serde_json::from_slice(&received).map_err(|_| Rejection::MalformedBody("body is not JSON"))?;
        let signature = body.get("signature").ok_or_else(|| Rejection::Missing("body field signature".into()))?;
        let object: &Map<String, Value> =
            signature.as_object().ok_or_else(|| Rejection::Malformed("body field signature".into()))?;
        let fields = FIELDS.map(|name| match object.get(name) {
            None => Field::Absent,
            Some(Value::String(text)) => Field::from_text(text),
            Some(_) => Field::Unreadable,
        });
        ("body field signature.", fields)
    };
    if let Some((name, _)) = FIELDS.iter().zip(&fields).find(|(_, field)| matches!(field, Field::Absent)) {
        return Err(Rejection::Missing(format!("{place}{name}")));
    }
    let text = |name: &str, field: Field| match field {
        Field::Text(text) => Ok(text),
        Field::Absent | Field::Unreadable => Err(Rejection::Malformed(format!("{place}{name}"))),
    };
    let [timestamp, token, signature] = fields;
    Ok((place, [text("timestamp", timestamp)?, text("token", token)?, text("signature", signature)?]))
}

/// Decimal Unix seconds, digits only (no sign, no fraction).
fn parse_timestamp(text: &str) -> Option<UnixTime> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().map(UnixTime::from_secs)
}

/// `hex(HMAC-SHA256(key, timestamp + token))`, lowercase.
fn mac_hex(key: &[u8], timestamp: &str, token: &str) -> String {
    // HMAC takes keys of any length, so this arm is never taken.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use http::Method;
    use http::header::HeaderValue;

    use super::*;
    use crate::body::Body;
    use crate::config::secret::Secret;
    use crate::verify::tests::{category, vector_cases};

    const KEY: &str = "key-c5968ec9cad097396fd6f49b6c8c31a7";
    const NOW: i64 = 1_718_000_000;
    const FIVE_MINUTES: Option<Duration> = Some(Duration::from_secs(300));

    fn headers(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    fn verify_body(
        mailgun: &Mailgun,
        keys: &[Key],
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, Rejection> {
        let request = SignedRequest { method: &Method::POST, url: None, headers, body: &Body::from(body) };
        mailgun.verify(keys, request, UnixTime::from_secs(now))
    }

    fn sign_body(headers: &HeaderMap, body: &[u8], timestamp: Option<&str>) -> Vec<u8> {
        let key = SigningKey::Shared(Secret::new(KEY));
        let request = SignedRequest { method: &Method::POST, url: None, headers, body: &Body::from(body) };
        let signature = Mailgun { tolerance: None }.sign(&key, request, UnixTime::from_secs(NOW), timestamp).unwrap();
        assert!(signature.headers.is_empty());
        signature.body.unwrap()
    }

    #[test]
    fn every_vector_with_and_without_a_window() {
        let cases = vector_cases("mailgun");
        assert_eq!(cases.len(), 13);
        for tolerance in [None, Some(Duration::from_secs(3)), FIVE_MINUTES] {
            let mailgun = Mailgun { tolerance };
            for case in &cases {
                let keys: Vec<Key> = case.keys.iter().map(|k| Key::shared(k.as_str())).collect();
                let result = mailgun.verify(&keys, case.request(), case.now);
                assert_eq!(category(&result), case.expect, "{} ({tolerance:?}): {result:?}", case.name);
            }
        }
    }

    #[test]
    fn vector_verdict_carries_timestamp_and_token() {
        let case = vector_cases("mailgun").into_iter().find(|case| case.name == "rotated_keys_ok").unwrap();
        let keys: Vec<Key> = case.keys.iter().map(|k| Key::shared(k.as_str())).collect();
        let verified =
            verify_body(&Mailgun { tolerance: FIVE_MINUTES }, &keys, &case.headers, &case.body.contiguous(), NOW);
        let token = "8a09449ad9232462a81ddcfb517933d800ce7e46c885afa75d".to_owned();
        assert_eq!(
            verified,
            Ok(Verified {
                key_index: 1,
                timestamp: Some(UnixTime::from_secs(1_717_999_997)),
                delivery_id: Some(token)
            })
        );
    }

    #[test]
    fn sign_then_verify_json() {
        let json = headers("application/json");
        let body = sign_body(&json, br#"{"event-data":{"event":"opened"},"signature":"old"}"#, None);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["event-data"]["event"], "opened");
        assert_eq!(parsed["signature"]["timestamp"], NOW.to_string());
        assert_eq!(parsed["signature"]["token"].as_str().unwrap().len(), TOKEN_LEN);
        let keys = [Key::shared("other"), Key::shared(KEY)];
        let verified = verify_body(&Mailgun { tolerance: FIVE_MINUTES }, &keys, &json, &body, NOW).unwrap();
        assert_eq!(verified.key_index, 1);
        assert_eq!(verified.timestamp, Some(UnixTime::from_secs(NOW)));
    }

    #[test]
    fn sign_then_verify_form_replaces_old_fields() {
        let form = headers("application/x-www-form-urlencoded; charset=utf-8");
        let body = sign_body(&form, b"event=delivered&token=old&recipient=a%40b.example&", Some("1717999000"));
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.starts_with("event=delivered&recipient=a%40b.example&timestamp=1717999000&token="), "{text}");
        let verified = verify_body(&Mailgun { tolerance: None }, &[Key::shared(KEY)], &form, &body, NOW).unwrap();
        assert_eq!(verified.timestamp, Some(UnixTime::from_secs(1_717_999_000)));
        assert_eq!(sign_body(&form, b"", Some("1")).iter().filter(|&&b| b == b'&').count(), 2);
    }

    #[test]
    fn expired_key_is_not_used() {
        let json = headers("application/json");
        let body = sign_body(&json, b"{}", None);
        let expired = Key { not_after: Some(UnixTime::from_secs(NOW - 1)), ..Key::shared(KEY) };
        let mailgun = Mailgun { tolerance: None };
        assert_eq!(
            verify_body(&mailgun, std::slice::from_ref(&expired), &json, &body, NOW),
            Err(Rejection::SignatureMismatch)
        );
        assert_eq!(verify_body(&mailgun, &[expired, Key::shared(KEY)], &json, &body, NOW).unwrap().key_index, 1);
    }

    #[test]
    fn window_is_symmetric_and_inclusive() {
        let json = headers("application/json");
        let mailgun = Mailgun { tolerance: FIVE_MINUTES };
        let keys = [Key::shared(KEY)];
        for (signed_at, expect) in [(NOW - 300, true), (NOW + 300, true), (NOW - 301, false), (NOW + 301, false)] {
            let body = sign_body(&json, b"{}", Some(&signed_at.to_string()));
            let result = verify_body(&mailgun, &keys, &json, &body, NOW);
            assert_eq!(result.is_ok(), expect, "{signed_at}: {result:?}");
            if !expect {
                assert_eq!(result, Err(Rejection::TimestampOutsideTolerance));
            }
        }
    }

    #[test]
    fn each_rejection() {
        let (json, form) = (headers("application/json"), headers("application/x-www-form-urlencoded"));
        let mailgun = Mailgun { tolerance: FIVE_MINUTES };
        let keys = [Key::shared(KEY)];
        let check =
            |headers: &HeaderMap, body: &str| category(&verify_body(&mailgun, &keys, headers, body.as_bytes(), NOW));
        let sig = |ts: &str, token: &str, mac: &str| {
            format!(r#"{{"signature":{{"timestamp":{ts},"token":{token},"signature":{mac}}}}}"#)
        };
        let good_mac = format!("\"{}\"", mac_hex(KEY.as_bytes(), "1718000000", "tok"));

        assert_eq!(check(&json, "[]"), "missing");
        assert_eq!(check(&json, r#"{"signature":"x"}"#), "malformed");
        assert_eq!(check(&json, &sig("\"\"", "\"tok\"", &good_mac)), "missing");
        // Presence is checked for all fields before their form.
        assert_eq!(check(&json, r#"{"signature":{"timestamp":1,"signature":"x"}}"#), "missing");
        assert_eq!(check(&json, &sig("\"1718000000\"", "7", &good_mac)), "malformed");
        assert_eq!(check(&json, &sig("\"-1718000000\"", "\"tok\"", &good_mac)), "malformed");
        assert_eq!(check(&json, &sig("\"99999999999999999999\"", "\"tok\"", &good_mac)), "malformed");
        assert_eq!(check(&json, &sig("\"1718000000\"", "\"tok\"", "\"abc\"")), "malformed");
        assert!(matches!(verify_body(&mailgun, &keys, &json, b"\xff", NOW), Err(Rejection::MalformedBody(_))));
        assert!(matches!(verify_body(&mailgun, &keys, &form, b"token=\xff", NOW), Err(Rejection::MalformedBody(_))));
        assert_eq!(check(&form, "timestamp=1718000000&token=a&token=b&signature=x"), "malformed");
        assert_eq!(check(&form, "timestamp=1718000000&signature=x"), "missing");
        assert_eq!(check(&json, &sig("\"1718000000\"", "\"tok\"", &good_mac)), "ok");
        assert_eq!(check(&json, &sig("\"1718000000\"", "\"tok\"", &good_mac.to_uppercase())), "mismatch");
        assert_eq!(check(&json, &sig("\"1718000000\"", "\"tol\"", &good_mac)), "mismatch");
        let stale = format!("\"{}\"", mac_hex(KEY.as_bytes(), "1717000000", "tok"));
        assert_eq!(check(&json, &sig("\"1717000000\"", "\"tok\"", &stale)), "expired");
    }

    #[test]
    fn sign_rejects_what_verify_would() {
        let key = SigningKey::Shared(Secret::new(KEY));
        let mailgun = Mailgun { tolerance: None };
        let (json, now) = (headers("application/json"), UnixTime::from_secs(NOW));
        let sign = |body: &[u8], ts| {
            mailgun.sign(
                &key,
                SignedRequest { method: &Method::POST, url: None, headers: &json, body: &Body::from(body) },
                now,
                ts,
            )
        };
        assert!(matches!(sign(b"{}", Some("1.5")), Err(Rejection::Malformed(_))));
        assert!(matches!(sign(b"[1]", None), Err(Rejection::MalformedBody(_))));
        assert!(matches!(sign(b"nope", None), Err(Rejection::MalformedBody(_))));
    }

    #[test]
    fn arbitrary_bodies_never_panic() {
        use proptest::prelude::*;
        let keys = [Key::shared(KEY)];
        let (json, form) = (headers("application/json"), headers("application/x-www-form-urlencoded"));
        let mailgun = Mailgun { tolerance: FIVE_MINUTES };
        let json_like = "[{}\\[\\]\":,=&%a-z0-9é\u{0}]{0,60}";
        proptest!(|(body in json_like, raw in proptest::collection::vec(any::<u8>(), 0..64))| {
            for headers in [&json, &form] {
                let _ = verify_body(&mailgun, &keys, headers, body.as_bytes(), NOW);
                let _ = verify_body(&mailgun, &keys, headers, &raw, NOW);
            }
        });
    }
}

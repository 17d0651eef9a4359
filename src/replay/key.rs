//! What identifies a delivery: something the signature covers, so whoever holds a captured
//! request cannot change it without failing verification.
//!
//! - The provider's delivery id, when the scheme signs it (Standard Webhooks and Svix
//!   `webhook-id`, Twitch's message id, Mailgun's token). A sender's retry keeps its id, so a
//!   retry of a delivery the upstream already took is a replay too.
//! - Otherwise the signed parts of the message: the body (or, for FreshBooks, the form as it is
//!   signed), the signed timestamp, signed headers, method and URL. An id the signature does not
//!   cover (GitHub's `X-GitHub-Delivery`, Shopify's, Twilio's idempotency token) is not used: an
//!   attacker could change it and replay the rest. Never the signature bytes of a list layout
//!   (entries can be added) or of ECDSA (malleable, schemes.md 5.17).
//! - Twilio signs the URL and the form parameters sorted, so the body's byte order is not
//!   signed; its signature is one canonical base64 MAC, and that is the identity.
//! - Credential schemes sign nothing: the raw body, which catches exact resends only.
//!
//! The key is SHA-256 over the route name and that identity, so it has a fixed size, two routes
//! never share an entry, and no signature or id is stored in the clear.

use http::HeaderMap;
use http::header::HeaderName;
use sha2::{Digest, Sha256};

use crate::body::Body;
use crate::verify::form_json::form_to_python_json;
use crate::verify::message::Part;
use crate::verify::{Recipe, Rule, Scheme, SignedRequest, UnixTime, Verified, first_header, header_text};

/// A delivery's identity on one route: SHA-256, never the material itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", hex::encode(&self.0[..8]))
    }
}

const TWILIO_SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");

/// The key of a request that `scheme` verified on route `route`.
pub fn derive(route: &str, scheme: &Scheme, verified: &Verified, request: SignedRequest<'_>) -> Key {
    let mut hash = Sha256::new();
    hash.update(b"hookgate replay v1\0");
    field(&mut hash, route.as_bytes());
    match &scheme.rule {
        Rule::Recipe(recipe) => {
            let recipe = recipe_used(recipe, request.headers);
            match signed_id(recipe, verified) {
                Some(id) => {
                    hash.update(b"id");
                    field(&mut hash, id.as_bytes());
                }
                None => {
                    hash.update(b"signed");
                    signed_parts(&mut hash, recipe, verified, request);
                }
            }
        }
        Rule::Mailgun(_) => {
            // The token is what Mailgun signs, with the timestamp; the event data is not signed.
            hash.update(b"id");
            field(&mut hash, verified.delivery_id.as_deref().unwrap_or_default().as_bytes());
        }
        Rule::Twilio(_) => {
            let signature = header_text(request.headers, &TWILIO_SIGNATURE).ok().flatten().unwrap_or_default();
            hash.update(b"signature");
            field(&mut hash, signature.as_bytes());
        }
        Rule::Credentials(_) => {
            hash.update(b"body");
            body_field(&mut hash, request.body);
        }
    }
    Key(hash.finalize().into())
}

/// The recipe that verified the request: the fallback (Square's legacy header) when none of the
/// primary's signature headers is present, as [`Recipe`] verification chooses.
fn recipe_used<'a>(recipe: &'a Recipe, headers: &HeaderMap) -> &'a Recipe {
    match (&recipe.fallback, first_header(headers, &recipe.signature_headers)) {
        (Some(fallback), Err(_)) => recipe_used(fallback, headers),
        _ => recipe,
    }
}

/// The delivery id, when the message signs the very headers it is read from. Decided by the
/// scheme's shape, never by the request's values, so a sender cannot pick which identity applies.
fn signed_id<'a>(recipe: &Recipe, verified: &'a Verified) -> Option<&'a str> {
    let id = verified.delivery_id.as_deref()?;
    recipe.message.headers().any(|names| names == recipe.id_headers.as_slice()).then_some(id)
}

/// Every request-dependent part of the signed message, in template order. Literals are the
/// same for every request and are skipped.
fn signed_parts(hash: &mut Sha256, recipe: &Recipe, verified: &Verified, request: SignedRequest<'_>) {
    for part in recipe.message.parts() {
        match part {
            Part::Literal(_) => {}
            Part::Body => body_field(hash, request.body),
            Part::Timestamp => {
                let at = verified.timestamp.map_or(0, UnixTime::as_nanos);
                field(hash, &at.to_be_bytes());
            }
            // It verified, so the form parses; the text is exactly what was signed.
            Part::FormJson => {
                field(hash, form_to_python_json(&request.body.contiguous()).unwrap_or_default().as_bytes())
            }
            Part::Header(names) => {
                field(hash, first_header(request.headers, names).map_or("", |(_, text)| text).as_bytes())
            }
            Part::Method => field(hash, request.method.as_str().as_bytes()),
            Part::Url | Part::HubspotUrl => field(hash, request.url.unwrap_or_default().as_bytes()),
        }
    }
}

/// A length-prefixed field, so that no two different inputs hash the same bytes.
fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_be_bytes());
    hash.update(bytes);
}

/// [`field`] for the body, hashed piece by piece.
fn body_field(hash: &mut Sha256, body: &Body) {
    hash.update((body.len() as u64).to_be_bytes());
    body.pieces().for_each(|piece| hash.update(piece));
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Method};

    use super::*;
    use crate::config::{RawVerify, scheme};

    fn named(name: &str) -> Scheme {
        scheme(&RawVerify { scheme: name.into(), ..Default::default() }).expect("a preset")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header text"));
        }
        map
    }

    fn key(route: &str, scheme: &Scheme, verified: &Verified, headers: &HeaderMap, body: &[u8]) -> Key {
        let request = SignedRequest { method: &Method::POST, url: None, headers, body: &Body::from(body) };
        derive(route, scheme, verified, request)
    }

    fn verified(timestamp: Option<i64>, id: Option<&str>) -> Verified {
        Verified { key_index: 0, timestamp: timestamp.map(UnixTime::from_secs), delivery_id: id.map(str::to_owned) }
    }

    #[test]
    fn a_signed_id_is_the_identity_whatever_else_changes() {
        let scheme = named("standard-webhooks");
        let first = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "100"), ("webhook-signature", "v1,a")]);
        let retry = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "400"), ("webhook-signature", "v1,b")]);
        let other = headers(&[("webhook-id", "msg_2"), ("webhook-timestamp", "100"), ("webhook-signature", "v1,a")]);
        let a = key("r", &scheme, &verified(Some(100), Some("msg_1")), &first, b"{}");
        assert_eq!(a, key("r", &scheme, &verified(Some(400), Some("msg_1")), &retry, b"{}"), "a retry keeps its id");
        assert_ne!(a, key("r", &scheme, &verified(Some(100), Some("msg_2")), &other, b"{}"));
    }

    #[test]
    fn svix_signs_whichever_id_header_it_reads() {
        let scheme = named("svix");
        let svix = headers(&[("svix-id", "msg_1"), ("svix-timestamp", "100")]);
        let retry = headers(&[("svix-id", "msg_1"), ("svix-timestamp", "200")]);
        let a = key("r", &scheme, &verified(Some(100), Some("msg_1")), &svix, b"{}");
        assert_eq!(a, key("r", &scheme, &verified(Some(200), Some("msg_1")), &retry, b"{}"));
    }

    #[test]
    fn an_unsigned_id_cannot_be_changed_to_slip_a_replay_through() {
        let scheme = named("github");
        let sent = headers(&[("x-github-delivery", "d-1"), ("x-hub-signature-256", "sha256=00")]);
        let altered = headers(&[("x-github-delivery", "d-2"), ("x-hub-signature-256", "sha256=00")]);
        let a = key("r", &scheme, &verified(None, Some("d-1")), &sent, b"{\"n\":1}");
        assert_eq!(a, key("r", &scheme, &verified(None, Some("d-2")), &altered, b"{\"n\":1}"));
        assert_ne!(a, key("r", &scheme, &verified(None, Some("d-1")), &sent, b"{\"n\":2}"), "another body");
    }

    #[test]
    fn signed_timestamp_and_body_identify_a_list_layout_delivery() {
        let scheme = named("stripe");
        let one = headers(&[("stripe-signature", "t=100,v1=aa")]);
        let padded = headers(&[("stripe-signature", "t=100,v1=aa,v1=junk,v0=x")]);
        let a = key("r", &scheme, &verified(Some(100), None), &one, b"{}");
        assert_eq!(a, key("r", &scheme, &verified(Some(100), None), &padded, b"{}"), "extra entries change nothing");
        assert_ne!(a, key("r", &scheme, &verified(Some(101), None), &one, b"{}"), "another timestamp");
    }

    #[test]
    fn twilio_is_identified_by_its_canonical_signature_not_the_parameter_order() {
        let scheme = named("twilio");
        let signed = headers(&[("x-twilio-signature", "c2lnbmF0dXJlLW9mLTIwLWJ5dGVzIQ==")]);
        let a = key("r", &scheme, &verified(None, None), &signed, b"A=1&B=2");
        assert_eq!(a, key("r", &scheme, &verified(None, None), &signed, b"B=2&A=1"));
    }

    #[test]
    fn freshbooks_is_identified_by_the_form_as_signed() {
        let scheme = named("freshbooks");
        let a = key("r", &scheme, &verified(None, None), &HeaderMap::new(), b"name=invoice.create&object_id=1");
        let encoded =
            key("r", &scheme, &verified(None, None), &HeaderMap::new(), b"name=invoice%2Ecreate&object_id=%31");
        assert_eq!(a, encoded, "percent-encoding variants sign the same text");
    }

    #[test]
    fn routes_are_separate_namespaces() {
        let scheme = named("github");
        let sent = headers(&[("x-hub-signature-256", "sha256=00")]);
        assert_ne!(
            key("a", &scheme, &verified(None, None), &sent, b"{}"),
            key("b", &scheme, &verified(None, None), &sent, b"{}")
        );
    }
}

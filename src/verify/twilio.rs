//! Twilio: `X-Twilio-Signature` is a base64 HMAC over the public URL plus the sorted form
//! parameters, keyed with the account's auth token (or a `SharedKey` secret).
//!
//! The URL is signed, so the route must know the public URL the sender called; the handler puts
//! it in [`SignedRequest::url`]. Twilio's own validators also accept the URL with its port removed
//! or the scheme's default port added, and so do we. JSON bodies are covered indirectly: Twilio adds
//! `bodySHA256=<hex>` to the signed URL, and the body must hash to it.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use constant_time_eq::constant_time_eq;
use hmac::{Hmac, Mac};
use http::Method;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::form_json::form_fields;
use super::{
    Key, Rejection, Signature, SignedRequest, SigningKey, UnixTime, Verified, active_secrets, header_text,
    shared_secret,
};

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
/// `key=<SharedKey id>,algorithm=HMAC_SHA256` when a Webhook Setting signs with a `SharedKey`.
const SETTINGS: HeaderName = HeaderName::from_static("x-twilio-webhooks-signature-settings");
/// Twilio's retry-stable delivery id; not signed, used only to de-duplicate.
const IDEMPOTENCY: HeaderName = HeaderName::from_static("i-twilio-idempotency-token");

/// Twilio: base64 HMAC-SHA1 (or SHA-256 via the settings header) over the public URL plus the sorted form parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Twilio;

impl Twilio {
    /// Verifies `X-Twilio-Signature` under any active key: missing header, then an unreadable
    /// settings header or signature (malformed), then the signature and any `bodySHA256`.
    ///
    /// The `SharedKey` id in the settings header is not mapped to a key: every active secret is tried.
    pub fn verify(&self, keys: &[Key], request: SignedRequest<'_>, now: UnixTime) -> Result<Verified, Rejection> {
        let presented = header_text(request.headers, &SIGNATURE)?.ok_or_else(|| Rejection::missing(&SIGNATURE))?;
        let algorithm = Algorithm::from_headers(request.headers)?;
        // Canonical standard base64 of exactly one MAC, so equal MACs mean equal strings.
        match STANDARD.decode(presented) {
            Ok(mac) if mac.len() == algorithm.mac_len() => {}
            _ => return Err(Rejection::malformed(&SIGNATURE)),
        }
        let url = public_url(&request)?;
        let payload = Payload::of(&request, url)?;

        let variants = url_variants(url);
        let mut matched = None;
        for (index, secret) in active_secrets(keys, now) {
            for variant in &variants {
                let expected = algorithm.sign(secret.expose(), variant, &payload.params);
                if constant_time_eq(expected.as_bytes(), presented.as_bytes()) && matched.is_none() {
                    matched = Some(index);
                }
            }
        }
        match matched {
            Some(key_index) if payload.body_hash_ok => {
                let delivery_id = header_text(request.headers, &IDEMPOTENCY).ok().flatten().map(str::to_owned);
                Ok(Verified { key_index, timestamp: None, delivery_id })
            }
            _ => Err(Rejection::SignatureMismatch),
        }
    }

    /// The `x-twilio-signature` header for the URL as given: HMAC-SHA1, or HMAC-SHA256 when the
    /// request already carries the settings header asking for it. The body is sent unchanged.
    pub fn sign(&self, key: &SigningKey, request: SignedRequest<'_>) -> Result<Signature, Rejection> {
        let secret = shared_secret(key)?;
        let algorithm = Algorithm::from_headers(request.headers)?;
        let url = public_url(&request)?;
        let payload = Payload::of(&request, url)?;
        let value = algorithm.sign(secret.expose(), url, &payload.params);
        let value = HeaderValue::try_from(value).map_err(|_| Rejection::malformed(&SIGNATURE))?;
        Ok(Signature { headers: vec![(SIGNATURE, value)], body: None })
    }
}

/// The MAC Twilio signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha1,
    Sha256,
}

impl Algorithm {
    /// HMAC-SHA1 unless the settings header names another algorithm; an unreadable settings
    /// header is malformed rather than silently SHA-1 (which would only ever mismatch).
    fn from_headers(headers: &HeaderMap) -> Result<Self, Rejection> {
        let Some(settings) = header_text(headers, &SETTINGS)? else { return Ok(Self::Sha1) };
        let mut algorithm = None;
        for element in settings.split(',') {
            let (name, value) = element.split_once('=').ok_or_else(|| Rejection::malformed(&SETTINGS))?;
            if name.trim().eq_ignore_ascii_case("algorithm") {
                algorithm = match value.trim().to_ascii_uppercase().as_str() {
                    "HMAC_SHA256" => Some(Self::Sha256),
                    "HMAC_SHA1" => Some(Self::Sha1),
                    _ => return Err(Rejection::malformed(&SETTINGS)),
                };
            }
        }
        // As twilio-python reads it: no `algorithm=` element means the default, HMAC-SHA1.
        Ok(algorithm.unwrap_or(Self::Sha1))
    }

    fn mac_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// `base64(HMAC(key, url + params))`.
    fn sign(self, key: &[u8], url: &str, params: &str) -> String {
        let mac = match self {
            Self::Sha1 => mac::<Hmac<Sha1>>(key, url, params),
            Self::Sha256 => mac::<Hmac<Sha256>>(key, url, params),
        };
        STANDARD.encode(mac)
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], url: &str, params: &str) -> Vec<u8> {
    // HMAC takes keys of any length, so this arm is never taken.
    let Ok(mut mac) = <M as Mac>::new_from_slice(key) else { return Vec::new() };
    mac.update(url.as_bytes());
    mac.update(params.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn public_url<'a>(request: &SignedRequest<'a>) -> Result<&'a str, Rejection> {
    // The config requires public_url on Twilio routes, so this is a wiring error, not the sender's.
    request.url.ok_or_else(|| Rejection::Missing("public URL (set public_url on the route)".into()))
}

/// What the signature covers after the URL, and whether the body matches the signed hash.
struct Payload {
    params: String,
    body_hash_ok: bool,
}

impl Payload {
    fn of(request: &SignedRequest<'_>, url: &str) -> Result<Self, Rejection> {
        if let Some(expected) = body_sha256(url) {
            // JSON and other non-form bodies: the URL carries the body's hash, nothing is appended.
            let mut digest = Sha256::new();
            request.body.pieces().for_each(|piece| digest.update(piece));
            let actual = hex::encode(digest.finalize());
            let body_hash_ok = constant_time_eq(actual.as_bytes(), expected.as_bytes());
            return Ok(Self { params: String::new(), body_hash_ok });
        }
        if request.method == Method::GET {
            // GET callbacks carry their parameters in the (signed) query string.
            return Ok(Self { params: String::new(), body_hash_ok: true });
        }
        // The body is always read as a form here, whatever its Content-Type, so every byte of it
        // is covered by the signature.
        let received = request.body.contiguous();
        let text = std::str::from_utf8(&received).map_err(|_| Rejection::MalformedBody("form body is not UTF-8"))?;
        Ok(Self { params: sorted_params(text), body_hash_ok: true })
    }
}

/// The first `bodySHA256` query parameter of `url`, decoded.
fn body_sha256(url: &str) -> Option<Cow<'_, str>> {
    let (_, after) = url.split_once('?')?;
    let query = after.split_once('#').map_or(after, |(query, _)| query);
    form_fields(query).find(|(name, _)| name == "bodySHA256").map(|(_, value)| value)
}

/// Names sorted by code point, then each distinct value of a name sorted, as `name + value` each.
/// `form_fields` reads the body as Werkzeug does, which is what twilio-python sees under Flask.
fn sorted_params(body: &str) -> String {
    let mut params: Vec<_> = form_fields(body).collect();
    // Sorting the pairs orders names, then the values of each name; `str` orders by UTF-8 bytes,
    // which is code-point order. Equal pairs are adjacent, and a repeated value counts once.
    params.sort_unstable();
    params.dedup();
    let mut out = String::with_capacity(body.len());
    for (name, value) in &params {
        out.push_str(name);
        out.push_str(value);
    }
    out
}

/// The URL as given, then without its port, then with the scheme's default port (duplicates dropped).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some(scheme_end) = url.find("://") else { return variants };
    let scheme = url.get(..scheme_end).unwrap_or_default();
    let host_start = scheme_end + 3;
    let rest = url.get(host_start..).unwrap_or_default();
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..authority_len).unwrap_or_default();
    // The port follows the last ':' of the host, which is after any userinfo and IPv6 brackets.
    let host_offset = authority.rfind('@').map_or(0, |at| at + 1);
    let host = authority.get(host_offset..).unwrap_or_default();
    let after_brackets = host.rfind(']').map_or(0, |end| end + 1);
    let port_colon = host.get(after_brackets..).and_then(|tail| tail.rfind(':')).map(|colon| after_brackets + colon);

    let host_end = host_start + authority_len;
    let (head, tail) = (url.get(..host_end).unwrap_or_default(), url.get(host_end..).unwrap_or_default());
    let variant = match port_colon {
        Some(colon) => {
            let cut = host_start + host_offset + colon;
            format!("{}{tail}", url.get(..cut).unwrap_or_default())
        }
        None if scheme.eq_ignore_ascii_case("https") => format!("{head}:443{tail}"),
        None if scheme.eq_ignore_ascii_case("http") => format!("{head}:80{tail}"),
        None => return variants,
    };
    if variant != url {
        variants.push(variant);
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "f01f0fb7e20c3da8517d278e959b4ef8";
    const NOW: i64 = 1_718_000_000;
    const URL: &str = "https://hooks.example.com/twilio/sms";
    const FORM: &str = "To=%2B14155550199&Body=Hi+there&MediaUrl=b&MediaUrl=a";

    fn request<'a>(method: &'a Method, url: Option<&'a str>, headers: &'a HeaderMap, body: &[u8]) -> SignedRequest<'a> {
        // Leaked so the request can be returned and reused: a few bytes per test call.
        SignedRequest { method, url, headers, body: Box::leak(Box::new(crate::body::Body::from(body))) }
    }

    fn form_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        headers
    }

    /// Signs `body` for `url` and returns the headers with the signature attached.
    fn signed(mut headers: HeaderMap, method: &Method, url: &str, body: &[u8]) -> HeaderMap {
        let key = SigningKey::Shared(crate::config::secret::Secret::new(TOKEN));
        let signature = Twilio.sign(&key, request(method, Some(url), &headers, body)).unwrap();
        assert_eq!(signature.body, None);
        headers.extend(signature.headers);
        headers
    }

    #[test]
    fn sign_then_verify() {
        let keys = [Key::shared("other"), Key::shared(TOKEN)];
        let post = Method::POST;
        let headers = signed(form_headers(), &post, URL, FORM.as_bytes());
        let verified =
            Twilio.verify(&keys, request(&post, Some(URL), &headers, FORM.as_bytes()), UnixTime::from_secs(NOW));
        assert_eq!(verified, Ok(Verified { key_index: 1, timestamp: None, delivery_id: None }));
        // The sender may have signed the URL with the default port.
        let with_port = "https://hooks.example.com:443/twilio/sms";
        let req = request(&post, Some(with_port), &headers, FORM.as_bytes());
        assert!(Twilio.verify(&keys, req, UnixTime::from_secs(NOW)).is_ok());
    }

    #[test]
    fn sign_then_verify_sha256_and_json_and_get() {
        let keys = [Key::shared(TOKEN)];
        let now = UnixTime::from_secs(NOW);
        let (post, get) = (Method::POST, Method::GET);

        let mut settings = form_headers();
        settings.insert(SETTINGS, HeaderValue::from_static("key=webhooks_sharedkey_x,algorithm=HMAC_SHA256"));
        let headers = signed(settings, &post, URL, FORM.as_bytes());
        assert_eq!(STANDARD.decode(headers[&SIGNATURE].as_bytes()).unwrap().len(), 32);
        assert!(Twilio.verify(&keys, request(&post, Some(URL), &headers, FORM.as_bytes()), now).is_ok());

        let json = br#"{"a":1}"#;
        let url = format!("{URL}?bodySHA256={}", hex::encode(Sha256::digest(json)));
        let headers = signed(HeaderMap::new(), &post, &url, json);
        assert!(Twilio.verify(&keys, request(&post, Some(&url), &headers, json), now).is_ok());
        let req = request(&post, Some(&url), &headers, br#"{"a":2}"#);
        assert_eq!(Twilio.verify(&keys, req, now), Err(Rejection::SignatureMismatch));

        let url = format!("{URL}?a=1");
        let headers = signed(HeaderMap::new(), &get, &url, b"");
        assert!(Twilio.verify(&keys, request(&get, Some(&url), &headers, b"ignored"), now).is_ok());
    }

    #[test]
    fn params_sorted_by_code_point_with_distinct_values() {
        assert_eq!(sorted_params("a=2&_x=1&B=3&a=1&a=2&c"), "B3_x1a1a2c");
        assert_eq!(sorted_params("é=1&z=2"), "z2é1");
        assert_eq!(sorted_params(""), "");
    }

    #[test]
    fn sorted_params_as_a_map_of_distinct_values() {
        use proptest::prelude::*;
        use std::collections::{BTreeMap, BTreeSet};
        proptest!(|(body in "([aB_%+é]{0,3}(=[ab%+2é]{0,3})?&?){0,8}")| {
            let mut params: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (name, value) in super::super::form_json::parse_form(&body) {
                params.entry(name).or_default().insert(value);
            }
            let expected: String =
                params.iter().flat_map(|(name, values)| values.iter().map(move |v| format!("{name}{v}"))).collect();
            prop_assert_eq!(sorted_params(&body), expected);
        });
    }

    #[test]
    fn url_variants_toggle_the_port() {
        assert_eq!(url_variants("https://h.example/p?q=1"), ["https://h.example/p?q=1", "https://h.example:443/p?q=1"]);
        assert_eq!(url_variants("http://h.example"), ["http://h.example", "http://h.example:80"]);
        assert_eq!(url_variants("https://h.example:8443/p"), ["https://h.example:8443/p", "https://h.example/p"]);
        assert_eq!(url_variants("https://u:pw@[::1]:9/p"), ["https://u:pw@[::1]:9/p", "https://u:pw@[::1]/p"]);
        assert_eq!(url_variants("https://u:pw@[::1]/p"), ["https://u:pw@[::1]/p", "https://u:pw@[::1]:443/p"]);
        assert_eq!(url_variants("ftp://h/p"), ["ftp://h/p"]);
        assert_eq!(url_variants("not a url"), ["not a url"]);
        for odd in ["", "://", "https://", "https://:", "https://@:", "é://é:é/é", "https://[::1"] {
            assert_eq!(url_variants(odd).first().map(String::as_str), Some(odd));
        }
    }

    #[test]
    fn expired_key_is_not_used() {
        let post = Method::POST;
        let headers = signed(form_headers(), &post, URL, FORM.as_bytes());
        let now = UnixTime::from_secs(NOW);
        let expired = Key { not_after: Some(UnixTime::from_secs(NOW - 1)), ..Key::shared(TOKEN) };
        let req = request(&post, Some(URL), &headers, FORM.as_bytes());
        assert_eq!(Twilio.verify(std::slice::from_ref(&expired), req, now), Err(Rejection::SignatureMismatch));
        let verified = Twilio.verify(&[expired, Key::shared(TOKEN)], req, now).unwrap();
        assert_eq!(verified.key_index, 1);
    }

    #[test]
    fn delivery_id_comes_from_the_idempotency_token() {
        let post = Method::POST;
        let mut headers = signed(form_headers(), &post, URL, FORM.as_bytes());
        headers.insert(IDEMPOTENCY, HeaderValue::from_static("1-abc"));
        let req = request(&post, Some(URL), &headers, FORM.as_bytes());
        let verified = Twilio.verify(&[Key::shared(TOKEN)], req, UnixTime::from_secs(NOW)).unwrap();
        assert_eq!(verified.delivery_id.as_deref(), Some("1-abc"));
    }

    #[test]
    fn each_rejection() {
        let keys = [Key::shared(TOKEN)];
        let now = UnixTime::from_secs(NOW);
        let post = Method::POST;
        let good = signed(form_headers(), &post, URL, FORM.as_bytes());
        let verify = |headers: &HeaderMap, url: Option<&str>, body: &[u8]| {
            Twilio.verify(&keys, request(&post, url, headers, body), now)
        };

        assert!(matches!(verify(&form_headers(), Some(URL), FORM.as_bytes()), Err(Rejection::Missing(_))));
        assert_eq!(
            verify(&good, None, FORM.as_bytes()),
            Err(Rejection::Missing("public URL (set public_url on the route)".into()))
        );
        for bad in ["XJW6Wa2jmVJc75fRIDPJyd8wAts", "XJW6Wa2jmVJc75fRIDPJyd8wAtt=", "XJW6Wa2jmVJc75fRIDPJyd8wAts=="] {
            let mut headers = good.clone();
            headers.insert(SIGNATURE, HeaderValue::from_static(bad));
            assert_eq!(verify(&headers, Some(URL), FORM.as_bytes()), Err(Rejection::malformed(&SIGNATURE)), "{bad}");
        }
        // twilio-python reads a settings header without `algorithm=` as the SHA-1 default.
        let mut sha1_default = good.clone();
        sha1_default.insert(SETTINGS, HeaderValue::from_static("key=x"));
        assert!(verify(&sha1_default, Some(URL), FORM.as_bytes()).is_ok());
        for bad in ["algorithm=HMAC_MD5", "garbage"] {
            let mut headers = good.clone();
            headers.insert(SETTINGS, HeaderValue::from_static(bad));
            assert_eq!(verify(&headers, Some(URL), FORM.as_bytes()), Err(Rejection::malformed(&SETTINGS)), "{bad}");
        }
        assert!(matches!(verify(&good, Some(URL), b"Body=\xff"), Err(Rejection::MalformedBody(_))));
        assert_eq!(verify(&good, Some(URL), b"Body=Hi"), Err(Rejection::SignatureMismatch));
        assert_eq!(
            verify(&good, Some("http://hooks.example.com/twilio/sms"), FORM.as_bytes()),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn arbitrary_input_never_panics() {
        use proptest::prelude::*;
        proptest!(|(url in "[a-z:/@\\[\\]?#=&%0-9.é]{0,40}", body in proptest::collection::vec(any::<u8>(), 0..64))| {
            let (headers, post) = (signed(form_headers(), &Method::POST, URL, b""), Method::POST);
            let req = request(&post, Some(&url), &headers, &body);
            let _ = Twilio.verify(&[Key::shared(TOKEN)], req, UnixTime::from_secs(NOW));
        });
    }
}

//! Credential schemes: the sender proves itself with a secret carried in a header (GitLab's
//! `X-Gitlab-Token`, Postmark's HTTP Basic), not with a signature over the body.
//!
//! Nothing binds the credential to the body, so a captured request can be altered and replayed;
//! these routes need TLS. Comparisons hash both sides first and compare the digests in constant
//! time, so timing reveals neither how much of a guess was right nor the secret's exact length.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use constant_time_eq::constant_time_eq;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::{
    Key, Rejection, Signature, SignedRequest, SigningKey, UnixTime, Verified, active_secrets, header_text,
    shared_secret,
};

/// `Credentials::header` hands out a reference, so the Basic header name lives in a static.
static AUTHORIZATION_HEADER: HeaderName = AUTHORIZATION;

/// Schemes whose proof is a credential in a header, not a signature over the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The header carries the configured token verbatim (GitLab's X-Gitlab-Token, or any header):
    /// constant-time compare.
    Token { header: HeaderName },
    /// `Authorization: Basic base64(user:password)` compared with the configured `user:password` (Postmark).
    Basic,
}

impl Credentials {
    /// Accepts the request when its credential equals an active key's secret.
    ///
    /// `Token`: absent or empty is missing, anything else either matches or mismatches (the
    /// token's bytes are compared as sent, so non-ASCII tokens work; a repeated header mismatches).
    /// `Basic`: absent is missing; not `Basic <base64>` of a `user:password` is malformed.
    pub fn verify(&self, keys: &[Key], request: SignedRequest<'_>, now: UnixTime) -> Result<Verified, Rejection> {
        let presented = match self {
            Self::Token { header } => token(request.headers, header)?,
            Self::Basic => basic(request.headers)?,
        };
        let presented = Sha256::digest(&presented);
        let mut matched = None;
        for (index, secret) in active_secrets(keys, now) {
            let same = constant_time_eq(presented.as_slice(), Sha256::digest(secret.expose()).as_slice());
            if same && matched.is_none() {
                matched = Some(index);
            }
        }
        let key_index = matched.ok_or(Rejection::SignatureMismatch)?;
        Ok(Verified { key_index, timestamp: None, delivery_id: None })
    }

    /// The header a sender attaches: the token itself, or `Basic base64(user:password)`.
    pub fn sign(&self, key: &SigningKey) -> Result<Signature, Rejection> {
        let secret = shared_secret(key)?.expose();
        let value = match self {
            Self::Token { .. } => HeaderValue::from_bytes(secret),
            Self::Basic if !secret.contains(&b':') => {
                return Err(Rejection::Malformed("signing key: Basic credentials are user:password".into()));
            }
            Self::Basic => HeaderValue::try_from(format!("Basic {}", STANDARD.encode(secret))),
        };
        let mut value = value.map_err(|_| Rejection::Malformed("signing key: not a valid header value".into()))?;
        value.set_sensitive(true);
        Ok(Signature { headers: vec![(self.header().clone(), value)], body: None })
    }

    /// The header that carries the credential (`authorization` for Basic).
    pub fn header(&self) -> &HeaderName {
        match self {
            Self::Token { header } => header,
            Self::Basic => &AUTHORIZATION_HEADER,
        }
    }
}

/// The token's raw bytes, trimmed of spaces and tabs.
fn token(headers: &HeaderMap, name: &HeaderName) -> Result<Vec<u8>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Err(Rejection::missing(name)) };
    if values.next().is_some() {
        // No malformed outcome for a token: which copy was meant is unknowable, so neither counts.
        return Err(Rejection::SignatureMismatch);
    }
    let bytes = value.as_bytes();
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).ok_or_else(|| Rejection::missing(name))?;
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |last| last + 1);
    Ok(bytes.get(start..end).unwrap_or_default().to_vec())
}

/// The decoded `user:password` of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Result<Vec<u8>, Rejection> {
    let text = header_text(headers, &AUTHORIZATION)?.ok_or_else(|| Rejection::missing(&AUTHORIZATION))?;
    let malformed = || Rejection::malformed(&AUTHORIZATION);
    let (scheme, credentials) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(credentials.trim_start_matches(' ')).map_err(|_| malformed())?;
    if !decoded.contains(&b':') {
        return Err(malformed());
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::config::secret::Secret;

    const NOW: i64 = 1_718_000_000;
    const USER_PASSWORD: &str = "pm-9EDCV3vD:rdwmCmOdVO8H2jlLC58X:x";

    fn gitlab() -> Credentials {
        Credentials::Token { header: HeaderName::from_static("x-gitlab-token") }
    }

    fn verify(scheme: &Credentials, keys: &[Key], headers: &HeaderMap) -> Result<Verified, Rejection> {
        let request = SignedRequest { method: &Method::POST, url: None, headers, body: &b"{}".into() };
        scheme.verify(keys, request, UnixTime::from_secs(NOW))
    }

    fn with(name: &HeaderName, value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(name.clone(), HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn sign_then_verify() {
        for (scheme, secret) in [(gitlab(), "tök€n-U1tc5Od3"), (Credentials::Basic, USER_PASSWORD)] {
            let signature = scheme.sign(&SigningKey::Shared(Secret::new(secret))).unwrap();
            assert_eq!(signature.body, None);
            let [(name, value)] = signature.headers.try_into().unwrap();
            assert_eq!(&name, scheme.header());
            assert!(value.is_sensitive());
            let headers = with(&name, value.as_bytes());
            let keys = [Key::shared("other:one"), Key::shared(secret)];
            assert_eq!(
                verify(&scheme, &keys, &headers),
                Ok(Verified { key_index: 1, timestamp: None, delivery_id: None })
            );
        }
    }

    #[test]
    fn sign_refuses_keys_it_cannot_send() {
        let sign = |scheme: &Credentials, secret: &str| scheme.sign(&SigningKey::Shared(Secret::new(secret)));
        assert!(matches!(sign(&Credentials::Basic, "no-colon"), Err(Rejection::Malformed(_))));
        assert!(matches!(sign(&gitlab(), "line\nbreak"), Err(Rejection::Malformed(_))));
    }

    #[test]
    fn header_names_the_credential() {
        assert_eq!(gitlab().header().as_str(), "x-gitlab-token");
        assert_eq!(Credentials::Basic.header(), &AUTHORIZATION);
    }

    #[test]
    fn expired_key_is_not_used() {
        let expired = Key { not_after: Some(UnixTime::from_secs(NOW - 1)), ..Key::shared("tok") };
        let headers = with(gitlab().header(), b"tok");
        assert_eq!(verify(&gitlab(), std::slice::from_ref(&expired), &headers), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(&gitlab(), &[expired, Key::shared("tok")], &headers).map(|v| v.key_index), Ok(1));
        let still = Key { not_after: Some(UnixTime::from_secs(NOW)), ..Key::shared("tok") };
        assert!(verify(&gitlab(), &[still], &headers).is_ok());
    }

    #[test]
    fn token_rejections() {
        let scheme = gitlab();
        let keys = [Key::shared("tok")];
        assert_eq!(verify(&scheme, &keys, &HeaderMap::new()), Err(Rejection::missing(scheme.header())));
        assert_eq!(verify(&scheme, &keys, &with(scheme.header(), b" \t ")), Err(Rejection::missing(scheme.header())));
        assert!(verify(&scheme, &keys, &with(scheme.header(), b" tok\t")).is_ok());
        assert_eq!(verify(&scheme, &keys, &with(scheme.header(), b"to")), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(&scheme, &keys, &with(scheme.header(), b"\xfftok")), Err(Rejection::SignatureMismatch));
        let mut twice = with(scheme.header(), b"tok");
        twice.append(scheme.header().clone(), HeaderValue::from_static("tok"));
        assert_eq!(verify(&scheme, &keys, &twice), Err(Rejection::SignatureMismatch));
        assert_eq!(verify(&scheme, &[], &with(scheme.header(), b"tok")), Err(Rejection::SignatureMismatch));
    }

    #[test]
    fn basic_rejections() {
        let keys = [Key::shared("u:p")];
        let auth = |value: &[u8]| verify(&Credentials::Basic, &keys, &with(&AUTHORIZATION, value));
        assert_eq!(verify(&Credentials::Basic, &keys, &HeaderMap::new()), Err(Rejection::missing(&AUTHORIZATION)));
        assert!(auth(b"BASIC dTpw").is_ok());
        assert!(auth(b"Basic  dTpw").is_ok());
        for bad in [
            &b"Basic"[..],
            b"Basic ",
            b"dTpw",
            b"Basic dTpw=",
            b"Basic dTpw\xff",
            b"Basicx dTpw",
            b"Digest dTpw",
            b"Basic dQ==",
        ] {
            assert_eq!(auth(bad), Err(Rejection::malformed(&AUTHORIZATION)), "{}", String::from_utf8_lossy(bad));
        }
        // The password may itself contain colons; the whole decoded text is compared.
        assert_eq!(auth(format!("Basic {}", STANDARD.encode("u:p:")).as_bytes()), Err(Rejection::SignatureMismatch));
        assert_eq!(auth(format!("Basic {}", STANDARD.encode("u:P")).as_bytes()), Err(Rejection::SignatureMismatch));
    }

    #[test]
    fn arbitrary_headers_never_panic() {
        use proptest::prelude::*;
        let keys = [Key::shared("u:p")];
        proptest!(|(value in proptest::collection::vec(any::<u8>(), 0..48))| {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                for scheme in [gitlab(), Credentials::Basic] {
                    let mut headers = HeaderMap::new();
                    headers.insert(scheme.header().clone(), value.clone());
                    let _ = verify(&scheme, &keys, &headers);
                }
            }
        });
    }
}

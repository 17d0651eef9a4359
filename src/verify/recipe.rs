//! The engine: a signing scheme described as data. Where the signature is and how it is laid
//! out, how its bytes are written, which MAC or signature algorithm, over which message, with
//! which timestamp. `sign` and `verify` render the message through the same code, so they
//! cannot disagree.

use constant_time_eq::constant_time_eq;
use http::HeaderName;
use http::header::HeaderValue;

use super::crypto::{Crypto, Encoding, ecdsa_p256_verifies};
use super::layout::{Layout, Presented};
use super::message::{Message, Template};
use super::timestamp::{TimestampRule, TimestampSource};
use super::{
    Key, KeyKind, KeyMaterial, Rejection, Signature, SignedRequest, SigningKey, UnixTime, Verified, active_secrets,
    first_header, header_text,
};

/// A complete signing scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Headers that may carry the signature, in order of preference; the first present is read.
    pub signature_headers: Vec<HeaderName>,
    pub layout: Layout,
    pub encoding: Encoding,
    pub crypto: Crypto,
    pub timestamp: Option<TimestampRule>,
    pub message: Template,
    /// Headers with the provider's delivery id (first present wins), for logs and de-duplication.
    pub id_headers: Vec<HeaderName>,
    /// The secret is written `whsec_<base64>` and the MAC key is its decoded bytes.
    pub whsec_secret: bool,
    /// An empty body is malformed (the provider's own library refuses it).
    pub require_body: bool,
    /// A mismatched signature is answered 401 instead of 403 (Discord requires it).
    pub mismatch_is_unauthorized: bool,
    /// The recipe to use when none of `signature_headers` is present (Square's legacy header).
    pub fallback: Option<Box<Recipe>>,
}

impl Recipe {
    pub fn key_kind(&self) -> KeyKind {
        match self.crypto {
            Crypto::Hmac(_) if self.whsec_secret => KeyKind::SharedBase64,
            Crypto::Hmac(_) => KeyKind::Shared,
            Crypto::Ed25519 => KeyKind::Ed25519Public,
            Crypto::EcdsaP256 => KeyKind::P256Public,
        }
    }

    pub fn signs_url(&self) -> bool {
        self.message.signs_url() || self.fallback.as_ref().is_some_and(|f| f.signs_url())
    }

    /// Every header that carries signature material (signature, timestamp, signed ids).
    pub fn signature_headers(&self) -> Vec<HeaderName> {
        let mut names = self.signature_headers.clone();
        if let Some(TimestampRule { source: TimestampSource::Header(headers), .. }) = &self.timestamp {
            names.extend(headers.iter().cloned());
        }
        if let Some(fallback) = &self.fallback {
            names.extend(fallback.signature_headers());
        }
        names
    }

    pub(super) fn verify(
        &self,
        keys: &[Key],
        request: SignedRequest<'_>,
        now: UnixTime,
    ) -> Result<Verified, Rejection> {
        // Presence first, for every header the scheme needs.
        let (signature_header, signature) =
            match (first_header(request.headers, &self.signature_headers), &self.fallback) {
                (Err(Rejection::Missing(_)), Some(fallback)) => return fallback.verify(keys, request, now),
                (found, _) => found?,
            };
        let timestamp_header = match &self.timestamp {
            Some(TimestampRule { source: TimestampSource::Header(names), .. }) => {
                Some(first_header(request.headers, names)?)
            }
            _ => None,
        };
        self.message.check_headers(&request)?;

        // Then parsing.
        let malformed = || Rejection::malformed(signature_header);
        let presented = self.layout.parse(signature).ok_or_else(malformed)?;
        if let Layout::Plain { .. } = self.layout {
            // A single signature must have the right shape; in lists a stray entry just fails to match.
            let shaped = presented.signatures.iter().all(|s| self.crypto.is_well_formed(self.encoding, s));
            if !shaped {
                return Err(malformed());
            }
        }
        let timestamp_text = timestamp_header.map(|(_, text)| text).or(presented.timestamp).unwrap_or("");
        let signed_at = match (&self.timestamp, timestamp_header) {
            (Some(rule), Some((name, text))) => {
                Some(rule.format.parse(text).ok_or_else(|| Rejection::malformed(name))?)
            }
            (Some(rule @ TimestampRule { source: TimestampSource::SignatureHeader, .. }), None) => {
                Some(rule.format.parse(timestamp_text).ok_or_else(malformed)?)
            }
            _ => None,
        };
        if self.require_body && request.body.is_empty() {
            return Err(Rejection::MalformedBody("the scheme signs a body and it is empty"));
        }
        let message = self.message.render(&request, timestamp_text)?;

        // Then the signature under each active key.
        let key_index = self.matching_key(keys, &presented, &message, now).ok_or(Rejection::SignatureMismatch)?;

        // Freshness last: only a correctly signed request learns that its clock is off.
        let signed_at = match &self.timestamp {
            Some(TimestampRule { source: TimestampSource::BodyField(field), format, .. }) => {
                Some(body_timestamp(&request.body.contiguous(), field, *format)?)
            }
            _ => signed_at,
        };
        if let (Some(rule), Some(at)) = (&self.timestamp, signed_at)
            && !rule.is_fresh(at, now)
        {
            return Err(Rejection::TimestampOutsideTolerance);
        }
        let delivery_id = self.id_headers.iter().find_map(|name| header_text(request.headers, name).ok().flatten());
        Ok(Verified { key_index, timestamp: signed_at, delivery_id: delivery_id.map(str::to_owned) })
    }

    /// The index of the first active key under which any presented signature is valid.
    fn matching_key(
        &self,
        keys: &[Key],
        presented: &Presented<'_>,
        message: &Message<'_>,
        now: UnixTime,
    ) -> Option<usize> {
        match self.crypto {
            Crypto::Hmac(algorithm) => active_secrets(keys, now).find_map(|(index, secret)| {
                // Compare encoded strings, as the providers do: upper-case hex never matches.
                let mac = algorithm.mac(secret, message.pieces());
                let mut text = [0; 128];
                let expected = self.encoding.encode_mac(&mac, &mut text);
                // Every presented signature is compared, so the time does not say which matched.
                let matched =
                    presented.signatures.iter().fold(false, |any, s| any | constant_time_eq(expected, s.as_bytes()));
                matched.then_some(index)
            }),
            Crypto::Ed25519 => {
                use ed25519_dalek::Verifier as _;
                let message = message.to_vec();
                let signatures: Vec<_> = presented
                    .signatures
                    .iter()
                    .filter_map(|s| ed25519_dalek::Signature::from_slice(&self.encoding.decode(s)?).ok())
                    .collect();
                active_keys(keys, now).find_map(|(index, key)| match key {
                    KeyMaterial::Ed25519(public) => {
                        signatures.iter().any(|signature| public.verify(&message, signature).is_ok()).then_some(index)
                    }
                    KeyMaterial::Shared(_) | KeyMaterial::P256(_) => None,
                })
            }
            Crypto::EcdsaP256 => {
                let message = message.to_vec();
                // Only what `p256` parses is offered to ring, so no signature form is newly accepted.
                let signatures: Vec<_> = presented
                    .signatures
                    .iter()
                    .filter_map(|s| self.encoding.decode(s))
                    .filter(|der| p256::ecdsa::Signature::from_der(der).is_ok())
                    .collect();
                active_keys(keys, now).find_map(|(index, key)| match key {
                    KeyMaterial::P256(public) => {
                        signatures.iter().any(|der| ecdsa_p256_verifies(public, &message, der)).then_some(index)
                    }
                    KeyMaterial::Shared(_) | KeyMaterial::Ed25519(_) => None,
                })
            }
        }
    }

    /// The headers a sender attaches to `request` at `now` (or with the timestamp text given).
    /// Signed id headers the request lacks are generated.
    pub(super) fn sign(
        &self,
        key: &SigningKey,
        request: SignedRequest<'_>,
        now: UnixTime,
        timestamp: Option<&str>,
    ) -> Result<Signature, Rejection> {
        let mut added = Vec::new();
        // A timestamp header the request already carries is signed as it is.
        let present = match &self.timestamp {
            Some(TimestampRule { source: TimestampSource::Header(names), .. }) if timestamp.is_none() => {
                first_header(request.headers, names).ok().map(|(_, text)| text.to_owned())
            }
            _ => None,
        };
        let timestamp_text = match (&self.timestamp, &present) {
            (Some(_), Some(text)) => text.clone(),
            (Some(rule), None) => timestamp.map_or_else(|| rule.format.format(now), str::to_owned),
            (None, _) => String::new(),
        };
        if let (Some(TimestampRule { source: TimestampSource::Header(names), .. }), None) = (&self.timestamp, &present)
        {
            added.push((names[0].clone(), header_value(&names[0], &timestamp_text)?));
        }
        let mut headers = request.headers.clone();
        for names in self.message.headers() {
            if first_header(&headers, names).is_err() {
                let id = format!("msg_hookgate{:x}", now.as_nanos());
                headers.insert(names[0].clone(), header_value(&names[0], &id)?);
                added.push((names[0].clone(), header_value(&names[0], &id)?));
            }
        }
        let request = SignedRequest { headers: &headers, ..request };
        if let Some(TimestampRule { source: TimestampSource::BodyField(field), format, .. }) = &self.timestamp {
            // The timestamp travels inside the signed body: a body without it could never verify.
            body_timestamp(&request.body.contiguous(), field, *format)?;
        }
        let message = self.message.render(&request, &timestamp_text)?;
        let signature = match (self.crypto, key) {
            (Crypto::Hmac(algorithm), SigningKey::Shared(secret)) => algorithm.mac(secret, message.pieces()).to_vec(),
            (Crypto::Ed25519, SigningKey::Ed25519(private)) => {
                use ed25519_dalek::Signer as _;
                private.sign(&message.to_vec()).to_bytes().to_vec()
            }
            (Crypto::EcdsaP256, SigningKey::P256(private)) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = private.sign(&message.to_vec());
                signature.to_der().as_bytes().to_vec()
            }
            _ => {
                return Err(Rejection::Malformed(format!(
                    "signing key: {} needs another kind of key",
                    self.crypto.describe()
                )));
            }
        };
        let value = self.layout.format(&self.encoding.encode(&signature), &timestamp_text);
        added.insert(0, (self.signature_headers[0].clone(), header_value(&self.signature_headers[0], &value)?));
        Ok(Signature { headers: added, body: None })
    }
}

/// The keys active at `now`, with their indexes.
fn active_keys(keys: &[Key], now: UnixTime) -> impl Iterator<Item = (usize, &KeyMaterial)> {
    keys.iter().enumerate().filter(move |(_, key)| key.is_active(now)).map(|(i, key)| (i, &key.material))
}

fn header_value(name: &HeaderName, text: &str) -> Result<HeaderValue, Rejection> {
    HeaderValue::from_str(text).map_err(|_| Rejection::malformed(name))
}

/// A numeric member of a JSON object body, read in `format`'s unit (Linear's
/// `webhookTimestamp`, milliseconds). Strings and booleans are malformed.
fn body_timestamp(body: &[u8], field: &str, format: super::timestamp::TimestampFormat) -> Result<UnixTime, Rejection> {
    let malformed = || Rejection::Malformed(format!("body field {field}"));
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| malformed())?;
    match value.get(field) {
        Some(serde_json::Value::Number(number)) => format.parse(&number.to_string()).ok_or_else(malformed),
        _ => Err(malformed()),
    }
}

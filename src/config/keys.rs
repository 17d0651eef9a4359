//! Key material from the config: shared secrets and public keys, written inline, taken from the
//! environment or read from files, each with an optional `not_after` for rotation.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::Deserialize;

use super::secret::Secret;
use super::{Checker, RawVerify};
use crate::verify::{Key, KeyKind, KeyMaterial, SigningKey, UnixTime};

/// One entry of `secrets:` or `public_keys:`: plain text, or a map with a source and an expiry.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawKey {
    Text(String),
    Entry(RawKeyEntry),
}

/// `{ secret: …, not_after: 2026-12-01T00:00:00Z }` and its variants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyEntry {
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub public_key: Option<String>,
    pub public_key_file: Option<String>,
    pub not_after: Option<String>,
}

/// A key's text before it is parsed: where it was written, and the text or file.
struct Source<'a> {
    at: String,
    text: Option<&'a str>,
    file: Option<&'a str>,
    not_after: Option<&'a str>,
}

impl Checker<'_> {
    /// The keys of a `verify:` block, read as `kind` requires. Shared secrets come from exactly
    /// one of `secret`, `secrets`, `secret_file`; public keys from one of `public_key`,
    /// `public_keys`, `public_key_file`. None at all is allowed only in FreshBooks enrolment mode.
    pub(super) fn keys(&mut self, at: &str, raw: &RawVerify, kind: KeyKind) -> Option<Vec<Key>> {
        let public = matches!(kind, KeyKind::Ed25519Public | KeyKind::P256Public);
        let (one, many, file, names) = if public {
            (&raw.public_key, &raw.public_keys, &raw.public_key_file, ["public_key", "public_keys", "public_key_file"])
        } else {
            (&raw.secret, &raw.secrets, &raw.secret_file, ["secret", "secrets", "secret_file"])
        };
        let wrong_kind = if public {
            raw.secret.is_some() || raw.secrets.is_some() || raw.secret_file.is_some()
        } else {
            raw.public_key.is_some() || raw.public_keys.is_some() || raw.public_key_file.is_some()
        };
        if wrong_kind {
            let wanted = if public {
                "a public key (public_key, public_keys or public_key_file)"
            } else {
                "a shared secret (secret, secrets or secret_file)"
            };
            self.problem(at, format!("scheme {} verifies with {wanted}", raw.scheme));
            return None;
        }
        let sources = match (one, many, file) {
            (None, None, None) if raw.enrolment => Vec::new(),
            (Some(text), None, None) => {
                vec![Source { at: format!("{at}.{}", names[0]), text: Some(text), file: None, not_after: None }]
            }
            (None, None, Some(path)) => {
                vec![Source { at: format!("{at}.{}", names[2]), text: None, file: Some(path), not_after: None }]
            }
            (None, Some(list), None) if !list.is_empty() => {
                let mut sources = Vec::new();
                for (i, entry) in list.iter().enumerate() {
                    let at = format!("{at}.{}[{i}]", names[1]);
                    match entry {
                        RawKey::Text(text) => {
                            sources.push(Source { at, text: Some(text), file: None, not_after: None })
                        }
                        RawKey::Entry(entry) => {
                            let (text, file) = if public {
                                (&entry.public_key, &entry.public_key_file)
                            } else {
                                (&entry.secret, &entry.secret_file)
                            };
                            let misplaced = if public {
                                entry.secret.is_some() || entry.secret_file.is_some()
                            } else {
                                entry.public_key.is_some() || entry.public_key_file.is_some()
                            };
                            if misplaced || text.is_some() == file.is_some() {
                                self.problem(&at, format!("set exactly one of {}, {}", names[0], names[2]));
                                continue;
                            }
                            sources.push(Source {
                                at,
                                text: text.as_deref(),
                                file: file.as_deref(),
                                not_after: entry.not_after.as_deref(),
                            });
                        }
                    }
                }
                sources
            }
            _ => {
                self.problem(
                    at,
                    format!("set exactly one of {}, {} (non-empty list) or {}", names[0], names[1], names[2]),
                );
                return None;
            }
        };
        let mut keys = Vec::new();
        for source in sources {
            if let Some(key) = self.key(source, kind) {
                keys.push(key);
            }
        }
        Some(keys)
    }

    fn key(&mut self, source: Source<'_>, kind: KeyKind) -> Option<Key> {
        let text = match (source.text, source.file) {
            (Some(text), _) => self.interpolate(&source.at, text)?,
            (None, Some(file)) => {
                let file = self.interpolate(&source.at, file)?;
                self.ok(&source.at, read_key_file(&self.base_dir.join(file)))?
            }
            (None, None) => return None,
        };
        if text.is_empty() {
            self.problem(&source.at, "secret is empty");
            return None;
        }
        let material = self.ok(&source.at, key_material(kind, &text))?;
        let not_after = match source.not_after {
            Some(text) => Some(self.ok(&format!("{}.not_after", source.at), rfc3339(text))?),
            None => None,
        };
        Some(Key { material, not_after })
    }
}

fn read_key_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let text = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
    Ok(text.to_owned())
}

fn rfc3339(text: &str) -> Result<UnixTime, String> {
    crate::verify::timestamp::TimestampFormat::Rfc3339
        .parse(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time such as 2026-12-01T00:00:00Z"))
}

/// Base64 that tolerates missing `=` padding, as the Standard Webhooks libraries do.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parses configured key text as `kind` requires.
pub fn key_material(kind: KeyKind, text: &str) -> Result<KeyMaterial, String> {
    match kind {
        KeyKind::Shared => Ok(KeyMaterial::Shared(Secret::new(text))),
        KeyKind::SharedBase64 => {
            let encoded = text.strip_prefix("whsec_").unwrap_or(text);
            let key = LENIENT_BASE64.decode(encoded).map_err(|_| "expected whsec_ followed by base64".to_owned())?;
            Ok(KeyMaterial::Shared(Secret::new(key)))
        }
        KeyKind::Ed25519Public => {
            use ed25519_dalek::pkcs8::DecodePublicKey as _;
            let key = if text.starts_with("-----BEGIN") {
                ed25519_dalek::VerifyingKey::from_public_key_pem(text)
                    .map_err(|e| format!("not an Ed25519 public key PEM: {e}"))?
            } else {
                let bytes = raw_bytes(text).ok_or("expected PEM, or hex or base64 of the 32-byte key")?;
                match <[u8; 32]>::try_from(bytes.as_slice()) {
                    Ok(raw) => ed25519_dalek::VerifyingKey::from_bytes(&raw)
                        .map_err(|e| format!("not an Ed25519 public key: {e}"))?,
                    Err(_) => ed25519_dalek::VerifyingKey::from_public_key_der(&bytes)
                        .map_err(|e| format!("not an Ed25519 public key: {e}"))?,
                }
            };
            Ok(KeyMaterial::Ed25519(key))
        }
        KeyKind::P256Public => {
            use p256::pkcs8::DecodePublicKey as _;
            let key = if text.starts_with("-----BEGIN") {
                p256::ecdsa::VerifyingKey::from_public_key_pem(text)
                    .map_err(|e| format!("not a P-256 public key PEM: {e}"))?
            } else {
                let bytes = raw_bytes(text).ok_or("expected PEM, or base64 of the DER public key")?;
                p256::ecdsa::VerifyingKey::from_public_key_der(&bytes)
                    .or_else(|_| p256::ecdsa::VerifyingKey::from_sec1_bytes(&bytes))
                    .map_err(|e| format!("not a P-256 public key: {e}"))?
            };
            Ok(KeyMaterial::P256(key))
        }
    }
}

/// Parses a sender's key for `hookgate sign`: the shared secret, or a private key (PKCS#8 PEM,
/// or hex/base64 of the raw 32-byte key).
pub fn signing_key(kind: KeyKind, text: &str) -> Result<SigningKey, String> {
    match kind {
        KeyKind::Shared | KeyKind::SharedBase64 => match key_material(kind, text)? {
            KeyMaterial::Shared(secret) => Ok(SigningKey::Shared(secret)),
            KeyMaterial::Ed25519(_) | KeyMaterial::P256(_) => Err("expected a shared secret".into()),
        },
        KeyKind::Ed25519Public => {
            use ed25519_dalek::pkcs8::DecodePrivateKey as _;
            let key = if text.starts_with("-----BEGIN") {
                ed25519_dalek::SigningKey::from_pkcs8_pem(text)
                    .map_err(|e| format!("not an Ed25519 private key PEM: {e}"))?
            } else {
                let bytes = raw_bytes(text).ok_or("expected PEM, or hex or base64 of the 32-byte private key")?;
                let seed = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| "an Ed25519 private key has 32 bytes")?;
                ed25519_dalek::SigningKey::from_bytes(&seed)
            };
            Ok(SigningKey::Ed25519(key))
        }
        KeyKind::P256Public => {
            use p256::pkcs8::DecodePrivateKey as _;
            let key = if text.contains("BEGIN EC PRIVATE KEY") {
                p256::SecretKey::from_sec1_pem(text)
                    .map(Into::into)
                    .map_err(|e| format!("not a P-256 private key PEM: {e}"))?
            } else if text.starts_with("-----BEGIN") {
                p256::ecdsa::SigningKey::from_pkcs8_pem(text)
                    .map_err(|e| format!("not a P-256 private key PEM: {e}"))?
            } else {
                let bytes = raw_bytes(text).ok_or("expected PEM, or hex or base64 of the 32-byte private key")?;
                p256::ecdsa::SigningKey::from_slice(&bytes).map_err(|e| format!("not a P-256 private key: {e}"))?
            };
            Ok(SigningKey::P256(key))
        }
    }
}

/// Hex (either case) or standard base64.
fn raw_bytes(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    hex::decode(text).ok().or_else(|| STANDARD.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_secrets_are_decoded_with_or_without_padding() {
        for text in ["whsec_aGVsbG8=", "whsec_aGVsbG8", "aGVsbG8="] {
            match key_material(KeyKind::SharedBase64, text) {
                Ok(KeyMaterial::Shared(secret)) => assert_eq!(secret.expose(), b"hello", "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(key_material(KeyKind::SharedBase64, "whsec_!!!").is_err());
    }

    #[test]
    fn ed25519_keys_in_every_documented_form() {
        use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, spki::der::pem::LineEnding};
        let private = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let public = private.verifying_key();
        let pem = public.to_public_key_pem(LineEnding::LF).expect("pem");
        for text in [hex::encode(public.as_bytes()), STANDARD.encode(public.as_bytes()), pem] {
            match key_material(KeyKind::Ed25519Public, &text) {
                Ok(KeyMaterial::Ed25519(key)) => assert_eq!(key, public),
                other => panic!("{text}: {other:?}"),
            }
        }
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).expect("pem");
        for text in [private_pem.as_str(), &hex::encode([7; 32])] {
            match signing_key(KeyKind::Ed25519Public, text) {
                Ok(SigningKey::Ed25519(key)) => assert_eq!(key.verifying_key(), public),
                other => panic!("{other:?}"),
            }
        }
        assert!(key_material(KeyKind::Ed25519Public, "abcd").is_err());
    }

    #[test]
    fn p256_keys_as_sendgrid_shows_them() {
        use p256::pkcs8::EncodePublicKey as _;
        let private = p256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("scalar");
        let public = *private.verifying_key();
        let der = public.to_public_key_der().expect("der");
        match key_material(KeyKind::P256Public, &STANDARD.encode(der.as_bytes())) {
            Ok(KeyMaterial::P256(key)) => assert_eq!(key, public),
            other => panic!("{other:?}"),
        }
        assert!(matches!(signing_key(KeyKind::P256Public, &hex::encode([9; 32])), Ok(SigningKey::P256(_))));
    }
}

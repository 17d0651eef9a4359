//! The primitives: MAC algorithms, signature algorithms and how signatures are written.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

use crate::config::secret::Secret;

/// The hash inside an HMAC.
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
    pub fn mac<'a>(self, secret: &Secret, parts: impl IntoIterator<Item = &'a [u8]>) -> MacBytes {
        fn run<'a, M: Mac + KeyInit + Clone>(
            keyed: &OnceLock<M>,
            key: &[u8],
            parts: impl IntoIterator<Item = &'a [u8]>,
        ) -> MacBytes {
            let keyed =
                keyed.get_or_init(|| <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length"));
            let mut mac = keyed.clone();
            parts.into_iter().for_each(|part| mac.update(part));
            let output = mac.finalize().into_bytes();
            let mut bytes = [0; MacBytes::MAX];
            bytes[..output.len()].copy_from_slice(&output);
            MacBytes { bytes, len: output.len() }
        }
        let (keyed, key) = (secret.keyed_macs(), secret.expose());
        match self {
            Self::Md5 => run(&keyed.md5, key, parts),
            Self::Sha1 => run(&keyed.sha1, key, parts),
            Self::Sha256 => run(&keyed.sha256, key, parts),
            Self::Sha512 => run(&keyed.sha512, key, parts),
        }
    }
}

/// One secret's HMAC states with the key already taken in, per algorithm, each made on first
/// use. A MAC starts from a copy instead of padding and hashing the key again: two blocks of the
/// hash, a tenth of the work at 1 KiB. Key material: no `Debug`.
#[derive(Clone, Default)]
pub struct KeyedMacs {
    md5: OnceLock<Hmac<md5::Md5>>,
    sha1: OnceLock<Hmac<sha1::Sha1>>,
    sha256: OnceLock<Hmac<sha2::Sha256>>,
    sha512: OnceLock<Hmac<sha2::Sha512>>,
}

/// A MAC, kept on the stack: verifying a request allocates nothing for it.
#[derive(Debug, Clone, Copy)]
pub struct MacBytes {
    bytes: [u8; MacBytes::MAX],
    len: usize,
}

impl MacBytes {
    /// HMAC-SHA512's 64 bytes, the longest.
    const MAX: usize = 64;
}

impl AsRef<[u8]> for MacBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::ops::Deref for MacBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// How the signature bytes are written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower-case hex. For HMACs, upper-case is well-formed but never matches, as with the
    /// providers' own string comparisons.
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

    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(bytes),
            Self::Base64 => BASE64.encode(bytes),
        }
    }

    /// The text of a MAC, written into `out`: what [`Self::encode`] gives, without allocating.
    pub fn encode_mac<'a>(self, mac: &MacBytes, out: &'a mut [u8; 2 * MacBytes::MAX]) -> &'a [u8] {
        let len = match self {
            Self::Hex => {
                let len = 2 * mac.len();
                hex::encode_to_slice(&**mac, &mut out[..len]).expect("twice the MAC's length");
                len
            }
            Self::Base64 => BASE64.encode_slice(&**mac, out).expect("base64 of 64 bytes fits in 128"),
        };
        &out[..len]
    }

    /// The bytes `text` encodes, if it is well-formed (hex of either case).
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Self::Hex => hex::decode(text).ok(),
            Self::Base64 => BASE64.decode(text).ok(),
        }
    }

    /// How many bytes `text` encodes, if it is well-formed and no longer than two MACs: what
    /// `decode` accepts, without allocating (this runs on every request).
    pub fn decoded_len(self, text: &str) -> Option<usize> {
        let len = match self {
            Self::Hex => {
                (text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())).then_some(text.len() / 2)
            }
            // Room for base64's length estimate, which may exceed what is decoded by a few bytes.
            Self::Base64 => BASE64.decode_slice(text, &mut [0; 3 * MacBytes::MAX]).ok(),
        }?;
        (len <= 2 * MacBytes::MAX).then_some(len)
    }
}

/// What proves the request: a MAC under a shared secret, or a signature under a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crypto {
    Hmac(Algorithm),
    /// Ed25519 (Discord, Standard Webhooks `v1a`); the signature is 64 bytes.
    Ed25519,
    /// ECDSA over P-256 with SHA-256, the signature DER-encoded (SendGrid).
    EcdsaP256,
}

impl Crypto {
    /// Whether `text`, in `encoding`, has the shape of a signature of this kind.
    pub fn is_well_formed(self, encoding: Encoding, text: &str) -> bool {
        match self {
            Crypto::Hmac(algorithm) => encoding.decoded_len(text) == Some(algorithm.output_len()),
            Crypto::Ed25519 => encoding.decoded_len(text) == Some(ed25519_dalek::SIGNATURE_LENGTH),
            Crypto::EcdsaP256 => {
                encoding.decode(text).is_some_and(|der| p256::ecdsa::Signature::from_der(&der).is_ok())
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            Crypto::Hmac(algorithm) => format!("HMAC-{}", algorithm.name().to_uppercase()),
            Crypto::Ed25519 => "Ed25519".into(),
            Crypto::EcdsaP256 => "ECDSA-P256-SHA256 DER".into(),
        }
    }
}

/// Whether `der`, an ECDSA P-256/SHA-256 signature in ASN.1 DER, is valid for `message` under
/// `public`. ring checks it (4x faster than the `p256` crate); `p256` still parses the keys.
///
/// Like `p256` before it, ring accepts high-S signatures, as SendGrid's own verifiers do
/// (starkbank-ecdsa in sendgrid-python and sendgrid-nodejs, `crypto/ecdsa` in sendgrid-go), so
/// a signature SendGrid's libraries accept is accepted here. Both crates require strict DER with
/// r and s in [1, n-1].
pub fn ecdsa_p256_verifies(public: &p256::ecdsa::VerifyingKey, message: &[u8], der: &[u8]) -> bool {
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    let point = public.to_encoded_point(false);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.as_bytes()).verify(message, der).is_ok()
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::Signature;
    use p256::ecdsa::signature::{Signer as _, Verifier as _};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_secret_keyed_once_gives_the_same_mac_every_time() {
        // RFC 4231, test case 2.
        let (secret, expected) =
            (Secret::new("Jefe"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        for _ in 0..3 {
            let pieces = [b"what do ya want ".as_slice(), b"for nothing?"];
            assert_eq!(hex::encode(Algorithm::Sha256.mac(&secret, pieces)), expected);
            assert_eq!(hex::encode(Algorithm::Sha256.mac(&secret.clone(), pieces)), expected);
            // Another algorithm keyed with the same secret has a state of its own.
            assert_eq!(hex::encode(Algorithm::Sha1.mac(&secret, pieces)), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        }
    }

    #[test]
    fn encode_mac_writes_what_encode_returns() {
        for algorithm in [Algorithm::Md5, Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            let mac = algorithm.mac(&Secret::new("key"), [b"message".as_slice()]);
            assert_eq!(mac.len(), algorithm.output_len());
            for encoding in [Encoding::Hex, Encoding::Base64] {
                let mut out = [0; 128];
                assert_eq!(encoding.encode_mac(&mac, &mut out), encoding.encode(&mac).as_bytes());
            }
        }
    }

    proptest! {
        /// The allocation-free shape check accepts exactly what decoding accepts: strings near
        /// the alphabets (padding, case, stray characters) at and around MAC lengths.
        #[test]
        fn decoded_len_agrees_with_decode(
            text in prop_oneof!["[0-9a-fA-F]{0,300}", "[0-9a-fA-Fg =]{0,130}", "[A-Za-z0-9+/]{0,180}={0,3}", "[A-Za-z0-9+/=_ -]{0,180}"],
        ) {
            for encoding in [Encoding::Hex, Encoding::Base64] {
                let decoded = encoding.decode(&text).map(|bytes| bytes.len());
                match decoded {
                    Some(len) if len > 2 * MacBytes::MAX => prop_assert_eq!(encoding.decoded_len(&text), None),
                    _ => prop_assert_eq!(encoding.decoded_len(&text), decoded, "{:?} {}", encoding, &text),
                }
            }
        }
    }

    proptest! {
        // Each case costs a few debug-build ECDSA operations.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn ring_and_p256_agree_on_every_signature(
            message in proptest::collection::vec(any::<u8>(), 0..40),
            flip_at in any::<proptest::sample::Index>(),
            // Half the cases keep the signature intact.
            flip in prop_oneof![Just(0u8), any::<u8>()],
            negate_s in any::<bool>(),
        ) {
            let private = p256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("a P-256 scalar");
            let public = *private.verifying_key();
            let signature: Signature = private.sign(&message);
            // (r, n - s) is valid as well: one of the two has a high S.
            let (r, s) = signature.split_scalars();
            let signature = if negate_s { Signature::from_scalars(r, -*s).expect("in range") } else { signature };
            let mut der = signature.to_der().as_bytes().to_vec();
            let at = flip_at.index(der.len());
            der[at] ^= flip;
            let by_p256 = Signature::from_der(&der).is_ok_and(|signature| public.verify(&message, &signature).is_ok());
            prop_assert_eq!(ecdsa_p256_verifies(&public, &message, &der), by_p256);
        }
    }
}

//! Secret: key material read at load time. It never prints and is never serialised.

use std::fmt;

use crate::verify::crypto::KeyedMacs;

/// A shared secret (or key) held as bytes. `Debug` shows `***`, so a config dump or an error
/// message cannot leak it.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
    /// The HMAC states keyed with it, made as they are first needed (boxed: about 900 bytes).
    keyed: Box<KeyedMacs>,
}

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self { bytes: bytes.into(), keyed: Box::default() }
    }

    /// The key bytes, for the MAC only.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    pub fn keyed_macs(&self) -> &KeyedMacs {
        &self.keyed
    }
}

/// The same key bytes (the keyed states follow from them).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", vec![secret]), "[***]");
    }
}

//! How a signature header value is laid out: one prefixed value, `key=value` items
//! (Stripe, Calendly, Paddle), or a list of `version,signature` entries (Standard Webhooks).

use std::borrow::Cow;

use smallvec::{SmallVec, smallvec};

/// The shape of a signature header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `prefix` followed by one encoded signature, e.g. `sha256=<hex>`.
    Plain { prefix: Cow<'static, str> },
    /// Items split on `separator`, each `key=value` split at the first `=`: exactly one
    /// timestamp item and at least one signature item (any may match); other keys are ignored.
    Params { separator: char, timestamp_key: &'static str, signature_key: &'static str },
    /// Space-separated `version,signature` entries; those of `version` count (any may match).
    Versioned { version: &'static str },
}

/// What a signature header holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented<'a> {
    /// Inline up to two: a plain header holds one, and lists rarely more than two.
    pub signatures: SmallVec<[&'a str; 2]>,
    /// The timestamp element of a `Params` header.
    pub timestamp: Option<&'a str>,
}

impl Layout {
    /// Splits a header value; `None` when it does not have this shape.
    pub fn parse<'a>(&self, text: &'a str) -> Option<Presented<'a>> {
        match self {
            Layout::Plain { prefix } => {
                Some(Presented { signatures: smallvec![text.strip_prefix(prefix.as_ref())?], timestamp: None })
            }
            Layout::Params { separator, timestamp_key, signature_key } => {
                let mut timestamps = Vec::new();
                let mut signatures = SmallVec::new();
                for (key, value) in text.split(*separator).filter_map(|item| item.split_once('=')) {
                    if key == *timestamp_key {
                        timestamps.push(value);
                    } else if key == *signature_key {
                        signatures.push(value);
                    }
                }
                match (timestamps.as_slice(), signatures.is_empty()) {
                    ([timestamp], false) => Some(Presented { signatures, timestamp: Some(timestamp) }),
                    _ => None,
                }
            }
            Layout::Versioned { version } => {
                let signatures: SmallVec<[&str; 2]> = text
                    .split(' ')
                    .filter_map(|entry| entry.split_once(','))
                    .filter(|(v, _)| v == version)
                    .map(|(_, signature)| signature)
                    .collect();
                (!signatures.is_empty()).then_some(Presented { signatures, timestamp: None })
            }
        }
    }

    /// Writes a header value the way the provider does.
    pub fn format(&self, signature: &str, timestamp: &str) -> String {
        match self {
            Layout::Plain { prefix } => format!("{prefix}{signature}"),
            Layout::Params { separator, timestamp_key, signature_key } => {
                format!("{timestamp_key}={timestamp}{separator}{signature_key}={signature}")
            }
            Layout::Versioned { version } => format!("{version},{signature}"),
        }
    }

    /// The value's shape for the docs: `sha256=<sig>`, `t=<timestamp>,v1=<sig>`, `v1,<sig> …`.
    pub fn describe(&self, signature: &str) -> String {
        match self {
            Layout::Versioned { .. } => format!("{} …", self.format(signature, "")),
            Layout::Plain { .. } | Layout::Params { .. } => self.format(signature, "<timestamp>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRIPE: Layout = Layout::Params { separator: ',', timestamp_key: "t", signature_key: "v1" };

    #[test]
    fn params_follow_stripe_rules() {
        let parsed = STRIPE.parse("t=12,v1=aa,v0=bb,v1=cc,junk,x=y").expect("valid");
        assert_eq!(parsed, Presented { signatures: smallvec!["aa", "cc"], timestamp: Some("12") });
        assert_eq!(STRIPE.parse("t=1,t=2,v1=aa"), None, "two timestamps");
        assert_eq!(STRIPE.parse("v1=aa"), None, "no timestamp");
        assert_eq!(STRIPE.parse("t=1,v0=aa"), None, "no v1");
        assert_eq!(STRIPE.parse("t=1, v1=aa"), None, "' v1' is not 'v1'");
        assert_eq!(STRIPE.format("sig", "12"), "t=12,v1=sig");
    }

    #[test]
    fn versioned_keeps_only_its_version() {
        let layout = Layout::Versioned { version: "v1" };
        let parsed = layout.parse("v1a,xx v1,aa v2,bb v1,cc").expect("valid");
        assert_eq!(parsed.signatures[..], ["aa", "cc"]);
        assert_eq!(layout.parse("v1a,xx v2,bb"), None);
        assert_eq!(layout.format("aa", ""), "v1,aa");
    }

    #[test]
    fn plain_needs_its_prefix() {
        let layout = Layout::Plain { prefix: Cow::Borrowed("sha256=") };
        assert_eq!(layout.parse("sha256=ab").expect("valid").signatures[..], ["ab"]);
        assert_eq!(layout.parse("sha1=ab"), None);
    }
}

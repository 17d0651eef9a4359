//! Named schemes as data. Most are a row for the one recipe engine, so adding a provider whose
//! recipe fits (header layout, encoding, algorithm, timestamp, message template) is one entry
//! here; the rest name the dedicated rule they use.

use std::borrow::Cow;
use std::time::Duration;

use http::header::HeaderName;

use super::credentials::Credentials;
use super::crypto::{Algorithm, Crypto, Encoding};
use super::layout::Layout;
use super::mailgun::Mailgun;
use super::message::Template;
use super::timestamp::{TimestampFormat, TimestampRule, TimestampSource, Window};
use super::twilio::Twilio;
use super::{Recipe, Rule};

/// Where a preset's timestamp is.
#[derive(Debug)]
pub enum PresetSource {
    Header(&'static [&'static str]),
    SignatureHeader,
    BodyField(&'static str),
}

/// A signed timestamp as a preset declares it.
#[derive(Debug)]
pub struct PresetTimestamp {
    pub source: PresetSource,
    pub format: TimestampFormat,
    /// Default freshness window (`None`: not checked); routes may override it with `tolerance:`.
    pub tolerance: Option<Duration>,
    pub window: Window,
}

/// A signature header's shape as a constant ([`Layout`] owns its prefix, so it cannot be one).
#[derive(Debug)]
pub enum SpecLayout {
    Plain(&'static str),
    Params { separator: char, timestamp_key: &'static str, signature_key: &'static str },
    Versioned(&'static str),
}

impl SpecLayout {
    fn build(&self) -> Layout {
        match *self {
            SpecLayout::Plain(prefix) => Layout::Plain { prefix: Cow::Borrowed(prefix) },
            SpecLayout::Params { separator, timestamp_key, signature_key } => {
                Layout::Params { separator, timestamp_key, signature_key }
            }
            SpecLayout::Versioned(version) => Layout::Versioned { version },
        }
    }
}

/// A recipe written as constants.
#[derive(Debug)]
pub struct RecipeSpec {
    /// Header names, lower-case, in order of preference.
    pub signature_headers: &'static [&'static str],
    pub layout: SpecLayout,
    pub encoding: Encoding,
    pub crypto: Crypto,
    pub timestamp: Option<PresetTimestamp>,
    pub message: &'static str,
    pub id_headers: &'static [&'static str],
    pub whsec_secret: bool,
    pub require_body: bool,
    pub mismatch_is_unauthorized: bool,
    pub fallback: Option<&'static RecipeSpec>,
}

/// The most common shape: `<hex HMAC-SHA256>` of the body in one header.
const HEX_SHA256_OF_BODY: RecipeSpec = RecipeSpec {
    signature_headers: &[],
    layout: SpecLayout::Plain(""),
    encoding: Encoding::Hex,
    crypto: Crypto::Hmac(Algorithm::Sha256),
    timestamp: None,
    message: "{body}",
    id_headers: &[],
    whsec_secret: false,
    require_body: false,
    mismatch_is_unauthorized: false,
    fallback: None,
};

const fn seconds(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs))
}

/// How a preset verifies.
#[derive(Debug)]
pub enum PresetRule {
    Recipe(RecipeSpec),
    Twilio,
    Mailgun {
        tolerance: Option<Duration>,
    },
    /// A header carrying the token verbatim; `None`: the route names the header.
    Token {
        header: Option<&'static str>,
    },
    Basic,
}

/// One provider.
#[derive(Debug)]
pub struct Preset {
    /// The `scheme:` name in the config.
    pub name: &'static str,
    pub provider: &'static str,
    pub rule: PresetRule,
    /// The variant used when the route configures a public key instead of a secret.
    pub public_key_variant: Option<RecipeSpec>,
}

const STANDARD_WEBHOOKS: RecipeSpec = RecipeSpec {
    signature_headers: &["webhook-signature"],
    layout: SpecLayout::Versioned("v1"),
    encoding: Encoding::Base64,
    timestamp: Some(PresetTimestamp {
        source: PresetSource::Header(&["webhook-timestamp"]),
        format: TimestampFormat::UnixSeconds,
        tolerance: seconds(300),
        window: Window::Symmetric,
    }),
    message: "{header:webhook-id}.{timestamp}.{body}",
    id_headers: &["webhook-id"],
    whsec_secret: true,
    ..HEX_SHA256_OF_BODY
};

const SVIX: RecipeSpec = RecipeSpec {
    signature_headers: &["svix-signature", "webhook-signature"],
    timestamp: Some(PresetTimestamp {
        source: PresetSource::Header(&["svix-timestamp", "webhook-timestamp"]),
        format: TimestampFormat::UnixSeconds,
        tolerance: seconds(300),
        window: Window::Symmetric,
    }),
    message: "{header:svix-id|webhook-id}.{timestamp}.{body}",
    id_headers: &["svix-id", "webhook-id"],
    ..STANDARD_WEBHOOKS
};

const SQUARE_LEGACY: RecipeSpec = RecipeSpec {
    signature_headers: &["x-square-signature"],
    encoding: Encoding::Base64,
    crypto: Crypto::Hmac(Algorithm::Sha1),
    message: "{url}{body}",
    require_body: true,
    ..HEX_SHA256_OF_BODY
};

const GITHUB_SHA1: RecipeSpec = RecipeSpec {
    signature_headers: &["x-hub-signature"],
    layout: SpecLayout::Plain("sha1="),
    crypto: Crypto::Hmac(Algorithm::Sha1),
    id_headers: &["x-github-delivery"],
    ..HEX_SHA256_OF_BODY
};

/// Every named scheme, in the order `hookgate schemes` lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "freshbooks",
        provider: "FreshBooks",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-freshbooks-hmac-sha256"],
            encoding: Encoding::Base64,
            message: "{form_json}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "freispace",
        provider: "freispace",
        rule: PresetRule::Recipe(RecipeSpec { signature_headers: &["x-freispace-signature"], ..HEX_SHA256_OF_BODY }),
        public_key_variant: None,
    },
    Preset {
        name: "flow",
        provider: "Flow Commerce",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-flow-signature"],
            layout: SpecLayout::Plain("sha-256="),
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "barker",
        provider: "Barker (PyPI barker 0.1)",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["barker_signature"],
            crypto: Crypto::Hmac(Algorithm::Md5),
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["barker_timestamp"]),
                format: TimestampFormat::UnixFloat,
                tolerance: seconds(300),
                window: Window::Symmetric,
            }),
            message: "{timestamp};{body}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "github",
        provider: "GitHub",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-hub-signature-256"],
            layout: SpecLayout::Plain("sha256="),
            crypto: Crypto::Hmac(Algorithm::Sha256),
            ..GITHUB_SHA1
        }),
        public_key_variant: None,
    },
    Preset {
        name: "github-sha1",
        provider: "GitHub (legacy SHA-1)",
        rule: PresetRule::Recipe(GITHUB_SHA1),
        public_key_variant: None,
    },
    Preset {
        name: "stripe",
        provider: "Stripe",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["stripe-signature"],
            layout: SpecLayout::Params { separator: ',', timestamp_key: "t", signature_key: "v1" },
            timestamp: Some(PresetTimestamp {
                source: PresetSource::SignatureHeader,
                format: TimestampFormat::UnixSeconds,
                tolerance: seconds(300),
                window: Window::PastOnly,
            }),
            message: "{timestamp}.{body}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "slack",
        provider: "Slack",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-slack-signature"],
            layout: SpecLayout::Plain("v0="),
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["x-slack-request-timestamp"]),
                format: TimestampFormat::UnixSeconds,
                tolerance: seconds(300),
                window: Window::Symmetric,
            }),
            message: "v0:{timestamp}:{body}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "shopify",
        provider: "Shopify",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-shopify-hmac-sha256", "shopify-hmac-sha256"],
            encoding: Encoding::Base64,
            id_headers: &["x-shopify-webhook-id", "shopify-webhook-id"],
            require_body: true,
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "standard-webhooks",
        provider: "Standard Webhooks",
        rule: PresetRule::Recipe(STANDARD_WEBHOOKS),
        public_key_variant: Some(RecipeSpec {
            layout: SpecLayout::Versioned("v1a"),
            crypto: Crypto::Ed25519,
            whsec_secret: false,
            ..STANDARD_WEBHOOKS
        }),
    },
    Preset {
        name: "svix",
        provider: "Svix",
        rule: PresetRule::Recipe(SVIX),
        public_key_variant: Some(RecipeSpec {
            layout: SpecLayout::Versioned("v1a"),
            crypto: Crypto::Ed25519,
            whsec_secret: false,
            ..SVIX
        }),
    },
    Preset {
        name: "gitlab",
        provider: "GitLab (secret token)",
        rule: PresetRule::Token { header: Some("x-gitlab-token") },
        public_key_variant: None,
    },
    Preset { name: "twilio", provider: "Twilio", rule: PresetRule::Twilio, public_key_variant: None },
    Preset {
        name: "square",
        provider: "Square",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-square-hmacsha256-signature"],
            crypto: Crypto::Hmac(Algorithm::Sha256),
            fallback: Some(&SQUARE_LEGACY),
            ..SQUARE_LEGACY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "hubspot",
        provider: "HubSpot (v3)",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-hubspot-signature-v3"],
            encoding: Encoding::Base64,
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["x-hubspot-request-timestamp"]),
                format: TimestampFormat::UnixMillis,
                tolerance: seconds(300),
                window: Window::PastOnly,
            }),
            message: "{method}{hubspot_url}{body}{timestamp}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "zoom",
        provider: "Zoom",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-zm-signature"],
            layout: SpecLayout::Plain("v0="),
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["x-zm-request-timestamp"]),
                format: TimestampFormat::UnixSeconds,
                tolerance: None,
                window: Window::Symmetric,
            }),
            message: "v0:{timestamp}:{body}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "paddle",
        provider: "Paddle Billing",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["paddle-signature"],
            layout: SpecLayout::Params { separator: ';', timestamp_key: "ts", signature_key: "h1" },
            timestamp: Some(PresetTimestamp {
                source: PresetSource::SignatureHeader,
                format: TimestampFormat::UnixSeconds,
                tolerance: seconds(5),
                window: Window::Symmetric,
            }),
            message: "{timestamp}:{body}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "linear",
        provider: "Linear",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["linear-signature"],
            timestamp: Some(PresetTimestamp {
                source: PresetSource::BodyField("webhookTimestamp"),
                format: TimestampFormat::UnixMillis,
                tolerance: seconds(60),
                window: Window::Symmetric,
            }),
            id_headers: &["linear-delivery"],
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "intercom",
        provider: "Intercom",
        rule: PresetRule::Recipe(RecipeSpec { id_headers: &[], ..GITHUB_SHA1 }),
        public_key_variant: None,
    },
    Preset {
        name: "twitch",
        provider: "Twitch EventSub",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["twitch-eventsub-message-signature"],
            layout: SpecLayout::Plain("sha256="),
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["twitch-eventsub-message-timestamp"]),
                format: TimestampFormat::Rfc3339,
                tolerance: seconds(600),
                window: Window::PastOnly,
            }),
            message: "{header:twitch-eventsub-message-id}{timestamp}{body}",
            id_headers: &["twitch-eventsub-message-id"],
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "typeform",
        provider: "Typeform",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["typeform-signature"],
            layout: SpecLayout::Plain("sha256="),
            encoding: Encoding::Base64,
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "calendly",
        provider: "Calendly",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["calendly-webhook-signature"],
            layout: SpecLayout::Params { separator: ',', timestamp_key: "t", signature_key: "v1" },
            timestamp: Some(PresetTimestamp {
                source: PresetSource::SignatureHeader,
                format: TimestampFormat::UnixSeconds,
                tolerance: seconds(180),
                window: Window::PastOnly,
            }),
            message: "{timestamp}.{body}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "sentry",
        provider: "Sentry integration platform",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["sentry-hook-signature"],
            id_headers: &["request-id"],
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "bitbucket",
        provider: "Bitbucket Cloud",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-hub-signature"],
            layout: SpecLayout::Plain("sha256="),
            id_headers: &["x-request-uuid"],
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "gitea",
        provider: "Gitea / Gogs / Forgejo",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-gitea-signature", "x-gogs-signature", "x-forgejo-signature"],
            id_headers: &["x-gitea-delivery", "x-gogs-delivery", "x-forgejo-delivery"],
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "zendesk",
        provider: "Zendesk",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-zendesk-webhook-signature"],
            encoding: Encoding::Base64,
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["x-zendesk-webhook-signature-timestamp"]),
                format: TimestampFormat::Rfc3339,
                tolerance: None,
                window: Window::Symmetric,
            }),
            message: "{timestamp}{body}",
            id_headers: &["x-zendesk-webhook-invocation-id"],
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "dropbox",
        provider: "Dropbox",
        rule: PresetRule::Recipe(RecipeSpec { signature_headers: &["x-dropbox-signature"], ..HEX_SHA256_OF_BODY }),
        public_key_variant: None,
    },
    Preset {
        name: "mailgun",
        provider: "Mailgun",
        rule: PresetRule::Mailgun { tolerance: seconds(300) },
        public_key_variant: None,
    },
    Preset {
        name: "discord",
        provider: "Discord interactions",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-signature-ed25519"],
            crypto: Crypto::Ed25519,
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["x-signature-timestamp"]),
                format: TimestampFormat::UnixSeconds,
                tolerance: None,
                window: Window::Symmetric,
            }),
            message: "{timestamp}{body}",
            mismatch_is_unauthorized: true,
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset {
        name: "sendgrid",
        provider: "SendGrid Event Webhook",
        rule: PresetRule::Recipe(RecipeSpec {
            signature_headers: &["x-twilio-email-event-webhook-signature"],
            encoding: Encoding::Base64,
            crypto: Crypto::EcdsaP256,
            timestamp: Some(PresetTimestamp {
                source: PresetSource::Header(&["x-twilio-email-event-webhook-timestamp"]),
                format: TimestampFormat::UnixSeconds,
                tolerance: None,
                window: Window::Symmetric,
            }),
            message: "{timestamp}{body}",
            ..HEX_SHA256_OF_BODY
        }),
        public_key_variant: None,
    },
    Preset { name: "postmark", provider: "Postmark (HTTP Basic)", rule: PresetRule::Basic, public_key_variant: None },
    Preset {
        name: "basic",
        provider: "(generic) HTTP Basic credentials",
        rule: PresetRule::Basic,
        public_key_variant: None,
    },
    Preset {
        name: "token",
        provider: "(generic) static token header",
        rule: PresetRule::Token { header: None },
        public_key_variant: None,
    },
];

/// The preset called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.name == name)
}

impl PresetTimestamp {
    fn build(&self, tolerance: Option<Duration>) -> TimestampRule {
        TimestampRule {
            source: match self.source {
                PresetSource::Header(names) => TimestampSource::Header(header_names(names)),
                PresetSource::SignatureHeader => TimestampSource::SignatureHeader,
                PresetSource::BodyField(field) => TimestampSource::BodyField(field.to_owned()),
            },
            format: self.format,
            tolerance: tolerance.or(self.tolerance),
            window: self.window,
        }
    }

    /// `barker_timestamp` (unix_float, ±300s) for the docs.
    pub fn describe(&self) -> String {
        let place = match self.source {
            PresetSource::Header(names) => format!("`{}`", names.join("` / `")),
            PresetSource::SignatureHeader => "in the signature header".to_owned(),
            PresetSource::BodyField(field) => format!("body field `{field}`"),
        };
        let window = match self.window {
            Window::Symmetric => "±",
            Window::PastOnly => "past ",
        };
        match self.tolerance {
            Some(tolerance) => format!("{place} ({}, {window}{}s)", self.format.name(), tolerance.as_secs()),
            None => format!("{place} ({}, age not checked)", self.format.name()),
        }
    }
}

impl RecipeSpec {
    /// The engine recipe; `tolerance` overrides the default window.
    pub fn build(&self, tolerance: Option<Duration>) -> Recipe {
        Recipe {
            signature_headers: header_names(self.signature_headers),
            layout: self.layout.build(),
            encoding: self.encoding,
            crypto: self.crypto,
            timestamp: self.timestamp.as_ref().map(|ts| ts.build(tolerance)),
            message: Template::parse(self.message).expect("preset templates are valid"),
            id_headers: header_names(self.id_headers),
            whsec_secret: self.whsec_secret,
            require_body: self.require_body,
            mismatch_is_unauthorized: self.mismatch_is_unauthorized,
            fallback: self.fallback.map(|fallback| Box::new(fallback.build(tolerance))),
        }
    }

    /// The header value's shape, e.g. `sha-256=<hex HMAC-SHA256>`.
    pub fn value_format(&self) -> String {
        self.layout.build().describe(&format!("<{} {}>", self.encoding.name(), self.crypto.describe()))
    }
}

impl Preset {
    /// Whether the preset has a timestamp whose window `tolerance:` may set.
    pub fn has_tolerance(&self) -> bool {
        match &self.rule {
            PresetRule::Recipe(spec) => spec.timestamp.is_some(),
            PresetRule::Mailgun { .. } => true,
            PresetRule::Twilio | PresetRule::Token { .. } | PresetRule::Basic => false,
        }
    }

    /// The rule for a route; `tolerance` overrides the default window, `token_header` names the
    /// header of the generic `token` scheme, `public_key` picks the asymmetric variant.
    pub fn build(&self, tolerance: Option<Duration>, token_header: Option<HeaderName>, public_key: bool) -> Rule {
        match (&self.rule, &self.public_key_variant) {
            (PresetRule::Recipe(_), Some(variant)) if public_key => Rule::Recipe(variant.build(tolerance)),
            (PresetRule::Recipe(spec), _) => Rule::Recipe(spec.build(tolerance)),
            (PresetRule::Twilio, _) => Rule::Twilio(Twilio),
            (PresetRule::Mailgun { tolerance: default }, _) => {
                Rule::Mailgun(Mailgun { tolerance: tolerance.or(*default) })
            }
            (PresetRule::Token { header }, _) => Rule::Credentials(Credentials::Token {
                header: header
                    .map(HeaderName::from_static)
                    .or(token_header)
                    .unwrap_or(HeaderName::from_static("x-webhook-token")),
            }),
            (PresetRule::Basic, _) => Rule::Credentials(Credentials::Basic),
        }
    }

    /// One line per preset for `hookgate schemes` and the README: headers, value, message.
    pub fn summary(&self) -> PresetSummary {
        match &self.rule {
            PresetRule::Recipe(spec) => PresetSummary {
                headers: format!("`{}`", spec.signature_headers.join("` / `")),
                value: format!("`{}`", spec.value_format()),
                timestamp: spec.timestamp.as_ref().map_or_else(|| "none".to_owned(), PresetTimestamp::describe),
                message: format!("`{}`", spec.message),
            },
            PresetRule::Twilio => PresetSummary {
                headers: "`x-twilio-signature`".into(),
                value: "`<base64 HMAC-SHA1>` (HMAC-SHA256 with the signature-settings header)".into(),
                timestamp: "none".into(),
                message: "public URL + sorted form parameters".into(),
            },
            PresetRule::Mailgun { tolerance } => PresetSummary {
                headers: "none: `signature` object in the body".into(),
                value: "`<hex HMAC-SHA256>`".into(),
                timestamp: format!("body `signature.timestamp` (unix, ±{}s)", tolerance.map_or(0, |t| t.as_secs())),
                message: "`{timestamp}{token}`".into(),
            },
            PresetRule::Token { header } => PresetSummary {
                headers: header.map_or_else(|| "configured `header:`".to_owned(), |h| format!("`{h}`")),
                value: "the token itself".into(),
                timestamp: "none".into(),
                message: "none (the body is not authenticated)".into(),
            },
            PresetRule::Basic => PresetSummary {
                headers: "`authorization`".into(),
                value: "`Basic <base64 user:password>`".into(),
                timestamp: "none".into(),
                message: "none (the body is not authenticated)".into(),
            },
        }
    }
}

/// A preset described for people.
#[derive(Debug)]
pub struct PresetSummary {
    pub headers: String,
    pub value: String,
    pub timestamp: String,
    pub message: String,
}

fn header_names(names: &[&'static str]) -> Vec<HeaderName> {
    names.iter().map(|name| HeaderName::from_static(name)).collect()
}

/// The README's scheme table, generated from [`PRESETS`] (a test keeps the README in step).
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| scheme | provider | signature header | header value | timestamp | signed message |\n|---|---|---|---|---|---|\n",
    );
    for preset in PRESETS {
        let summary = preset.summary();
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            preset.name, preset.provider, summary.headers, summary.value, summary.timestamp, summary.message
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_scheme_table_matches_the_code() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
        let begin = "<!-- schemes:begin (generated by `hookgate schemes --markdown`) -->\n";
        let start = readme.find(begin).expect("README has the schemes:begin marker") + begin.len();
        let end = readme[start..].find("<!-- schemes:end -->").expect("README has the schemes:end marker");
        assert_eq!(&readme[start..start + end], markdown_table(), "regenerate with `hookgate schemes --markdown`");
    }

    #[test]
    fn every_preset_builds_and_has_a_unique_name() {
        for (i, preset) in PRESETS.iter().enumerate() {
            let _ = preset.build(None, None, false);
            let _ = preset.build(None, None, true);
            assert!(PRESETS[..i].iter().all(|other| other.name != preset.name), "duplicate {}", preset.name);
            assert!(
                preset.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                preset.name
            );
        }
    }
}

//! Named schemes as data: every preset is a row for the one HMAC engine, so adding a provider
//! whose recipe fits HMAC + header + prefix + encoding + template is one entry here.

use std::time::Duration;

use http::header::HeaderName;

use super::hmac::{Algorithm, Encoding, HmacScheme, Template, TimestampFormat, TimestampRule, Window};

/// A signed timestamp as a preset declares it.
#[derive(Debug)]
pub struct PresetTimestamp {
    pub header: &'static str,
    pub format: TimestampFormat,
    /// Default freshness window; routes may override it with `tolerance:`.
    pub tolerance: Option<Duration>,
    pub window: Window,
}

/// One provider's signing recipe.
#[derive(Debug)]
pub struct Preset {
    /// The `scheme:` name in the config.
    pub name: &'static str,
    pub provider: &'static str,
    /// Header names, lower-case, in order of preference.
    pub signature_headers: &'static [&'static str],
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub prefix: &'static str,
    pub timestamp: Option<PresetTimestamp>,
    pub message: &'static str,
}

const FIVE_MINUTES: Duration = Duration::from_secs(300);

/// Every named scheme, in the order `hookgate schemes` lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "freshbooks",
        provider: "FreshBooks",
        signature_headers: &["x-freshbooks-hmac-sha256"],
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Base64,
        prefix: "",
        timestamp: None,
        message: "{form_json}",
    },
    Preset {
        name: "freispace",
        provider: "freispace",
        signature_headers: &["x-freispace-signature"],
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Hex,
        prefix: "",
        timestamp: None,
        message: "{body}",
    },
    Preset {
        name: "flow",
        provider: "Flow Commerce",
        signature_headers: &["x-flow-signature"],
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Hex,
        prefix: "sha-256=",
        timestamp: None,
        message: "{body}",
    },
    Preset {
        name: "barker",
        provider: "Barker (PyPI barker 0.1)",
        signature_headers: &["barker_signature"],
        algorithm: Algorithm::Md5,
        encoding: Encoding::Hex,
        prefix: "",
        timestamp: Some(PresetTimestamp {
            header: "barker_timestamp",
            format: TimestampFormat::UnixFloat,
            tolerance: Some(FIVE_MINUTES),
            window: Window::Symmetric,
        }),
        message: "{timestamp};{body}",
    },
];

/// The preset called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.name == name)
}

/// The README's scheme table, generated from [`PRESETS`] (a test keeps the README in step).
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| scheme | provider | signature header | header value | timestamp header | signed message |\n|---|---|---|---|---|---|\n",
    );
    for preset in PRESETS {
        table.push_str(&format!(
            "| `{}` | {} | `{}` | `{}` | {} | `{}` |\n",
            preset.name,
            preset.provider,
            preset.signature_headers.join("`, `"),
            preset.value_format(),
            preset.timestamp.as_ref().map_or_else(|| "none".to_owned(), PresetTimestamp::describe),
            preset.message,
        ));
    }
    table
}

impl PresetTimestamp {
    /// `barker_timestamp` (unix_float, ±300s).
    pub fn describe(&self) -> String {
        let window = match self.window {
            Window::Symmetric => "±",
            Window::PastOnly => "past ",
        };
        match self.tolerance {
            Some(tolerance) => format!("`{}` ({}, {window}{}s)", self.header, self.format.name(), tolerance.as_secs()),
            None => format!("`{}` ({}, age not checked)", self.header, self.format.name()),
        }
    }
}

impl Preset {
    /// How the header value is written, e.g. `sha-256=<hex HMAC-SHA256>`.
    pub fn value_format(&self) -> String {
        format!("{}<{} HMAC-{}>", self.prefix, self.encoding.name(), self.algorithm.name().to_uppercase())
    }

    /// The engine rule for this preset; `tolerance` overrides the default window.
    pub fn build(&self, tolerance: Option<Duration>) -> HmacScheme {
        HmacScheme {
            signature_headers: self.signature_headers.iter().map(|name| HeaderName::from_static(name)).collect(),
            algorithm: self.algorithm,
            encoding: self.encoding,
            prefix: self.prefix.to_owned(),
            timestamp: self.timestamp.as_ref().map(|ts| TimestampRule {
                header: HeaderName::from_static(ts.header),
                format: ts.format,
                tolerance: tolerance.or(ts.tolerance),
                window: ts.window,
            }),
            message: Template::parse(self.message).expect("preset templates are valid"),
        }
    }
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
            let rule = preset.build(None);
            assert_eq!(rule.message.to_string(), preset.message, "{}", preset.name);
            assert!(PRESETS[..i].iter().all(|other| other.name != preset.name), "duplicate {}", preset.name);
        }
    }
}

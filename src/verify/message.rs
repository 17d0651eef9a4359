//! The signed message, written as a template such as `{timestamp}.{body}` and rendered per
//! request into pieces that are fed to the MAC without copying the body.

use std::borrow::Cow;

use http::HeaderName;
use smallvec::SmallVec;

use super::form_json::{FormError, form_to_python_json};
use super::{Rejection, SignedRequest, first_header};

/// One piece of the signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// The raw body bytes.
    Body,
    /// The timestamp text, verbatim.
    Timestamp,
    /// The urlencoded body re-serialised as Python `json.dumps` (FreshBooks).
    FormJson,
    /// A header's value (the first of these names present), e.g. Standard Webhooks' `webhook-id`.
    Header(Vec<HeaderName>),
    /// The request method, upper case.
    Method,
    /// The public URL the sender called.
    Url,
    /// The public URL with HubSpot's reserved-character escapes decoded (and no others).
    HubspotUrl,
}

/// The signed message, parsed from text such as `v0:{timestamp}:{body}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl Template {
    pub const PLACEHOLDERS: &'static str =
        "{body}, {timestamp}, {form_json}, {method}, {url}, {hubspot_url}, {header:NAME} (or {header:A|B})";

    /// Parses a template; the error names the offending placeholder.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| format!("unclosed '{{' in message template {text:?}"))?;
            parts.push(match &after[..close] {
                "body" => Part::Body,
                "timestamp" => Part::Timestamp,
                "form_json" => Part::FormJson,
                "method" => Part::Method,
                "url" => Part::Url,
                "hubspot_url" => Part::HubspotUrl,
                other => match other.strip_prefix("header:") {
                    Some(names) => Part::Header(
                        names
                            .split('|')
                            .map(|name| HeaderName::from_bytes(name.as_bytes()))
                            .collect::<Result<_, _>>()
                            .map_err(|_| format!("{{{other}}}: not a header name"))?,
                    ),
                    None => {
                        return Err(format!(
                            "unknown placeholder {{{other}}} in message template (known: {})",
                            Self::PLACEHOLDERS
                        ));
                    }
                },
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    pub fn parts(&self) -> &[Part] {
        &self.0
    }

    pub fn signs_timestamp(&self) -> bool {
        self.0.contains(&Part::Timestamp)
    }

    pub fn signs_url(&self) -> bool {
        self.0.iter().any(|part| matches!(part, Part::Url | Part::HubspotUrl))
    }

    /// The header names the message signs, each as its list of alternatives.
    pub fn headers(&self) -> impl Iterator<Item = &[HeaderName]> {
        self.0.iter().filter_map(|part| match part {
            Part::Header(names) => Some(names.as_slice()),
            _ => None,
        })
    }

    /// Every header the message signs must be present.
    pub fn check_headers(&self, request: &SignedRequest<'_>) -> Result<(), Rejection> {
        self.headers().try_for_each(|names| first_header(request.headers, names).map(drop))
    }

    /// The message for `request`, as pieces in order.
    pub fn render<'a>(&'a self, request: &SignedRequest<'a>, timestamp: &'a str) -> Result<Message<'a>, Rejection> {
        let url = || request.url.ok_or_else(|| Rejection::Missing("public URL (set public_url on the route)".into()));
        let mut pieces = SmallVec::new();
        for part in &self.0 {
            pieces.push(match part {
                Part::Literal(text) => Cow::Borrowed(text.as_bytes()),
                // The body as it arrived, in as many pieces: it is never joined to be signed.
                Part::Body => {
                    pieces.extend(request.body.pieces().map(Cow::Borrowed));
                    continue;
                }
                Part::Timestamp => Cow::Borrowed(timestamp.as_bytes()),
                Part::FormJson => Cow::Owned(form_json(&request.body.contiguous())?.into_bytes()),
                Part::Header(names) => Cow::Borrowed(first_header(request.headers, names)?.1.as_bytes()),
                Part::Method => Cow::Borrowed(request.method.as_str().as_bytes()),
                Part::Url => Cow::Borrowed(url()?.as_bytes()),
                Part::HubspotUrl => Cow::Owned(hubspot_url(url()?).into_bytes()),
            });
        }
        Ok(Message(pieces))
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.0 {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Body => f.write_str("{body}")?,
                Part::Timestamp => f.write_str("{timestamp}")?,
                Part::FormJson => f.write_str("{form_json}")?,
                Part::Method => f.write_str("{method}")?,
                Part::Url => f.write_str("{url}")?,
                Part::HubspotUrl => f.write_str("{hubspot_url}")?,
                Part::Header(names) => {
                    let names: Vec<&str> = names.iter().map(HeaderName::as_str).collect();
                    write!(f, "{{header:{}}}", names.join("|"))?;
                }
            }
        }
        Ok(())
    }
}

/// A rendered message: borrowed pieces, plus any text the scheme derived from the request.
/// Inline up to six pieces (Slack's `v0:{timestamp}:{body}` with a body in two frames): most
/// messages need no allocation.
#[derive(Debug)]
pub struct Message<'a>(SmallVec<[Cow<'a, [u8]>; 6]>);

impl Message<'_> {
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(|piece| piece.as_ref())
    }

    /// The whole message in one buffer, for signature algorithms that need it contiguous.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.concat()
    }
}

fn form_json(body: &[u8]) -> Result<String, Rejection> {
    form_to_python_json(body).map_err(|error| {
        Rejection::MalformedBody(match error {
            FormError::NotUtf8 => "form body is not UTF-8",
            FormError::DuplicateName => "form field name repeated",
        })
    })
}

/// HubSpot v3 signs the URL with exactly these escapes decoded (either hex case).
fn hubspot_url(url: &str) -> String {
    const DECODED: &[(&str, char)] = &[
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at + 1..at + 3);
        match escape.and_then(|hex| DECODED.iter().find(|(code, _)| code.eq_ignore_ascii_case(hex))) {
            Some((_, decoded)) => {
                out.push(*decoded);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_round_trip_through_text() {
        for text in [
            "{body}",
            "v0:{timestamp}:{body}",
            "{header:webhook-id|svix-id}.{timestamp}.{body}",
            "{method}{hubspot_url}{body}{timestamp}",
            "{url}{body}",
            "",
        ] {
            assert_eq!(Template::parse(text).expect("valid").to_string(), text);
        }
        assert!(Template::parse("{nonce}").is_err());
        assert!(Template::parse("{body").is_err());
        assert!(Template::parse("{header:bad name}").is_err());
    }

    #[test]
    fn hubspot_decodes_only_its_list() {
        assert_eq!(
            hubspot_url("https://h.example/p%3Aq%2f%3F%40%21%24%27%28%29%2A%2C%3B?a=%20%C3%BC%2"),
            "https://h.example/p:q/?@!$'()*,;?a=%20%C3%BC%2"
        );
    }
}

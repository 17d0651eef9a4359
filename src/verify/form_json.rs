//! `FreshBooks` canonicaliser: turns an `application/x-www-form-urlencoded`
//! body into exactly the text that `json.dumps(dict(request.form))` yields
//! under Flask 3 / Werkzeug 3, which is what `FreshBooks` signs with HMAC.
//!
//! Parsing mirrors `urllib.parse.parse_qsl(body, keep_blank_values=True,
//! errors="werkzeug.url_quote")`; serialisation mirrors `json.dumps` with its
//! defaults (`", "` / `": "` separators, `ensure_ascii=True`).

use std::borrow::Cow;

/// Why a body cannot be canonicalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("body is not valid UTF-8")]
    NotUtf8,
    #[error("a form field name occurs more than once")]
    DuplicateName,
}

/// Parses `body` as a urlencoded form the way Werkzeug 3 does and re-serialises
/// it as Python's `json.dumps` (default separators, `ensure_ascii`) with keys in
/// body order.
///
/// # Errors
/// [`FormError::NotUtf8`] if the body is not strict UTF-8 (Flask would silently
/// see an empty form); [`FormError::DuplicateName`] if a decoded field name
/// repeats (Flask keeps the first value, but the upstream might read another).
pub fn form_to_python_json(body: &[u8]) -> Result<String, FormError> {
    let text = std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
    let mut names = Vec::new();
    // Values are written as they are decoded, through one buffer, so only names are kept.
    let mut value_bytes = Vec::new();
    // Escaped output is at least as long as the body, so start there.
    let mut out = String::with_capacity(text.len() + 2);
    out.push('{');
    for (i, (name, value)) in split_fields(text).enumerate() {
        let name = unquote_plus(name);
        if i > 0 {
            out.push_str(", ");
        }
        push_json_string(&mut out, &name);
        out.push_str(": ");
        if needs_decoding(value) {
            value_bytes.clear();
            percent_decode(value, &mut value_bytes);
            push_json_string(&mut out, &utf8_or_requoted(&value_bytes));
        } else {
            push_json_string(&mut out, value);
        }
        names.push(name);
    }
    // Sorting finds a repeat without hashing every name, and in O(n log n) whatever the names.
    names.sort_unstable();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(FormError::DuplicateName);
    }
    out.push('}');
    Ok(out)
}

/// The form fields in body order, decoded as Werkzeug does (used by the above;
/// also useful to read a field such as `name`).
///
/// Segments are split on `&` only and empty ones are skipped; a segment without
/// `=` is a name with an empty value. Duplicate names are kept as they occur.
#[must_use]
pub fn parse_form(body: &str) -> Vec<(String, String)> {
    form_fields(body).map(|(name, value)| (name.into_owned(), value.into_owned())).collect()
}

/// As [`parse_form`], lazily, and borrowing every name and value that has no `%` or `+`.
pub fn form_fields(body: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    split_fields(body).map(|(name, value)| (unquote_plus(name), unquote_plus(value)))
}

/// The raw (still encoded) name and value of each non-empty segment.
fn split_fields(body: &str) -> impl Iterator<Item = (&str, &str)> {
    body.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
}

/// Whether `s` holds a `%` or `+`, the only bytes decoding can change.
fn needs_decoding(s: &str) -> bool {
    s.bytes().any(|b| b == b'%' || b == b'+')
}

/// Python's `unquote_plus(s, errors="werkzeug.url_quote")`: `+` is a space, `%XX` a byte (other
/// `%` stay literal), and the result is UTF-8 with invalid bytes re-quoted as upper-case `%XX`.
///
/// Python percent-decodes each maximal run of ASCII characters on its own and copies non-ASCII
/// characters through, so escapes on either side of a literal non-ASCII character never combine
/// into one sequence. Decoding everything in one pass gives the same text: a literal character
/// is a complete sequence, and its first byte is never a continuation byte, so it ends an
/// incomplete sequence before it exactly as the end of a run does.
fn unquote_plus(s: &str) -> Cow<'_, str> {
    if !needs_decoding(s) {
        return Cow::Borrowed(s);
    }
    let mut bytes = Vec::with_capacity(s.len());
    percent_decode(s, &mut bytes);
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(requoted(error.as_bytes())),
    }
}

/// Appends `s` with `+` as a space and each `%XX` (either case) as its byte.
fn percent_decode(s: &str, out: &mut Vec<u8>) {
    let input = s.as_bytes();
    let start = out.len();
    // Decoding never lengthens, so the bytes are written in place, without a capacity check each.
    out.resize(start + input.len(), 0);
    let output = &mut out[start..];
    let (mut read, mut written) = (0, 0);
    while let Some(&byte) = input.get(read) {
        let (byte, used) = match byte {
            b'+' => (b' ', 1),
            b'%' => match input.get(read + 1..read + 3) {
                Some(&[hi, lo]) => hex_value(hi).zip(hex_value(lo)).map_or((b'%', 1), |(hi, lo)| (hi << 4 | lo, 3)),
                _ => (b'%', 1),
            },
            byte => (byte, 1),
        };
        output[written] = byte;
        written += 1;
        read += used;
    }
    out.truncate(start + written);
}

/// The bytes as text, borrowed when they are valid UTF-8.
fn utf8_or_requoted(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(requoted(bytes)),
    }
}

/// The bytes as UTF-8 with each invalid byte written `%XX`, as Werkzeug's `werkzeug.url_quote`
/// codec error handler does.
fn requoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &byte in chunk.invalid() {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(byte >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

/// The value of an ASCII hex digit (either case), as Python's `_hextobyte`.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The index of the first byte `json.dumps` does not copy as it is (all but printable ASCII,
/// `"` and `\`), checked 16 at a time without branches so the compiler can vectorise it.
fn first_escaped(bytes: &[u8]) -> Option<usize> {
    let escaped = |b: &u8| !matches!(b, b' '..=b'~') | (*b == b'"') | (*b == b'\\');
    let mut checked = 0;
    for chunk in bytes.chunks_exact(16) {
        if chunk.iter().fold(false, |any, b| any | escaped(b)) {
            break;
        }
        checked += 16;
    }
    let rest = bytes.get(checked..).unwrap_or_default();
    rest.iter().position(escaped).map(|at| checked + at)
}

/// Appends `s` as a JSON string literal the way `json.dumps(ensure_ascii=True)`
/// writes it: only printable ASCII is kept, everything else is escaped, with
/// characters above U+FFFF as UTF-16 surrogate pairs.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // Runs of printable ASCII are copied at once; only the characters between them are looked at.
    while let Some(at) = first_escaped(rest.as_bytes()) {
        let (plain, special) = rest.split_at(at);
        out.push_str(plain);
        let mut chars = special.chars();
        let Some(c) = chars.next() else { break };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for &mut unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(char::from(LOWER_HEX[usize::from(unit >> shift & 0xf)]));
                    }
                }
            }
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use proptest::prelude::*;

    fn json(body: &str) -> String {
        form_to_python_json(body.as_bytes()).expect("body should canonicalise")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn freshbooks_example() {
        let body = "name=invoice.create&object_id=1234567&account_id=6BApk\
                    &business_id=6543&identity_id=1234&user_id=1";
        assert_eq!(
            json(body),
            r#"{"name": "invoice.create", "object_id": "1234567", "account_id": "6BApk", "business_id": "6543", "identity_id": "1234", "user_id": "1"}"#
        );
    }

    #[test]
    fn empty_bodies_give_empty_object() {
        assert_eq!(json(""), "{}");
        assert_eq!(json("&&&"), "{}");
    }

    #[test]
    fn plus_and_percent20_are_spaces() {
        assert_eq!(parse_form("a=x+y%20z"), pairs(&[("a", "x y z")]));
        assert_eq!(parse_form("a+b=%2B"), pairs(&[("a b", "+")]));
        assert_eq!(json("memo=a%2Bb+%3D+c%26d"), r#"{"memo": "a+b = c&d"}"#);
    }

    #[test]
    fn stray_percent_stays_literal() {
        assert_eq!(parse_form("a=100%"), pairs(&[("a", "100%")]));
        assert_eq!(parse_form("a=%zz"), pairs(&[("a", "%zz")]));
        assert_eq!(parse_form("a=%4"), pairs(&[("a", "%4")]));
        assert_eq!(parse_form("a=%%41"), pairs(&[("a", "%A")]));
        assert_eq!(parse_form("a=%4+1"), pairs(&[("a", "%4 1")]));
        assert_eq!(parse_form("a=%c3%a9%C3%A9"), pairs(&[("a", "éé")]));
    }

    #[test]
    fn invalid_utf8_escapes_are_requoted_upper_case() {
        assert_eq!(parse_form("a=%ff"), pairs(&[("a", "%FF")]));
        assert_eq!(parse_form("a=%C3%28"), pairs(&[("a", "%C3(")]));
        assert_eq!(parse_form("%e2%82=x"), pairs(&[("%E2%82", "x")]));
        // A literal non-ASCII char splits the escapes; each half is invalid.
        assert_eq!(parse_form("a=%C3é%A9"), pairs(&[("a", "%C3é%A9")]));
        assert_eq!(json("a=%C3é%A9"), r#"{"a": "%C3\u00e9%A9"}"#);
    }

    #[test]
    fn splitting_rules() {
        assert_eq!(parse_form("a=1;b=2"), pairs(&[("a", "1;b=2")]));
        assert_eq!(parse_form("&a=1&&b=2&"), pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(parse_form("flag&a=1"), pairs(&[("flag", ""), ("a", "1")]));
        assert_eq!(parse_form("=v&a=b=c"), pairs(&[("", "v"), ("a", "b=c")]));
        assert_eq!(parse_form("a=1&a=2"), pairs(&[("a", "1"), ("a", "2")]));
        assert_eq!(json("flag&=v"), r#"{"flag": "", "": "v"}"#);
    }

    #[test]
    fn errors() {
        assert_eq!(form_to_python_json(b"a=1&b=2&a=3"), Err(FormError::DuplicateName));
        // Names are compared after decoding.
        assert_eq!(form_to_python_json(b"a+b=1&a%20b=2"), Err(FormError::DuplicateName));
        assert_eq!(form_to_python_json(b"a=1&x=\xff"), Err(FormError::NotUtf8));
        assert_eq!(form_to_python_json(b"a=\xc3\x28"), Err(FormError::NotUtf8));
    }

    #[test]
    fn json_escaping() {
        assert_eq!(json("q=%22%5C"), r#"{"q": "\"\\"}"#);
        assert_eq!(json("c=%0A%0D%09%08%0C%00%1F"), r#"{"c": "\n\r\t\b\f\u0000\u001f"}"#);
        assert_eq!(json("d=%7F%7E%20"), r#"{"d": "\u007f~ "}"#);
        assert_eq!(json("u=%C3%A9%E2%80%9C"), r#"{"u": "\u00e9\u201c"}"#);
        assert_eq!(json("e=%F0%9F%98%80"), r#"{"e": "\ud83d\ude00"}"#);
        assert_eq!(json("e=😀"), r#"{"e": "\ud83d\ude00"}"#);
        assert_eq!(json("p=a%2Fb/c"), r#"{"p": "a/b/c"}"#);
    }

    /// Percent-encodes every byte except ASCII alphanumerics; spaces become `+`.
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b' ' => "+".to_string(),
                b if b.is_ascii_alphanumeric() => char::from(b).to_string(),
                b => format!("%{b:02x}"),
            })
            .collect()
    }

    /// Test-only reader for the exact shape we emit (serde-free).
    fn read_json_object(text: &str) -> Option<Vec<(String, String)>> {
        fn read_string(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<String> {
            let mut units = Vec::new();
            if chars.next()? != '"' {
                return None;
            }
            loop {
                match chars.next()? {
                    '"' => return String::from_utf16(&units).ok(),
                    '\\' => match chars.next()? {
                        'u' => {
                            let hex: String = chars.by_ref().take(4).collect();
                            units.push(u16::from_str_radix(&hex, 16).ok()?);
                        }
                        e => {
                            let c = match e {
                                'n' => '\n',
                                'r' => '\r',
                                't' => '\t',
                                'b' => '\u{8}',
                                'f' => '\u{c}',
                                '"' | '\\' => e,
                                _ => return None,
                            };
                            units.push(c as u16);
                        }
                    },
                    c if (' '..='~').contains(&c) => units.push(c as u16),
                    _ => return None,
                }
            }
        }
        let mut chars = text.chars().peekable();
        let mut fields = Vec::new();
        if chars.next()? != '{' {
            return None;
        }
        if chars.peek() == Some(&'}') {
            chars.next();
        } else {
            loop {
                let name = read_string(&mut chars)?;
                (chars.next()? == ':' && chars.next()? == ' ').then_some(())?;
                fields.push((name, read_string(&mut chars)?));
                match chars.next()? {
                    '}' => break,
                    ',' if chars.next()? == ' ' => {}
                    _ => return None,
                }
            }
        }
        chars.next().is_none().then_some(fields)
    }

    /// The canonicaliser before it borrowed, kept as an oracle: each maximal ASCII run decoded
    /// on its own (as Python does), every character escaped one by one.
    fn by_runs(body: &str) -> (Vec<(String, String)>, Option<String>) {
        fn decode_run(run: &str, out: &mut String) {
            let (bytes, mut decoded, mut i) = (run.as_bytes(), Vec::new(), 0);
            while let Some(&b) = bytes.get(i) {
                let digit = |at: usize| char::from(*bytes.get(at)?).to_digit(16);
                if let (b'%', Some(hi), Some(lo)) = (b, digit(i + 1), digit(i + 2)) {
                    decoded.push((hi << 4 | lo) as u8);
                    i += 3;
                } else {
                    decoded.push(if b == b'+' { b' ' } else { b });
                    i += 1;
                }
            }
            for chunk in decoded.utf8_chunks() {
                out.push_str(chunk.valid());
                chunk.invalid().iter().for_each(|byte| out.push_str(&format!("%{byte:02X}")));
            }
        }
        fn unquote(s: &str) -> String {
            let (mut out, mut run) = (String::new(), String::new());
            for c in s.chars() {
                if c.is_ascii() {
                    run.push(c);
                } else {
                    decode_run(&std::mem::take(&mut run), &mut out);
                    out.push(c);
                }
            }
            decode_run(&run, &mut out);
            out
        }
        fn escape(s: &str) -> String {
            let mut out = String::from('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    ' '..='~' => out.push(c),
                    _ => c.encode_utf16(&mut [0; 2]).iter().for_each(|unit| out.push_str(&format!("\\u{unit:04x}"))),
                }
            }
            out + "\""
        }
        let fields: Vec<_> = body
            .split('&')
            .filter(|segment| !segment.is_empty())
            .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
            .map(|(name, value)| (unquote(name), unquote(value)))
            .collect();
        let mut seen = HashSet::new();
        let json = fields.iter().all(|(name, _)| seen.insert(name.clone())).then(|| {
            let members: Vec<_> = fields.iter().map(|(n, v)| format!("{}: {}", escape(n), escape(v))).collect();
            format!("{{{}}}", members.join(", "))
        });
        (fields, json)
    }

    proptest! {
        #[test]
        fn same_output_as_decoding_by_runs(
            body in "(%[0-9a-fA-F]{2}|%[89a-fA-F][0-9a-f]|%[0-9]|%|\\+|=|&|a|\"|\\\\|\n|\u{7f}|é|€|😀){0,24}",
        ) {
            let (fields, json) = by_runs(&body);
            prop_assert_eq!(parse_form(&body), fields);
            prop_assert_eq!(form_to_python_json(body.as_bytes()).ok(), json);
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = form_to_python_json(&body);
        }

        #[test]
        fn tricky_text_never_panics(body in "[%+&=;aF09zé€😀\u{0}\u{7f}\"\\\\]{0,60}") {
            let _ = form_to_python_json(body.as_bytes());
            let _ = parse_form(&body);
        }

        #[test]
        fn encoded_pairs_round_trip(raw in proptest::collection::vec((any::<String>(), any::<String>()), 0..8)) {
            let mut seen = HashSet::new();
            let fields: Vec<(String, String)> =
                raw.into_iter().filter(|(n, _)| seen.insert(n.clone())).collect();
            let body = fields
                .iter()
                .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            prop_assert_eq!(parse_form(&body), fields.clone());
            let out = form_to_python_json(body.as_bytes()).expect("distinct names, valid UTF-8");
            prop_assert!(out.is_ascii());
            prop_assert!(out.starts_with('{') && out.ends_with('}'), "not an object: {}", out);
            prop_assert_eq!(read_json_object(&out), Some(fields));
        }
    }
}

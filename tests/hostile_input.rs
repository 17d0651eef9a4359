//! Hostile input (issue 4, point 5), as one table: each row is the exact bytes a sender writes on
//! a fresh connection, the answers the gateway must give on that connection (in order), and
//! exactly what the recording upstream may receive because of it — for most rows nothing, for
//! the rest one request whose body carries a valid signature. A request the gateway forwards
//! is compared with the body and request target the sender signed and wrote, so nothing reaches
//! the upstream unverified, twice, smuggled, or under another path than the one written.
//!
//! The routes give every path its own secret: a request signed for `/webhooks/x` and sent to a
//! path that merely *normalises* to it (`/webhooks/./x`, `/webhooks/%2e%2e/x`) lands on the
//! catch-all route, whose secret differs, so a gateway that normalised paths would be caught.

mod common;

use common::{Gateway, Received, Upstream, send, within};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROUTES: &str = r#"
limits:
  # Connections a row leaves open close after this; most rows end with `Connection: close`.
  header_read_timeout: 1s
  max_headers: 100
routes:
  - name: exact
    path: /webhooks/x
    upstream: "{upstream}"
    verify: { scheme: freispace, secret: exact-secret }
  - name: catchall
    path_prefix: /webhooks/
    upstream: "{upstream}"
    verify: { scheme: freispace, secret: catchall-secret }
  - name: freshbooks
    path: /webhooks/freshbooks
    upstream: "{upstream}"
    verify: { scheme: freshbooks, secret: freshbooks-secret }
"#;

/// What the gateway must answer on the row's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Exactly these answers, in this order, then the connection closes.
    Answers(Vec<u16>),
    /// This answer, or a close without any answer (hyper may stop reading an oversized head
    /// and close the socket before the client has read its answer).
    AnswerOrClose(u16),
}

/// One row of the table.
struct Row {
    name: String,
    bytes: Vec<u8>,
    /// Shut down the sending side after the bytes (the sender promised more than it sent).
    half_close: bool,
    expect: Expect,
    /// The gateway's own JSON `error` in the first answer, where it (not hyper) answers.
    error: Option<&'static str>,
    /// What the upstream must receive, in order: (request target, body). Empty: nothing.
    forwarded: Vec<(String, Vec<u8>)>,
}

/// Builds request bytes: a request line, the header lines, and a body.
struct Raw {
    line: String,
    headers: Vec<u8>,
    body: Vec<u8>,
    content_length: bool,
    close: bool,
    eol: &'static str,
}

impl Raw {
    fn post(target: &str, body: impl Into<Vec<u8>>) -> Self {
        Raw {
            line: format!("POST {target} HTTP/1.1"),
            headers: Vec::new(),
            body: body.into(),
            content_length: true,
            close: true,
            eol: "\r\n",
        }
    }

    fn line(mut self, line: &str) -> Self {
        self.line = line.to_owned();
        self
    }

    /// A header line, written as given (with the line ending added).
    fn header(mut self, text: impl AsRef<[u8]>) -> Self {
        self.headers.extend_from_slice(text.as_ref());
        self.headers.extend_from_slice(self.eol.as_bytes());
        self
    }

    /// Leaves out the `Content-Length` the builder adds (the row frames the body itself).
    fn framed_by_row(mut self) -> Self {
        self.content_length = false;
        self
    }

    /// Keeps the connection open after this request (no `Connection: close`).
    fn keep_alive(mut self) -> Self {
        self.close = false;
        self
    }

    /// Ends every line with a bare LF instead of CRLF.
    fn bare_lf(mut self) -> Self {
        self.eol = "\n";
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let eol = self.eol;
        let mut out = format!("{}{eol}Host: gateway.test{eol}", self.line).into_bytes();
        out.extend_from_slice(&self.headers);
        if self.content_length {
            out.extend_from_slice(format!("Content-Length: {}{eol}", self.body.len()).as_bytes());
        }
        if self.close {
            out.extend_from_slice(format!("Connection: close{eol}").as_bytes());
        }
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

fn row(name: impl Into<String>, bytes: Vec<u8>, expect: Expect, error: Option<&'static str>) -> Row {
    Row { name: name.into(), bytes, half_close: false, expect, error, forwarded: Vec::new() }
}

impl Row {
    fn forwards(mut self, target: &str, body: &[u8]) -> Self {
        self.forwarded.push((target.to_owned(), body.to_vec()));
        self
    }

    fn half_close(mut self) -> Self {
        self.half_close = true;
        self
    }
}

/// A distinct body per row, so a row's forwarded request can never be mistaken for another's.
fn body(name: &str) -> Vec<u8> {
    format!("{{\"row\":\"{name}\"}}").into_bytes()
}

/// `parts` in chunked encoding, closing chunk included.
fn chunked(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend(*part);
        out.extend(b"\r\n");
    }
    out.extend(b"0\r\n\r\n");
    out
}

/// The whole table. Signatures are made by the gateway's own routes (`sig`), so every row that
/// expects a forward carries a signature that really verifies.
fn table(gateway: &Gateway) -> Vec<Row> {
    use Expect::{AnswerOrClose, Answers};
    // `name: value` of the signature `route` puts on `body`.
    let sig = |route: &str, body: &[u8]| -> String {
        let (name, value) = gateway.sign(route, body).remove(0);
        format!("{name}: {}", value.to_str().expect("ASCII"))
    };
    let sig_value = |route: &str, body: &[u8]| -> String {
        gateway.sign(route, body).remove(0).1.to_str().expect("ASCII").to_owned()
    };
    let signed = |target: &str, route: &str, name: &str| {
        let b = body(name);
        Raw::post(target, b.clone()).header(sig(route, &b))
    };
    let mut rows = Vec::new();

    // The baseline: a correct request is forwarded once, as sent.
    let b = body("baseline");
    rows.push(
        row("baseline", signed("/webhooks/x", "exact", "baseline").bytes(), Answers(vec![200]), None)
            .forwards("/webhooks/x", &b),
    );

    // ---- Invalid UTF-8 -------------------------------------------------------------------------
    let b = body("sig_latin1");
    let mut value = sig_value("exact", &b).into_bytes();
    value.pop();
    value.push(0xff);
    let bytes = Raw::post("/webhooks/x", b).header([&b"x-freispace-signature: "[..], &value].concat()).bytes();
    rows.push(row("signature header with a non-UTF-8 byte", bytes, Answers(vec![400]), Some("malformed_signature")));

    let bytes = Raw::post("/webhooks/x", body("sig_caf")).header(b"x-freispace-signature: caf\xe9").bytes();
    rows.push(row("signature header in Latin-1", bytes, Answers(vec![400]), Some("malformed_signature")));

    let form = b"name=invoice.create&object_id=1&note=caf\xe9".to_vec();
    let bytes = Raw::post("/webhooks/freshbooks", form.clone())
        .header("content-type: application/x-www-form-urlencoded")
        // A well-formed signature, over the body as if it were UTF-8.
        .header(sig("freshbooks", b"name=invoice.create&object_id=1&note=caf"))
        .bytes();
    rows.push(row("freshbooks form body that is not UTF-8", bytes, Answers(vec![400]), Some("malformed_signature")));

    let form = b"name=invoice.create&object_id=2".to_vec();
    let bytes = Raw::post("/webhooks/freshbooks", form.clone())
        .header("content-type: application/x-www-form-urlencoded")
        .header(sig("freshbooks", &form))
        .bytes();
    rows.push(
        row("freshbooks form body, UTF-8 and signed", bytes, Answers(vec![200]), None)
            .forwards("/webhooks/freshbooks", &form),
    );

    // freispace signs raw bytes: a signed body need not be text, and goes through unchanged.
    let binary = b"\xff\xfe\x00binary\x80".to_vec();
    let bytes = Raw::post("/webhooks/x", binary.clone()).header(sig("exact", &binary)).bytes();
    rows.push(row("signed body that is not UTF-8", bytes, Answers(vec![200]), None).forwards("/webhooks/x", &binary));

    let b = body("other_header_latin1");
    let bytes = signed("/webhooks/x", "exact", "other_header_latin1").header(b"x-note: caf\xe9").bytes();
    rows.push(
        row("signed, with a non-UTF-8 byte in an unsigned header", bytes, Answers(vec![200]), None)
            .forwards("/webhooks/x", &b),
    );

    // ---- Duplicate signature headers -----------------------------------------------------------
    let b = body("dup_same");
    let bytes = Raw::post("/webhooks/x", b.clone()).header(sig("exact", &b)).header(sig("exact", &b)).bytes();
    rows.push(row("the same valid signature twice", bytes, Answers(vec![400]), Some("malformed_signature")));

    let b = body("dup_other");
    let bytes =
        Raw::post("/webhooks/x", b.clone()).header(sig("exact", &b)).header(sig("exact", b"{\"another\":1}")).bytes();
    rows.push(row("a valid and an invalid signature", bytes, Answers(vec![400]), Some("malformed_signature")));

    let b = body("dup_case");
    let upper = sig("exact", &b).replacen("x-freispace-signature", "X-FREISPACE-SIGNATURE", 1);
    let bytes = Raw::post("/webhooks/x", b.clone()).header(sig("exact", &b)).header(upper).bytes();
    rows.push(row("the signature twice, in two spellings", bytes, Answers(vec![400]), Some("malformed_signature")));

    let b = body("dup_list");
    let value = sig_value("exact", &b);
    let bytes = Raw::post("/webhooks/x", b).header(format!("x-freispace-signature: {value}, {value}")).bytes();
    rows.push(row("the signature twice, comma-joined", bytes, Answers(vec![400]), Some("malformed_signature")));

    // ---- Whitespace ----------------------------------------------------------------------------
    // Documented: a header value is trimmed of spaces and tabs; anything inside it counts.
    let b = body("ws_around");
    let value = sig_value("exact", &b);
    let bytes = Raw::post("/webhooks/x", b.clone()).header(format!("x-freispace-signature: \t  {value} \t ")).bytes();
    rows.push(
        row("tabs and spaces around a valid signature", bytes, Answers(vec![200]), None).forwards("/webhooks/x", &b),
    );

    let b = body("ws_none");
    let value = sig_value("exact", &b);
    let bytes = Raw::post("/webhooks/x", b.clone()).header(format!("x-freispace-signature:{value}")).bytes();
    rows.push(row("no space after the colon", bytes, Answers(vec![200]), None).forwards("/webhooks/x", &b));

    let b = body("ws_junk");
    let value = sig_value("exact", &b);
    let bytes = Raw::post("/webhooks/x", b).header(format!("x-freispace-signature: {value} junk")).bytes();
    rows.push(row("junk after a valid signature", bytes, Answers(vec![400]), Some("malformed_signature")));

    let b = body("ws_inside");
    let value = sig_value("exact", &b);
    let bytes =
        Raw::post("/webhooks/x", b).header(format!("x-freispace-signature: {} {}", &value[..32], &value[32..])).bytes();
    rows.push(row("a space inside the signature", bytes, Answers(vec![400]), Some("malformed_signature")));

    let b = body("ws_tab_inside");
    let value = sig_value("exact", &b);
    let bytes = Raw::post("/webhooks/x", b)
        .header(format!("x-freispace-signature: {}\t{}", &value[..32], &value[33..]))
        .bytes();
    rows.push(row("a tab in place of one signature digit", bytes, Answers(vec![400]), Some("malformed_signature")));

    let b = body("ws_only");
    let bytes = Raw::post("/webhooks/x", b).header("x-freispace-signature:  \t ").bytes();
    rows.push(row("a signature of only whitespace", bytes, Answers(vec![400]), Some("missing_signature")));

    let b = body("ws_upper");
    let value = sig_value("exact", &b).to_uppercase();
    let bytes = Raw::post("/webhooks/x", b).header(format!("x-freispace-signature: {value}")).bytes();
    rows.push(row("upper-case hex (documented: does not match)", bytes, Answers(vec![403]), Some("invalid_signature")));

    for (name, junk) in [
        ("a vertical tab after the signature", &b"\x0b"[..]),
        ("a NUL after the signature", b"\x00"),
        ("a bare CR after the signature", b"\rx"),
    ] {
        let b = body(name);
        let line = [sig("exact", &b).as_bytes(), junk].concat();
        rows.push(row(name, Raw::post("/webhooks/x", b).header(line).bytes(), Answers(vec![400]), None));
    }

    let b = body("ws_name");
    let bytes = Raw::post("/webhooks/x", b.clone())
        .header(format!("x-freispace-signature : {}", sig_value("exact", &b)))
        .bytes();
    rows.push(row("a space before the colon", bytes, Answers(vec![400]), None));

    // ---- Huge header counts and sizes -----------------------------------------------------------
    let mut raw = signed("/webhooks/x", "exact", "many_headers");
    for i in 0..150 {
        raw = raw.header(format!("x-h{i}: {i}"));
    }
    rows.push(row("150 header lines (max_headers 100)", raw.bytes(), AnswerOrClose(431), None));

    let raw = signed("/webhooks/x", "exact", "huge_header").header(format!("x-padding: {}", "p".repeat(70 * 1024)));
    rows.push(row("a 70 KiB header (max_header_bytes 64 KiB)", raw.bytes(), AnswerOrClose(431), None));

    // ---- Framing: lying lengths, smuggling ------------------------------------------------------
    // A complete, correctly signed request hidden where a body could end: were it ever parsed as
    // a request of its own, the upstream would receive a second request with this body.
    let smuggled_body = body("smuggled");
    let smuggled = signed("/webhooks/x", "exact", "smuggled").bytes();

    let b = body("cl_te");
    let mut raw = Raw::post("/webhooks/x", chunked(&[&b]))
        .header(sig("exact", &b))
        .header("Content-Length: 4")
        .header("Transfer-Encoding: chunked")
        .framed_by_row()
        .keep_alive()
        .bytes();
    raw.extend_from_slice(&smuggled);
    rows.push(
        row("Content-Length then Transfer-Encoding, request behind", raw, Answers(vec![200]), None)
            .forwards("/webhooks/x", &b),
    );

    let b = body("te_cl");
    let mut raw = Raw::post("/webhooks/x", chunked(&[&b]))
        .header(sig("exact", &b))
        .header("Transfer-Encoding: chunked")
        .header("Content-Length: 1000")
        .framed_by_row()
        .keep_alive()
        .bytes();
    raw.extend_from_slice(&smuggled);
    rows.push(
        row("Transfer-Encoding then a longer Content-Length, request behind", raw, Answers(vec![200]), None)
            .forwards("/webhooks/x", &b),
    );

    // The classic CL.TE probe: by Content-Length the body is all of it; by chunked it ends at
    // `0\r\n\r\n` and the smuggled request follows.
    let b = body("cl_covers_smuggled");
    let mut framed = chunked(&[&b]);
    framed.extend_from_slice(&smuggled);
    let raw = Raw::post("/webhooks/x", framed.clone())
        .header(sig("exact", &framed))
        .header(format!("Content-Length: {}", framed.len()))
        .header("Transfer-Encoding: chunked")
        .framed_by_row()
        .keep_alive()
        .bytes();
    rows.push(row(
        "a Content-Length covering a request after the last chunk",
        raw,
        Answers(vec![403]),
        Some("invalid_signature"),
    ));

    let b = body("te_twice");
    let raw = Raw::post("/webhooks/x", chunked(&[&b]))
        .header(sig("exact", &b))
        .header("Transfer-Encoding: chunked")
        .header("Transfer-Encoding: identity")
        .framed_by_row()
        .bytes();
    rows.push(row("Transfer-Encoding chunked, then identity", raw, Answers(vec![400]), None));

    let b = body("te_x");
    let raw = Raw::post("/webhooks/x", chunked(&[&b]))
        .header(sig("exact", &b))
        .header("Transfer-Encoding: xchunked")
        .framed_by_row()
        .bytes();
    rows.push(row("Transfer-Encoding xchunked", raw, Answers(vec![400]), None));

    let b = body("te_http10");
    let raw = Raw::post("/webhooks/x", chunked(&[&b]))
        .line("POST /webhooks/x HTTP/1.0")
        .header(sig("exact", &b))
        .header("Transfer-Encoding: chunked")
        .framed_by_row()
        .bytes();
    rows.push(row("Transfer-Encoding on HTTP/1.0", raw, Answers(vec![400]), None));

    let b = body("cl_two");
    let raw = Raw::post("/webhooks/x", b.clone())
        .header(sig("exact", &b))
        .header(format!("Content-Length: {}", b.len()))
        .header(format!("Content-Length: {}", b.len() + 5))
        .framed_by_row()
        .bytes();
    rows.push(row("two Content-Length headers that differ", raw, Answers(vec![400]), None));

    let b = body("cl_same");
    let raw = Raw::post("/webhooks/x", b.clone())
        .header(sig("exact", &b))
        .header(format!("Content-Length: {}", b.len()))
        .header(format!("Content-Length: {}", b.len()))
        .framed_by_row()
        .bytes();
    rows.push(row("two equal Content-Length headers", raw, Answers(vec![200]), None).forwards("/webhooks/x", &b));

    for (name, value) in
        [("a Content-Length list", "18, 18"), ("a signed Content-Length", "+18"), ("a hex Content-Length", "0x12")]
    {
        let b = body(name);
        let raw = Raw::post("/webhooks/x", b.clone())
            .header(sig("exact", &b))
            .header(format!("Content-Length: {value}"))
            .framed_by_row()
            .bytes();
        rows.push(row(name, raw, Answers(vec![400]), None));
    }

    // A Content-Length shorter than what follows: the rest is read as the next request.
    let b = body("cl_short");
    let mut raw = Raw::post("/webhooks/x", b.clone()).header(sig("exact", &b)).keep_alive().bytes();
    raw.extend_from_slice(b"GARBAGE\r\n\r\n");
    rows.push(
        row("a Content-Length shorter than the data, junk behind", raw, Answers(vec![200, 400]), None)
            .forwards("/webhooks/x", &b),
    );

    let b = body("cl_short_smuggle");
    let mut raw = Raw::post("/webhooks/x", b.clone()).header(sig("exact", &b)).keep_alive().bytes();
    raw.extend_from_slice(&smuggled);
    // Pipelining, not smuggling: both requests are framed by their own Content-Length, both
    // are verified, and each is forwarded as the sender framed it.
    rows.push(
        row("two pipelined signed requests", raw, Answers(vec![200, 200]), None)
            .forwards("/webhooks/x", &b)
            .forwards("/webhooks/x", &smuggled_body),
    );

    let b = body("cl_long");
    let raw = Raw::post("/webhooks/x", b.clone())
        .header(sig("exact", &b))
        .header(format!("Content-Length: {}", b.len() + 100))
        .framed_by_row()
        .bytes();
    rows.push(
        row("a Content-Length longer than the data, sender half-closes", raw, Answers(vec![400]), Some("bad_request"))
            .half_close(),
    );

    let b = body("chunk_lies");
    let mut raw = Raw::post("/webhooks/x", Vec::new())
        .header(sig("exact", &b))
        .header("Transfer-Encoding: chunked")
        .framed_by_row()
        .keep_alive()
        .bytes();
    // A chunk that claims 0x400 bytes swallows the terminator and the request behind it.
    raw.extend_from_slice(format!("400\r\n{}\r\n0\r\n\r\n", String::from_utf8_lossy(&b)).as_bytes());
    raw.extend_from_slice(&smuggled);
    rows.push(
        row("a chunk size longer than the chunk, sender half-closes", raw, Answers(vec![400]), Some("bad_request"))
            .half_close(),
    );

    let b = body("chunk_overflow");
    let mut raw = Raw::post("/webhooks/x", Vec::new())
        .header(sig("exact", &b))
        .header("Transfer-Encoding: chunked")
        .framed_by_row()
        .bytes();
    raw.extend_from_slice(b"fffffffffffffffffffff\r\n");
    raw.extend_from_slice(&b);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    rows.push(row("a chunk size that overflows 64 bits", raw, Answers(vec![400]), Some("bad_request")));

    let b = body("chunk_neg");
    let mut raw = Raw::post("/webhooks/x", Vec::new())
        .header(sig("exact", &b))
        .header("Transfer-Encoding: chunked")
        .framed_by_row()
        .bytes();
    raw.extend_from_slice(b"-1\r\n");
    raw.extend_from_slice(&b);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    rows.push(row("a negative chunk size", raw, Answers(vec![400]), Some("bad_request")));

    // ---- Line folding and line endings ---------------------------------------------------------
    let b = body("fold_sig");
    let value = sig_value("exact", &b);
    let raw = Raw::post("/webhooks/x", b)
        .header(format!("x-freispace-signature: {}\r\n {}", &value[..32], &value[32..]))
        .bytes();
    rows.push(row("the signature folded onto a second line", raw, Answers(vec![400]), None));

    let raw = signed("/webhooks/x", "exact", "fold_other").header("x-note: one\r\n\ttwo").bytes();
    rows.push(row("another header folded", raw, Answers(vec![400]), None));

    let b = body("bare_lf");
    let raw = Raw::post("/webhooks/x", b.clone()).bare_lf().header(sig("exact", &b)).bytes();
    // RFC 9112 2.2 lets a recipient accept a bare LF as a line end; hyper does. The request is
    // then an ordinary one: verified, and forwarded once with its own body.
    rows.push(row("bare LF line endings, signed", raw, Answers(vec![200]), None).forwards("/webhooks/x", &b));

    let raw = Raw::post("/webhooks/x", body("bare_lf_unsigned")).bare_lf().bytes();
    rows.push(row("bare LF line endings, unsigned", raw, Answers(vec![400]), Some("missing_signature")));

    let b = body("bare_cr");
    let raw = Raw::post("/webhooks/x", b.clone()).header(sig("exact", &b)).bytes();
    let raw = String::from_utf8(raw).expect("ASCII").replacen("Host: gateway.test\r\n", "Host: gateway.test\r", 1);
    rows.push(row("a bare CR line ending", raw.into_bytes(), Answers(vec![400]), None));

    // ---- Paths: routed exactly as written, or 404 -----------------------------------------------
    // Each of these is signed with the secret of `/webhooks/x`. None may reach that route.
    for (target, status, error) in [
        ("//webhooks/x", 404, "no_route"),
        ("/webhooks//x", 403, "invalid_signature"),
        ("/webhooks/./x", 403, "invalid_signature"),
        ("/webhooks/%2e%2e/x", 403, "invalid_signature"),
        ("/webhooks/../webhooks/x", 403, "invalid_signature"),
        ("/webhooks/x%2Fy", 403, "invalid_signature"),
        ("/webhooks/%78", 403, "invalid_signature"),
        ("/webhooks/x/", 403, "invalid_signature"),
        ("/webhooks/x;a=b", 403, "invalid_signature"),
        ("/webhooks/x%00", 403, "invalid_signature"),
        ("/WEBHOOKS/X", 404, "no_route"),
        ("/webhooks", 404, "no_route"),
        ("http://other.test//webhooks/x", 404, "no_route"),
        ("http://other.test/webhooks/%2e%2e/x", 403, "invalid_signature"),
    ] {
        let raw = signed(target, "exact", target).bytes();
        rows.push(row(format!("target {target}, signed for /webhooks/x"), raw, Answers(vec![status]), Some(error)));
    }

    // Signed for the catch-all, the odd path is forwarded: byte for byte as written.
    for target in ["/webhooks/%2e%2e/x", "/webhooks/x%2Fy", "/webhooks/./x", "/webhooks/y?to=/webhooks/x"] {
        let b = body(target);
        let raw = Raw::post(target, b.clone()).header(sig("catchall", &b)).bytes();
        rows.push(
            row(format!("target {target}, signed for the catch-all"), raw, Answers(vec![200]), None)
                .forwards(target, &b),
        );
    }

    // The absolute form names the same path: it is that route's request, forwarded to its
    // upstream (never to the host it names) under the path alone.
    let b = body("absolute");
    let raw = Raw::post("http://other.test/webhooks/x", b.clone()).header(sig("exact", &b)).bytes();
    rows.push(row("absolute-form target", raw, Answers(vec![200]), None).forwards("/webhooks/x", &b));

    for (name, target) in
        [("a raw non-ASCII byte in the path", &b"/webhooks/\xffx"[..]), ("a space in the path", b"/webhooks/x y")]
    {
        let b = body(name);
        let mut raw = b"POST ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(
            format!(
                " HTTP/1.1\r\nHost: h\r\n{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                sig("exact", &b),
                b.len()
            )
            .as_bytes(),
        );
        raw.extend_from_slice(&b);
        rows.push(row(name, raw, Answers(vec![400]), None));
    }

    // The query is not part of the path: it picks no route, and reaches the upstream as sent.
    let b = body("query");
    let raw = Raw::post("/webhooks/x?next=%2e%2e/../catchall", b.clone()).header(sig("exact", &b)).bytes();
    rows.push(
        row("a query that looks like a path", raw, Answers(vec![200]), None)
            .forwards("/webhooks/x?next=%2e%2e/../catchall", &b),
    );

    // A fragment has no place in a request target; the http crate drops it while parsing, so
    // the gateway routes and forwards the same path, never a different one.
    let b = body("fragment");
    let raw = Raw::post("/webhooks/x#/../y", b.clone()).header(sig("exact", &b)).bytes();
    rows.push(row("a fragment in the target", raw, Answers(vec![200]), None).forwards("/webhooks/x", &b));

    let raw = Raw::post("*", body("asterisk")).line("OPTIONS * HTTP/1.1").bytes();
    rows.push(row("OPTIONS *", raw, Answers(vec![404]), Some("no_route")));

    let raw = signed("/webhooks/x", "exact", "lower_method").line("post /webhooks/x HTTP/1.1").bytes();
    rows.push(row("a lower-case method", raw, Answers(vec![405]), Some("method_not_allowed")));

    rows
}

/// What one row produced: the answers' status codes and bodies, in order.
#[derive(Debug)]
struct Observed {
    answers: Vec<(u16, Vec<u8>)>,
}

/// Sends `row` on a fresh connection and reads every answer until the gateway closes it.
async fn run(gateway: &Gateway, row: &Row) -> Observed {
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // A gateway that refuses early may close before taking every byte; that is its right.
    let _ = stream.write_all(&row.bytes).await;
    if row.half_close {
        let _ = stream.shutdown().await;
    }
    let received = within(&format!("{}: the gateway to close the connection", row.name), async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    Observed { answers: parse_answers(&received).unwrap_or_else(|e| panic!("{}: {e}: {received:?}", row.name)) }
}

/// Splits a byte stream into HTTP/1.1 answers (each with a `Content-Length`, as the gateway
/// and hyper always send).
fn parse_answers(mut bytes: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, String> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").ok_or("an incomplete answer head")?;
        let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "a non-ASCII answer head")?;
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|s| s.parse().ok());
        let status = status.ok_or("no status code")?;
        let length = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(Ok(0), |(_, value)| value.trim().parse::<usize>().map_err(|_| "a bad Content-Length"))?;
        let rest = &bytes[end + 4..];
        let body = rest.get(..length).ok_or("a truncated answer body")?;
        answers.push((status, body.to_vec()));
        bytes = &rest[length..];
    }
    Ok(answers)
}

/// Checks one row; returns what is wrong with it, if anything.
fn check(row: &Row, observed: &Observed, forwarded: &[Received]) -> Vec<String> {
    let mut problems = Vec::new();
    let statuses: Vec<u16> = observed.answers.iter().map(|(status, _)| *status).collect();
    match &row.expect {
        Expect::Answers(expected) if &statuses != expected => {
            problems.push(format!("answers {statuses:?}, expected {expected:?}"));
        }
        Expect::AnswerOrClose(expected) if !(statuses.is_empty() || statuses == [*expected]) => {
            problems.push(format!("answers {statuses:?}, expected [{expected}] or a close"));
        }
        _ => {}
    }
    if let (Some(error), Some((_, body))) = (row.error, observed.answers.first()) {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        if json != Some(serde_json::json!({ "error": error })) {
            problems.push(format!("first answer body {:?}, expected error {error:?}", String::from_utf8_lossy(body)));
        }
    }
    let got: Vec<(String, Vec<u8>)> = forwarded.iter().map(|r| (r.target.clone(), r.body.to_vec())).collect();
    if got != row.forwarded {
        let show = |list: &[(String, Vec<u8>)]| -> Vec<(String, String)> {
            list.iter().map(|(t, b)| (t.clone(), String::from_utf8_lossy(b).into_owned())).collect()
        };
        problems.push(format!("the upstream got {:?}, expected {:?}", show(&got), show(&row.forwarded)));
    }
    // Whatever was forwarded carried its signature and nothing the gateway should have removed.
    for request in forwarded {
        let signatures = request.headers.get_all("x-freispace-signature").iter().count()
            + request.headers.get_all("x-freshbooks-hmac-sha256").iter().count();
        if signatures != 1 {
            problems.push(format!("a forwarded request carried {signatures} signature headers"));
        }
        if request.headers.contains_key("transfer-encoding") {
            problems.push("a forwarded request kept Transfer-Encoding".into());
        }
    }
    problems
}

#[tokio::test]
async fn hostile_input_table() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    let rows = table(&gateway);
    let mut failures = Vec::new();
    let mut seen = 0;
    let mut forwarded_rows = 0;
    for row in &rows {
        let observed = run(&gateway, row).await;
        // A forward happens before its answer is written, so once the connection is closed
        // everything this row caused has reached the upstream.
        let received = upstream.received();
        let problems = check(row, &observed, &received[seen..]);
        seen = received.len();
        forwarded_rows += usize::from(!row.forwarded.is_empty());
        if !problems.is_empty() {
            failures.push(format!("{}:\n    {}", row.name, problems.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
    assert!(rows.len() >= 60, "the table has {} rows", rows.len());

    // Nothing panicked the server: after every row it still answers, and every forwarded
    // request it counted is one the table expected.
    let reply = send(gateway.signed_post("exact", "/webhooks/x", "{\"after\":\"table\"}")).await;
    assert_eq!(reply.status, StatusCode::OK, "the gateway still serves after the table");
    let health = gateway.admin_get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let expected_forwards: usize = rows.iter().map(|row| row.forwarded.len()).sum::<usize>() + 1;
    assert_eq!(upstream.received().len(), expected_forwards);
    let scrape = gateway.metrics().await;
    let forwarded: f64 = ["exact", "catchall", "freshbooks"]
        .iter()
        .map(|route| scrape.value("hookgate_requests_total", &[("route", route), ("outcome", "forwarded")]))
        .sum();
    assert_eq!(forwarded, expected_forwards as f64, "forwards counted ({forwarded_rows} rows forward)");
}

#[tokio::test]
async fn a_connection_reset_mid_request_does_not_disturb_the_server() {
    // The nearest thing to a crash a sender can cause from outside: vanishing in the middle of
    // a head, of a body, and while its request waits on the upstream.
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    let b = body("reset");
    let (name, value) = gateway.sign("exact", &b).remove(0);
    let full =
        Raw::post("/webhooks/x", b.clone()).header(format!("{name}: {}", value.to_str().expect("ASCII"))).bytes();
    for cut in [10, full.len() - b.len() - 2, full.len() - 3] {
        let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
        stream.write_all(&full[..cut]).await.expect("write");
        stream.set_zero_linger().expect("SO_LINGER 0");
        drop(stream); // closing with SO_LINGER 0 sends RST
    }
    upstream.assert_untouched();
    let reply = send(gateway.signed_post("exact", "/webhooks/x", b.clone())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.only().body, b);
}

//! Forwarding a verified request: a pooled keep-alive client, hop-by-hop headers removed,
//! `X-Forwarded-*` added, and the body sent exactly as received, in the frames it arrived in.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Response, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};

use crate::body::Body;
use crate::config::{Route, Upstream};
use crate::handler::Downstream;
use crate::upstream::UpstreamPool;
use crate::verify::{Rejection, Verified};

/// Why a request may be forwarded. Only [`crate::verify::Scheme::verify`] makes a [`Verified`], so a
/// request cannot reach the upstream without passing it (or the explicit enrolment policy).
#[derive(Debug)]
pub enum Admission {
    Verified(Verified),
    /// A report-only route (`enforce: false`) forwards what failed verification, marked
    /// `X-Hookgate-Unverified: <outcome>` so the upstream knows.
    ReportOnly(Rejection),
    /// FreshBooks' unsigned `callback.verify`, let through by a route in enrolment mode; the
    /// upstream sees `X-Hookgate-Unauthenticated: freshbooks-callback-verify`.
    Enrolment,
}

/// Upstream answers larger than this are refused with 502 rather than buffered without bound.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Why the upstream did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Refused, reset, or broke the protocol.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("no upstream answer within the route's upstream_timeout")]
    Timeout,
    #[error("upstream answer larger than {MAX_RESPONSE_BYTES} bytes")]
    ResponseTooLarge,
}

/// Sends the request to the route's upstream and buffers its answer, all within the route's
/// `upstream_timeout` from `now`. `trust_forwarded` keeps the sender's `X-Forwarded-*` (a trusted proxy
/// stands in front). Taking an [`Admission`] means only a verified request can get here.
/// Nothing is retried once the request may have reached the upstream: senders retry on 5xx
/// themselves (the pool only re-sends requests that never left, on a closed idle connection).
///
/// The outgoing request is built before the returned future first runs, so the future holds it
/// once instead of the pieces it is made from as well: it is part of every request's future.
pub fn forward(
    route: &Route,
    parts: Parts,
    body: Body,
    admission: Admission,
    downstream: Downstream,
    trust_forwarded: bool,
    now: tokio::time::Instant,
) -> impl Future<Output = Result<Response<Full<Bytes>>, ForwardError>> + Send + '_ {
    let outgoing = match &route.upstream {
        Upstream::Echo => Err(echo(&parts.headers, body.into_bytes())),
        Upstream::Http(pool) => {
            Ok((pool, upstream_request(route, pool, parts, body, &admission, downstream, trust_forwarded)))
        }
    };
    async move {
        match outgoing {
            Err(echoed) => Ok(echoed),
            Ok((pool, request)) => {
                tokio::time::timeout_at(now + route.upstream_timeout, exchange(pool, request, now.into_std()))
                    .await
                    .unwrap_or(Err(ForwardError::Timeout))
            }
        }
    }
}

/// The request as the upstream gets it: hop-by-hop headers removed, `X-Hookgate-*` and
/// `X-Forwarded-*` set, `Host` the upstream's, and the body as received.
fn upstream_request(
    route: &Route,
    pool: &UpstreamPool,
    mut parts: Parts,
    body: Body,
    admission: &Admission,
    downstream: Downstream,
    trust_forwarded: bool,
) -> http::Request<Full<Body>> {
    let original_host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|authority| HeaderValue::from_str(authority.as_str()).ok()));
    remove_hop_by_hop(&mut parts.headers);
    set_hookgate_headers(&mut parts.headers, route, admission);
    add_forwarded(&mut parts.headers, original_host, downstream, trust_forwarded);
    parts.headers.insert(header::HOST, pool.host().clone());
    // The sender's own Content-Length goes on when it is one value that counts this body (the
    // usual case, and no allocation); otherwise (chunked, repeated) the gateway writes one.
    let mut lengths = parts.headers.get_all(header::CONTENT_LENGTH).iter();
    let exact = match (lengths.next(), lengths.next()) {
        (Some(length), None) => length.to_str().ok().and_then(|text| text.parse().ok()) == Some(body.len()),
        _ => false,
    };
    if !exact {
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    // Origin-form: the path and query exactly as the sender wrote them.
    parts.uri = match parts.uri.path_and_query() {
        Some(path_and_query) => Uri::from(path_and_query.clone()),
        None => Uri::from_static("/"),
    };
    parts.version = Version::HTTP_11;
    http::Request::from_parts(parts, Full::new(body))
}

/// Sends `request` at `now` and reads the whole answer; the connection goes back to the pool
/// after. (Not an `async fn`, which would hold `request` twice.)
#[expect(clippy::manual_async_fn, reason = "an async fn would hold `request` twice")]
fn exchange(
    pool: &UpstreamPool,
    request: http::Request<Full<Body>>,
    now: std::time::Instant,
) -> impl Future<Output = Result<Response<Full<Bytes>>, ForwardError>> + Send + '_ {
    async move {
        let (response, connection) = pool.send(request, now).await?;
        let (mut parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await.map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                ForwardError::ResponseTooLarge
            } else {
                ForwardError::Unreachable(error.to_string())
            }
        })?;
        pool.put_back(connection);
        remove_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Full::new(body.to_bytes())))
    }
}

/// The built-in upstream: 200 with the same body and content type.
pub fn echo(request_headers: &HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    if let Some(content_type) = request_headers.get(header::CONTENT_TYPE) {
        response.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
}

/// Headers that describe one connection, not the message (RFC 9110 7.6.1), plus any the
/// `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one pass over the names saves eight lookups.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

/// Our own `X-Hookgate-*` headers are the only ones the upstream sees: a sender's are removed.
/// With `forward_headers`, verified requests say so and signature headers may be stripped.
fn set_hookgate_headers(headers: &mut HeaderMap, route: &Route, admission: &Admission) {
    let spoofed: Vec<HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with("x-hookgate-")).cloned().collect();
    for name in spoofed {
        headers.remove(name);
    }
    if route.forward_headers.strip_signature {
        for name in route.scheme.signature_headers() {
            headers.remove(name);
        }
    }
    match admission {
        Admission::Verified(verified) if route.forward_headers.verified => {
            let text = |value: &str| HeaderValue::from_str(value).ok();
            if let Some(scheme) = text(&route.scheme.name) {
                headers.insert("x-hookgate-verified", scheme);
            }
            if let Some(id) = verified.delivery_id.as_deref().and_then(text) {
                headers.insert("x-hookgate-delivery-id", id);
            }
            if let Some(at) = verified.timestamp {
                headers.insert("x-hookgate-timestamp", HeaderValue::from(at.as_secs()));
            }
        }
        Admission::Verified(_) => {}
        Admission::ReportOnly(rejection) => {
            headers.insert("x-hookgate-unverified", HeaderValue::from_static(rejection.outcome()));
        }
        Admission::Enrolment => {
            headers.insert("x-hookgate-unauthenticated", HeaderValue::from_static("freshbooks-callback-verify"));
        }
    }
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host`. With `trust` (a proxy we trust stands in
/// front, as when a sidecar sits behind an ingress) the sender's values are kept and our peer is
/// appended to the chain; without it, whatever the sender claimed is replaced by what we saw.
fn add_forwarded(headers: &mut HeaderMap, original_host: Option<HeaderValue>, downstream: Downstream, trust: bool) {
    const FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    const PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    const HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    // A chain may arrive on several header lines; keep every hop, in order.
    let earlier: Vec<&str> = match trust {
        true => headers
            .get_all(&FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect(),
        false => Vec::new(),
    };
    let chain = match earlier.is_empty() {
        true => downstream.peer_header,
        false => {
            let peer = downstream.peer_header.to_str().expect("made from an IP address");
            let chain = format!("{}, {peer}", earlier.join(", "));
            HeaderValue::from_str(&chain).expect("joined header values and an IP are valid header text")
        }
    };
    headers.insert(FOR, chain);
    if !(trust && headers.contains_key(&PROTO)) {
        headers.insert(PROTO, HeaderValue::from_static(downstream.proto));
    }
    if !(trust && headers.contains_key(&HOST)) {
        match original_host {
            Some(host) => headers.insert(HOST, host),
            None => headers.remove(&HOST),
        };
    }
}

/// The error and its causes on one line ("connection refused" hides two levels down).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

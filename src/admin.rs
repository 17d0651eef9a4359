//! The admin listener: `/metrics` (Prometheus text format), `/healthz`, `/readyz`.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::metrics::Metrics;

/// Answers one admin request. `/readyz` is 200 while the gateway serves and 503 once it drains,
/// so a load balancer stops sending before the listener closes.
pub fn respond<B>(request: &Request<B>, metrics: &Metrics, ready: bool) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (StatusCode::OK, "text/plain; version=0.0.4", metrics.render()),
        (&Method::GET | &Method::HEAD, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        (&Method::GET | &Method::HEAD, "/readyz") if ready => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
        (&Method::GET | &Method::HEAD, "/readyz") => {
            (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n".to_owned())
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

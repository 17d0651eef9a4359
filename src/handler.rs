//! One request, start to end: find the route, read the body under its limit, verify, forward.
//! Every failure becomes a response here, in one place, and every request is counted and logged
//! once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::body::{Body, Collector};
use crate::challenge;
use arc_swap::ArcSwap;

use crate::config::{Challenge, Config, Limits, Route};
use crate::forward::{Admission, ForwardError};
use crate::metrics::Metrics;
use crate::replay::{Refusal, Reservation};
use crate::routes::{Lookup, RouteTable};
use crate::slots::Slots;
use crate::verify::form_json::parse_form;
use crate::verify::{Rejection, SignedRequest, UnixTime};

/// What every request handler shares. Built once at startup; only `snapshot` is replaced, by a
/// config reload.
pub struct AppState {
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: Metrics,
    pub enrolment: EnrolmentLimiter,
    /// One slot per request being handled (`limits.max_concurrent_requests`).
    pub request_slots: Slots,
    pub limits: Limits,
}

/// The reloadable part of the config, swapped as one unit. A request loads it once, so it
/// finishes on the config it started with.
pub struct Snapshot {
    pub routes: RouteTable,
    /// Keep the sender's `X-Forwarded-*` and rebuild public URLs from them.
    pub trust_forwarded_headers: bool,
}

impl Snapshot {
    /// The routes of `config`, their series made and bound in `metrics`.
    pub fn new(mut config: Config, metrics: &Metrics) -> Self {
        for route in &mut config.routes {
            route.metrics = metrics.bind(&route.name);
        }
        Self { routes: RouteTable::new(config.routes), trust_forwarded_headers: config.trust_forwarded_headers }
    }
}

/// Lets at most one unauthenticated FreshBooks `callback.verify` through per route per
/// [`EnrolmentLimiter::INTERVAL`], so enrolment mode cannot be used to flood the upstream.
#[derive(Default)]
pub struct EnrolmentLimiter(Mutex<HashMap<String, Instant>>);

impl EnrolmentLimiter {
    pub const INTERVAL: Duration = Duration::from_secs(10);

    fn allow(&self, route: &str, now: Instant) -> bool {
        let mut last = crate::lock(&self.0);
        match last.get(route) {
            Some(at) if now.duration_since(*at) < Self::INTERVAL => false,
            _ => {
                last.insert(route.to_owned(), now);
                true
            }
        }
    }
}

/// Where a request came from, as the listener saw it.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub proto: &'static str,
    /// The peer's address as header text, made once per connection for `X-Forwarded-For`.
    pub peer_header: HeaderValue,
}

impl Downstream {
    pub fn new(peer: SocketAddr, proto: &'static str) -> Self {
        let peer_header = HeaderValue::from_str(&peer.ip().to_string()).expect("an IP address is valid header text");
        Self { proto, peer_header }
    }
}

/// Why a request was not forwarded, sorted by who is at fault: the sender (4xx) or the
/// upstream (5xx).
#[derive(Debug)]
enum Failure {
    NoRoute,
    MethodNotAllowed(HeaderValue),
    TooLarge,
    /// An enrolment request arrived sooner than the limiter allows.
    EnrolmentRateLimited,
    /// The gateway, or the route's upstream, has as many requests as its limit allows.
    Overloaded(&'static str),
    /// The body did not arrive within `limits.body_read_timeout`.
    BodyTimeout,
    /// The body could not be read (the sender went away or broke the framing).
    BadBody,
    /// Verification refused the request; the status is the scheme's choice (Discord wants 401).
    Rejected(Rejection, StatusCode),
    /// Verified, but the route's replay store has seen this delivery within its window.
    Replayed,
    /// The replay store did not answer and the route fails closed (`on_store_error: reject`).
    ReplayStoreUnavailable,
    Upstream(ForwardError),
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self {
            Failure::NoRoute => StatusCode::NOT_FOUND,
            Failure::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Failure::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::EnrolmentRateLimited => StatusCode::TOO_MANY_REQUESTS,
            Failure::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Failure::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Failure::BadBody => StatusCode::BAD_REQUEST,
            Failure::Rejected(_, status) => *status,
            Failure::Replayed => StatusCode::CONFLICT,
            Failure::ReplayStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Upstream(ForwardError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Upstream(ForwardError::Unreachable(_) | ForwardError::ResponseTooLarge) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `outcome` label, also the `error` field of the response body.
    fn outcome(&self) -> &'static str {
        match self {
            Failure::NoRoute => "no_route",
            Failure::MethodNotAllowed(_) => "method_not_allowed",
            Failure::TooLarge => "too_large",
            Failure::EnrolmentRateLimited => "rate_limited",
            Failure::Overloaded(_) => "overloaded",
            Failure::BodyTimeout => "request_timeout",
            Failure::BadBody => "bad_request",
            Failure::Rejected(rejection, _) => rejection.outcome(),
            Failure::Replayed => Refusal::Replayed.outcome(),
            Failure::ReplayStoreUnavailable => Refusal::StoreUnavailable.outcome(),
            Failure::Upstream(ForwardError::Timeout) => "upstream_timeout",
            Failure::Upstream(ForwardError::Unreachable(_) | ForwardError::ResponseTooLarge) => "upstream_error",
        }
    }

    /// A short, generic answer: never a secret, an expected signature or upstream detail.
    fn response(&self) -> Response<Full<Bytes>> {
        let body = format!("{{\"error\":\"{}\"}}\n", self.outcome());
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self {
            Failure::MethodNotAllowed(allow) => {
                response.headers_mut().insert(header::ALLOW, allow.clone());
            }
            // Senders retry 5xx; tell them when: a second is enough for a burst to pass.
            Failure::Overloaded(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Failure::ReplayStoreUnavailable => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

/// Handles one request; never fails (every error is a response), hence `Infallible`, which is
/// what hyper's service wants.
///
/// This future and those it awaits are written as functions returning `async` blocks: an
/// `async fn` keeps a second copy of its arguments, and this future is moved into place (and
/// once boxed) for every request.
#[expect(clippy::manual_async_fn, reason = "an async fn would hold the request twice")]
pub fn handle(
    state: Arc<AppState>,
    request: Request<Incoming>,
    downstream: Downstream,
) -> impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send {
    async move {
        // tokio's clock, as the deadlines counted from it are tokio's timers.
        let started = tokio::time::Instant::now();
        let _inflight = state.metrics.track_inflight();
        // Kept for the log line (cheap clones: the URI's parts are shared bytes).
        let (method, uri) = (request.method().clone(), request.uri().clone());

        let snapshot = state.snapshot.load_full();
        let (route, result) = match snapshot.routes.find(request.method(), request.uri().path()) {
            // A request holds its slot from before its body is read until its answer, which bounds
            // the memory bodies take. When none is free, answering at once beats queueing.
            Lookup::Found(route) => match state.request_slots.try_take() {
                Some(_slot) => {
                    (Some(route), route_request(&state, &snapshot, route, request, downstream, started).await)
                }
                None => (Some(route), Err(Failure::Overloaded("max_concurrent_requests reached"))),
            },
            Lookup::MethodNotAllowed(route) => (Some(route), Err(Failure::MethodNotAllowed(allow_header(route)))),
            Lookup::NotFound => (None, Err(Failure::NoRoute)),
        };

        let route_name = route.map_or("", |r| r.name.as_str());
        let elapsed = started.elapsed();
        let (response, outcome) = match result {
            // Accepted requests are logged at debug: at info, the line costs a quarter of the CPU a
            // request takes. Metrics count them all; failures, the ones to look into, stay at info.
            Ok((response, outcome)) => {
                tracing::debug!(route = route_name, %method, path = uri.path(), status = response.status().as_u16(), outcome,
                    duration_us = elapsed.as_micros() as u64, "request");
                (response, outcome)
            }
            Err(failure) => {
                let response = failure.response();
                tracing::info!(route = route_name, %method, path = uri.path(), status = response.status().as_u16(), outcome = failure.outcome(),
                    reason = %FailureReason(&failure), duration_us = elapsed.as_micros() as u64, "request");
                (response, failure.outcome())
            }
        };
        match route {
            Some(route) => state.metrics.count(&route.name, &route.metrics, outcome, elapsed.as_secs_f64()),
            None => state.metrics.count_unrouted(elapsed.as_secs_f64()),
        }
        Ok(response)
    }
}

/// The detail for the log line: which header, which upstream error. Never key material.
struct FailureReason<'a>(&'a Failure);

impl std::fmt::Display for FailureReason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Failure::Rejected(rejection, _) => write!(f, "{rejection}"),
            Failure::Upstream(error) => write!(f, "{error}"),
            Failure::Overloaded(which) => f.write_str(which),
            other => f.write_str(other.outcome()),
        }
    }
}

/// Reads, verifies and forwards; the `Ok` side carries the outcome label: `forwarded`,
/// `challenge` for an endpoint check the gateway answered, or `enrolment` for an
/// unauthenticated FreshBooks registration. `started` is when the request was handed over:
/// the body's deadline counts from it.
///
/// The clock is read once for each deadline and measurement, and that reading is reused for
/// whatever else needs the time then (a read costs about 40 ns on a virtual machine).
fn route_request<'a>(
    state: &'a AppState,
    snapshot: &'a Snapshot,
    route: &'a Route,
    request: Request<Incoming>,
    downstream: Downstream,
    started: tokio::time::Instant,
) -> impl Future<Output = Result<(Response<Full<Bytes>>, &'static str), Failure>> + Send + 'a {
    let (parts, body) = request.into_parts();
    async move {
        // hyper reads at most `max_header_bytes` at once: the server sets it as hyper's `max_buf_size`.
        let reading = read_body(&parts.headers, body, route.max_body_bytes, state.limits.max_header_bytes);
        let body = tokio::time::timeout_at(started + state.limits.body_read_timeout, reading)
            .await
            .map_err(|_| Failure::BodyTimeout)??;
        let answering = route.challenge == Challenge::Answer;
        if let Some(answer) =
            challenge::unsigned_answer(&route.scheme.name, &parts.method, &parts.uri).filter(|_| answering)
        {
            return Ok((answer, "challenge"));
        }
        let trust_forwarded = snapshot.trust_forwarded_headers;
        let url = public_url(route, &parts, trust_forwarded);
        let signed = SignedRequest { method: &parts.method, url: url.as_deref(), headers: &parts.headers, body: &body };
        let admission = match route.scheme.verify(&route.keys, signed, UnixTime::now()) {
            Ok(verified) => {
                if !route.enforce {
                    state.metrics.count_report_only(&route.name, "verified");
                }
                let answer = answering.then(|| {
                    challenge::verified_answer(
                        &route.scheme.name,
                        &route.keys,
                        &verified,
                        &parts.headers,
                        &body.contiguous(),
                    )
                });
                if let Some(answer) = answer.flatten() {
                    return Ok((answer, "challenge"));
                }
                Admission::Verified(verified)
            }
            Err(Rejection::Missing(_)) if route.enrolment && is_freshbooks_registration(&body.contiguous()) => {
                if !state.enrolment.allow(&route.name, Instant::now()) {
                    return Err(Failure::EnrolmentRateLimited);
                }
                Admission::Enrolment
            }
            Err(rejection) if !route.enforce => {
                state.metrics.count_report_only(&route.name, rejection.outcome());
                tracing::warn!(route = %route.name, outcome = rejection.outcome(), reason = %rejection,
                    "report-only route: forwarding a request that failed verification");
                Admission::ReportOnly(rejection)
            }
            Err(rejection) => {
                let status = route.rejection_status.unwrap_or_else(|| route.scheme.status(&rejection));
                return Err(Failure::Rejected(rejection, status));
            }
        };
        let outcome = match admission {
            Admission::Enrolment => "enrolment",
            Admission::Verified(_) | Admission::ReportOnly(_) => "forwarded",
        };
        let reservation = reserve_replay(state, route, &admission, signed).await?;
        let _upstream_slot = match &route.upstream_slots {
            Some(slots) => Some(slots.try_take().ok_or(Failure::Overloaded("max_upstream_concurrency reached"))?),
            None => None,
        };
        let sent = tokio::time::Instant::now();
        let response = crate::forward::forward(route, parts, body, admission, downstream, trust_forwarded, sent)
            .await
            .map_err(Failure::Upstream);
        route.metrics.observe_upstream(sent.elapsed());
        if let Some(reservation) = reservation {
            reservation.settle(response.as_ref().is_ok_and(|r| r.status().is_success())).await;
        }
        Ok((response?, outcome))
    }
}

/// Replay protection, for a verified request on a route with `replay:`. The key is kept only if
/// the upstream answers 2xx: senders retry anything else with the same id. A report-only route
/// counts a replay and forwards it, as it does every verdict.
async fn reserve_replay(
    state: &AppState,
    route: &Route,
    admission: &Admission,
    signed: SignedRequest<'_>,
) -> Result<Option<Reservation>, Failure> {
    let (Some(replay), Admission::Verified(verified)) = (&route.replay, admission) else { return Ok(None) };
    match replay.reserve(&route.scheme, verified, signed, &state.metrics).await {
        Ok(reservation) => Ok(Some(reservation)),
        Err(Refusal::Replayed) if !route.enforce => {
            state.metrics.count_report_only(&route.name, Refusal::Replayed.outcome());
            tracing::warn!(route = %route.name, outcome = "replayed", "report-only route: forwarding a replayed delivery");
            Ok(None)
        }
        Err(Refusal::StoreUnavailable) if !route.enforce => Ok(None),
        Err(Refusal::Replayed) => Err(Failure::Replayed),
        Err(Refusal::StoreUnavailable) => Err(Failure::ReplayStoreUnavailable),
    }
}

/// The URL the sender called, for schemes that sign it: the route's `public_url`, else (when
/// trusted) what `X-Forwarded-Proto`/`-Host` say, else the `Host` the request names.
fn public_url(route: &Route, parts: &http::request::Parts, trust_forwarded: bool) -> Option<String> {
    if !route.scheme.signs_url() {
        return None;
    }
    if let Some(public) = &route.public_url {
        return Some(public.for_request(&parts.uri));
    }
    let header = |name: &str| {
        parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or(v).trim())
    };
    let forwarded = |name| header(name).filter(|_| trust_forwarded);
    let proto = forwarded("x-forwarded-proto").unwrap_or("http");
    let host = forwarded("x-forwarded-host")
        .or_else(|| header("host"))
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))?;
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    Some(format!("{proto}://{host}{path_and_query}"))
}

/// A form whose one `name` field is `callback.verify`: FreshBooks' unsigned registration.
fn is_freshbooks_registration(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else { return false };
    let fields = parse_form(text);
    let mut names = fields.iter().filter(|(key, _)| key == "name");
    matches!((names.next(), names.next()), (Some((_, value)), None) if value == "callback.verify")
}

/// Reads the whole body, refusing at once when `Content-Length` announces more than `limit`
/// and otherwise stopping as soon as the bytes read pass it. hyper's frames are kept as they
/// are (see [`Collector`]), so the body is held once and never copied again; `read_size` is
/// how much hyper reads at once.
async fn read_body(
    headers: &http::HeaderMap,
    mut body: Incoming,
    limit: usize,
    read_size: usize,
) -> Result<Body, Failure> {
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(Failure::TooLarge);
    }
    let mut collector = Collector::new(read_size, announced.map(|length| length as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Failure::BadBody)?;
        if let Ok(data) = frame.into_data() {
            if collector.len() + data.len() > limit {
                return Err(Failure::TooLarge);
            }
            collector.push(data);
        }
    }
    Ok(collector.finish())
}

fn allow_header(route: &Route) -> HeaderValue {
    let methods: Vec<&str> = route.methods.iter().map(http::Method::as_str).collect();
    HeaderValue::from_str(&methods.join(", ")).expect("method names are valid header text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshbooks_registration_is_recognised_exactly() {
        let registration = b"name=callback.verify&object_id=214170&verifier=abc&account_id=6BApk&user_id=1";
        assert!(is_freshbooks_registration(registration));
        assert!(!is_freshbooks_registration(b"name=invoice.create&object_id=1"));
        assert!(!is_freshbooks_registration(b"name=callback.verify&name=invoice.create"), "ambiguous name");
        assert!(!is_freshbooks_registration(b"object_id=1"));
        assert!(!is_freshbooks_registration(b"name=callback.verify\xff"));
    }

    #[test]
    fn enrolment_limiter_allows_one_per_interval_per_route() {
        let limiter = EnrolmentLimiter::default();
        let start = Instant::now();
        assert!(limiter.allow("fb", start));
        assert!(!limiter.allow("fb", start + Duration::from_secs(1)));
        assert!(limiter.allow("other", start + Duration::from_secs(1)));
        assert!(limiter.allow("fb", start + EnrolmentLimiter::INTERVAL));
    }
}

//! FreshBooks enrolment mode: the unsigned `callback.verify` registration is forwarded, flagged
//! and rate-limited; nothing else unsigned gets through.

mod common;

use common::{Gateway, Upstream, post, send, sign_with, with_headers};
use hookgate::verify::UnixTime;
use http::StatusCode;

const ROUTES: &str = r#"
routes:
  - name: fb
    path: /hooks/freshbooks
    upstream: "{upstream}"
    verify: { scheme: freshbooks, enrolment: true }
"#;

const REGISTRATION: &str = "name=callback.verify&object_id=214170&verifier=Kx3q9a&account_id=6BApk&user_id=1";

#[tokio::test]
async fn the_registration_is_forwarded_flagged_and_rate_limited() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    let reply = send(post(gateway.url("/hooks/freshbooks"), REGISTRATION)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let received = upstream.only();
    assert_eq!(received.body, REGISTRATION);
    assert_eq!(received.header("x-hookgate-unauthenticated"), Some("freshbooks-callback-verify"));

    let reply = send(post(gateway.url("/hooks/freshbooks"), REGISTRATION)).await;
    reply.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(upstream.received().len(), 1);

    let scrape = gateway.metrics().await;
    let requests = |outcome| scrape.value("hookgate_requests_total", &[("route", "fb"), ("outcome", outcome)]);
    assert_eq!((requests("enrolment"), requests("rate_limited"), requests("forwarded")), (1.0, 1.0, 0.0));
}

#[tokio::test]
async fn nothing_else_unsigned_or_forged_gets_through() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    let url = gateway.url("/hooks/freshbooks");
    let event = "name=invoice.create&object_id=1&account_id=6BApk&user_id=1";
    send(post(&url, event)).await.assert_error(StatusCode::BAD_REQUEST, "missing_signature");
    let ambiguous = "name=callback.verify&name=invoice.create&object_id=1";
    send(post(&url, ambiguous)).await.assert_error(StatusCode::BAD_REQUEST, "missing_signature");
    // A signature is checked, never skipped: with no verifier learnt yet, none matches.
    let signed = sign_with(gateway.route("fb"), "guess", REGISTRATION.as_bytes(), UnixTime::now());
    send(with_headers(post(&url, REGISTRATION), signed)).await.assert_error(StatusCode::FORBIDDEN, "invalid_signature");
    upstream.assert_untouched();
}

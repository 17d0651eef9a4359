//! The admin listener: exact counter values after a known sequence of requests, histogram
//! counts, the in-flight gauge, build info, and the health endpoints.

mod common;

use std::collections::BTreeMap;

use common::{Answer, Gateway, Upstream, post, send, with_headers};
use hookgate::metrics::OUTCOMES;
use http::StatusCode;

const ROUTES: &str = r#"
routes:
  - name: alpha
    path: /hooks/alpha
    upstream: "{upstream}"
    max_body_bytes: 100
    verify: { scheme: freispace, secret: alpha-secret }
  - name: beta
    path: /hooks/beta
    upstream: "{upstream}"
    verify: { scheme: flow, secret: beta-secret }
"#;

async fn setup() -> (Upstream, Gateway) {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    (upstream, gateway)
}

#[tokio::test]
async fn counters_and_histograms_after_a_known_sequence() {
    let (upstream, gateway) = setup().await;
    let before = gateway.metrics().await;
    assert_eq!(before.value("hookgate_inflight_requests", &[]), 0.0);

    for i in 0..3 {
        let reply = send(gateway.signed_post("alpha", "/hooks/alpha", format!("{{\"n\":{i}}}"))).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    for _ in 0..2 {
        let forged = with_headers(post(gateway.url("/hooks/alpha"), "{}"), gateway.sign("alpha", b"{ }"));
        assert_eq!(send(forged).await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(send(post(gateway.url("/hooks/alpha"), "{}")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(send(post(gateway.url("/nowhere"), "{}")).await.status, StatusCode::NOT_FOUND);
    let too_large = gateway.signed_post("alpha", "/hooks/alpha", vec![b'x'; 101]);
    assert_eq!(send(too_large).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(upstream.received().len(), 3);

    let scrape = gateway.metrics().await;
    let counted = [("forwarded", 3.0), ("invalid_signature", 2.0), ("missing_signature", 1.0), ("too_large", 1.0)];
    let mut expected = BTreeMap::new();
    for route in ["alpha", "beta"] {
        for outcome in OUTCOMES.iter().filter(|o| **o != "no_route") {
            let value = counted.iter().find(|(o, _)| o == outcome && route == "alpha").map_or(0.0, |(_, n)| *n);
            expected.insert(format!("hookgate_requests_total{{outcome={outcome:?},route={route:?}}}"), value);
        }
    }
    expected.insert(r#"hookgate_requests_total{outcome="no_route",route=""}"#.to_owned(), 1.0);
    let family: BTreeMap<String, f64> =
        scrape.family("hookgate_requests_total").into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(family, expected, "every series, zeros included");

    let count = |name: &str, route: &str| scrape.value(name, &[("route", route)]);
    assert_eq!(count("hookgate_request_duration_seconds_count", "alpha"), 7.0);
    assert_eq!(count("hookgate_request_duration_seconds_count", "beta"), 0.0);
    assert_eq!(count("hookgate_upstream_duration_seconds_count", "alpha"), 3.0, "only forwarded requests");
    assert_eq!(count("hookgate_upstream_duration_seconds_count", "beta"), 0.0);
    let inf = scrape.value("hookgate_request_duration_seconds_bucket", &[("route", "alpha"), ("le", "+Inf")]);
    assert_eq!(inf, 7.0);
    assert!(count("hookgate_request_duration_seconds_sum", "alpha") > 0.0);
    assert_eq!(scrape.value("hookgate_inflight_requests", &[]), 0.0);
}

#[tokio::test]
async fn the_inflight_gauge_counts_a_request_waiting_on_the_upstream() {
    let (upstream, gateway) = setup().await;
    upstream.answer(Answer::Hold);
    let request = gateway.signed_post("alpha", "/hooks/alpha", "{}");
    let pending = tokio::spawn(send(request));
    upstream.arrived(1).await;
    assert_eq!(gateway.metrics().await.value("hookgate_inflight_requests", &[]), 1.0);

    upstream.release();
    let reply = common::within("the held request", pending).await.expect("no panic");
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"released"[..]));
    assert_eq!(gateway.metrics().await.value("hookgate_inflight_requests", &[]), 0.0);
}

#[tokio::test]
async fn build_info_health_readiness_and_unknown_admin_paths() {
    let (_upstream, gateway) = setup().await;
    let metrics = gateway.admin_get("/metrics").await;
    assert_eq!(metrics.header("content-type"), Some("text/plain; version=0.0.4"));
    let scrape = common::Scrape::parse(metrics.text());
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(scrape.value("hookgate_build_info", &[("version", version)]), 1.0);
    assert_eq!(scrape.family("hookgate_build_info").len(), 1);

    let healthz = gateway.admin_get("/healthz").await;
    assert_eq!(healthz.status, StatusCode::OK);
    let readyz = gateway.admin_get("/readyz").await;
    assert_eq!(readyz.status, StatusCode::OK);
    for path in ["/", "/metricsx", "/healthz/extra", "/hooks/alpha"] {
        assert_eq!(gateway.admin_get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    // The admin port serves no webhooks, and the public port no metrics.
    let reply = send(http::Request::get(gateway.url("/metrics")).body(Default::default()).expect("request")).await;
    reply.assert_error(StatusCode::NOT_FOUND, "no_route");
}

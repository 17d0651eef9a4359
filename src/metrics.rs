//! Prometheus metrics, registered into a registry that is passed in (never the global one), so
//! each gateway in a test process counts on its own.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every outcome a request can end with; the `outcome` label takes only these values.
pub const OUTCOMES: &[&str] = &[
    "forwarded",
    "missing_signature",
    "malformed_signature",
    "invalid_signature",
    "expired",
    "too_large",
    "upstream_error",
    "upstream_timeout",
    "no_route",
    "method_not_allowed",
    "bad_request",
    "enrolment",
    "rate_limited",
    "challenge",
    "overloaded",
    "request_timeout",
    "replayed",
    "replay_store_error",
];

/// One route's per-request series, looked up once per config load rather than by label on
/// every request (three label lookups a request, each hashing the labels under a lock).
#[derive(Clone)]
pub struct RouteMetrics {
    forwarded: IntCounter,
    duration: Histogram,
    upstream_duration: Histogram,
}

impl Default for RouteMetrics {
    /// Series in no registry: a route not yet bound by [`Metrics::bind`] counts nowhere.
    fn default() -> Self {
        let histogram = || Histogram::with_opts(HistogramOpts::new("unbound", "unbound")).expect("valid metric");
        Self {
            forwarded: IntCounter::new("unbound", "unbound").expect("valid metric"),
            duration: histogram(),
            upstream_duration: histogram(),
        }
    }
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics").field("forwarded", &self.forwarded.get()).finish_non_exhaustive()
    }
}

impl RouteMetrics {
    /// Records how long the upstream took to answer (or to fail).
    pub fn observe_upstream(&self, took: std::time::Duration) {
        self.upstream_duration.observe(took.as_secs_f64());
    }
}

/// The gateway's metric families.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_duration: HistogramVec,
    report_only: IntCounterVec,
    reloads: IntCounterVec,
    last_reload: prometheus::Gauge,
    inflight: IntGauge,
    replay_store_errors: IntCounterVec,
    replay_evictions: IntCounterVec,
}

// Webhook handlers answer in milliseconds to seconds; these buckets span 0.5 ms to 30 s.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl Metrics {
    /// Registers every family into a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("hookgate_requests_total", "Requests by route and outcome."),
            &["route", "outcome"],
        )
        .expect("valid metric");
        let request_duration = HistogramVec::new(
            HistogramOpts::new("hookgate_request_duration_seconds", "Time from request head to response head.")
                .buckets(BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "hookgate_upstream_duration_seconds",
                "Time the upstream took to answer a forwarded request.",
            )
            .buckets(BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let report_only = IntCounterVec::new(
            Opts::new(
                "hookgate_report_only_total",
                "Verdicts on report-only routes (enforce: false), which forward regardless.",
            ),
            &["route", "outcome"],
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "hookgate_config_reloads_total",
                "Config reloads by result (ok, or error: the old config keeps serving).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let last_reload = prometheus::Gauge::new(
            "hookgate_config_last_reload_success_timestamp_seconds",
            "When the config in use was loaded (startup or the last successful reload), as a Unix time.",
        )
        .expect("valid metric");
        let inflight =
            IntGauge::new("hookgate_inflight_requests", "Requests being handled now.").expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("hookgate_build_info", "Always 1; the version label says which build runs."),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let replay_store_errors = IntCounterVec::new(
            Opts::new(
                "hookgate_replay_store_errors_total",
                "Replay store operations that failed or timed out; on_store_error decided those requests.",
            ),
            &["route"],
        )
        .expect("valid metric");
        let replay_evictions = IntCounterVec::new(
            Opts::new(
                "hookgate_replay_evictions_total",
                "Unexpired keys the memory replay store dropped to stay within its capacity.",
            ),
            &["route"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(report_only.clone()),
            Box::new(reloads.clone()),
            Box::new(last_reload.clone()),
            Box::new(inflight.clone()),
            Box::new(build_info),
            Box::new(replay_store_errors.clone()),
            Box::new(replay_evictions.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        for result in ["ok", "error"] {
            reloads.with_label_values(&[result]);
        }
        requests.with_label_values(&["", "no_route"]);
        Self {
            registry,
            requests,
            request_duration,
            upstream_duration,
            report_only,
            reloads,
            last_reload,
            inflight,
            replay_store_errors,
            replay_evictions,
        }
    }

    /// Makes every series of `route` exist at 0, so rates and alerts see them from the start,
    /// and returns the ones every request touches.
    pub fn bind(&self, route: &str) -> RouteMetrics {
        for outcome in OUTCOMES.iter().filter(|o| **o != "no_route") {
            self.requests.with_label_values(&[route, outcome]);
        }
        self.replay_store_errors.with_label_values(&[route]);
        self.replay_evictions.with_label_values(&[route]);
        RouteMetrics {
            forwarded: self.requests.with_label_values(&[route, "forwarded"]),
            duration: self.request_duration.with_label_values(&[route]),
            upstream_duration: self.upstream_duration.with_label_values(&[route]),
        }
    }

    /// Counts a request of `route` (bound to `series`) that ended with `outcome`.
    pub fn count(&self, route: &str, series: &RouteMetrics, outcome: &str, seconds: f64) {
        match outcome {
            "forwarded" => series.forwarded.inc(),
            _ => self.requests.with_label_values(&[route, outcome]).inc(),
        }
        series.duration.observe(seconds);
    }

    /// Counts a request that matched no route.
    pub fn count_unrouted(&self, seconds: f64) {
        self.requests.with_label_values(&["", "no_route"]).inc();
        self.request_duration.with_label_values(&[""]).observe(seconds);
    }

    /// Records a config load: `ok` also stamps the time the config in use was loaded.
    pub fn record_reload(&self, ok: bool, unix_seconds: f64) {
        self.reloads.with_label_values(&[if ok { "ok" } else { "error" }]).inc();
        if ok {
            self.last_reload.set(unix_seconds);
        }
    }

    /// Stamps the startup config's load time (not counted as a reload).
    pub fn record_startup(&self, unix_seconds: f64) {
        self.last_reload.set(unix_seconds);
    }

    /// Counts a report-only verdict: `verified` or the rejection's outcome.
    pub fn count_report_only(&self, route: &str, outcome: &str) {
        self.report_only.with_label_values(&[route, outcome]).inc();
    }

    /// The counter of `route`'s failed replay store operations.
    pub fn replay_store_errors(&self, route: &str) -> IntCounter {
        self.replay_store_errors.with_label_values(&[route])
    }

    /// The counter of live keys `route`'s memory replay store evicted at capacity.
    pub fn replay_evictions(&self, route: &str) -> IntCounter {
        self.replay_evictions.with_label_values(&[route])
    }

    /// Counts a request as in flight until the returned guard drops (also when the request's
    /// future is cancelled because the sender went away).
    pub fn track_inflight(&self) -> InflightGuard {
        self.inflight.inc();
        InflightGuard(self.inflight.clone())
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer).expect("encoding to a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Decrements `hookgate_inflight_requests` on drop.
pub struct InflightGuard(IntGauge);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

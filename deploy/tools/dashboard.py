#!/usr/bin/env python3
"""Writes the Grafana dashboard, deploy/grafana/hookgate.json, to standard output.

    python3 deploy/tools/deploy_checks.py sync     # regenerates it (and the PrometheusRule)

.ci/deploy-checks fails while the JSON differs from what this prints: change the dashboard here
(or export it from Grafana and carry the change over), then sync.
"""
import json
DS = {"type": "prometheus", "uid": "${datasource}"}
S = 'namespace=~"$namespace", job=~"$job"'
R = S + ', route=~"$route"'
VERIFY = "missing_signature|malformed_signature|invalid_signature|expired"
OTHER = "too_large|request_timeout|method_not_allowed|bad_request|rate_limited|no_route|overloaded"
NOT_REJECTED = "forwarded|challenge|enrolment|upstream_error|upstream_timeout|overloaded|replay_store_error"
UPSTREAM = "upstream_error|upstream_timeout"
ATTEMPTS = "forwarded|enrolment|upstream_error|upstream_timeout"
RI = "$__rate_interval"

panels = []
pid = [0]
def panel(kind, title, desc, targets, x, y, w, h, unit=None, extra=None, legend=True):
    pid[0] += 1
    p = {
        "id": pid[0], "type": kind, "title": title, "description": desc, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [dict(t, datasource=DS, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if unit: p["fieldConfig"]["defaults"]["unit"] = unit
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": False}
        p["options"] = {"legend": {"displayMode": "table" if legend else "list", "placement": "right" if legend else "bottom", "calcs": ["mean", "max"] if legend else [], "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value", "graphMode": "area", "justifyMode": "auto", "textMode": "auto", "orientation": "auto"}
    if extra:
        for k, v in extra.items():
            if k == "defaults": p["fieldConfig"]["defaults"].update(v)
            else: p[k] = v
    panels.append(p)

def row(title, y):
    pid[0] += 1
    panels.append({"id": pid[0], "type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})

def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}

y = 0
row("Overview", y); y += 1
panel("stat", "Requests / s", "All requests on the selected routes, whatever their outcome.",
      [{"expr": f'sum(rate(hookgate_requests_total{{{R}}}[{RI}]))', "legendFormat": "requests/s"}], 0, y, 6, 4, unit="reqps")
panel("stat", "Rejected", "Share of requests to a route that hookgate refused (bad, missing or expired signatures, oversized or slow bodies, wrong methods...), not counting upstream failures, 503 overloaded and replay store failures. Unmatched paths are left out. Alert: HookgateRejectionRatioHigh.",
      [{"expr": f'sum(rate(hookgate_requests_total{{{R}, route!="", outcome!~"{NOT_REJECTED}"}}[{RI}])) / sum(rate(hookgate_requests_total{{{R}, route!=""}}[{RI}]))', "legendFormat": "rejected"}],
      6, y, 6, 4, unit="percentunit", extra={"defaults": {"thresholds": thresholds(("green", None), ("orange", 0.1), ("red", 0.25))}})
panel("stat", "Upstream errors", "Share of verified requests the upstream did not answer (502 upstream_error, 504 upstream_timeout). Alert: HookgateUpstreamErrors.",
      [{"expr": f'sum(rate(hookgate_requests_total{{{R}, outcome=~"{UPSTREAM}"}}[{RI}])) / sum(rate(hookgate_requests_total{{{R}, outcome=~"{ATTEMPTS}"}}[{RI}]))', "legendFormat": "upstream errors"}],
      12, y, 6, 4, unit="percentunit", extra={"defaults": {"thresholds": thresholds(("green", None), ("orange", 0.01), ("red", 0.05))}})
panel("stat", "Refused reloads (1h)", "Config reloads refused in the last hour: the old config keeps serving, but the file is invalid. Alert: HookgateConfigReloadFailed.",
      [{"expr": f'sum(increase(hookgate_config_reloads_total{{{S}, result="error"}}[1h]))', "legendFormat": "refused"}],
      18, y, 6, 4, unit="short", extra={"defaults": {"decimals": 0, "thresholds": thresholds(("green", None), ("red", 1))}})
y += 4

row("Requests", y); y += 1
panel("timeseries", "Requests by outcome per route", "hookgate_requests_total by route and outcome (series that stay at 0 are hidden). route=\"\" is unmatched paths (no_route).",
      [{"expr": f'sum by (route, outcome) (rate(hookgate_requests_total{{{R}}}[{RI}])) > 0', "legendFormat": "{{route}} {{outcome}}"}], 0, y, 24, 9, unit="reqps")
y += 9
panel("timeseries", "Verification failures by reason", "Requests refused by signature verification: missing_signature (400), malformed_signature (400), invalid_signature (403: wrong secret or forged), expired (403: timestamp outside the tolerance).",
      [{"expr": f'sum by (route, outcome) (rate(hookgate_requests_total{{{R}, outcome=~"{VERIFY}"}}[{RI}])) > 0', "legendFormat": "{{route}} {{outcome}}"}], 0, y, 12, 8, unit="reqps")
panel("timeseries", "Other refusals", "too_large (413), request_timeout (408: body too slow), method_not_allowed (405), bad_request (400: unreadable body), rate_limited (429: FreshBooks registrations), no_route (404), and overloaded (503: limits.max_concurrent_requests or max_upstream_concurrency reached; alert HookgateOverloaded).",
      [{"expr": f'sum by (route, outcome) (rate(hookgate_requests_total{{{R}, outcome=~"{OTHER}"}}[{RI}])) > 0', "legendFormat": "{{route}} {{outcome}}"}], 12, y, 12, 8, unit="reqps")
y += 8
panel("timeseries", "Report-only verdicts", "Routes with enforce: false forward everything and count what verification would have said: turn enforce on once only `verified` remains.",
      [{"expr": f'sum by (route, outcome) (rate(hookgate_report_only_total{{{R}}}[{RI}])) > 0', "legendFormat": "{{route}} {{outcome}}"}], 0, y, 12, 8, unit="reqps")
panel("timeseries", "In-flight requests", "Requests being handled now, per instance (hookgate_inflight_requests).",
      [{"expr": f'sum by (instance) (hookgate_inflight_requests{{{S}}})', "legendFormat": "{{instance}}"}], 12, y, 12, 8, unit="short")
y += 8

row("Latency", y); y += 1
panel("timeseries", "Request latency percentiles", "From request head to response head, all selected routes (hookgate_request_duration_seconds). Alert: HookgateLatencyHigh (p99 > 2.5 s per route).",
      [{"expr": f'histogram_quantile({q}, sum by (le) (rate(hookgate_request_duration_seconds_bucket{{{R}}}[{RI}])))', "legendFormat": f"p{int(float(q)*100)}"} for q in ("0.5", "0.9", "0.99")],
      0, y, 12, 8, unit="s", legend=False)
panel("timeseries", "p99 latency by route", "99th percentile of request duration per route.",
      [{"expr": f'histogram_quantile(0.99, sum by (route, le) (rate(hookgate_request_duration_seconds_bucket{{{R}}}[{RI}])))', "legendFormat": "{{route}}"}], 12, y, 12, 8, unit="s")
y += 8
panel("timeseries", "Upstream latency percentiles", "Time the upstream took for forwarded requests (hookgate_upstream_duration_seconds). Request latency minus this is hookgate's own share.",
      [{"expr": f'histogram_quantile({q}, sum by (le) (rate(hookgate_upstream_duration_seconds_bucket{{{R}}}[{RI}])))', "legendFormat": f"p{int(float(q)*100)}"} for q in ("0.5", "0.9", "0.99")],
      0, y, 12, 8, unit="s", legend=False)
panel("timeseries", "Mean request latency by route", "hookgate_request_duration_seconds_sum / _count per route.",
      [{"expr": f'sum by (route) (rate(hookgate_request_duration_seconds_sum{{{R}}}[{RI}])) / sum by (route) (rate(hookgate_request_duration_seconds_count{{{R}}}[{RI}]))', "legendFormat": "{{route}}"}], 12, y, 12, 8, unit="s")
y += 8

row("Upstream", y); y += 1
panel("timeseries", "Upstream errors", "Verified requests the upstream did not answer: upstream_error (502: refused, reset, broken or oversized answer) and upstream_timeout (504).",
      [{"expr": f'sum by (route, outcome) (rate(hookgate_requests_total{{{R}, outcome=~"{UPSTREAM}"}}[{RI}])) > 0', "legendFormat": "{{route}} {{outcome}}"}], 0, y, 12, 8, unit="reqps")
panel("timeseries", "Upstream error ratio by route", "upstream_error + upstream_timeout over everything sent to the upstream. Alert: HookgateUpstreamErrors (> 5% for 5 minutes).",
      [{"expr": f'sum by (route) (rate(hookgate_requests_total{{{R}, outcome=~"{UPSTREAM}"}}[{RI}])) / sum by (route) (rate(hookgate_requests_total{{{R}, outcome=~"{ATTEMPTS}"}}[{RI}]))', "legendFormat": "{{route}}"}],
      12, y, 12, 8, unit="percentunit")
y += 8

row("Replay protection", y); y += 1
panel("timeseries", "Replays and store failures", "replayed: verified deliveries seen before on the route within its window (409). replay_store_error: the Redis store failed and on_store_error: reject answered 503. Alert: HookgateReplayStoreErrors.",
      [{"expr": f'sum by (route, outcome) (rate(hookgate_requests_total{{{R}, outcome=~"replayed|replay_store_error"}}[{RI}])) > 0', "legendFormat": "{{route}} {{outcome}}"},
       {"expr": f'sum by (route) (rate(hookgate_replay_store_errors_total{{{R}}}[{RI}])) > 0', "legendFormat": "{{route}} store errors"}],
      0, y, 12, 8, unit="reqps")
panel("timeseries", "Replay store evictions", "Unexpired keys the memory replay store dropped at capacity: a replay of those would pass. Alert: HookgateReplayStoreEvicting.",
      [{"expr": f'sum by (route) (rate(hookgate_replay_evictions_total{{{R}}}[{RI}])) > 0', "legendFormat": "{{route}}"}],
      12, y, 12, 8, unit="ops")
y += 8

row("Config and build", y); y += 1
panel("timeseries", "Config reloads", "Reloads by result (hookgate_config_reloads_total): ok, or error (refused; the old config keeps serving).",
      [{"expr": f'sum by (result) (increase(hookgate_config_reloads_total{{{S}}}[{RI}]))', "legendFormat": "{{result}}"}], 0, y, 8, 8, unit="short", legend=False)
panel("timeseries", "Config age", "Time since each instance loaded the config it serves (startup or last good reload).",
      [{"expr": f'time() - max by (instance) (hookgate_config_last_reload_success_timestamp_seconds{{{S}}})', "legendFormat": "{{instance}}"}], 8, y, 8, 8, unit="s")
panel("table", "Versions running", "Instances per hookgate version (hookgate_build_info).",
      [{"expr": f'count by (version) (hookgate_build_info{{{S}}})', "legendFormat": "{{version}}", "instant": True, "format": "table"}], 16, y, 8, 8, unit="short",
      extra={"options": {"showHeader": True}, "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "instances"}}}]})
y += 8

def var(name, label, query, multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-query"}, "definition": query,
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "options": [], "regex": ""}

dash = {
    "title": "hookgate",
    "uid": "hookgate",
    "description": "hookgate webhook gateway: requests by outcome, verification failures, latency, upstream errors, reloads. Source: deploy/grafana/hookgate.json.",
    "tags": ["hookgate", "webhooks"],
    "editable": True,
    "graphTooltip": 1,
    "schemaVersion": 39,
    "version": 1,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "30s",
    "timezone": "",
    "links": [],
    "annotations": {"list": [
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
         "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"},
        {"datasource": DS, "enable": True, "hide": False, "iconColor": "red", "name": "hookgate alerts",
         "expr": 'ALERTS{alertname=~"Hookgate.*", alertstate="firing", namespace=~"$namespace"}',
         "step": "60s", "titleFormat": "{{alertname}}", "textFormat": "{{route}} {{instance}}", "useValueForTime": False},
    ]},
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "refresh": 1, "hide": 0,
         "current": {}, "options": [], "regex": "", "multi": False, "includeAll": False},
        var("namespace", "Namespace", "label_values(hookgate_build_info, namespace)"),
        var("job", "Job", 'label_values(hookgate_build_info{namespace=~"$namespace"}, job)'),
        var("route", "Route", 'label_values(hookgate_requests_total{namespace=~"$namespace", job=~"$job"}, route)'),
    ]},
    "panels": panels,
}


def render() -> str:
    return json.dumps(dash, indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")

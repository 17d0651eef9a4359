-- wrk script for bench/loadbench.py: one GitHub-style webhook POST, formatted once in init()
-- so no Lua runs per request (unless a per-request delay is asked for: the light-load cell).
-- args: <body file> <X-Hub-Signature-256 value> [delay ms between requests per connection]
function init(args)
    local f = assert(io.open(args[1], "rb"))
    local body = f:read("*a")
    f:close()
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
    wrk.headers["Accept"] = "*/*"
    wrk.headers["X-GitHub-Event"] = "push"
    wrk.headers["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    wrk.headers["X-GitHub-Hook-ID"] = "292430182"
    wrk.headers["X-Hub-Signature-256"] = args[2]
    local d = tonumber(args[3] or "0")
    if d and d > 0 then
        function delay() return d end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
        '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
        latency.max))
end

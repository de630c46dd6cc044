-- wrk script: POST a fixed JSON body (NR_BODY) with a Bearer token (NR_TOKEN),
-- then print one machine-readable line with the latency percentiles (microseconds).
-- Usage: NR_TOKEN=... NR_BODY='{"prompt":"hi"}' wrk -s bench/post.lua -c1 -t1 -d10s --latency URL
wrk.method = "POST"
wrk.body = os.getenv("NR_BODY") or '{"prompt":"hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("NR_TOKEN") or "bench")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"non2xx":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end

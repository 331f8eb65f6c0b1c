-- wrk script for bench/run.py: GET $WRK_PATH with "Host: localhost" (a domain both servers
-- accept); with WRK_CLOSE=1 every request asks for "Connection: close" (a new connection per
-- request). done() prints one machine-readable line: WRKJSON {...}.
wrk.method = "GET"
wrk.path = os.getenv("WRK_PATH") or "/keys"
wrk.headers["Host"] = "localhost"
if os.getenv("WRK_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end

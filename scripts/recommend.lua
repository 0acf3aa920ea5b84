-- wrk script: GET /v1/recommend for MovieLens users 1..943 in turn, top 10 without seen items.
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/recommend?user=" .. (n % 943 + 1) .. "&k=10&exclude_seen=true")
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests_per_s=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, summary.requests))
end

-- wrk script: GET /v1/recommend for MovieLens users 1..943 in turn, top 10 without seen items.
-- DEBUG=1: ask a pipeline for its per-stage timings (debug=true) and report their means.
local n = 0
local debug = os.getenv("DEBUG") == "1"
local suffix = debug and "&debug=true" or ""
local keys = { "retrieve_ms", "rank_ms", "post_rank_ms", "total_ms" }
local threads = {}
-- per wrk thread (globals of its own Lua state, read back in done)
sums = { 0, 0, 0, 0 }
answered = 0

setup = function(thread)
  table.insert(threads, thread)
end

request = function()
  n = n + 1
  return wrk.format("GET", "/v1/recommend?user=" .. (n % 943 + 1) .. "&k=10&exclude_seen=true" .. suffix)
end

if debug then
  response = function(status, headers, body)
    if status ~= 200 then return end
    for i, key in ipairs(keys) do
      local v = string.match(body, '"' .. key .. '":([-0-9.eE+]+)')
      if v then sums[i] = sums[i] + tonumber(v) end
    end
    answered = answered + 1
  end
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests_per_s=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, summary.requests))
  if debug then
    local total, count = { 0, 0, 0, 0 }, 0
    for _, t in ipairs(threads) do
      local s = t:get("sums")
      for i = 1, 4 do total[i] = total[i] + s[i] end
      count = count + t:get("answered")
    end
    local m = function(i) return count > 0 and total[i] / count or 0 end
    io.write(string.format("STAGES retrieve_ms=%.3f rank_ms=%.3f post_rank_ms=%.3f total_ms=%.3f (means over %d answers)\n",
      m(1), m(2), m(3), m(4), count))
  end
end

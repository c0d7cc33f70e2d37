-- Shared by the workload scripts: wallet picking, per-thread seeding, and one JSON line of results for the harness.
local report = {}

local first = tonumber(os.getenv("BENCH_FIRST_ID") or "1")
local last = tonumber(os.getenv("BENCH_LAST_ID") or "1000")
report.amount = os.getenv("BENCH_AMOUNT") or "1.00"
report.first, report.last = first, last

-- Each thread is its own Lua state: number the threads so their random streams differ.
local threads = {}
local counter = 0

function report.setup(thread)
   counter = counter + 1
   thread:set("thread_number", counter)
   table.insert(threads, thread)
end

-- A run-unique prefix for Idempotency-Keys, so two runs with the same API key never replay each other's answers.
local key_prefix = ""
local keys_sent = 0

function report.init()
   math.randomseed(os.time() * 1000 + (thread_number or 0))
   key_prefix = string.format("bench-%d-%d-%d-", os.time(), math.random(1, 1000000000), thread_number or 0)
end

-- Headers of a keyed write, as real clients send it: a fresh Idempotency-Key on every request.
function report.keyed_headers()
   keys_sent = keys_sent + 1
   local headers = {}
   for name, value in pairs(report.json_headers) do headers[name] = value end
   headers["Idempotency-Key"] = key_prefix .. keys_sent
   return headers
end

-- Zipf-skewed wallet choice (s = 1): wallet first + k - 1 is picked with weight 1/k, so a few wallets take most
-- of the traffic, as real accounts do. The cumulative weights are built once per thread.
local zipf_cdf = nil

function report.zipf_wallet()
   if zipf_cdf == nil then
      zipf_cdf = {}
      local total = 0
      for k = 1, last - first + 1 do
         total = total + 1 / k
         zipf_cdf[k] = total
      end
      for k = 1, #zipf_cdf do zipf_cdf[k] = zipf_cdf[k] / total end
   end
   local u, low, high = math.random(), 1, #zipf_cdf
   while low < high do
      local middle = math.floor((low + high) / 2)
      if zipf_cdf[middle] < u then low = middle + 1 else high = middle end
   end
   return first + low - 1
end

function report.wallet()
   return math.random(first, last)
end

-- Two different wallets (for transfers); with a single wallet the harness never asks for one.
function report.two_wallets()
   local a = math.random(first, last)
   local b = math.random(first, last - 1)
   if b >= a then b = b + 1 end
   return a, b
end

-- Every request carries the run's API key (BENCH_API_KEY, from the harness's environment) as a Bearer token;
-- without one (the server measured with auth off) no Authorization header is sent.
report.headers = {}
report.json_headers = { ["Content-Type"] = "application/json" }
local api_key = os.getenv("BENCH_API_KEY")
if api_key and api_key ~= "" then
   report.headers["Authorization"] = "Bearer " .. api_key
   report.json_headers["Authorization"] = "Bearer " .. api_key
end

-- wrk counts a response as an error when its status is >= 400 ("Non-2xx or 3xx"); this API never answers 3xx
-- on these routes, so errors.status is the non-2xx count.
function report.done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "non_2xx": %d, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes, e.status,
      e.connect, e.read, e.write, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end

return report

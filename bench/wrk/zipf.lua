-- Workload 6: the 70/20/10 mix with Zipf-skewed wallets (s = 1) and every write keyed.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local r = require("report")

setup, init, done = r.setup, r.init, r.done

function request()
   local roll = math.random(100)
   if roll <= 70 then
      return wrk.format("GET", "/wallet/balance/" .. r.zipf_wallet(), r.headers)
   elseif roll <= 80 then
      local body = string.format('{"id": %d, "amount": "%s"}', r.zipf_wallet(), r.amount)
      return wrk.format("POST", "/wallet/deposit", r.keyed_headers(), body)
   elseif roll <= 90 then
      local body = string.format('{"id": %d, "amount": "%s"}', r.zipf_wallet(), r.amount)
      return wrk.format("POST", "/wallet/withdraw", r.keyed_headers(), body)
   else
      local from, to = r.zipf_wallet(), r.zipf_wallet()
      if from == to then to = (from == r.first) and from + 1 or r.first end
      local body = string.format('{"from_id": %d, "to_id": %d, "amount": "%s"}', from, to, r.amount)
      return wrk.format("POST", "/wallet/transfer", r.keyed_headers(), body)
   end
end

-- Workload 4: 70% balance reads, 20% deposits and withdrawals (half each), 10% transfers, spread over the wallets.
-- Wallets start with a large balance and amounts are small, so withdrawals and transfers never run dry.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local r = require("report")

setup, init, done = r.setup, r.init, r.done

function request()
   local roll = math.random(100)
   if roll <= 70 then
      return wrk.format("GET", "/wallet/balance/" .. r.wallet(), r.headers)
   elseif roll <= 80 then
      local body = string.format('{"id": %d, "amount": "%s"}', r.wallet(), r.amount)
      return wrk.format("POST", "/wallet/deposit", r.json_headers, body)
   elseif roll <= 90 then
      local body = string.format('{"id": %d, "amount": "%s"}', r.wallet(), r.amount)
      return wrk.format("POST", "/wallet/withdraw", r.json_headers, body)
   else
      local from, to = r.two_wallets()
      local body = string.format('{"from_id": %d, "to_id": %d, "amount": "%s"}', from, to, r.amount)
      return wrk.format("POST", "/wallet/transfer", r.json_headers, body)
   end
end

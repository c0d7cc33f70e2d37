-- Workload 7: one pair of wallets transferring to each other in both directions (the first two wallets), keyed.
-- Every transfer locks both rows, in both orders at once: the deadlock-prone case.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local r = require("report")

setup, init, done = r.setup, r.init, r.done

function request()
   local a, b = r.first, r.first + 1
   if math.random(2) == 1 then a, b = b, a end
   local body = string.format('{"from_id": %d, "to_id": %d, "amount": "%s"}', a, b, r.amount)
   return wrk.format("POST", "/wallet/transfer", r.keyed_headers(), body)
end

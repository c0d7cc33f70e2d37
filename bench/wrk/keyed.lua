-- Workload 5: deposits spread over the wallets as real clients send them: each with its own Idempotency-Key.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local r = require("report")

setup, init, done = r.setup, r.init, r.done

function request()
   local body = string.format('{"id": %d, "amount": "%s"}', r.wallet(), r.amount)
   return wrk.format("POST", "/wallet/deposit", r.keyed_headers(), body)
end

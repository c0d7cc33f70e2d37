-- Workloads 2 and 3: deposits spread over the wallets, or all on one hot wallet (BENCH_FIRST_ID = BENCH_LAST_ID).
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local r = require("report")

setup, init, done = r.setup, r.init, r.done

function request()
   local body = string.format('{"id": %d, "amount": "%s"}', r.wallet(), r.amount)
   return wrk.format("POST", "/wallet/deposit", r.json_headers, body)
end

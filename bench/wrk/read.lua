-- Workload 1: balance reads spread over the wallets (GET /wallet/balance/{id}, the original API's route).
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local r = require("report")

setup, init, done = r.setup, r.init, r.done

function request()
   return wrk.format("GET", "/wallet/balance/" .. r.wallet(), r.headers)
end
